"""Record-aware three-way merges: one record's JSON, and the trees of two commits.

Git never merges a record file line by line here: a textual merge of JSON can
give a file that parses but says something neither side wrote. The rules
(docs/replication.md has examples):

* **Objects** merge key by key, recursively. A key added, changed or removed
  on one side only takes that side's change.
* **Arrays are atomic**: if one side changed an array, that array is taken;
  if both changed it to different arrays, it is a conflict at the array's
  JSON pointer, even when the two changes touch different items (the order
  and the items of a list such as ``creators`` mean something together).
* **Scalars**: one side changed => take it; both changed differently => conflict.
* Both sides making the **same change** is never a conflict.
* A **type change** (object to array, string to number, ...) on one side
  while the other side changed the value too is a conflict.
* **Edit versus delete**: a key removed on one side and changed on the other,
  or a record deleted on one side (tombstone or file removed) and changed on
  the other, is a conflict. Deleted on both sides is fine (the earlier
  tombstone is kept).

A conflict is reported as a :class:`Conflict` (record id, JSON pointer, base,
ours and theirs values). ``strategy="ours"`` or ``"theirs"`` resolves each
conflicting spot with that side's value, while every change that does not
conflict is still merged from both sides (like ``git merge -X ours``).

The tree merge (:func:`merge_trees`) works on whole records first: a record
changed on one side only is taken as it is, by blob id, without reading it;
only records changed on both sides are read and merged as JSON, and written
back as canonical JSON. Other files merge as whole files (``purged.txt`` as a
sorted set union). Two records holding the same PID after the merge, and a
record that a hard delete purged but the other side still has, are conflicts
that no strategy resolves.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from . import _git, layout
from .config import PURGED_FILE, purged_text, read_purged
from .errors import GitRecordsError
from .index import facts_from_data

if TYPE_CHECKING:
    from .storage import Storage as Repository

__all__ = [
    "ABSENT",
    "DISAGREEING_BASES",
    "STRATEGIES",
    "VIRTUAL_BASE",
    "Conflict",
    "MergeConflictError",
    "MergeResult",
    "TreeMerge",
    "describe_conflicts",
    "merge_files",
    "merge_json",
    "merge_record",
    "merge_trees",
    "same",
]

STRATEGIES: Final = ("ours", "theirs")
#: the strategy of a virtual merge base (criss-cross merges, git's inner merges): where the
#: bases disagree it holds :data:`DISAGREEING_BASES`, so that the real merge reports the spot
#: unless both sides agree there (keeping one base's side let the other side win silently)
VIRTUAL_BASE: Final = "virtual-base"
#: a value no record holds: both sides of the real merge differ from it
DISAGREEING_BASES: Final = "\u0000gitrecords: the merge bases disagree here"
#: the same for a whole record (one side deleted it, the other changed it)
_DISAGREEING_RECORD: Final = {"\u0000": DISAGREEING_BASES}

#: conflict kinds
BOTH_CHANGED: Final = "both-changed"
TYPE_CHANGE: Final = "type-change"
EDIT_DELETE: Final = "edit-delete"
DUPLICATE_PID: Final = "duplicate-pid"
FILE: Final = "file"
PURGED: Final = "purged"
#: kinds that no strategy resolves: they need a person to change a record
UNRESOLVABLE: Final = frozenset({DUPLICATE_PID, PURGED})


class _Absent:
    """The value of a key (or a file) that does not exist on one side."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __reduce__(self) -> str:
        return "ABSENT"


#: a missing key, a missing file, or a missing merge base
ABSENT: Final = _Absent()


class MergeConflictError(GitRecordsError):
    """A merge stopped on conflicts; nothing was changed. ``conflicts`` lists them."""

    def __init__(self, message: str, conflicts: list[Conflict]) -> None:
        super().__init__(message)
        self.conflicts = conflicts


@dataclass(frozen=True)
class Conflict:
    """One spot that the two sides changed in ways that do not merge."""

    kind: str
    pointer: str = ""
    base: Any = ABSENT
    ours: Any = ABSENT
    theirs: Any = ABSENT
    record: uuid.UUID | None = None
    path: str | None = None
    detail: str = ""
    #: True when a strategy chose a side for this spot
    resolved: bool = False

    def swapped(self) -> Conflict:
        """The same conflict seen from the other side."""
        return replace(self, ours=self.theirs, theirs=self.ours)

    def to_json(self) -> dict[str, Any]:
        """A JSON object; a side where the value is absent (removed, deleted) has no key."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "record": str(self.record) if self.record is not None else None,
            "path": self.path,
            "pointer": self.pointer,
        }
        for side in ("base", "ours", "theirs"):
            value = getattr(self, side)
            if value is not ABSENT:
                out[side] = value
        out["resolved"] = self.resolved
        out["message"] = self.describe()
        return out

    def describe(self) -> str:
        """One line a person can act on."""
        if self.record is not None:
            where = f"record {self.record}"
        else:
            where = self.path or "record"
        spot = f" {self.pointer}" if self.pointer else ""
        if self.kind in UNRESOLVABLE or self.detail:
            return f"{where}{spot}: {self.detail}"
        values = f"base {_show(self.base)}, ours {_show(self.ours)}, theirs {_show(self.theirs)}"
        if self.kind == EDIT_DELETE:
            gone = "ours" if _deleted(self.ours) else "theirs"
            kept = "theirs" if gone == "ours" else "ours"
            verb = "deleted" if not self.pointer else "removed"
            what = f"{verb} on {gone}, changed on {kept}"
        elif self.kind == TYPE_CHANGE:
            what = "changed to different types"
        else:
            what = "changed on both sides"
        return f"{where}{spot}: {what}: {values}"


def _show(value: Any, limit: int = 60) -> str:
    if value is ABSENT:
        return "(absent)"
    if value == DISAGREEING_BASES or value == _DISAGREEING_RECORD:
        return "(the merge bases disagree)"
    if layout.is_tombstone(value):
        return "(deleted)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class MergeResult:
    """The merged value (``ABSENT`` when the merge removes it) and the conflicts met."""

    value: Any
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def unresolved(self) -> list[Conflict]:
        return [c for c in self.conflicts if not c.resolved]

    @property
    def clean(self) -> bool:
        """True when there is nothing left for a person to decide."""
        return not self.unresolved


# -- one JSON value -------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """JSON equality: ``1``, ``1.0`` and ``true`` differ (they are different bytes on disk)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def _json_type(value: Any) -> str:
    if value is ABSENT:
        return "absent"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _merge(
    base: Any, ours: Any, theirs: Any, pointer: str, conflicts: list[Conflict], strategy: str | None
) -> Any:
    if same(ours, theirs):
        return ours
    if same(base, ours):
        return theirs
    if same(base, theirs):
        return ours
    if isinstance(ours, dict) and isinstance(theirs, dict) and (base is ABSENT or isinstance(base, dict)):
        old: dict[str, Any] = base if isinstance(base, dict) else {}
        merged: dict[str, Any] = {}
        for key in sorted(old.keys() | ours.keys() | theirs.keys()):
            value = _merge(
                old.get(key, ABSENT),
                ours.get(key, ABSENT),
                theirs.get(key, ABSENT),
                f"{pointer}/{layout.pointer_token(key)}",
                conflicts,
                strategy,
            )
            if value is not ABSENT:
                merged[key] = value
        return merged
    if ours is ABSENT or theirs is ABSENT:
        kind = EDIT_DELETE
    elif len({_json_type(v) for v in (base, ours, theirs) if v is not ABSENT and v != DISAGREEING_BASES}) > 1:
        kind = TYPE_CHANGE
    else:
        kind = BOTH_CHANGED
    conflicts.append(Conflict(kind, pointer, base, ours, theirs, resolved=strategy is not None))
    return _chosen(strategy, ours, theirs, DISAGREEING_BASES)


def _chosen(strategy: str | None, ours: Any, theirs: Any, disagreeing: Any) -> Any:
    """The side ``strategy`` keeps at a conflict (ours when none does)."""
    if strategy == VIRTUAL_BASE:
        return disagreeing
    return theirs if strategy == "theirs" else ours


def _check_strategy(strategy: str | None) -> None:
    """Refuse a strategy a person may not choose (of a pull, a merge)."""
    if strategy is not None and strategy not in STRATEGIES:
        raise GitRecordsError(f"unknown merge strategy {strategy!r}: use 'ours' or 'theirs'")


def _check_merge_strategy(strategy: str | None) -> None:
    """Refuse an unknown strategy (:data:`VIRTUAL_BASE` is known here: the merges of bases)."""
    if strategy != VIRTUAL_BASE:
        _check_strategy(strategy)


def merge_json(base: Any, ours: Any, theirs: Any, *, strategy: str | None = None) -> MergeResult:
    """Three-way merge of two JSON values that both come from ``base``.

    Use :data:`ABSENT` for a value that does not exist (no merge base, a
    removed key). Objects merge key by key; everything else is atomic.

    >>> base = {"title": "Old", "year": 2020, "tags": ["a"]}
    >>> merge_json(base, {**base, "title": "New"}, {**base, "year": 2021}).value
    {'tags': ['a'], 'title': 'New', 'year': 2021}
    >>> result = merge_json(base, {**base, "year": 2022}, {**base, "year": 2021})
    >>> [(c.pointer, c.base, c.ours, c.theirs) for c in result.conflicts]
    [('/year', 2020, 2022, 2021)]
    """
    _check_merge_strategy(strategy)
    conflicts: list[Conflict] = []
    value = _merge(base, ours, theirs, "", conflicts, strategy)
    return MergeResult(value, conflicts)


# -- one record -----------------------------------------------------------------------------------


def _deleted(value: Any) -> bool:
    return value is ABSENT or layout.is_tombstone(value)


def merge_record(
    base: Any,
    ours: Any,
    theirs: Any,
    *,
    strategy: str | None = None,
    record_id: uuid.UUID | None = None,
    path: str | None = None,
) -> MergeResult:
    """Three-way merge of one record's content (parsed JSON, a tombstone, or ``ABSENT``).

    A tombstone or a missing file counts as deleted: deleted on one side and
    changed on the other is an ``edit-delete`` conflict on the whole record.
    """
    _check_merge_strategy(strategy)
    conflicts: list[Conflict] = []
    if same(ours, theirs):
        value = ours
    elif same(base, ours):
        value = theirs
    elif same(base, theirs):
        value = ours
    elif _deleted(ours) and _deleted(theirs):
        # deleted on both sides: keep a tombstone (it reserves the id), the earlier one
        stones = [v for v in (ours, theirs) if v is not ABSENT]
        value = min(stones, key=layout.dumps) if stones else ABSENT
    elif _deleted(ours) or _deleted(theirs):
        conflicts.append(Conflict(EDIT_DELETE, "", base, ours, theirs, resolved=strategy is not None))
        value = _chosen(strategy, ours, theirs, dict(_DISAGREEING_RECORD))
    else:
        value = _merge(ABSENT if _deleted(base) else base, ours, theirs, "", conflicts, strategy)
    conflicts = [replace(c, record=record_id, path=path) for c in conflicts]
    return MergeResult(value, conflicts)


def _read_side(data: bytes | None, what: str) -> Any:
    if data is None or not data.strip():
        return ABSENT
    return layout.loads(data, what=what)


def merge_files(
    base: bytes | None,
    ours: bytes | None,
    theirs: bytes | None,
    *,
    path: str | None = None,
    strategy: str | None = None,
) -> tuple[bytes | None, MergeResult]:
    """Merge three versions of a record file (``None`` or empty: the file does not exist).

    Returns the merged canonical bytes (``None`` when the result is no file)
    and the :class:`MergeResult`; when there are unresolved conflicts the
    bytes are ``None`` and must not be used. Invalid JSON raises
    :class:`~gitrecords.errors.InvalidRecordError`.
    """
    name = path.rsplit("/", 1)[-1] if path else ""
    record_id = uuid.UUID(name[:-5]) if layout.is_record_file_name(name) else None
    label = path or "record file"
    result = merge_record(
        _read_side(base, f"{label} (base)"),
        _read_side(ours, f"{label} (ours)"),
        _read_side(theirs, f"{label} (theirs)"),
        strategy=strategy,
        record_id=record_id,
        path=path,
    )
    if result.unresolved or result.value is ABSENT:
        return None, result
    return layout.dumps(result.value), result


# -- two trees ------------------------------------------------------------------------------------


@dataclass
class TreeMerge:
    """What merging ``theirs`` into ``ours`` changes in ``ours``' tree."""

    #: path -> new blob (None removes the file), to apply onto ours' tree
    changes: dict[str, _git.Oid | None] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    #: records taken from theirs as they are
    taken: list[uuid.UUID] = field(default_factory=list)
    #: records changed on both sides and merged field by field
    merged: list[uuid.UUID] = field(default_factory=list)

    @property
    def unresolved(self) -> list[Conflict]:
        return [c for c in self.conflicts if not c.resolved]


def _blob_id(value: Any) -> str | Any:
    return str(value) if value is not None else ABSENT


def merge_trees(
    repo: Repository,
    base: Any,
    ours: Any,
    theirs: Any,
    *,
    strategy: str | None = None,
    pid_owner: Callable[[str, str], uuid.UUID | None] | None = None,
    checks: bool = True,
) -> TreeMerge:
    """Merge the tree ``theirs`` into ``ours`` (both from ``base``); trees, or None.

    Never uses libgit2's ``merge_trees`` (it would merge JSON line by line).
    ``pid_owner(pid_type, value)`` answers which record holds a PID in
    ``ours`` (the revision index of the branch), so that a PID brought in by
    ``theirs`` is checked against the records neither side changed too.
    With ``checks=False`` the PID and purge checks are skipped (for virtual
    merge bases).
    """
    _check_merge_strategy(strategy)
    git = repo.git
    records_dir = repo.records_dir
    ours_changed = {p: (old, new) for p, old, new in _git.changed_blobs(git, base, ours)}
    theirs_changed = {p: (old, new) for p, old, new in _git.changed_blobs(git, base, theirs)}
    result = TreeMerge()
    contents: dict[str, bytes] = {}
    merged_values: dict[str, Any] = {}

    def read(blob: _git.Oid | None) -> bytes | None:
        return _git.read_blob(git, blob) if blob is not None else None

    for path, (old, new) in theirs_changed.items():
        record_id = layout.id_from_path(path, records_dir)
        if path not in ours_changed:
            result.changes[path] = new
            if record_id is not None:
                result.taken.append(record_id)
            continue
        mine = ours_changed[path][1]
        if mine == new:
            continue
        if path == PURGED_FILE:  # both sides' purge logs: every id, every reserved PID
            both = read_purged(read(mine) or b"")
            other = read_purged(read(new) or b"")
            both.ids |= other.ids
            both.pids.update(other.pids)
            contents[path] = purged_text(both, {})
            continue
        if record_id is None:
            conflict = Conflict(
                FILE,
                "",
                _blob_id(old),
                _blob_id(mine),
                _blob_id(new),
                path=path,
                detail=f"changed on both sides (blobs base {_short(old)}, ours {_short(mine)}, "
                f"theirs {_short(new)}); only record files merge field by field",
                resolved=strategy is not None,
            )
            result.conflicts.append(conflict)
            if strategy in ("theirs", VIRTUAL_BASE):  # a virtual base keeps the base's file
                result.changes[path] = new if strategy == "theirs" else old
            continue
        try:
            data, merge = merge_files(read(old), read(mine), read(new), path=path, strategy=strategy)
        except GitRecordsError as err:
            result.conflicts.append(
                Conflict(
                    FILE,
                    "",
                    _blob_id(old),
                    _blob_id(mine),
                    _blob_id(new),
                    record=record_id,
                    path=path,
                    detail=f"cannot be merged: {err}",
                    resolved=strategy is not None,
                )
            )
            if strategy in ("theirs", VIRTUAL_BASE):
                result.changes[path] = new if strategy == "theirs" else old
            continue
        result.conflicts.extend(merge.conflicts)
        if merge.unresolved:
            continue
        result.merged.append(record_id)
        merged_values[path] = merge.value
        if data is None:
            result.changes[path] = None
        else:
            contents[path] = data

    if checks:
        # with conflicts left, the PIDs of the records that are decided are still checked, so
        # that a pull lists a duplicate PID with the field conflicts, not in a round after them
        undecided = {c.path for c in result.unresolved}
        found = (
            []
            if undecided
            else _check_purged(repo, ours, ours_changed.keys() | theirs_changed.keys(), result, contents)
        )
        found += _check_pids(
            repo,
            base,
            ours,
            theirs,
            ours_changed,
            theirs_changed,
            result,
            merged_values,
            contents,
            pid_owner,
            undecided,
        )
        result.conflicts.extend(found)
    if not result.unresolved:
        for path, data in contents.items():
            blob = _git.create_blob(git, data)
            result.changes[path] = blob
        # drop what leaves ours' file as it is
        for path in [p for p, b in result.changes.items() if b == _git.entry_id(ours, p)]:
            del result.changes[path]
    return result


def _short(blob: _git.Oid | None) -> str:
    return str(blob)[:12] if blob is not None else "(absent)"


def _merged_blob(ours: Any, result: TreeMerge, path: str) -> _git.Oid | None:
    if path in result.changes:
        return result.changes[path]
    return _git.entry_id(ours, path)


def _check_purged(
    repo: Repository, ours: Any, touched: set[str], result: TreeMerge, contents: Mapping[str, bytes]
) -> list[Conflict]:
    """A record listed in purged.txt must not come back from a replica that still has it.

    Only records that changed since the merge base are checked: a record that
    a stale replica still holds shows up as added on that side.
    """
    if PURGED_FILE in contents:
        data: bytes | None = contents[PURGED_FILE]
    else:
        blob = _merged_blob(ours, result, PURGED_FILE)
        data = _git.read_blob(repo.git, blob) if blob is not None else None
    if not data:
        return []
    conflicts = []
    records_dir = repo.records_dir
    for word in sorted(set(data.decode("utf-8", "replace").split())):
        try:
            record_id = uuid.UUID(word)
        except ValueError:
            continue
        path = layout.path_for(record_id, records_dir)
        if path in touched and (path in contents or _merged_blob(ours, result, path) is not None):
            conflicts.append(
                Conflict(
                    PURGED,
                    record=record_id,
                    path=path,
                    detail="was hard-deleted (it is listed in purged.txt) but one side still has it: "
                    "that replica is stale; fetch the rewritten history and reset to it, or clone "
                    "again (docs/format.md, Hard delete)",
                )
            )
    return conflicts


def _check_pids(
    repo: Repository,
    base: Any,
    ours: Any,
    theirs: Any,
    ours_changed: Mapping[str, Any],
    theirs_changed: Mapping[str, Any],
    result: TreeMerge,
    merged_values: Mapping[str, Any],
    contents: Mapping[str, bytes],
    pid_owner: Callable[[str, str], uuid.UUID | None] | None,
    undecided: set[str | None] | frozenset[str | None] = frozenset(),
) -> list[Conflict]:
    """Two records must not hold the same PID after the merge (the records at ``undecided``
    paths, whose conflicts are not resolved yet, are left out: their PIDs are not known)."""
    pid_fields: Mapping[str, str] = repo.config.get("pids") or {}
    if not pid_fields:
        return []
    git = repo.git
    records_dir = repo.records_dir

    def load(blob: _git.Oid | None) -> Any:
        if blob is None:
            return ABSENT
        try:
            return layout.loads(_git.read_blob(git, blob))
        except GitRecordsError:
            return ABSENT

    def pids_of(value: Any) -> dict[str, str]:
        return facts_from_data(value, pid_fields)[1] if value is not ABSENT else {}

    # ours' changes first, so that a clash is reported on the record theirs brings in
    order = [p for p in ours_changed if p not in theirs_changed]
    order += [p for p in theirs_changed if p in ours_changed]
    order += [p for p in theirs_changed if p not in ours_changed]
    touched: dict[uuid.UUID, str] = {}
    for path in order:
        record_id = layout.id_from_path(path, records_dir)
        if record_id is not None and path not in undecided:
            touched[record_id] = path
    owners: dict[tuple[str, str], uuid.UUID] = {}
    conflicts = []
    for record_id, path in touched.items():
        if path in merged_values:
            value = merged_values[path]
        elif path in contents:
            value = layout.loads(contents[path])
        else:
            value = load(_merged_blob(ours, result, path))
        if layout.is_tombstone(value):
            # a soft-deleted record keeps its PIDs reserved: those of its last live version
            sides = (_git.entry_id(ours, path), _git.entry_id(theirs, path), _git.entry_id(base, path))
            lives = [v for v in (load(b) for b in sides) if v is not ABSENT and not layout.is_tombstone(v)]
            value = lives[0] if lives else ABSENT
        for pid_type, pid_value in sorted(pids_of(value).items()):
            key = (pid_type, pid_value)
            other = owners.get(key)
            if other is None and pid_owner is not None:
                holder = pid_owner(pid_type, pid_value)
                if holder is not None and holder != record_id and holder not in touched:
                    other = holder
            if other is not None and other != record_id:
                field_name = pid_fields.get(pid_type, pid_type)
                conflicts.append(
                    Conflict(
                        DUPLICATE_PID,
                        f"/{layout.pointer_token(field_name)}",
                        base=pids_of(load(_git.entry_id(base, path))).get(pid_type, ABSENT),
                        ours=pids_of(load(_git.entry_id(ours, path))).get(pid_type, ABSENT),
                        theirs=pids_of(load(_git.entry_id(theirs, path))).get(pid_type, ABSENT),
                        record=record_id,
                        path=path,
                        detail=f"PID {pid_type}:{pid_value} is also used by record {other}; "
                        "give one of the two records another PID and merge again",
                    )
                )
            else:
                owners[key] = record_id
    return conflicts


def describe_conflicts(conflicts: Iterable[Conflict]) -> list[str]:
    """One line per conflict."""
    return [c.describe() + (" (resolved)" if c.resolved else "") for c in conflicts]
