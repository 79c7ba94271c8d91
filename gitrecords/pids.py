"""Persistent identifiers: the built-in ``recid`` minter, a plugin like any other.

``recid`` assigns ``control_number`` as the next integer, as a string ("1",
"2", ...). Minting runs while the writer holds the repository's write lock,
and every write checks that its PIDs are not used by another record at the
tip it commits onto, so two writers never hand out the same number. The
numbers of hard-deleted records stay reserved (``purged.txt`` lists them).

Minters are looked up with :func:`gitrecords.plugins.get_minter`.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from .errors import PIDError
from .hookspecs import hookimpl

__all__ = ["RECID_FIELD", "Minter", "PIDError", "gitrecords_pid_minters", "recid"]

RECID_FIELD = "control_number"


class Minter(Protocol):
    def __call__(self, repo: Any, record_id: uuid.UUID, data: dict[str, Any]) -> str: ...


def recid(repo: Any, record_id: uuid.UUID, data: dict[str, Any]) -> str:
    """Mint the next integer ``control_number`` for ``data`` (``repo``: a Repository)."""
    if RECID_FIELD in data:
        raise PIDError(f"record {record_id} already has a {RECID_FIELD} ({data[RECID_FIELD]!r})")
    value = str(repo.next_integer_pid("recid"))
    data[RECID_FIELD] = value
    return value


@hookimpl
def gitrecords_pid_minters() -> dict[str, Minter]:
    return {"recid": recid}
