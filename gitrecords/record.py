"""Record (a dict subclass, as in invenio-records) and its revisions."""

from __future__ import annotations

import copy
import json
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from . import _git, layout
from .blame import BlameEntry, blame, find_revision
from .errors import (
    GitRecordsError,
    InvalidRecordError,
    NoResultFound,
    RecordDeletedError,
    RecordTooLargeError,
    SchemaError,
)
from .index import LIVE, REMOVED, TOMBSTONE, RevisionRow
from .schema import INLINE_SCHEMAS_REFUSED
from .storage import Storage, current_repository, record_facts
from .writer import Change

#: the type of ``repo`` arguments: a :class:`gitrecords.Repository` (its storage is all a record needs)
Repository = Storage

__all__ = ["Record", "RecordRevision", "RevisionsIterator"]

_TIP_NOW: Any = object()


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def checked_patch(patch: Any) -> list[dict[str, Any]]:
    """``patch`` (a list of operations, or its JSON text) as a JSON Patch gitrecords applies;
    :class:`InvalidRecordError` names the first operation that is not one (no ``op`` or ``path``,
    or replacing the whole record), or a value JSON cannot hold."""
    if isinstance(patch, (str, bytes)):
        patch = layout.loads(patch, what="JSON Patch")
    if not isinstance(patch, list):
        raise InvalidRecordError("a JSON Patch must be a list of operations")
    for number, op in enumerate(patch):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise InvalidRecordError(f"JSON Patch operation {number} needs 'op' and 'path'")
        # "" is the whole document (refused); "/" is the member with the empty name (RFC 6901)
        if op.get("path") == "" and op.get("op") in ("remove", "replace", "add", "move", "copy"):
            raise InvalidRecordError(
                f"JSON Patch operation {number} may not replace the whole record ({op['path']!r})"
            )
    try:
        layout.check_value(patch)  # values too deeply nested to copy, NaN, ...
    except InvalidRecordError as err:
        raise InvalidRecordError(f"JSON Patch: {err}") from None
    return patch


def patch_failure(number: int, op: dict[str, Any], err: Exception, document: Any = None) -> str:
    """One line saying why operation ``number`` of a JSON Patch does not apply: the operation
    and its pointer, then what failed, without the whole document (jsonpointer's messages end
    with a repr of it) or Python type names (jsonpatch's failed ``test``, jsonpointer's
    ``Document '<class 'int'>'``: with the ``document`` the operation was applied to, the
    value on the way that is not an object or array is named)."""
    import jsonpatch

    source = f" from {op['from']}" if "from" in op else ""
    where = f"JSON Patch operation {number} ({op['op']} {op['path']}{source})"
    if isinstance(err, jsonpatch.JsonPatchTestFailed):
        expected = json.dumps(op.get("value"), ensure_ascii=False)
        if len(expected) > 80:
            expected = expected[:77] + "..."
        return f"{where}: the value at {op['path'] or '/'} is not {expected}"
    if re.search(r"does not support indexing|to non-container type", str(err)):
        for pointer in (op.get("from"), op.get("path")):
            found = _scalar_on_the_way(document, pointer) if isinstance(pointer, str) else None
            if found is not None:
                return f"{where}: {found[0]} is {layout.json_type(found[1])}, not an object or array"
    reason = re.sub(r" (?:in|of) [\[{(].*\Z", "", str(err), flags=re.S)
    if re.fullmatch(r"'.*'", reason):  # a KeyError's text: jsonpatch passes on only the name
        reason = f"{reason} not found"
    return f"{where}: {reason[:200]}"


def _scalar_on_the_way(document: Any, pointer: str) -> tuple[str, Any] | None:
    """(pointer, value) of the first value on the way to ``pointer`` in ``document`` that is not
    an object or array; None when there is none (or the way is missing)."""
    import jsonpointer

    try:
        parts = jsonpointer.JsonPointer(pointer).parts
    except jsonpointer.JsonPointerException:
        return None
    value = document
    for depth, part in enumerate(parts):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, (dict, list)):
            return None
        else:
            return "/" + "/".join(layout.pointer_token(p) for p in parts[:depth]), value
    return None


class RecordBase(dict):
    """What records and revisions share: identity, timestamps, validation."""

    #: default jsonschema FormatChecker used by validate() when none is given
    format_checker: Any = None
    #: default validator class (e.g. a partial validator); None picks it from the schema
    validator: Any = None
    #: when False, replace_refs() returns the record unchanged
    enable_jsonref: bool = True

    def __init__(self, data: dict[str, Any] | None = None, *, repo: Repository | None = None) -> None:
        super().__init__(data or {})
        self._repo = repo
        self._id: uuid.UUID | None = None
        self._revision_id: int | None = None
        self._blob: _git.Oid | None = None
        self._created: datetime | None = None
        self._updated: datetime | None = None
        self._deleted = False

    @property
    def id(self) -> uuid.UUID | None:
        """The record's UUID (None for a record that was never written)."""
        return self._id

    @property
    def revision_id(self) -> int | None:
        """0-based count of this record's revisions (None before the first write)."""
        return self._revision_id

    @property
    def created(self) -> datetime | None:
        """Commit time of revision 0, tz-aware UTC."""
        return self._created

    @property
    def updated(self) -> datetime | None:
        """Commit time of the latest revision (of this revision, for a RecordRevision)."""
        return self._updated

    @property
    def is_deleted(self) -> bool:
        """True for a soft-deleted record (its file is a tombstone)."""
        return self._deleted

    @property
    def repo(self) -> Repository:
        return self._repo if self._repo is not None else current_repository()

    def validate(self, format_checker: Any = None, validator: Any = None, **kwargs: Any) -> None:
        """Validate against ``$schema`` (or the repository's default schema).

        Raises :class:`jsonschema.ValidationError` for invalid data (a
        :class:`gitrecords.schema.PatternTimeoutError` when a pattern could not be
        checked in time), :class:`SchemaError` for an inline schema where the
        repository's ``inline_schemas`` setting is false.
        """
        layout.check_value(dict(self))
        if layout.TOMBSTONE_KEY in self:
            raise InvalidRecordError(
                f"record {self.id}: top-level key {layout.TOMBSTONE_KEY!r} is reserved for tombstones"
            )
        schema_ref = self.get("$schema")
        if schema_ref is None:
            schema_ref = self.repo.config.get("default_schema")
        if schema_ref is None:
            return
        if isinstance(schema_ref, dict) and self.repo.config.get("inline_schemas", True) is not True:
            raise SchemaError(INLINE_SCHEMAS_REFUSED)
        store = self.repo.schema_store()
        store.validate(
            dict(self),
            schema_ref,
            format_checker=format_checker or self.format_checker,
            validator_cls=validator or self.validator,
        )

    def replace_refs(self) -> Any:
        """A copy with ``$ref``s replaced by proxies (schema store and local refs only)."""
        if not self.enable_jsonref:
            return self
        return self.repo.schema_store().replace_refs(dict(self))

    def dumps(self, dumper: Any = None) -> dict[str, Any]:
        """A deep copy of the data (mutating it does not change the record); with ``dumper`` (as
        in invenio-records: an object with ``dump(record, data)``), what it makes of it."""
        if dumper is not None:
            return dumper.dump(self, {})
        return copy.deepcopy(dict(self))

    @classmethod
    def loads(cls, data: dict[str, Any], loader: Any = None) -> Any:
        """A record of this class holding a deep copy of ``data`` (the inverse of :meth:`dumps`),
        not written anywhere; with ``loader`` (an object with ``load(data, record_class)``), what
        it makes of it."""
        if loader is not None:
            return loader.load(data, cls)
        return cls(copy.deepcopy(dict(data)))

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """A copy of the data and of the identity (id, revision, times); the repository is
        shared, not copied (it cannot be)."""
        new = type(self).__new__(type(self))
        dict.__init__(new, copy.deepcopy(dict(self), memo))
        new.__dict__.update(self.__dict__)
        return new

    def clear_none(self, key: str | None = None) -> None:
        """Remove None values, empty dicts and empty lists, recursively, in place."""
        target: Any = self
        if key is not None:
            for part in key.split("."):
                target = target[int(part)] if isinstance(target, list) else target[part]
        _clear_none(target)


def _clear_none(value: Any) -> None:
    if isinstance(value, dict):
        for key in list(value):
            _clear_none(value[key])
            if value[key] is None or value[key] == {} or value[key] == []:
                del value[key]
    elif isinstance(value, list):
        for item in value:
            _clear_none(item)
        value[:] = [v for v in value if not (v is None or v == {} or v == [])]


class Record(RecordBase):
    """A metadata record: a dict with an id, revisions and a lifecycle.

    ``Record.create`` writes revision 0; ``commit`` writes the next revision;
    ``delete``, ``undelete`` and ``revert`` write revisions too. Each write is
    one git commit (or part of one, inside ``repo.transaction()``).
    """

    #: when False, no hooks are called for this class
    send_signals: bool = True

    # -- construction ----------------------------------------------------

    @classmethod
    def create(
        cls,
        data: dict[str, Any],
        id_: uuid.UUID | str | None = None,
        *,
        repo: Repository | None = None,
        format_checker: Any = None,
        validator: Any = None,
        pid_minters: Iterable[str] | None = None,
        message: str | None = None,
        author: Any = None,
        **kwargs: Any,
    ) -> Record:
        """Create and write a new record (revision 0); returns it.

        ``pid_minters`` name the PID minters to run (``()``: none); by default, those of the
        repository's ``mint`` setting whose PID the data does not hold yet.
        """
        if not isinstance(data, dict):
            raise InvalidRecordError(f"a record must be a JSON object, not {layout.json_type(data)}")
        layout.check_value(data)  # before the deep copy, which cannot copy a too deeply nested value
        repo = repo or current_repository()
        record = cls(copy.deepcopy(dict(data)), repo=repo)  # (a Record too: its data, not its repository)
        record._id = layout.normalize_id(id_) if id_ is not None else uuid.uuid4()
        minters = repo.minters_for(data) if pid_minters is None else list(pid_minters)
        if minters:
            from . import plugins  # pluggy: not for a read (issue 21)

            resolved = [plugins.get_minter(name) for name in minters]
            # Minting needs the write lock, and the data it gives (with the hooks' changes) is
            # validated under it, in _insert. So validate before the lock too: a pattern that cannot
            # be checked in time is refused here, without the lock, and slow matches are remembered
            # (gitrecords.schema), so the validation under the lock does not run them again. Other
            # errors wait for that validation: minting or a hook may still fix them.
            if repo.in_transaction is None:  # else the caller holds the lock already
                from jsonschema.exceptions import ValidationError

                from .schema import PatternTimeoutError

                try:
                    record.validate(format_checker=format_checker, validator=validator)
                except PatternTimeoutError:
                    raise
                except (ValidationError, GitRecordsError):
                    pass
            # a transaction of its own only to mint under the lock: the record is written when it
            # ends, and after_record_insert comes then, as without minters (a receiver that
            # raises finds the record written either way)
            implicit = repo.in_transaction is None
            with repo.transaction(message=message, author=author):
                for minter in resolved:
                    minter(repo, record._id, record)
                record._insert(format_checker, validator, message, author, after=not implicit)
            if implicit:
                record._signal("after_record_insert")
        else:
            record._insert(format_checker, validator, message, author)
        return record

    @classmethod
    def before_insert(cls, data: dict[str, Any], *, id_: uuid.UUID, repo: Repository) -> dict[str, Any]:
        """Send ``before_record_insert`` for ``data`` about to be created as record ``id_`` by a
        bulk import (which writes it itself); returns the data as the hooks left it."""
        record = cls(data, repo=repo)
        record._id = id_
        record._signal("before_record_insert")
        return dict(record)

    @classmethod
    def before_update(
        cls, data: dict[str, Any], *, id_: uuid.UUID, blob: Any, repo: Repository
    ) -> dict[str, Any]:
        """Send ``before_record_update`` for ``data`` about to become the next revision of record
        ``id_`` (whose file is ``blob``) in a bulk edit (which writes it itself); returns the
        data as the hooks left it."""
        record = cls(data, repo=repo)
        record._id = id_
        record._blob = blob
        record._signal("before_record_update")
        return dict(record)

    def _insert(
        self, format_checker: Any, validator: Any, message: str | None, author: Any, after: bool = True
    ) -> None:
        repo = self.repo
        self._signal("before_record_insert")
        self.validate(format_checker=format_checker, validator=validator)
        data = layout.dumps(dict(self))
        self._check_size(data, repo)
        blob = _git.create_blob(repo.git, data)
        change = Change(
            self._id,
            repo.path_for(self._id),
            blob,
            "create",
            create=True,
            facts=record_facts(dict(self), repo, self._id),
        )
        self._stage_or_write(repo, change, message, author)
        self._blob = blob
        self._refresh_after_write()
        if after:
            self._signal("after_record_insert")

    def _check_size(self, data: bytes, repo: Repository) -> None:
        if len(data) > repo.max_record_bytes:
            raise RecordTooLargeError(
                f"record {self._id}: {len(data)} bytes is larger than "
                f"the limit of {repo.max_record_bytes} bytes"
            )

    @classmethod
    def get_record(
        cls, id_: uuid.UUID | str, with_deleted: bool = False, *, repo: Repository | None = None
    ) -> Record:
        """The current revision of a record; NoResultFound if missing (or soft-deleted)."""
        repo = repo or current_repository()
        record_id = layout.normalize_id(id_)
        snap = repo.snapshot()  # one look at the branch for the whole read
        blob = repo.record_blob(record_id, snap)
        if blob is None:
            raise NoResultFound(f"record {record_id} does not exist")
        data = repo.read_record_file(record_id, blob, snap.max_record_bytes)
        deleted = layout.is_tombstone(data)
        if deleted and not with_deleted:
            raise NoResultFound(f"record {record_id} is deleted")
        if not isinstance(data, dict):
            where = f"{repo.path_for(record_id)}{repo.written_in(record_id, blob)}"
            raise InvalidRecordError(f"record {record_id} ({where}): file does not hold a JSON object")
        record = cls({} if deleted else data, repo=repo)
        record._id = record_id
        record._blob = blob
        record._deleted = deleted
        record._refresh_after_write(snap.tip)
        return record

    @classmethod
    def get_unreadable(cls, id_: uuid.UUID | str, *, repo: Repository | None = None) -> Record:
        """The record whose current file cannot be read (edited by hand into something that is
        not a JSON object), without its data: its :attr:`revisions` read as usual, and
        :meth:`revert` to one of them is the repair. NoResultFound if there is no such record."""
        repo = repo or current_repository()
        record_id = layout.normalize_id(id_)
        snap = repo.snapshot()
        blob = repo.record_blob(record_id, snap)
        if blob is None:
            raise NoResultFound(f"record {record_id} does not exist")
        record = cls({}, repo=repo)
        record._id = record_id
        record._blob = blob
        record._deleted = False
        record._refresh_after_write(snap.tip)
        return record

    @classmethod
    def get_records(
        cls, ids: Iterable[uuid.UUID | str], with_deleted: bool = False, *, repo: Repository | None = None
    ) -> list[Record]:
        """Records for ``ids``, in input order; missing (and deleted) ids are left out."""
        repo = repo or current_repository()
        records = []
        for id_ in ids:
            try:
                records.append(cls.get_record(id_, with_deleted=with_deleted, repo=repo))
            except NoResultFound:
                continue
        return records

    def _refresh_after_write(self, tip: Any = _TIP_NOW) -> None:
        """Revision id and timestamps from the index (synced to ``tip``, default the branch tip)."""
        repo = self.repo
        tx = repo.in_transaction
        try:
            summary = repo.index.summary(self._id, repo.tip() if tip is _TIP_NOW else tip)
        except sqlite3.Error:
            # the index is busy (another process rebuilds it): the write has happened, so it must
            # not fail now; this revision follows the one the record had, as it would in the index
            now = datetime.now(UTC).replace(microsecond=0)
            self._revision_id = 0 if self._revision_id is None else self._revision_id + 1
            self._created = self._created or now
            self._updated = now
            return
        count = summary[0] if summary else 0
        if tx is not None and self._id in tx.changes:
            # the staged write becomes the next revision when the transaction commits
            committed = _git.entry_id(_git.tree_of(repo.git, repo.tip()), repo.path_for(self._id))
            changed = tx.changes[self._id].blob != committed
            now = datetime.now(UTC).replace(microsecond=0)
            self._revision_id = count if changed else count - 1
            self._created = _utc(summary[1]) if summary else now
            self._updated = now if changed or summary is None else _utc(summary[2])
            return
        if summary is None:
            self._revision_id = self._created = self._updated = None
            return
        self._revision_id = count - 1
        self._created = _utc(summary[1])
        self._updated = _utc(summary[2])

    # -- writing ---------------------------------------------------------

    def _stage_or_write(
        self, repo: Repository, change: Change, message: str | None, author: Any, target: Record | None = None
    ) -> None:
        """Write ``change`` (or stage it in the open transaction, which reports its commit to
        ``target``, by default this record, when it lands)."""
        tx = repo.in_transaction
        before = Record()  # the identity (blob, revision, times) that is stored now
        before._copy_identity(self)
        repo.stage_or_write(change, message=message, author=author)
        if tx is not None:
            record = target if target is not None else self
            tx.on_commit(lambda commit: record._refresh_after_write(_TIP_NOW if commit is None else commit))

            def roll_back() -> None:  # the write is gone: the objects say what is stored again
                self._copy_identity(before)
                record._copy_identity(before)

            tx.on_rollback(roll_back)

    def _require_written(self) -> Repository:
        if self._id is not None and self._deleted and self._blob is None:
            raise NoResultFound(f"record {self._id} was hard-deleted: its history is gone")
        if self._id is None or (self._revision_id is None and self._blob is None):
            raise GitRecordsError("the record was never written: use Record.create()")
        return self.repo

    def commit(
        self,
        format_checker: Any = None,
        validator: Any = None,
        *,
        message: str | None = None,
        author: Any = None,
        **kwargs: Any,
    ) -> Record:
        """Validate and write the data as a new revision; returns ``self``.

        Nothing is written when the data did not change.
        """
        repo = self._require_written()
        if self._deleted:
            raise RecordDeletedError(f"record {self._id} is deleted: undelete() or revert() it first")
        self._signal("before_record_update")
        self.validate(format_checker=format_checker, validator=validator)
        data = layout.dumps(dict(self))
        self._check_size(data, repo)
        blob = _git.create_blob(repo.git, data)
        change = Change(
            self._id,
            repo.path_for(self._id),
            blob,
            "update",
            expected=self._blob,
            facts=record_facts(dict(self), repo, self._id),
        )
        self._stage_or_write(repo, change, message, author)
        self._blob = blob
        self._refresh_after_write()
        self._signal("after_record_update")
        return self

    def patch(self, patch: list[dict[str, Any]] | str) -> Record:
        """Apply a JSON Patch (RFC 6902); returns a new unsaved Record (``self`` is unchanged)."""
        import jsonpatch
        import jsonpointer

        patch = checked_patch(patch)
        data: Any = copy.deepcopy(dict(self))
        for number, op in enumerate(patch):  # one by one, so that an error names its operation
            try:
                data = jsonpatch.JsonPatch([op]).apply(data, in_place=True)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as err:
                # the same type (a failed test is a 409 over HTTP), with one line of our own
                raise type(err)(f"record {self._id}: {patch_failure(number, op, err, data)}") from None
        if not isinstance(data, dict):
            raise InvalidRecordError("a JSON Patch must leave the record an object")
        new = type(self)(data, repo=self._repo)
        new._copy_identity(self)
        return new

    def _copy_identity(self, other: RecordBase) -> None:
        self._id = other._id
        self._revision_id = other._revision_id
        self._blob = other._blob
        self._created = other._created
        self._updated = other._updated
        self._deleted = other._deleted

    def delete(self, force: bool = False, *, message: str | None = None, author: Any = None) -> Record:
        """Soft-delete (write a tombstone revision), or with ``force=True`` purge from history."""
        repo = self._require_written()
        if force:
            purge_records([self], message=message, author=author)
            return self
        self._signal("before_record_delete")
        if self._deleted:
            raise RecordDeletedError(f"record {self._id} is already deleted")
        data = layout.tombstone(datetime.now(UTC))
        blob = _git.create_blob(repo.git, layout.dumps(data))
        change = Change(
            self._id,
            repo.path_for(self._id),
            blob,
            "delete",
            expected=self._blob,
            facts=(TOMBSTONE, {}),  # a tombstone keeps the PIDs the record had, whatever they are
        )
        self._stage_or_write(repo, change, message, author)
        self._blob = blob
        self._deleted = True
        self._refresh_after_write()
        self._signal("after_record_delete")
        return self

    def undelete(self, *, message: str | None = None, author: Any = None) -> Record:
        """Bring a soft-deleted record back with its last live data (a new revision)."""
        repo = self._require_written()
        if not self._deleted:
            raise GitRecordsError(f"record {self._id} is not deleted")
        tx = repo.in_transaction
        blob = tx.live_blobs.get(self._id) if tx is not None else None
        if blob is None:  # none staged in this transaction: the last one committed
            repo.sync_index()
            last = repo.index.last_live(self._id)
            if last is None or last.blob is None:
                raise NoResultFound(f"record {self._id} has no live revision to restore")
            blob = _git.Oid(hex=last.blob)
        data = repo.read_record_file(self._id, blob)
        change = Change(
            self._id,
            repo.path_for(self._id),
            blob,
            "undelete",
            expected=self._blob,
            facts=record_facts(data, repo, self._id),
        )
        self._stage_or_write(repo, change, message, author)
        self.clear()
        self.update(data)
        self._blob = blob
        self._deleted = False
        self._refresh_after_write()
        return self

    def revert(self, revision_id: int, *, message: str | None = None, author: Any = None) -> Record:
        """Write revision ``revision_id``'s data again as a new revision; returns a new Record."""
        repo = self._require_written()
        revisions = self.revisions
        if not len(revisions):  # a copy read before a hard delete (the index has no revision)
            raise NoResultFound(f"record {self._id} was hard-deleted: its history is gone")
        revision = revisions[revision_id]
        self._signal("before_record_revert")
        change = Change(
            self._id,
            repo.path_for(self._id),
            revision._blob,
            "revert",
            expected=self._blob,
            facts=(TOMBSTONE, {}) if revision.is_deleted else record_facts(dict(revision), repo, self._id),
        )
        if revision._blob is None:
            raise GitRecordsError(
                f"record {self._id}: revision {revision.revision_id} removed the file; it cannot be restored"
            )
        new = type(self)(dict(revision), repo=self._repo)
        new._id = self._id
        new._blob = revision._blob
        new._deleted = revision.is_deleted
        self._stage_or_write(
            repo,
            change,
            message or f"revert record {self._id} to revision {revision.revision_id}",
            author,
            target=new,
        )
        new._refresh_after_write()
        self._copy_identity(new)
        new._signal("after_record_revert")
        return new

    # -- history ---------------------------------------------------------

    @property
    def revisions(self) -> RevisionsIterator:
        """This record's revisions, oldest first (``[n]`` by id, ``[-k]`` by position)."""
        self._require_written()
        return RevisionsIterator(self.repo, self._id)

    def revision_at(self, at: int | str | date | datetime) -> RecordRevision:
        """The revision that was current at ``at``: a revision id, a date or datetime (ISO 8601
        text too; a date alone is the end of that day, UTC) or a commit-ish
        (:func:`gitrecords.blame.find_revision`). NoResultFound when the record did not exist
        then; :class:`gitrecords.blame.AtError` for a value that is none of these."""
        self._require_written()
        return self.revisions[find_revision(self.repo, self._id, at)]

    def blame(self, revision: int | None = None) -> list[BlameEntry]:
        """Every leaf (JSON pointer) of the record, as of ``revision`` (default: the latest),
        with the revision, commit, author, time and message that last set it
        (:func:`gitrecords.blame.blame`)."""
        self._require_written()
        return blame(self.repo, self._id, revision=revision)

    def _signal(self, name: str) -> None:
        from . import signals  # the plugin manager (pluggy) is loaded by the first write

        signals.send(name, self.repo, self)


def purge_records(
    records: list[Record], *, message: str | None = None, author: Any = None, progress: Any = None
) -> None:
    """Hard-delete ``records`` (of one repository) as one rewrite of the history, sending
    ``before_record_delete`` for each first (a plugin may refuse: then nothing is purged) and
    ``after_record_delete`` for each once they are gone, as :meth:`Record.delete` with
    ``force=True`` does for one."""
    if not records:
        return
    repo = records[0]._require_written()
    for record in records:
        record._require_written()
        record._signal("before_record_delete")
    repo.hard_delete([record.id for record in records], message=message, author=author, progress=progress)
    for record in records:
        record._deleted = True
        record._revision_id = None
        record._blob = None
    for record in records:
        record._signal("after_record_delete")


class RecordRevision(RecordBase):
    """One revision of a record, read-only; a tombstone revision has empty data."""

    def __init__(self, data: dict[str, Any] | None = None, *, repo: Repository | None = None) -> None:
        super().__init__(data, repo=repo)
        self.commit_id: str | None = None

    @property
    def commit_info(self) -> _git.CommitInfo | None:
        """Author, time and message of the commit that made this revision; None for the write
        staged in an open transaction (no commit made it yet)."""
        if self.commit_id is None:
            return None
        return _git.commit_info(self.repo.git, self.commit_id)

    def __repr__(self) -> str:
        return f"<RecordRevision {self._id} #{self._revision_id} {dict.__repr__(self)}>"


class RevisionsIterator:
    """The revisions of one record: ``len()``, ``[i]``, iteration, ``reversed()``, ``in``.

    A non-negative index is a revision id, a negative one a position from the end;
    since revision ids never have holes here, both mean the same revision.
    """

    def __init__(self, repo: Repository, record_id: uuid.UUID) -> None:
        self._repo = repo
        self._id = record_id
        snap = repo.snapshot()
        self._rows = repo.index.revisions(record_id, snap.tip)  # as of this snapshot
        staged = repo.in_transaction.changes.get(record_id) if repo.in_transaction is not None else None
        if staged is not None and staged.blob is not None:
            last = self._rows[-1] if self._rows else None
            if last is None or last.blob != str(staged.blob):
                # the write staged in this transaction is the next revision (as ``revision_id``
                # says), not committed yet: no commit id, the time of now
                now = int(datetime.now(UTC).timestamp())
                self._rows = [
                    *self._rows,
                    RevisionRow(record_id, len(self._rows), None, str(staged.blob), staged.facts[0], now),  # type: ignore[arg-type]
                ]
        self._created = _utc(self._rows[0].time) if self._rows else None
        self._limit = snap.max_record_bytes

    def __len__(self) -> int:
        return len(self._rows)

    def _revision(self, row: RevisionRow) -> RecordRevision:
        repo = self._repo
        blob = _git.Oid(hex=row.blob) if row.blob else None
        data: Any = {}
        if row.state == LIVE and blob is not None:
            data = repo.read_record_file(self._id, blob, self._limit)
        revision = RecordRevision(data if isinstance(data, dict) else {}, repo=repo)
        revision._id = self._id
        revision._revision_id = row.revision
        revision._blob = blob
        revision._deleted = row.state != LIVE
        revision._created = self._created
        revision._updated = _utc(row.time)
        revision.commit_id = row.commit_id
        return revision

    def __getitem__(self, index: int) -> RecordRevision:
        if not isinstance(index, int):
            raise TypeError("revision indices must be integers")
        try:
            row = self._rows[index]
        except IndexError:
            raise IndexError(f"record {self._id} has no revision {index}") from None
        return self._revision(row)

    def __iter__(self) -> Iterator[RecordRevision]:
        for row in self._rows:
            yield self._revision(row)

    def __reversed__(self) -> Iterator[RecordRevision]:
        for row in reversed(self._rows):
            yield self._revision(row)

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and -len(self._rows) <= index < len(self._rows)

    def rows(self) -> list[RevisionRow]:
        """The index rows (revision, commit id, blob, state, time) without reading blobs."""
        return list(self._rows)


REMOVED_STATE = REMOVED


def revisions_of(record_id: uuid.UUID, repo: Repository) -> RevisionsIterator:
    """The revisions of ``record_id``, read from the revision index without reading its current
    file (edited by hand into invalid JSON, the revisions before it stay readable). A record
    with none raises what :meth:`Record.get_record` says of it (missing, hard-deleted...)."""
    revisions = RevisionsIterator(repo, record_id)
    if not len(revisions):
        Record.get_record(record_id, with_deleted=True, repo=repo)
    return revisions
