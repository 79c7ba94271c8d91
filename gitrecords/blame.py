"""Who set each field of a record (blame), and which revision was current then (time travel).

:func:`blame` answers, for every leaf of a record (each scalar, each empty object or array,
named by its JSON pointer, RFC 6901), the revision that last set it and that revision's commit.
It walks the record's revisions from the revision index, oldest first, and compares the leaves
of each revision with those of the revision before: a leaf whose value (type included: ``1``,
``1.0`` and ``true`` differ) changed, or that appeared, is attributed to the new revision. The
cost is one read of each revision's file (parsed blobs are cached) and one commit per
attributed revision: it grows with that record's revisions, never with the repository.

Leaves are compared by pointer, as ``git blame`` compares lines without move detection: an
element inserted at the front of an array moves the others to new pointers, and they are
attributed to the insertion when their values at those pointers changed.

Tombstones (soft deletes) and removed files are not edits of fields: they are skipped, and the
next live revision is compared with the last live one before them. An undelete, which brings
back the last live data, therefore changes no attribution; a revert to an older revision
attributes to the revert every leaf whose value it changed. Blame of a deleted record (or as of
a tombstone revision) raises :class:`~gitrecords.errors.RecordDeletedError`.

:func:`find_revision` reads ``at`` values: a revision id (an ``int``, or a ``str`` of digits),
a date or datetime (``datetime``/``date`` objects, or ISO 8601 text: the last revision whose
commit time is at or before it; a date alone means the end of that day, UTC; a datetime without
a zone is UTC), or else a commit-ish (a full or abbreviated commit id, a ref, ``HEAD~2``): the
revision that was current at that commit of the branch's first-parent history. Digits alone are
a revision id; seven digits or more that are no revision of the record but name a commit are that
commit (``1234567^{commit}`` always names a commit).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from . import _git, layout
from .errors import GitRecordsError, InvalidRecordError, NoResultFound, RecordDeletedError
from .index import LIVE, RevisionRow
from .storage import Storage

__all__ = ["AtError", "BlameEntry", "blame", "escape", "find_revision", "leaves", "parse_at"]

#: a member name as a JSON pointer token (kept by this name: blame's pointers are built with it)
escape = layout.pointer_token


class AtError(GitRecordsError, ValueError):
    """An ``at`` value that is not a revision id, an ISO 8601 date or datetime, or a commit."""


@dataclass(frozen=True)
class BlameEntry:
    """One leaf of a record and the revision (and its commit) that last set it."""

    pointer: str
    value: Any
    revision_id: int
    commit: str
    author_name: str
    author_email: str
    time: datetime
    message: str

    def as_json(self) -> dict[str, Any]:
        """``{pointer, revision_id, commit, author: {name, email}, time, message}`` (time in ISO 8601)."""
        return {
            "pointer": self.pointer,
            "revision_id": self.revision_id,
            "commit": self.commit,
            "author": {"name": self.author_name, "email": self.author_email},
            "time": self.time.isoformat(),
            "message": self.message,
        }


def leaves(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(JSON pointer, value) of every scalar and every empty object or array, in document order."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from leaves(value, f"{prefix}/{layout.pointer_token(key)}")
    elif isinstance(data, list) and data:
        for number, value in enumerate(data):
            yield from leaves(value, f"{prefix}/{number}")
    else:
        yield prefix, data


def _key(value: Any) -> tuple[type, Any]:
    # type-aware: 1 == 1.0 == True in Python, but they are different JSON values
    return (type(value), value if not isinstance(value, (dict, list)) else None)


def _data(repo: Storage, record_id: uuid.UUID, row: RevisionRow, limit: int) -> dict[str, Any] | None:
    """A live revision's data; None for a tombstone, a removed file or a file that cannot be read."""
    if row.state != LIVE or row.blob is None:
        return None
    try:
        data = repo.read_record_file(record_id, _git.Oid(hex=row.blob), limit)
    except InvalidRecordError:
        return None  # a broken file (plain git) is skipped like a tombstone
    return data if isinstance(data, dict) else None


def blame(repo: Storage, record_id: uuid.UUID | str, *, revision: int | None = None) -> list[BlameEntry]:
    """Every leaf of the record (as of ``revision``, default the latest) with the revision that
    last set it, in document order. NoResultFound for a record that never existed (or an unknown
    revision), RecordDeletedError when that revision is a tombstone."""
    record_id = layout.normalize_id(record_id)
    snap = repo.snapshot()
    rows = repo.index.revisions(record_id, snap.tip)
    if not rows:
        raise NoResultFound(f"record {record_id} does not exist")
    if revision is not None:
        if not 0 <= revision < len(rows):
            raise NoResultFound(f"record {record_id} has no revision {revision}")
        rows = rows[: revision + 1]
    last = rows[-1]
    if last.state != LIVE:
        raise RecordDeletedError(
            f"record {record_id} is deleted in revision {last.revision}: blame an earlier revision"
        )
    setter: dict[str, int] = {}  # pointer -> index in rows of the revision that last set it
    previous: dict[str, tuple[type, Any]] = {}
    current: list[tuple[str, Any]] = []
    for position, row in enumerate(rows):
        data = _data(repo, record_id, row, snap.max_record_bytes)
        if data is None:
            if position == len(rows) - 1:
                raise InvalidRecordError(f"record {record_id}: revision {row.revision} cannot be read")
            continue
        current = list(leaves(data))
        now = {pointer: _key(value) for pointer, value in current}
        for pointer, key in now.items():
            if previous.get(pointer, _MISSING) != key:
                setter[pointer] = position
        previous = now
    infos: dict[int, _git.CommitInfo] = {}
    entries = []
    for pointer, value in current:
        row = rows[setter[pointer]]
        info = infos.get(row.revision)
        if info is None:
            info = infos[row.revision] = _git.commit_info(repo.git, row.commit_id)
        entries.append(
            BlameEntry(
                pointer,
                value,
                row.revision,
                info.id,
                info.author_name,
                info.author_email,
                info.time,
                info.message.rstrip("\n"),
            )
        )
    return entries


_MISSING: Any = object()

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ].+")


def parse_at(value: int | str | date | datetime) -> int | datetime | str:
    """An ``at`` value read: a revision id (int), an aware datetime (a date alone is the end of
    that day, UTC), or a commit-ish (str, not resolved yet). AtError for a malformed date."""
    if isinstance(value, bool):
        raise AtError(f"{value!r} is not a revision, a date or a commit")
    if isinstance(value, int):
        if value < 0:
            raise AtError(f"revision {value}: revision ids start at 0")
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.max, UTC)
    text = value.strip()
    if not text:
        raise AtError("an empty value is not a revision, a date or a commit")
    if text.isdigit() and text.isascii():
        if len(text) > 18:  # (and past 4,300 digits int() refuses the text)
            raise AtError(f"revision {text[:12]}...: no record has that many revisions")
        return int(text)
    try:
        if _DATE.fullmatch(text):
            return datetime.combine(date.fromisoformat(text), time.max, UTC)
        if _DATETIME.fullmatch(text):
            when = datetime.fromisoformat(text.replace("z", "Z"))
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    except ValueError as err:
        raise AtError(f"{text!r} is not a valid ISO 8601 date or datetime: {err}") from None
    return text


def find_revision(repo: Storage, record_id: uuid.UUID | str, at: int | str | date | datetime) -> int:
    """The id of the record's revision that was current at ``at`` (see the module's docstring).

    NoResultFound (with the reason) when the record did not exist then; AtError when ``at`` is
    not a revision id, a date or a commit of the repository.
    """
    record_id = layout.normalize_id(record_id)
    wanted = parse_at(at)
    snap = repo.snapshot()
    rows = repo.index.revisions(record_id, snap.tip)
    if not rows:
        raise NoResultFound(f"record {record_id} does not exist")
    if isinstance(wanted, int) and isinstance(at, str) and len(at.strip()) >= 7 and wanted >= len(rows):
        # no such revision: seven digits or more may be an abbreviated commit id (git's shortest)
        if _git.resolve_commit(repo.git, at.strip()) is not None:
            wanted = at.strip()
    if isinstance(wanted, int):
        if wanted >= len(rows):
            last = len(rows) - 1
            span = "revision 0 only" if last == 0 else f"revisions 0 to {last}"
            raise NoResultFound(f"record {record_id} has no revision {wanted} (it has {span})")
        return wanted
    if isinstance(wanted, datetime):
        # commit times are whole seconds: a revision at 10:00:00 is at or before 10:00:00.5
        bound = int(wanted.timestamp() // 1)
        found = [row.revision for row in rows if row.time <= bound]
        if not found:
            created = datetime.fromtimestamp(rows[0].time, UTC).isoformat()
            shown = at.strip() if isinstance(at, str) else wanted.isoformat()
            raise NoResultFound(
                f"record {record_id} did not exist yet at {shown}: it was created at {created}"
            )
        return max(found)
    commit = _git.resolve_commit(repo.git, wanted)
    if commit is None:
        raise AtError(f"{wanted!r} is not a revision id, an ISO 8601 date or a commit of this repository")
    repo.sync_index()
    seq = repo.index.seq_of(commit)
    if seq is None:
        raise NoResultFound(
            f"commit {str(commit)[:12]} is not in the first-parent history of branch {repo.branch} "
            "(where revisions are counted): give a revision id or a date"
        )
    then = repo.index.revisions(record_id, commit)
    if not then:
        raise NoResultFound(f"record {record_id} did not exist yet at commit {str(commit)[:12]}")
    return then[-1].revision
