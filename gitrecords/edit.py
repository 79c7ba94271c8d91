"""Changing many records at once, and undoing a commit.

:func:`update_records` (``repo.update_records``) selects live records by a
search query (or by ids), applies one change to each (a JSON Patch, a
function, a move to another schema), validates every changed record against
its (new) schema and writes them all as one commit through the write path, or
writes nothing and reports every problem. Each record is read once: its blob
is parsed, changed, serialised canonically, compared with the old bytes and
written as a new blob; the commit's tree is built in one go from the blob ids.
With ``chunk=N`` the changes land as several commits of N records, one after
another, each a compare-and-swap of its own.

:func:`undo` (``repo.undo``) restores every record a commit changed to its
state in the commit's first parent, as one new commit, unless a record has
changed since (a conflict).

See docs/bulk-changes.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonpatch
import jsonpointer

from . import _git, _written, checks, layout, signals
from ._checkfile import line_of
from .bulk import CHUNK, StagedTrees, Validity, blob_id, in_workers, record_path
from .errors import (
    AfterSignalError,
    BulkEditError,
    EditInterruptedError,
    GitRecordsError,
    InvalidRecordError,
    NoResultFound,
    SchemaError,
    UndoConflictError,
)
from .index import LIVE, TOMBSTONE, BlobFacts, facts_from_data, pid_type_problems
from .record import Record, checked_patch, patch_failure
from .schema import SchemaStore
from .search import matching_ids
from .storage import Storage
from .writer import Change, check_message

__all__ = [
    "DIFFS",
    "MAX_PROBLEMS",
    "EditReport",
    "SetFields",
    "UndoReport",
    "undo",
    "update_records",
    "validate_schema",
]

#: diffs an :class:`EditReport` keeps unless asked for another number
DIFFS = 10
#: at most this many problems are kept (the count of invalid records stays exact)
MAX_PROBLEMS = 1000
#: a JSON Patch longer than this is named in the commit's trailers by its SHA-256
MAX_TRAILER_PATCH = 2000

#: the ``selection`` of a report that selected every live record, and the prefix of one that selected
#: records by id
ALL = "*"
IDS = "ids: "

#: (record id, JSON pointer, message)
Problem = tuple[str, str, str]
#: what a change may be: a JSON Patch, or a function from a record's data to its new data
ChangeSpec = Sequence[dict[str, Any]] | Callable[[dict[str, Any]], dict[str, Any] | None] | None


@dataclass
class EditReport:
    """What :func:`update_records` found and did.

    ``matched`` records were selected; ``changed`` of them change (or would, in a dry run),
    ``unchanged`` stay the same, and ``invalid`` have problems: ``problems`` lists them as
    ``(record id, JSON pointer, message)``, and then nothing is written. ``commits`` are the
    commits written (one, or one per chunk; none in a dry run or when nothing changes).
    ``diffs`` are the first diffs, ``(record id, JSON Patch from the old data to the new)``.
    """

    matched: int = 0
    changed: int = 0
    unchanged: int = 0
    invalid: int = 0
    problems: list[Problem] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    diffs: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    dry_run: bool = False
    #: the query (``*``: every live record; ``ids: N record ids``), and the changes, as the
    #: commit's trailers say them
    selection: str = ""
    operations: list[str] = field(default_factory=list)

    @property
    def operation(self) -> str:
        """The change in words (``patch [...]``, ``python module:function``, ``schema ...``)."""
        return "; ".join(self.operations)

    @property
    def commit(self) -> str | None:
        """The last commit written (None when nothing was written)."""
        return self.commits[-1] if self.commits else None

    @property
    def ok(self) -> bool:
        return not self.invalid

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``gitrecords edit --json`` prints)."""
        return {
            "dry_run": self.dry_run,
            "selection": self.selection,
            "operation": self.operation,
            "matched": self.matched,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "problems": [{"id": i, "pointer": p, "message": m} for i, p, m in self.problems],
            "commits": list(self.commits),
            "diffs": [{"id": i, "patch": patch} for i, patch in self.diffs],
        }


@dataclass
class UndoReport:
    """What :func:`undo` did: ``restored`` records written back (or soft-deleted, for records the
    undone commit created), ``conflicts`` ``(record id, message)`` for records changed since,
    ``already`` records that are back at their old state already, and the new ``commit``."""

    undone: str
    restored: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    already: int = 0
    commit: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "undone": self.undone,
            "commit": self.commit,
            "restored": list(self.restored),
            "already": self.already,
            "conflicts": [{"id": i, "message": m} for i, m in self.conflicts],
        }


# -- the changes -------------------------------------------------------------


class SetFields:
    """A change that sets values at JSON pointers and removes members: ``--set`` and ``--unset``.

    Unlike a JSON Patch it applies to every record and is idempotent (running it twice
    changes nothing the second time, which is what a resumed run needs): ``set`` creates
    missing objects on the way to the pointer (a missing array before a ``-``), replaces an
    array's element at an index (``-`` appends the value unless the array already holds an
    equal one), and ``unset`` of a member that is not there changes nothing. The exception: an
    ``unset`` of an array element by its index (``/keywords/0``) removes whatever element is
    there, so a second run removes the next one.
    """

    def __init__(self, set: Sequence[tuple[str, Any]] = (), unset: Sequence[str] = ()) -> None:
        self.set = [(pointer, value) for pointer, value in set]
        self.unset = list(unset)
        for pointer in [p for p, _ in self.set] + self.unset:
            if not pointer.startswith("/"):
                raise InvalidRecordError(f"{pointer!r} is not a JSON pointer to a member (like /title)")
            try:
                jsonpointer.JsonPointer(pointer)
            except jsonpointer.JsonPointerException as err:  # ~ is written ~0, / within a name ~1
                raise InvalidRecordError(f"{pointer!r} is not a JSON pointer: {err}") from None
        for pointer, value in self.set:  # once here, not in every record it is set in
            try:  # the value sits as deep in the record as the pointer has tokens
                layout.check_value(value, pointer, len(jsonpointer.JsonPointer(pointer).parts))
            except InvalidRecordError as err:
                raise InvalidRecordError(f"{pointer}: {err}") from None
        self.description = "; ".join(
            [f"set {p}={json.dumps(v, ensure_ascii=False)}" for p, v in self.set]
            + [f"unset {p}" for p in self.unset]
        )
        # parsed once, not for each record
        pointers = [*dict(self.set), *self.unset]
        self._parts = {pointer: jsonpointer.JsonPointer(pointer).parts for pointer in pointers}

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        for pointer, value in self.set:
            parts = self._parts[pointer]
            target: Any = data
            for depth, part in enumerate(parts[:-1]):
                target = _step(target, part, parts, depth, create=True)
            # each record its own copy of an object or array (a scalar is never changed in place)
            copied = value if value.__class__ in _IMMUTABLE else json.loads(json.dumps(value))
            _assign(target, parts[-1], copied, pointer)
        for pointer in self.unset:
            parts = self._parts[pointer]
            target = data
            for depth, part in enumerate(parts[:-1]):
                target = _step(target, part, parts, depth, create=False)
                if target is None:
                    break
            else:
                if isinstance(target, dict):
                    target.pop(parts[-1], None)
                elif isinstance(target, list) and parts[-1].isdigit() and int(parts[-1]) < len(target):
                    del target[int(parts[-1])]
        return data


#: the values a record may share with another (a --set value of one of these is not copied)
_IMMUTABLE = frozenset((str, int, float, bool, type(None)))


def _step(target: Any, part: str, parts: list[str], depth: int, create: bool) -> Any:
    where = "/" + "/".join(layout.pointer_token(p) for p in parts[: depth + 1])
    if isinstance(target, dict):
        if part not in target:
            if not create:
                return None
            # "-" is past the end of an array (RFC 6901): a missing container before it is one
            target[part] = [] if parts[depth + 1] == "-" else {}
        return target[part]
    if isinstance(target, list):
        if part.isdigit() and int(part) < len(target):
            return target[int(part)]
        if not create:
            return None
        raise InvalidRecordError(f"{where}: the array has no element {part}")
    if not create:
        return None
    raise InvalidRecordError(f"{where}: {layout.json_type(target)} has no members")


def _assign(target: Any, part: str, value: Any, pointer: str) -> None:
    if isinstance(target, dict):
        target[part] = value
    elif isinstance(target, list):
        if part == "-":
            if value not in target:  # a second run adds nothing: a tag is added once
                target.append(value)
        elif part == str(len(target)):
            target.append(value)
        elif part.isdigit() and int(part) < len(target):
            target[int(part)] = value
        else:
            raise InvalidRecordError(f"{pointer}: the array has no element {part}")
    else:
        raise InvalidRecordError(
            f"{pointer}: the parent is {layout.json_type(target)}, not an object or array"
        )


class _Patch:
    """A JSON Patch checked once and applied to record after record, operation by operation
    (so that an error names its operation), as :meth:`Record.patch` applies it."""

    def __init__(self, operations: Sequence[dict[str, Any]]) -> None:
        operations = checked_patch(operations)
        self.operations = operations
        try:
            self.compiled = [jsonpatch.JsonPatch([op]) for op in operations]
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as err:
            raise InvalidRecordError(f"JSON Patch: {err}") from None
        text = json.dumps(operations, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        if len(text) > MAX_TRAILER_PATCH:
            text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        self.description = f"patch {text}"

    def apply(self, data: Any) -> tuple[Any, Problem | None]:
        for number, (op, compiled) in enumerate(zip(self.operations, self.compiled, strict=True)):
            try:
                data = compiled.apply(data, in_place=True)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as err:
                return None, ("", str(op["path"]) or "/", patch_failure(number, op, err, data))
        if not isinstance(data, dict):
            return None, ("", "/", "a JSON Patch must leave the record an object")
        return data, None


def _describe_function(function: Callable[..., Any]) -> str:
    described = getattr(function, "description", None)
    if isinstance(described, str):
        return described
    module = getattr(function, "__module__", None) or "?"
    name = getattr(function, "__qualname__", None) or type(function).__name__
    return f"python {module}:{name}"


def _schema_value(store: SchemaStore, name: str) -> str:
    """What ``$schema`` becomes for a move to the schema ``name`` (its ``$id``, else its path in
    the store); raises :class:`SchemaError` when the store does not have it."""
    schema, _key = store.resolve_schema(name)
    if isinstance(schema, dict) and isinstance(schema.get("$id"), str):
        return schema["$id"]
    prefix = store.schemas_dir + "/"
    return name[len(prefix) :] if name.startswith(prefix) else name


# -- selecting -----------------------------------------------------------------


def _selected(
    repo: Storage, snap: Any, selection: str | Iterable[Any], total: list[int | None], lookup: bool = True
) -> Iterator[tuple[uuid.UUID, _git.Oid | None]]:
    """(id, blob) of every selected record at the snapshot, sorted by path (``total[0]`` is set
    to their number when it is known); the blob is None for a selected id that is missing, and
    without ``lookup`` for every selected id (the caller looks them up)."""
    records_dir = snap.records_dir
    if isinstance(selection, str):
        if not selection.strip():
            tree = _git.subtree(repo.git, snap.tree, records_dir)
            if tree is None:
                return
            for path, blob in _git.walk_blobs(repo.git, tree, records_dir + "/"):
                record_id = layout.id_from_path(path, records_dir)
                if record_id is not None:
                    yield record_id, blob  # tombstones are skipped once read
            return
        ids: Iterable[uuid.UUID] = matching_ids(repo, selection, snap.tip)
    else:
        ids = dict.fromkeys(layout.normalize_id(given) for given in selection)
    # sorted by path (the first two bytes of the id's SHA-256, then the id): 18 bytes a record
    keys = sorted(hashlib.sha256(str(i).encode("ascii")).digest()[:2] + i.bytes for i in ids)
    del ids
    total[0] = len(keys)
    for key in keys:
        record_id = uuid.UUID(bytes=key[2:])
        path = record_path(str(record_id), records_dir)
        yield record_id, _git.entry_id(snap.tree, path) if lookup else None


def _problem(report: EditReport, record_id: str, pointer: str, text: str) -> None:
    if len(report.problems) < MAX_PROBLEMS:
        report.problems.append((record_id, pointer, text))


# -- checking ------------------------------------------------------------------


class _Checks:
    """Everything that would stop a changed record from being written: reserved keys, size,
    values JSON cannot hold, and the schema (jsonschema-rs decides, jsonschema explains)."""

    def __init__(self, repo: Storage, store: SchemaStore, config: dict[str, Any], max_bytes: int) -> None:
        self.store = store
        self.default_schema = config.get("default_schema")
        self.inline = config.get("inline_schemas", True) is True
        self.max_bytes = max_bytes
        self.validity: dict[str, Validity] = {}

    def problems(
        self, data: dict[str, Any], checked: bool = False
    ) -> tuple[bytes | None, list[tuple[str, str]]]:
        """(canonical bytes, problems) of ``data``; ``checked``: it holds only values JSON can
        hold (a parsed record changed by values checked already), so they are not walked again."""
        problems: list[tuple[str, str]] = []
        if layout.TOMBSTONE_KEY in data:
            problems.append((f"/{layout.TOMBSTONE_KEY}", "this top-level key is reserved for tombstones"))
        try:
            raw = layout.dumps_parsed(data) if checked else layout.dumps(data)
        except GitRecordsError as err:
            return None, [*problems, ("/", str(err))]
        if len(raw) > self.max_bytes:
            problems.append(("/", f"{len(raw)} bytes is larger than the limit of {self.max_bytes} bytes"))
        schema_ref = data.get("$schema")
        if schema_ref is None:
            schema_ref = self.default_schema
        if schema_ref is not None:
            try:
                problems += self._validity(schema_ref).problems(data)
            except SchemaError as err:
                problems.append(("/$schema", str(err)))
        return raw, problems

    def _validity(self, schema_ref: Any) -> Validity:
        if isinstance(schema_ref, dict) and not self.inline:
            raise SchemaError("inline $schema objects are not allowed here")
        key = schema_ref if isinstance(schema_ref, str) else self.store.resolve_schema(schema_ref)[1]
        found = self.validity.get(key)
        if found is None:
            found = self.validity[key] = Validity(self.store, schema_ref, Record.format_checker)
        return found


# -- the work per record (in worker processes, or in this one) -----------------------

#: what became of a selected record (the second item of each :func:`_edit_chunk` result)
SKIPPED, INVALID, UNCHANGED, CHANGED = range(4)


@dataclass
class _Work:
    """What is needed to change, check and serialise a selected record: set up once per worker
    process (forked: nothing here is pickled), or in this process."""

    patch: _Patch | None
    function: Callable[[dict[str, Any]], Any] | None
    target_schema: str | None
    checks: _Checks
    checked: bool
    pid_fields: dict[str, str]
    max_bytes: int
    by_ids: bool  # records selected by id: a deleted one is a problem (a query skips it)
    git_dir: str
    tree: str  # the snapshot's tree, where the records are read
    records_dir: str
    repo: Storage | None = None  # only to send before_record_update, always in this process
    opened: Any = None  # the repository, as opened by this process
    opened_tree: Any = None
    opened_in: int = 0  # by the process with this pid
    #: a change that removes or changes a PID the record holds, or removes its $schema, is a
    #: problem (the guards of a write over HTTP)
    keep_pids: bool = False

    def read(self, key: str, blob_hex: str | None) -> tuple[str | None, bytes | None]:
        """(blob, bytes) of the record ``key`` (looked up in the tree when ``blob_hex`` is None),
        or (None, None) when it is missing. A forked worker opens the repository again."""
        if self.opened_in != os.getpid():  # a forked worker: the parent's handle is not its own
            self.opened = _git.open_repository(self.git_dir, allow_shallow=True)
            self.opened_tree = _git.tree_of(self.opened, _git.oid_from_hex(self.tree))
            self.opened_in = os.getpid()
        if blob_hex is None:
            blob = _git.entry_id(self.opened_tree, record_path(key, self.records_dir))
            if blob is None:
                return None, None
            blob_hex = str(blob)
        return blob_hex, _git.read_blob(self.opened, _git.oid_from_hex(blob_hex))

    def record(self, key: str, blob_hex: str | None, raw: bytes | None) -> tuple[int, Any, Any]:
        """(what became of it, its problems or (old blob, new bytes, new blob, PIDs, whether its
        PIDs change), new data)."""
        if raw is None:
            return INVALID, [("/", "the record does not exist")], None
        try:
            if len(raw) > self.max_bytes:
                raise InvalidRecordError(f"file is larger than {self.max_bytes} bytes")
            data = layout.loads(raw)
        except InvalidRecordError as err:
            return INVALID, [("/", f"the record cannot be read: {err}")], None
        if layout.is_tombstone(data):
            return (INVALID, [("/", "the record is deleted")], None) if self.by_ids else (SKIPPED, None, None)
        if not isinstance(data, dict):
            return INVALID, [("/", "the file does not hold a JSON object")], None
        record_id = uuid.UUID(key)
        held = {field: data[field] for field in self.pid_fields.values() if field in data}
        had_schema = "$schema" in data
        new, problem = _changed(data, self.patch, self.function, record_id)
        if problem is not None:
            return INVALID, [problem[1:]], None
        if new is None:
            if self.target_schema is None:
                return UNCHANGED, None, None
            new = layout.loads(raw)  # the function changed nothing; the schema still moves
        if self.target_schema is not None:
            new["$schema"] = self.target_schema
        if self.repo is not None:
            assert blob_hex is not None
            new = Record.before_update(new, id_=record_id, blob=_git.oid_from_hex(blob_hex), repo=self.repo)
        if self.keep_pids:
            for pid_type, field in sorted(self.pid_fields.items()):
                if field in held and new.get(field) != held[field]:
                    shown = json.dumps(held[field], ensure_ascii=False)
                    return (
                        INVALID,
                        [(f"/{field}", f"the {pid_type} PID {shown} cannot be removed or changed")],
                        None,
                    )
            if had_schema and "$schema" not in new:  # it would be validated no more
                return INVALID, [("/$schema", "the record's $schema cannot be removed")], None
        new_raw, found = self.checks.problems(new, self.checked)
        found = [*(found or []), *pid_type_problems(new, self.pid_fields)]
        if found:
            return INVALID, found, None
        assert new_raw is not None
        if new_raw == raw:
            return UNCHANGED, None, None
        _state, pids = facts_from_data(new, self.pid_fields)
        moved = pids != facts_from_data(held, self.pid_fields)[1]
        assert blob_hex is not None
        return CHANGED, (blob_hex, new_raw, blob_id(new_raw), pids or None, moved, raw), new


_work: list[_Work] = []


def _init_work(work: _Work) -> None:
    _work[:] = [work]


def _cleared_after(results: Iterator[Any]) -> Iterator[Any]:
    """``results``, then (however the caller stops) this process's :class:`_Work` let go."""
    try:
        yield from results
    finally:
        _work.clear()


def _edit_chunk(chunk: tuple[int | None, list[tuple[str, str | None]]]) -> list[tuple[str, int, Any, Any]]:
    """(id, what became of it, its problems or (old blob, new bytes, new blob, PIDs, whether its
    PIDs change), diff) per record of ``chunk``: (diffs wanted, None for all; [(id, blob: None to
    look it up)])."""
    wanted, items = chunk
    work = _work[0]
    out: list[tuple[str, int, Any, Any]] = []
    for key, given in items:
        blob_hex, raw = work.read(key, given)
        kind, found, new = work.record(key, blob_hex, raw)
        diff = None
        if kind == CHANGED and (wanted is None or wanted > 0):
            assert raw is not None
            diff = jsonpatch.make_patch(layout.loads(raw), new).patch
            if wanted is not None:
                wanted -= 1
        out.append((key, kind, found, diff))
    return out


class _Changes:
    """The records an edit or an undo changes, 56 bytes each (id, blob it had, blob it gets), and
    the facts (state, PIDs) of those that are not live without PIDs: 100,000 changes take 6 MB,
    where as many ``Change`` objects take 38."""

    def __init__(self, records_dir: str, operation: str) -> None:
        self.records_dir = records_dir
        self.operation = operation
        self.packed = bytearray()
        self.facts: dict[int, BlobFacts] = {}

    def __len__(self) -> int:
        return len(self.packed) // 56

    def add(self, record_id: uuid.UUID, old_hex: str | None, new_hex: str, facts: BlobFacts) -> None:
        """``old_hex`` None: the record has no file at the tip (a plain ``git rm`` an undo restores)."""
        if facts != _NO_PIDS:
            self.facts[len(self)] = facts
        old = _NO_FILE if old_hex is None else bytes.fromhex(old_hex)
        self.packed += record_id.bytes + old + bytes.fromhex(new_hex)

    def ids(self, start: int = 0, stop: int | None = None) -> Iterator[uuid.UUID]:
        view = memoryview(self.packed)
        for at in range(start * 56, (len(self) if stop is None else stop) * 56, 56):
            yield uuid.UUID(bytes=bytes(view[at : at + 16]))

    def entries(self, start: int, stop: int) -> Iterator[tuple[str, str]]:
        """(path, new blob) of the changes ``start`` to ``stop``, for :meth:`StagedTrees.tree`."""
        view = memoryview(self.packed)
        for at in range(start * 56, stop * 56, 56):
            path = record_path(str(uuid.UUID(bytes=bytes(view[at : at + 16]))), self.records_dir)
            yield path, view[at + 36 : at + 56].hex()

    def changes(self, start: int, stop: int) -> list[Change]:
        view = memoryview(self.packed)
        out = []
        for number in range(start, stop):
            at = number * 56
            record_id = uuid.UUID(bytes=bytes(view[at : at + 16]))
            old = bytes(view[at + 16 : at + 36])
            out.append(
                Change(
                    record_id,
                    record_path(str(record_id), self.records_dir),
                    _git.oid_from_raw(bytes(view[at + 36 : at + 56])),
                    self.operation,
                    expected=None if old == _NO_FILE else _git.oid_from_raw(old),
                    facts=self.facts.get(number, _NO_PIDS),
                )
            )
        return out


#: the facts of a live record without PIDs, shared
_NO_PIDS: BlobFacts = (LIVE, {})
#: the old blob of a change to a record that has no file (no object has this id)
_NO_FILE = bytes(20)


# -- update_records --------------------------------------------------------------


def update_records(
    repo: Storage,
    selection: str | Iterable[Any],
    change: ChangeSpec,
    *,
    message: str | None = None,
    dry_run: bool = False,
    author: Any = None,
    schema: str | None = None,
    chunk: int | None = None,
    diffs: int | None = DIFFS,
    signals_on: bool = True,
    progress: Callable[[int, int | None], None] | None = None,
    workers: int | None = None,
    keep_pids: bool = False,
) -> EditReport:
    """Change many records at once; see :meth:`gitrecords.Repository.update_records`."""
    if repo.in_transaction is not None:
        raise GitRecordsError("a bulk edit cannot run inside a transaction")
    check_message(message)
    if chunk is not None and chunk < 1:
        raise GitRecordsError("chunk must be at least 1")
    patch: _Patch | None = None
    function: Callable[[dict[str, Any]], Any] | None = None
    operations: list[str] = []
    if change is None:
        pass
    elif callable(change):
        function = change
        operations.append(_describe_function(change))
    else:
        patch = _Patch(change)
        operations.append(patch.description)
    snap = repo.snapshot()
    store = repo.schema_store()
    target_schema = None
    if schema is not None:
        target_schema = _schema_value(store, schema)
        operations.append(f"schema {target_schema}")
    if not operations:
        raise GitRecordsError("nothing to change: give a JSON Patch, a function or a schema")
    report = EditReport(dry_run=dry_run, operations=operations)
    if isinstance(selection, str):
        report.selection = selection.strip() or ALL
    before_hooks = signals_on and signals.receivers("before_record_update")
    after_hooks = signals_on and signals.receivers("after_record_update")
    # a patch's and --set's values are checked once; a function's output, or a hook's, per record
    known = function is None or isinstance(function, SetFields)
    work = _Work(
        patch,
        function,
        target_schema,
        _Checks(repo, store, snap.config, snap.max_record_bytes),
        checked=known and not before_hooks,
        pid_fields=dict(snap.config.get("pids") or {}),
        max_bytes=snap.max_record_bytes,
        by_ids=not isinstance(selection, str),
        git_dir=str(repo.git_dir),
        tree=str(snap.tree.id),
        records_dir=snap.records_dir,
        repo=repo if before_hooks else None,
        opened=repo.git,
        opened_tree=snap.tree,
        opened_in=os.getpid(),
        keep_pids=keep_pids,
    )
    # a JSON Patch, --set/--unset and a schema move are applied, checked and serialised in forked
    # worker processes; a function of the caller's and the before_record_update receivers run here
    if not known or before_hooks:
        workers = 1
    total: list[int | None] = [None]

    def chunks() -> Iterator[tuple[int | None, list[tuple[str, str | None]]]]:
        items: list[tuple[str, str | None]] = []
        # the workers read the records (and look up the blobs of a query's or the caller's ids)
        for record_id, blob in _selected(repo, snap, selection, total, lookup=False):
            items.append((str(record_id), str(blob) if blob is not None else None))
            if len(items) == CHUNK:
                yield (None if diffs is None else max(diffs - len(report.diffs), 0)), items
                items = []
        if items:
            yield (None if diffs is None else max(diffs - len(report.diffs), 0)), items

    changed = _Changes(snap.records_dir, "update")
    # the changed records whose PIDs change: their place among the changes, and their new PIDs
    moved: dict[str, tuple[int, dict[str, str]]] = {}
    size = chunk or 1 << 62  # records a commit
    staging: Any = contextlib.nullcontext(None) if dry_run else StagedTrees(repo, snap.tip)
    # each changed record's old and new file, for the search index's catch-up (see _written)
    written = None
    if not dry_run and repo.writer.compares_files():
        with contextlib.suppress(OSError):  # (then the index reads the files from the packs)
            written = _written.WrittenFiles(str(repo.git_dir))
    with staging as staged, contextlib.closing(written) if written is not None else contextlib.nullcontext():
        done = 0
        results_of = in_workers(chunks(), _edit_chunk, _init_work, (work,), workers, fork_only=True)
        for results in _cleared_after(results_of):
            for key, kind, found, diff in results:
                if kind == SKIPPED:
                    continue
                report.matched += 1
                if kind == INVALID:
                    report.invalid += 1
                    for pointer, text in found:
                        _problem(report, key, pointer, text)
                    continue
                if kind == UNCHANGED:
                    report.unchanged += 1
                    continue
                report.changed += 1
                if diff is not None and (diffs is None or len(report.diffs) < diffs):
                    report.diffs.append((key, diff))
                if found[4]:
                    moved[key] = (report.changed - 1, found[3] or {})
                if staged is None or report.invalid:
                    continue
                old_hex, new_raw, new_hex, pids, _moved, old_raw = found
                # straight into the tree of its chunk: git fast-import builds the trees meanwhile
                if len(changed) == size * (staged.commits + staged.opened):
                    if staged.opened:
                        staged.close_tree()
                    staged.open_tree()
                staged.file(record_path(key, snap.records_dir), new_raw, new_hex)
                if written is not None:
                    written.add(key, old_raw, new_raw)
                changed.add(uuid.UUID(key), old_hex, new_hex, (LIVE, pids) if pids else _NO_PIDS)
            done += len(results)
            if progress is not None:
                progress(done, total[0])
        if progress is not None:
            progress(done, done)
        if not isinstance(selection, str):
            report.selection = f"{IDS}{total[0]} record id{'' if total[0] == 1 else 's'}"
        # every chunk's PIDs against the others' and the records the edit leaves, before the first
        # is written (the write path checks each commit again, against what landed meanwhile)
        for key, problems in _pid_clashes(repo, snap, moved, work.pid_fields, size).items():
            report.changed -= 1
            report.invalid += 1
            for pointer, text in problems:
                _problem(report, key, pointer, text)
        if report.invalid:
            if dry_run:
                return report
            raise BulkEditError(report)
        if dry_run or not changed:
            return report
        _commit(repo, staged, snap.tree.id, changed, report, message, author, chunk, written)
    if after_hooks:
        _send_after(repo, ((i, "after_record_update") for i in changed.ids()), report.commits, False)
    return report


def _pid_clashes(
    repo: Storage,
    snap: Any,
    moved: dict[str, tuple[int, dict[str, str]]],
    pid_fields: dict[str, str],
    size: int,
) -> dict[str, list[tuple[str, str]]]:
    """The problems, by record id, of the PIDs that ``moved`` (place among the changes and new
    PIDs of each changed record whose PIDs change; ``size`` changes a commit) gives records: a
    PID another changed record takes too, one that a record holds at the snapshot and keeps (or
    lets go of only in a later commit), or one a hard-deleted record had."""
    found: dict[str, list[tuple[str, str]]] = {}
    if not any(pids for _place, pids in moved.values()):
        return found
    repo.index.catch_up(snap.tip)
    purged = repo.writer.purged(snap.tree).pids
    taken: dict[tuple[str, str], str] = {}
    for key, (place, pids) in moved.items():  # in path order, as the records were read
        for pid_type, value in sorted(pids.items()):
            pointer = f"/{layout.pointer_token(pid_fields.get(pid_type, pid_type))}"
            later = None
            kept = None
            for owner in map(str, repo.index.pid_owners(pid_type, value)):
                if owner == key:
                    continue
                if owner not in moved or moved[owner][1].get(pid_type) == value:
                    kept = kept or owner
                elif moved[owner][0] // size > place // size:  # it lets go in a later commit
                    later = later or owner
            other = taken.get((pid_type, value)) or kept
            if other is not None:
                text = f"PID {pid_type}:{value} is already used by record {other}"
            elif later is not None:
                text = f"PID {pid_type}:{value} is used by record {later} until a later chunk is written"
            elif (pid_type, value) in purged and purged[(pid_type, value)] != key:
                text = (
                    f"PID {pid_type}:{value} belonged to hard-deleted record "
                    f"{purged[(pid_type, value)]} and stays reserved"
                )
            else:
                taken[(pid_type, value)] = key
                continue
            found.setdefault(key, []).append((pointer, text))
    return found


def _send_after(
    repo: Storage, sent: Iterable[tuple[Any, str]], commits: list[str], with_deleted: bool
) -> None:
    """Once a change has landed in ``commits``: each record's after signal (``sent``: record id,
    signal name), to the plugins that receive it. A receiver that raises keeps no other record
    from being told; then :class:`AfterSignalError` says the change is committed."""
    failed: list[tuple[str, BaseException]] = []
    received: dict[str, bool] = {}
    for record_id, name in sent:
        if not received.setdefault(name, signals.receivers(name)):
            continue
        try:
            record = Record.get_record(record_id, with_deleted=with_deleted, repo=repo)
        except NoResultFound:
            continue
        try:
            signals.send(name, repo, record)
        except Exception as err:
            failed.append((str(record_id), err))
    if failed and commits:
        raise AfterSignalError(list(commits), failed) from failed[0][1]


def _changed(
    data: dict[str, Any],
    patch: _Patch | None,
    function: Callable[[dict[str, Any]], Any] | None,
    record_id: uuid.UUID,
) -> tuple[dict[str, Any] | None, Problem | None]:
    """The record's new data (None: unchanged) or the problem that stops the change."""
    if patch is not None:
        new, problem = patch.apply(data)
        if problem is not None:
            return None, (str(record_id), problem[1], problem[2])
        return new, None
    if function is None:
        return None, None
    try:
        new = function(data)
    except GitRecordsError as err:
        return None, (str(record_id), "/", str(err))
    except Exception as err:
        name = _describe_function(function).removeprefix("python ")
        return None, (str(record_id), "/", f"{name} raised {type(err).__name__}: {err}")
    if new is not None and not isinstance(new, dict):
        name = _describe_function(function).removeprefix("python ")
        text = f"{name} returned {type(new).__name__}, not a dict or None"
        return None, (str(record_id), "/", text)
    return new, None


def _trailers(report: EditReport, part: int, parts: int) -> list[str]:
    if report.selection == ALL:
        lines = ["Gitrecords-Selection: every live record"]
    elif report.selection.startswith(IDS):
        lines = [f"Gitrecords-Selection: {report.selection.removeprefix(IDS)}"]
    else:
        lines = [f"Gitrecords-Query: {_one_line(report.selection)}"]
    for operation in report.operations:
        lines.append(f"Gitrecords-Change: {_one_line(operation)}")
    if parts > 1:
        lines.append(f"Gitrecords-Chunk: {part} of {parts}")
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _commit(
    repo: Storage,
    staged: StagedTrees,
    base_tree: Any,
    changed: _Changes,
    report: EditReport,
    message: str | None,
    author: Any,
    chunk: int | None,
    written: _written.WrittenFiles | None = None,
) -> None:
    count = len(changed)
    size = chunk or count
    parts = -(-count // size)
    first: list[Change] = []  # the first commit's changes, made while fast-import finishes
    trees = staged.finish(meanwhile=lambda: first.extend(changed.changes(0, min(size, count))))
    assert len(trees) == parts
    start = repo.tip()
    try:
        _commit_parts(repo, trees, base_tree, changed, report, message, author, size, parts, written, first)
    except KeyboardInterrupt:
        # a Ctrl-C once a commit is on the branch (in a later chunk, or in the derived indexes'
        # catch-up after the branch moved) says what landed: "Aborted!" alone hid it. The edit's
        # commits are those with every trailer of its but the chunk's number
        trailers = [line for line in _trailers(report, 1, parts) if not line.startswith("Gitrecords-Chunk:")]
        landed = _landed(repo, start, trailers)
        if landed:
            raise EditInterruptedError(landed, parts) from None
        raise


def _landed(repo: Storage, start: Any, trailers: list[str]) -> list[str]:
    """The commits of an edit (those with all of ``trailers``) on the branch since ``start``,
    oldest first."""
    found: list[str] = []
    commit = repo.tip()
    while commit is not None and commit != start and len(found) < 100_000:
        lines = set(repo.git[commit].message.splitlines())
        if all(line in lines for line in trailers):
            found.append(str(commit))
        commit = _git.first_parent(repo.git, commit)
    return found[::-1]


def _commit_parts(
    repo: Storage,
    trees: list[Any],
    base_tree: Any,
    changed: _Changes,
    report: EditReport,
    message: str | None,
    author: Any,
    size: int,
    parts: int,
    written: _written.WrittenFiles | None = None,
    first: list[Change] | None = None,
) -> None:
    """Commit the changes in ``parts`` commits of ``size``; ``first``: the first one's, made
    already (the list is emptied: only the write path holds them)."""
    count = len(changed)
    for part in range(parts):
        start, stop = part * size, min((part + 1) * size, count)
        text = message or _default_message(report, stop - start)
        if parts > 1:
            head, _, rest = text.partition("\n")
            text = f"{head} ({part + 1} of {parts})" + (f"\n{rest}" if rest else "")
        commit = repo.writer.write(
            # only the write path holds them: gone before the indexes work
            _taken(first) if part == 0 and first else changed.changes(start, stop),
            message=text,
            author=author,
            trailers=_trailers(report, part + 1, parts),
            prebuilt=(base_tree, trees[part]),
            written=written,
        )
        base_tree = trees[part]
        if commit is not None:
            report.commits.append(str(commit))


def _taken(items: list[Change]) -> list[Change]:
    """The items of ``items`` in a new list, ``items`` emptied."""
    taken = items[:]
    items.clear()
    return taken


def _default_message(report: EditReport, count: int) -> str:
    noun = "record" if count == 1 else "records"
    where = ""
    if report.selection != ALL and not report.selection.startswith(IDS):
        where = f" matching {_one_line(report.selection)[:100]}"
    return f"edit {count} {noun}{where}: {_one_line(report.operation)[:200]}"


# -- undo ------------------------------------------------------------------------


def undo(
    repo: Storage,
    commit: str | Any,
    *,
    skip_conflicts: bool = False,
    message: str | None = None,
    author: Any = None,
    signals_on: bool = True,
) -> UndoReport:
    """Restore every record ``commit`` changed; see :meth:`gitrecords.Repository.undo`."""
    if repo.in_transaction is not None:
        raise GitRecordsError("an undo cannot run inside a transaction")
    check_message(message)
    git = repo.git
    target = _git.resolve_commit(git, str(commit))
    if target is None:
        raise NoResultFound(f"no commit {commit}")
    snap = repo.snapshot()
    if snap.tip is None or not _git.is_ancestor(git, target, snap.tip):
        raise GitRecordsError(f"commit {str(target)[:12]} is not on branch {repo.branch}")
    report = UndoReport(str(target))
    parent = _git.first_parent(git, target)
    records_dir = snap.records_dir
    pid_fields = snap.config.get("pids") or {}
    purged = repo.writer.purged(snap.tree).ids
    changed = _Changes(records_dir, "undo")
    tombstone = None
    # a record restored is reverted (to its state before ``commit``), one ``commit`` created is
    # deleted: the signals of Record.revert and Record.delete (a before receiver may refuse)
    kinds: dict[str, str] = {}
    for path, old, new in _git.changed_blobs(git, _git.tree_of(git, parent), _git.tree_of(git, target)):
        record_id = layout.id_from_path(path, records_dir)
        if record_id is None:
            continue  # schemas and settings are not records: undo leaves them
        key = str(record_id)
        current = _git.entry_id(snap.tree, path)
        if current == old:
            report.already += 1
            continue
        if current != new:
            report.conflicts.append((key, _conflict(repo, record_id, current, key in purged)))
            continue
        if old is None:
            # created by the commit: soft-deleted, as Record.delete does (the id and its PIDs
            # stay taken; a record never vanishes from a branch)
            if tombstone is None:
                tombstone = _git.create_blob(git, layout.dumps(layout.tombstone(datetime.now(UTC))))
            changed.add(record_id, str(current), str(tombstone), (TOMBSTONE, {}))
        else:
            # a file the commit removed (by plain git: gitrecords leaves tombstones) comes back
            before = None if current is None else str(current)
            changed.add(record_id, before, str(old), _facts(repo, record_id, old, pid_fields, snap))
        report.restored.append(key)
        kinds[key] = "delete" if old is None else "revert"
    if report.conflicts and not skip_conflicts:
        report.restored.clear()  # nothing is written: the conflicts are the answer
        raise UndoConflictError(report)
    if not changed:
        return report
    sent = [(key, kinds[key]) for key in report.restored] if signals_on else []
    for key, kind in sent:
        if signals.receivers(f"before_record_{kind}"):
            signals.send(f"before_record_{kind}", repo, Record.get_record(key, with_deleted=True, repo=repo))
    info = _git.commit_info(git, target)
    title = info.message.strip().split("\n", 1)[0]
    text = message or f"undo {str(target)[:12]}: {title}"
    with StagedTrees(repo, snap.tip) as staged:  # the trees in one pack, as an edit's
        staged.tree(changed.entries(0, len(changed)))
        (new_tree,) = staged.finish()
        written = repo.writer.write(
            changed.changes(0, len(changed)),  # only the write path holds them
            message=text,
            author=author,
            trailers=[f"Gitrecords-Undo: {target}"],
            prebuilt=(snap.tree.id, new_tree),
        )
    report.commit = str(written) if written is not None else None
    commits = [report.commit] if report.commit is not None else []
    _send_after(repo, ((key, f"after_record_{kind}") for key, kind in sent), commits, True)
    return report


def _facts(repo: Storage, record_id: uuid.UUID, blob: Any, pid_fields: dict[str, str], snap: Any) -> Any:
    """(state, PIDs) of the record file ``blob``; an unreadable one raises, naming the record."""
    raw = _git.read_blob(repo.git, blob)
    try:
        if len(raw) > snap.max_record_bytes:
            raise InvalidRecordError(f"file is larger than {snap.max_record_bytes} bytes")
        data = layout.loads(raw)
    except InvalidRecordError:
        repo.read_record_file(record_id, blob)  # raises the error that names the record and commit
        raise
    state, pids = facts_from_data(data, pid_fields)
    return (state, pids) if pids or state != LIVE else _NO_PIDS


def _conflict(repo: Storage, record_id: uuid.UUID, current: Any, purged: bool) -> str:
    if purged:
        return "hard-deleted since"
    if current is None:
        return "removed since"
    try:
        data = repo.read_record_file(record_id, current)
    except InvalidRecordError:
        data = None
    if layout.is_tombstone(data):
        return "deleted since"
    return "changed since"


# -- validate --schema: would the records pass under another schema? -------------------


def validate_schema(
    repo: Storage,
    schema: str,
    selection: str | Iterable[Any] = "",
    *,
    max_problems: int = checks.MAX_PROBLEMS,
    progress: Callable[[int, int | None], None] | None = None,
) -> checks.Report:
    """Which live records (all, or those ``selection`` selects) would fail under the schema
    ``schema`` of the store, and why, without writing anything: the check a move to it
    (``update_records(selection, None, schema=schema)``) makes, reported as
    :func:`gitrecords.checks.validate` reports (``path:line: [schema] pointer: message``).
    Raises :class:`SchemaError` when the store does not have ``schema``."""
    snap = repo.snapshot()
    store = repo.schema_store()
    target = _schema_value(store, schema)
    every = isinstance(selection, str) and not selection.strip()
    found = checks.Report(str(snap.tip), None, full=every, schema=target)
    check = _Checks(repo, store, snap.config, snap.max_record_bytes)
    items: list[checks.Problem] = []
    total = [None]
    seen = 0

    def add(problem: checks.Problem) -> None:
        found.total_problems += 1
        if len(items) < max_problems:
            items.append(problem)

    for record_id, blob in _selected(repo, snap, selection, total):
        seen += 1
        if progress is not None and seen % 256 == 0:
            progress(seen, total[0])
        path = layout.path_for(record_id, snap.records_dir)
        key = str(record_id)
        if blob is None:
            add(checks.Problem(path, "record", "the record does not exist", record_id=key))
            continue
        raw = _git.read_blob(repo.git, blob)
        try:
            data = layout.loads(raw)
        except InvalidRecordError as err:
            found.checked += 1
            found.checked_paths.add(path)
            add(checks.Problem(path, "json", str(err), record_id=key))
            continue
        if layout.is_tombstone(data):
            if not isinstance(selection, str):  # named by id, as edit -i: a problem (a query skips it)
                add(checks.Problem(path, "record", "the record is deleted", record_id=key))
            continue
        found.checked += 1
        found.checked_paths.add(path)
        if not isinstance(data, dict):
            add(checks.Problem(path, "record", "the file does not hold a JSON object", record_id=key))
            continue
        data["$schema"] = target
        _raw, problems = check.problems(data)
        text = raw.decode("utf-8", "replace") if problems else ""
        for pointer, message in problems:  # lines of the file as it is: only $schema would change
            add(checks.Problem(path, "schema", message, line_of(text, pointer), key, pointer))
    if progress is not None:
        progress(seen, seen)
    found.problems = sorted(items, key=checks.Problem.sort_key)
    return found
