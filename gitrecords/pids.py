"""Persistent identifiers: the built-in ``recid`` minter and minter lookup.

``recid`` assigns ``control_number`` as the next integer, as a string ("1",
"2", ...). Minting runs while the writer holds the repository's write lock,
and every write checks that its PIDs are not used by another record at the
tip it commits onto, so two writers never hand out the same number.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

from .errors import GitRecordsError
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .repository import Repository

RECID_FIELD = "control_number"


class Minter(Protocol):
    def __call__(self, repo: Repository, record_id: uuid.UUID, data: dict[str, Any]) -> str: ...


class PIDError(GitRecordsError):
    """A PID cannot be minted, or it is already used by another record."""


def recid(repo: Repository, record_id: uuid.UUID, data: dict[str, Any]) -> str:
    """Mint the next integer ``control_number`` for ``data``."""
    if RECID_FIELD in data:
        raise PIDError(f"record {record_id} already has a {RECID_FIELD} ({data[RECID_FIELD]!r})")
    value = str(repo.next_integer_pid("recid"))
    data[RECID_FIELD] = value
    return value


@hookimpl
def gitrecords_pid_minters() -> dict[str, Minter]:
    return {"recid": recid}


def minters() -> dict[str, Minter]:
    """All known minters by name, from every plugin."""
    from . import plugins

    found: dict[str, Minter] = {}
    for contribution in plugins.hook().gitrecords_pid_minters():
        found.update(contribution or {})
    return found


def get_minter(name: str) -> Minter:
    known = minters()
    if name not in known:
        raise PIDError(f"unknown PID minter {name!r}; known minters: {', '.join(sorted(known))}")
    return known[name]
