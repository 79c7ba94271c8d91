"""gitrecords: metadata records as JSON files in a git repository.

The public API: :class:`Repository`, :class:`Record`, the ``hookimpl`` marker,
the ``plugins`` registry and the errors.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import plugins
from .errors import (
    GitRecordsError,
    InvalidRecordError,
    NoResultFound,
    RecordDeletedError,
    RecordExistsError,
    StaleRevisionError,
    ValidationError,
)
from .hookspecs import hookimpl
from .record import Record, RecordRevision
from .repository import Repository

try:
    __version__ = version("gitrecords")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "GitRecordsError",
    "InvalidRecordError",
    "NoResultFound",
    "Record",
    "RecordDeletedError",
    "RecordExistsError",
    "RecordRevision",
    "Repository",
    "StaleRevisionError",
    "ValidationError",
    "__version__",
    "hookimpl",
    "plugins",
]
