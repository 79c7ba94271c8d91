"""gitrecords: metadata records as JSON files in a git repository.

The public API: :class:`Repository`, :class:`Record`, the ``hookimpl`` marker,
the ``plugins`` registry and the errors.

The names are imported when first used (a module ``__getattr__``): ``import
gitrecords.cli`` must not cost every command the record API, pygit2 and
jsonschema (issue 21, CLI start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    GitRecordsError,
    InvalidRecordError,
    NoResultFound,
    RecordDeletedError,
    RecordExistsError,
    StaleRevisionError,
)

if TYPE_CHECKING:
    from . import plugins
    from .errors import ValidationError
    from .hookspecs import hookimpl
    from .record import Record, RecordRevision
    from .repository import Repository

#: public name -> the module that defines it
_LAZY = {
    "Record": "record",
    "RecordRevision": "record",
    "Repository": "repository",
    "ValidationError": "errors",
    "hookimpl": "hookspecs",
}


def __getattr__(name: str) -> Any:
    """The public names that cost an import, imported when first asked for."""
    if name == "plugins":
        return importlib.import_module(".plugins", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module 'gitrecords' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
