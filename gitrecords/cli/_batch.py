"""Batch writes: check every record first, then write them all as one commit.

A batch is all or nothing. Every record is checked (JSON object, reserved
keys, size, schema) before anything is written, every problem is reported,
and the writes then happen inside one ``repo.transaction()``, so they become
exactly one git commit, or none when anything fails.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from .. import layout
from ..config import PURGED_FILE
from ..errors import GitRecordsError, NoResultFound, SchemaError
from ..record import Record, RecordBase
from ..repository import Repository, record_facts
from ..schema import SchemaStore, pointer
from ._common import DataError, ProblemsError, short
from ._input import Item
from ._output import echo_json, note, progress_iter


@dataclass
class Problem:
    """One thing wrong with one input record."""

    message: str
    pointer: str | None = None
    record_id: uuid.UUID | None = None
    where: str | None = None
    new: bool = False
    #: the message starts with ``where`` already ("a.jsonl line 2 is not valid JSON: ..."):
    #: ``where`` tells which input record the problem is of, and is not repeated
    named: bool = False

    def line(self) -> str:
        parts = []
        if self.where and not self.named:
            parts.append(self.where)
        if self.record_id is not None:
            parts.append("new record" if self.new else f"record {self.record_id}")
        if self.pointer:
            parts.append(self.pointer)
        parts.append(self.message)
        return ": ".join(parts)


def fail(problems: Sequence[Problem], total: int, noun: str = "record") -> NoReturn:
    """Report every problem and exit 1; one problem is one ``Error:`` line."""
    suffix = "; nothing was written" if total > 1 else ""
    if len(problems) == 1:
        raise DataError(problems[0].line() + suffix)
    bad = len({(p.where, p.record_id) for p in problems})
    plural = noun if total == 1 else noun + "s"
    raise ProblemsError(
        [p.line() for p in problems],
        f"{len(problems)} problems in {bad} of {total} {plural}{suffix}",
    )


def check_record(repo: Repository, data: Any, store: SchemaStore | None = None) -> list[tuple[str, str]]:
    """``(pointer, message)`` for everything that would stop ``data`` from being written.

    The same checks as :meth:`Record.validate` (and the size limit), but
    collecting every schema error instead of raising the best one.
    """
    if not isinstance(data, dict):
        return [("/", f"a record must be a JSON object, not {layout.json_type(data)}")]
    problems: list[tuple[str, str]] = []
    if layout.TOMBSTONE_KEY in data:
        problems.append((f"/{layout.TOMBSTONE_KEY}", "this top-level key is reserved for tombstones"))
    try:
        size = len(layout.dumps(data))
    except GitRecordsError as err:
        return [*problems, ("/", str(err))]
    if size > repo.max_record_bytes:
        problems.append(("/", f"{size} bytes is larger than the limit of {repo.max_record_bytes} bytes"))
    schema_ref = data.get("$schema")
    if schema_ref is None:
        schema_ref = repo.config.get("default_schema")
    if schema_ref is None:
        return problems
    store = store or repo.schema_store()
    try:
        found = store.iter_errors(
            data, schema_ref, format_checker=Record.format_checker, validator_cls=Record.validator
        )
        errors = list(found)
    except SchemaError as err:
        return [*problems, ("/$schema", str(err))]
    from jsonschema.exceptions import best_match

    found: list[tuple[str, str]] = []
    for error in errors:
        deepest = best_match([error]) or error
        found.append((pointer(deepest), deepest.message))
    return problems + sorted(found)


class PidClashes:
    """Finds PIDs that another record (in the repository or earlier in the batch) already has,
    or that a hard-deleted record held (listed in purged.txt: they stay reserved)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.fields: dict[str, str] = dict(repo.config.get("pids") or {})
        self.seen: dict[tuple[str, str], uuid.UUID] = {}
        self.purged = repo.writer.purged(repo.snapshot().tree)

    def hard_deleted(self, record_id: uuid.UUID) -> str | None:
        """Why ``record_id`` cannot be created: it names a hard-deleted record; else None."""
        if str(record_id) in self.purged.ids:
            listed = f"it is listed in {PURGED_FILE}"
            return f"record {record_id} was hard-deleted ({listed}); its id cannot be used again"
        return None

    def check(self, record_id: uuid.UUID, data: Any) -> list[tuple[str, str]]:
        if not self.fields or not isinstance(data, dict):
            return []
        problems = []
        for pid_type, value in record_facts(data, self.repo)[1].items():
            key = (pid_type, value)
            owner = self.seen.get(key)
            if owner is None:
                try:
                    owner = self.repo.lookup_pid(pid_type, value)
                except NoResultFound:
                    owner = None
            gone = self.purged.pids.get(key)
            place = f"/{layout.pointer_token(self.fields.get(pid_type, pid_type))}"
            if owner is not None and owner != record_id:
                problems.append((place, f"PID {pid_type}:{value} is already used by record {owner}"))
            elif gone is not None and gone != str(record_id):
                text = f"PID {pid_type}:{value} belonged to hard-deleted record {gone} and stays reserved"
                problems.append((place, text))
            else:
                self.seen[key] = record_id
        return problems


@dataclass
class Written:
    """What a batch wrote: the records (in input order) and the commit."""

    records: list[Record]
    commit: str | None
    changed: bool
    #: how many of ``records`` (existing ones) already had that data: no new revision
    unchanged: int = 0


def _check_duplicates(items: Sequence[Item]) -> None:
    seen: dict[uuid.UUID, str] = {}
    for item in items:
        if item.id is None:
            continue
        if item.id in seen:
            first = seen[item.id]
            raise DataError(f"{item.where}: record {item.id} appears twice in the input (first at {first})")
        seen[item.id] = item.where


def write_items(
    repo: Repository,
    items: Sequence[Item],
    *,
    replace: bool = False,
    must_exist: bool = False,
    pid_minters: Sequence[str] | None = None,
    message: str | Callable[[int], str] | None = None,
    author: str | None = None,
    progress: bool = False,
) -> Written:
    """Create (or with ``replace`` overwrite) the records of ``items`` in one commit.

    Items without an id become new records. An item whose id exists is an
    error unless ``replace``; then its data becomes the record's next
    revision (a soft-deleted record is brought back), keeping the PIDs the
    record holds that the input leaves out. With ``must_exist``
    (``update``) every id must name a live record. PID minters run for new
    records only: ``pid_minters``, or by default the repository's (``mint``).
    ``message`` may be a function of the number of records written (unchanged ones left out).
    """
    _check_duplicates(items)
    existing: dict[int, Record] = {}
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if item.id is None:
            continue
        try:
            record = Record.get_record(item.id, with_deleted=True, repo=repo)
        except NoResultFound:
            if must_exist:
                problems.append(Problem(f"record {item.id} does not exist", where=item.where))
            continue
        if must_exist and record.is_deleted:
            problems.append(Problem(f"record {item.id} is deleted: undelete it first", where=item.where))
        existing[index] = record
    if existing and not replace and not must_exist:
        taken = [str(items[i].id) for i in existing]
        if len(taken) == 1:
            raise DataError(f"record {taken[0]} already exists: use --force to write a new revision")
        shown = ", ".join(taken[:3]) + (", ..." if len(taken) > 3 else "")
        raise DataError(f"{len(taken)} records already exist ({shown}): use --force to write revisions")
    if problems:
        fail(problems, len(items))

    from ..plugins import get_minter  # pluggy: writes only (issue 21)

    resolved: dict[str, Any] = {}
    store = repo.schema_store()
    pid_clashes = PidClashes(repo)
    before = repo.tip()
    records: list[Record] = []
    pid_fields: dict[str, str] = dict(repo.config.get("pids") or {})
    unchanged = 0
    with repo.transaction(message=None if callable(message) else message, author=author) as tx:
        prepared: list[tuple[Item, uuid.UUID, Any, Record | None]] = []
        checking: Iterable[tuple[int, Item]] = enumerate(items)
        if progress:
            checking = progress_iter(checking, "Checking", len(items))
        for index, item in checking:
            old = existing.get(index)
            record_id = item.id or uuid.uuid4()
            is_new = item.id is None
            data = item.data
            kept = []
            if old is not None and isinstance(data, dict):
                kept = [field for field in pid_fields.values() if field in old and field not in data]
            if kept:
                # a new revision whose input leaves a PID out keeps it, as a REST PUT does (the
                # input may still change it: the command line is as free as the Python API)
                data = {**data, **{field: old[field] for field in kept}}
            names = repo.minters_for(data) if pid_minters is None else pid_minters
            if old is None and names and isinstance(data, dict):
                data = copy.deepcopy(data)
                for name in names:
                    try:
                        minter = resolved.get(name) or resolved.setdefault(name, get_minter(name))
                        minter(repo, record_id, data)
                    except GitRecordsError as err:
                        problems.append(Problem(str(err), record_id=record_id, where=item.where, new=is_new))
            gone = pid_clashes.hard_deleted(record_id) if old is None and not is_new else None
            if gone is not None:
                problems.append(Problem(gone, where=item.where))
            for where, text in check_record(repo, data, store):
                problems.append(Problem(text, where, record_id, item.where, is_new))
            for where, text in pid_clashes.check(record_id, data):
                problems.append(Problem(text, where, record_id, item.where, is_new))
            prepared.append((item, record_id, data, old))
        if problems:
            fail(problems, len(items))  # leaves the transaction: nothing is written
        writing: Iterable[tuple[Item, uuid.UUID, Any, Record | None]] = prepared
        if progress:
            writing = progress_iter(prepared, "Writing", len(prepared))
        for _item, record_id, data, old in writing:
            if old is None:
                # minted above already, where a PID that cannot be minted is a problem like any
                records.append(Record.create(data, repo=repo, id_=record_id, pid_minters=()))
                continue
            blob = repo.record_blob(old.id)
            if old.is_deleted:
                old.undelete()
            old.clear()
            old.update(data)
            old.commit()
            records.append(old)
            unchanged += repo.record_blob(old.id) == blob  # the same data: no new revision
        if callable(message):
            tx.message = message(len(records) - unchanged)
    commit = tx.commit_id if tx.commit_id is not None else before
    return Written(records, str(commit) if commit is not None else None, commit != before, unchanged)


def record_summary(record: RecordBase) -> dict[str, Any]:
    """id, revision, state, and the PIDs the record holds (``{"recid": "61"}``) if any."""
    summary = {"id": str(record.id), "revision_id": record.revision_id, "is_deleted": record.is_deleted}
    fields = record.repo.config.get("pids") or {}
    held = {kind: str(record[field]) for kind, field in fields.items() if field in record}
    if held:
        summary["pids"] = held
    return summary


def report(verb: str, written: Written, as_json: bool) -> None:
    """Tell what a write did: JSON on stdout with --json, and one line on stderr."""
    if as_json:
        echo_json({"commit": written.commit, "records": [record_summary(r) for r in written.records]})
    if written.changed:
        count = len(written.records) - written.unchanged
        noun = "record" if count == 1 else "records"
        same = f", {written.unchanged} unchanged" if written.unchanged else ""
        note(f"{verb} {count} {noun}{same} (commit {short(written.commit)})")
    elif written.records:
        noun = "record" if len(written.records) == 1 else "records"
        note(f"No changes: the {noun} already had that data")
    else:
        note("Nothing to write: the input holds no records")


def load_records(repo: Repository, ids: Sequence[uuid.UUID], *, deleted: bool | None = False) -> list[Record]:
    """The records of ``ids``; every missing one (and, by ``deleted``, wrong state) is reported.

    ``deleted=False`` wants live records, ``True`` soft-deleted ones, ``None`` either.
    """
    records: list[Record] = []
    problems: list[Problem] = []
    seen: set[uuid.UUID] = set()
    for record_id in ids:
        if record_id in seen:
            continue
        seen.add(record_id)
        try:
            record = Record.get_record(record_id, with_deleted=True, repo=repo)
        except NoResultFound as err:
            problems.append(Problem(str(err)))
            continue
        if deleted is False and record.is_deleted:
            problems.append(Problem(f"record {record_id} is deleted"))
        elif deleted is True and not record.is_deleted:
            problems.append(Problem(f"record {record_id} is not deleted"))
        else:
            records.append(record)
    if problems:
        fail(problems, len(seen))
    return records
