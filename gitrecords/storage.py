"""A data repository's storage: open/init, settings, snapshots, reads, and the write path.

:class:`Storage` is what the services (merge, replication, purge, checks) and
the record API build on. Users hold a :class:`gitrecords.Repository`, its
subclass, which adds the bulk import and the hard delete. Writes go through
:attr:`Storage.writer`, the one :class:`~gitrecords.writer.WritePath`.
"""

from __future__ import annotations

import contextvars
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _git, layout
from ._index_sql import derived_file
from ._parsed import ParsedBlobs
from .config import DEFAULT_CONFIG, PURGED_FILE, default_minters, parse_config, read_source_tree
from .errors import BatchValidationError, InvalidRecordError, NoResultFound, RepositoryError, SchemaError
from .index import BlobFacts, RevisionIndex, facts_from_data, pid_type_problems
from .schema import SchemaStore, parse_schema_file, schema_bytes
from .search_index import SearchIndex
from .worktree import WorkingClone
from .writer import DEFAULT_LOCK_WAIT, Change, Transaction, WritePath, parse_author

__all__ = ["Snapshot", "Storage", "current_repository", "record_facts"]

_current: contextvars.ContextVar[list[Storage]] = contextvars.ContextVar("gitrecords_repos")


def current_repository() -> Any:
    """The repository of the innermost ``with repo:`` block."""
    stack = _current.get(None)
    if not stack:
        raise RepositoryError("no current repository: pass repo=... or use 'with Repository(path):'")
    return stack[-1]


@dataclass(frozen=True)
class Snapshot:
    """One state of the branch, for reads: its tip commit, the tip's tree, the configuration."""

    tip: _git.Oid | None
    tree: Any
    config: dict[str, Any]

    @property
    def records_dir(self) -> str:
        return self.config["records"]

    @property
    def max_record_bytes(self) -> int:
        return int(self.config.get("max_record_bytes") or layout.MAX_RECORD_BYTES)


class Storage:
    """A gitrecords data repository: a git repository, bare or not (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        branch: str | None = None,
        author: str | tuple[str, str] | None = None,
        durable: bool = True,
        allow_remote_refs: bool = False,
        from_env: bool = False,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        allow_shallow: bool = False,
        committer: str | tuple[str, str] | None = None,
    ) -> None:
        #: the opened git repository (a pygit2 object: use it through gitrecords._git); a shallow
        #: clone is refused (revision numbers need the whole history) unless ``allow_shallow``
        #: (validating a CI checkout)
        self.git = _git.open_repository(path, from_env=from_env, allow_shallow=allow_shallow)
        self.path = Path(path)
        self.git_dir = Path(self.git.path)
        self.bare = self.git.is_bare
        self.durable = durable
        self.allow_remote_refs = allow_remote_refs
        self.author = parse_author(author)
        self.branch = branch or self._head_branch() or DEFAULT_CONFIG["branch"]
        if not _git.valid_branch_name(self.branch):
            self.git.free()
            raise RepositoryError(f"{self.branch!r} is not a valid branch name")
        self.ref = f"refs/heads/{self.branch}"
        self._config_cache: tuple[Any, dict[str, Any]] | None = None
        self._snapshot: Snapshot | None = None
        #: record files parsed before, by blob id
        self.parsed = ParsedBlobs()
        self._store_cache: tuple[Any, SchemaStore] | None = None
        index_path = None if from_env else derived_file(self.git_dir, "index", self.branch)
        self.index = RevisionIndex(self.git, self.ref, index_path)
        self._search_path = None if from_env else derived_file(self.git_dir, "search", self.branch)
        self._search: SearchIndex | None = None
        self.working_clone = WorkingClone(self.git, self.bare, self.branch, self._head_branch)
        #: the write path: every change to the branch goes through it
        self.writer = WritePath(
            self.git,
            self.ref,
            durable=durable,
            author=self.author,
            index=self.index,
            working_clone=self.working_clone,
            lock_wait=lock_wait,
            committer=parse_author(committer),
        )
        if self._search_path is not None and os.path.exists(self._search_path):
            self.search_index  # noqa: B018 - an index that exists follows every commit from now on

    @property
    def search_index(self) -> SearchIndex:
        """The derived search index (made by the first search, then kept up by every commit)."""
        if self._search is None:
            self._search = SearchIndex(self.git, self.ref, self._search_path, self.index)
            self.writer.subscribe(self._search)
        return self._search

    def _head_branch(self) -> str | None:
        try:
            head = self.git.references["HEAD"]
        except KeyError:
            return None
        target = head.target
        if isinstance(target, str) and target.startswith("refs/heads/"):
            return target[len("refs/heads/") :]
        return None

    # -- creating --------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        *,
        bare: bool = True,
        branch: str = "main",
        config: dict[str, Any] | None = None,
        from_dir: str | os.PathLike[str] | None = None,
        author: str | tuple[str, str] | None = None,
        message: str | None = None,
        allow_missing_schemas: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Create a new data repository at ``path`` (bare unless ``bare=False``).

        With ``from_dir``, the files of that working tree (a ``gitrecords.json``,
        a schema store and record files) become the first commit; record files
        are placed at their canonical path and re-serialised canonically. A
        record whose ``$schema`` (or the default schema) is not in the tree's
        schema store raises :class:`BatchValidationError` listing every such
        record, and nothing is created, unless ``allow_missing_schemas``.
        """
        target = Path(path)
        if target.exists() and any(target.iterdir()):
            raise RepositoryError(f"{target}: already exists and is not empty")
        settings = dict(DEFAULT_CONFIG)
        files: dict[str, bytes] = {}
        if from_dir is not None:
            source_files, source_config = read_source_tree(Path(from_dir))
            settings.update(source_config)
            files.update(source_files)
        settings.update(config or {})
        settings["branch"] = branch
        if from_dir is not None and not allow_missing_schemas:
            problems, total = _missing_schemas(files, settings, kwargs.get("allow_remote_refs", False))
            if problems:
                raise BatchValidationError(problems, total)
        files[layout.CONFIG_FILE] = layout.dumps(settings)
        parse_config(files[layout.CONFIG_FILE])  # settings that could not be read are refused now
        _git.init_repository(target, bare=bare, branch=branch)
        repo = cls(target, branch=branch, author=author, **kwargs)
        repo.git.config["core.logAllRefUpdates"] = True
        # short delta chains: reading one record must not unpack a chain of 50 deltas
        # (git's default); packs grow by about a quarter, reads are several times faster
        repo.git.config["pack.depth"] = 10
        count = sum(1 for p in files if layout.id_from_path(p, settings["records"]))
        if message is None:
            message = "initialise data repository"
            if from_dir is not None:
                message = f"import {count} records from {Path(from_dir).name}"
        changes = {p: _git.create_blob(repo.git, data) for p, data in files.items()}
        tree = _git.build_tree(repo.git, None, changes)
        commit = repo.writer.commit(None, tree, message + "\n")
        if not bare:
            _git.checkout(repo.git, tree)
        repo.writer.landed(None, commit, {})
        return repo

    # -- context ---------------------------------------------------------

    def __enter__(self) -> Any:
        stack = _current.get(None)
        if stack is None:
            stack = []
            _current.set(stack)
        stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        stack = _current.get()
        stack.remove(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self.path)!r} branch={self.branch!r}>"

    def close(self) -> None:
        self._snapshot = None
        self.index.close()
        if self._search is not None:
            self._search.close()
        self.git.free()

    # -- reading ---------------------------------------------------------

    def tip(self) -> _git.Oid | None:
        return _git.tip(self.git, self.ref)

    def snapshot(self) -> Snapshot:
        """The branch tip, its tree and its configuration, looked up once.

        A read takes one snapshot and uses it throughout, so it looks the branch up once and
        sees one consistent state even while another process moves the branch. Cached by tip
        (commits never change), so a snapshot of an unmoved branch costs one ref lookup.
        """
        tip = self.tip()
        snap = self._snapshot
        if snap is not None and snap.tip == tip:
            return snap
        tree = _git.tree_of(self.git, tip)
        snap = Snapshot(tip, tree, self.config_in(tree))
        self._snapshot = snap
        return snap

    @property
    def config(self) -> dict[str, Any]:
        """The repository configuration (``gitrecords.json`` at the branch tip)."""
        return self.snapshot().config

    def minters_for(self, data: Any) -> list[str]:
        """The PID minters a new record ``data`` gets by default: the configuration's ``mint``,
        but not those whose PID ``data`` already holds."""
        return default_minters(self.config, data)

    def config_in(self, tree: Any) -> dict[str, Any]:
        """The settings of the ``gitrecords.json`` in ``tree`` (any tree: a commit's, a merge's
        before it is committed), defaults filled in; the last one read is remembered."""
        blob = _git.entry_id(tree, layout.CONFIG_FILE)
        cached = self._config_cache
        if cached is not None and cached[0] == blob:
            return cached[1]
        settings = parse_config(_git.read_blob(self.git, blob) if blob is not None else None)
        self._config_cache = (blob, settings)
        return settings

    @property
    def records_dir(self) -> str:
        return self.config["records"]

    def path_for(self, record_id: uuid.UUID | str) -> str:
        return layout.path_for(record_id, self.records_dir)

    def schema_store(self, commit: _git.Oid | None = None) -> SchemaStore:
        """The schemas of the branch tip (or of ``commit``)."""
        snap = self.snapshot()
        settings = snap.config
        tree = snap.tree if commit is None else _git.tree_of(self.git, commit)
        store_tree = _git.subtree(self.git, tree, settings["schemas"])
        inline = settings.get("inline_schemas", True) is True
        key = (store_tree.id if store_tree is not None else None, self.allow_remote_refs, inline)
        cached = self._store_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        schemas: dict[str, Any] = {}
        if store_tree is not None:
            for path, blob in _git.walk_blobs(self.git, store_tree):
                if path.endswith(".json"):
                    schemas[path] = parse_schema_file(_git.read_blob(self.git, blob), path)
        store = SchemaStore(
            schemas, settings["schemas"], allow_remote_refs=self.allow_remote_refs, inline_schemas=inline
        )
        self._store_cache = (key, store)
        return store

    def config_and_schema_files(self) -> dict[str, bytes]:
        """``gitrecords.json``, ``purged.txt`` (the PIDs of hard-deleted records stay reserved in
        a copy too) and every file of the schema store at the branch tip, by path in the
        repository, byte for byte: what a copy needs besides the records (``export --dir``)."""
        snap = self.snapshot()
        files: dict[str, bytes] = {}
        for name in (layout.CONFIG_FILE, PURGED_FILE):
            blob = _git.entry_id(snap.tree, name)
            if blob is not None:
                files[name] = _git.read_blob(self.git, blob)
        schemas_dir = snap.config["schemas"]
        store_tree = _git.subtree(self.git, snap.tree, schemas_dir)
        if store_tree is not None:
            for path, blob in _git.walk_blobs(self.git, store_tree, schemas_dir + "/"):
                files[path] = _git.read_blob(self.git, blob)
        return files

    def transaction(
        self, message: str | None = None, author: str | tuple[str, str] | None = None
    ) -> Transaction:
        """``with repo.transaction():`` makes every write inside one commit.

        Inside an open transaction this returns it again: the inner block is a
        savepoint (if it raises, its writes are dropped and the outer ones stay).
        """
        current = self.writer.transaction
        if current is not None:
            return current
        return Transaction(self.writer, message, author)

    @property
    def in_transaction(self) -> Transaction | None:
        return self.writer.transaction

    def record_blob(self, record_id: uuid.UUID, snapshot: Snapshot | None = None) -> _git.Oid | None:
        """Blob id of the record's current file (staged changes first), at ``snapshot``
        (default: the branch tip)."""
        tx = self.in_transaction
        if tx is not None and record_id in tx.changes:
            return tx.changes[record_id].blob
        snap = snapshot or self.snapshot()
        return _git.entry_id(snap.tree, layout.path_for(record_id, snap.records_dir))

    def read_record_file(self, record_id: uuid.UUID, blob: _git.Oid, limit: int | None = None) -> Any:
        """Parse a record file strictly; errors name the record, its path, the commit that wrote
        it and the blob."""
        if limit is None:
            limit = self.max_record_bytes
        try:
            return self.parsed.read(blob, limit, lambda: _git.read_blob(self.git, blob))
        except KeyError:  # the object is gone: a hard delete purged it (from another handle)
            raise NoResultFound(f"record {record_id} was hard-deleted: its history is gone") from None
        except InvalidRecordError as err:
            where = f"record {record_id} ({self.path_for(record_id)}{self.written_in(record_id, blob)})"
            text = str(err)  # "record is not valid JSON: ...", or "NaN is not valid JSON ..."
            text = text.replace("record", where, 1) if text.startswith("record") else f"{where}: {text}"
            raise InvalidRecordError(text) from None

    def written_in(self, record_id: uuid.UUID, blob: _git.Oid) -> str:
        """For error messages: ``in commit <id>, blob <id>``, the latest commit of the branch that
        wrote ``blob`` as the record's file (the index knows it)."""
        self.sync_index()
        commit = next(
            (r.commit_id for r in reversed(self.index.revisions(record_id)) if r.blob == str(blob)), None
        )
        return (f" in commit {commit[:12]}" if commit else "") + f", blob {str(blob)[:12]}"

    @property
    def max_record_bytes(self) -> int:
        return self.snapshot().max_record_bytes

    def ids(self, with_deleted: bool = False) -> Iterator[uuid.UUID]:
        """Ids of the records on the branch (live ones unless ``with_deleted``)."""
        tree = _git.subtree(self.git, _git.tree_of(self.git, self.tip()), self.records_dir)
        if tree is None:
            return
        records_dir = self.records_dir
        for path, blob in _git.walk_blobs(self.git, tree, records_dir + "/"):
            record_id = layout.id_from_path(path, records_dir)
            if record_id is None:
                continue
            if not with_deleted and self._is_tombstone_blob(blob):
                continue
            yield record_id

    def latest_ids(
        self, with_deleted: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[uuid.UUID]:
        """Ids of the records on the branch, most recently changed first (from the index)."""
        self.sync_index()
        return [record_id for record_id, _ in self.index.latest(with_deleted, limit, offset)]

    def count_records(self, with_deleted: bool = False) -> int:
        """How many records the branch holds (live ones unless ``with_deleted``)."""
        self.sync_index()
        return self.index.count_latest(with_deleted)

    def _is_tombstone_blob(self, blob: _git.Oid) -> bool:
        raw = _git.read_blob(self.git, blob)
        if len(raw) > 200 or layout.TOMBSTONE_KEY.encode() not in raw:
            return False
        try:
            return layout.is_tombstone(layout.loads(raw))
        except InvalidRecordError:
            return False

    def sync_index(self) -> None:
        """Let every derived index catch up with the branch (reads do this by themselves)."""
        self.writer.catch_up(self.tip())

    def reindex(self) -> int:
        """Rebuild the revision and PID index (and the search index, if there is one) from the
        branch; returns revisions indexed."""
        count = self.index.rebuild()
        if self._search is not None:
            self._search.rebuild()
        return count

    def lookup_pid(self, pid_type: str, value: str) -> uuid.UUID:
        self.sync_index()
        found = self.index.lookup_pid(pid_type, str(value))
        if found is None:
            raise NoResultFound(f"no record with PID {pid_type}:{value}")
        return found

    def next_integer_pid(self, pid_type: str) -> int:
        """The next free integer PID of ``pid_type`` (call while holding the write lock): above
        every PID a record holds or a hard-deleted record held."""
        tx = self.in_transaction
        floor = tx.pid_floor.get(pid_type) if tx is not None else None
        if floor is None:
            snap = self.snapshot()
            self.writer.catch_up(snap.tip)
            floor = max(
                self.index.max_integer_pid(pid_type), self.writer.purged(snap.tree).max_integer(pid_type)
            )
        if tx is None:
            return floor + 1
        # the branch holds still while the transaction holds the lock: its floor is looked up once
        # (an import of 20,000 records minted in one transaction looked it up 20,000 times, and
        # walked every staged record each time), then the numbers this transaction took count
        tx.pid_floor[pid_type] = floor
        highest = max(floor, tx.minted.get(pid_type, 0), tx.staged_high.get(pid_type, 0))
        tx.minted[pid_type] = highest + 1
        return highest + 1

    # -- writing ---------------------------------------------------------

    def put_schema(
        self, path: str, schema: dict[str, Any] | bool, *, message: str | None = None, author: Any = None
    ) -> str:
        """Add or replace a schema in the store as one commit (an object, or the boolean schemas
        ``true`` and ``false``); returns its store path."""
        path = path.strip("/")
        prefix = self.config["schemas"] + "/"
        if path.startswith(prefix):
            path = path[len(prefix) :]
        if not path.endswith(".json") or ".." in path.split("/") or "\0" in path:
            raise SchemaError(f"schema path {path!r} must be a relative path ending in .json")
        if "" in path.split("/") or any(part.startswith(".") for part in path.split("/")):
            raise SchemaError(f"schema path {path!r} must not have empty or hidden parts")
        existing = self.schema_store().by_path
        for other in existing:
            if other.startswith(path + "/") or path.startswith(other + "/"):
                # git keeps a name as a file or a folder, not both: one of them would be deleted
                raise SchemaError(f"schema path {path!r} is a file or a folder of the schema {other!r}")
        data = schema_bytes(schema)
        store = SchemaStore({path: schema}, self.config["schemas"])
        problems = list(store.check_schemas())
        if problems:
            raise SchemaError(f"schema {path}: not a valid schema: {problems[0][1]}")
        together = SchemaStore({**existing, path: schema}, self.config["schemas"])
        for where, other, message in together.collisions:
            if path in (where, other):
                raise SchemaError(f"schema {where}: {message}")
        full = prefix + path
        self.writer.write_files({full: data}, message=message or f"put schema {full}", author=author)
        return full

    def stage_or_write(
        self, change: Change, *, message: str | None = None, author: Any = None
    ) -> _git.Oid | None:
        """Stage ``change`` in the current transaction, or write it as one commit."""
        tx = self.in_transaction
        if tx is not None:
            self.writer.check_staged(tx, change)
            tx.stage(change)
            return None
        return self.writer.write([change], message=message, author=author)


def _missing_schemas(
    files: dict[str, bytes], settings: dict[str, Any], allow_remote_refs: bool = False
) -> tuple[list[tuple[int, str | None, str, str]], int]:
    """The records among ``files`` (a tree to import, by path) whose schema is not in the schema
    store among ``files``, as :class:`BatchValidationError` problems, and the number of records.

    Only the names are looked up (validation is ``gitrecords validate``'s job); with
    ``allow_remote_refs`` an http(s) name outside the store is taken as found, not fetched.
    """
    schemas_dir = settings["schemas"]
    prefix = schemas_dir + "/"
    schemas: dict[str, Any] = {}
    for path, data in files.items():
        if path.startswith(prefix) and path.endswith(".json"):
            rel = path[len(prefix) :]
            try:
                schemas[rel] = parse_schema_file(data, path)
                SchemaStore({rel: schemas[rel]}, schemas_dir)
            except SchemaError:  # validate reports the file; the records naming it are reported here
                schemas.pop(rel, None)
    store = SchemaStore(schemas, schemas_dir, inline_schemas=settings.get("inline_schemas", True) is True)
    problems: list[tuple[int, str | None, str, str]] = []
    total = 0
    for path, data in files.items():
        record_id = layout.id_from_path(path, settings["records"])
        if record_id is None:
            continue
        total += 1
        record = layout.loads(data)
        if layout.is_tombstone(record):
            continue
        schema_ref, where, named = record.get("$schema"), "/$schema", "schema"
        if schema_ref is None:
            schema_ref, where, named = settings.get("default_schema"), "/", "default_schema"
        if schema_ref is None:
            continue
        try:
            store.resolve_schema(schema_ref)
        except SchemaError as err:
            if not isinstance(schema_ref, str):
                problems.append((total - 1, str(record_id), where, str(err)))
            elif not (allow_remote_refs and schema_ref.startswith(("http://", "https://"))):
                text = f"{named} {schema_ref!r} is not in the schema store ({schemas_dir}/)"
                problems.append((total - 1, str(record_id), where, text))
    return problems, total


def record_facts(data: Any, repo: Storage, record_id: Any = None) -> BlobFacts:
    """(state, PIDs) of a record's data under ``repo``'s PID settings; InvalidRecordError when a
    PID field holds something that is no PID (see :func:`gitrecords.index.pid_type_problems`)."""
    pid_fields = repo.config.get("pids") or {}
    problems = pid_type_problems(data, pid_fields)
    if problems:
        pointer, message = problems[0]
        raise InvalidRecordError(f"record {record_id}: {pointer}: {message}")
    return facts_from_data(data, pid_fields)
