"""gitrecords: metadata records as JSON files in a git repository.

The public API: :class:`Repository`, :class:`Record`, the ``hookimpl`` marker,
the ``plugins`` registry and the errors.
"""

from __future__ import annotations

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


def __getattr__(name: str) -> str:
    """``__version__``, looked up when asked for: importlib.metadata costs every CLI command 25 ms."""
    if name != "__version__":
        raise AttributeError(f"module 'gitrecords' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gitrecords")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


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
