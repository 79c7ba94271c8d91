"""A data repository: open/init, configuration, transactions, the write path.

Every write is one git commit that moves the branch with a compare-and-swap:
the commit is created with the tip it was built on as its first parent, and
libgit2 refuses to move the branch if the tip changed meanwhile. Local writers
also serialise on a lock file (``flock``; the kernel releases it when a writer
dies, so a crash never blocks the repository). When the branch moved because
of another writer, the change is rebuilt on the new tip if the records it
touches did not change, and raises :class:`StaleRevisionError` if they did.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _git, layout
from ._parsed import ParsedBlobs
from .errors import (
    GitRecordsError,
    InvalidRecordError,
    LocalChangesError,
    NoResultFound,
    RecordExistsError,
    RepositoryError,
    SchemaError,
    StaleRevisionError,
)
from .index import LIVE, TOMBSTONE, BlobFacts, RevisionIndex, facts_from_data
from .pids import PIDError
from .schema import SchemaStore, parse_schema_file, schema_bytes

if TYPE_CHECKING:
    from .record import Record

DEFAULT_CONFIG: dict[str, Any] = {
    "branch": "main",
    "default_schema": None,
    "format": layout.FORMAT_VERSION,
    "layout": layout.LAYOUT,
    "pids": {"recid": "control_number"},
    "records": layout.RECORDS_DIR,
    "schemas": "schemas",
}
DEFAULT_AUTHOR = ("gitrecords", "gitrecords@localhost")
MAX_ATTEMPTS = 50
PURGED_FILE = "purged.txt"

_current: contextvars.ContextVar[list[Repository]] = contextvars.ContextVar("gitrecords_repos")
_MISSING: Any = object()
_AUTHOR_RE = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>]*)>\s*$")


def current_repository() -> Repository:
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


@dataclass
class Change:
    """One record's new file content (blob None removes the file)."""

    record_id: uuid.UUID
    path: str
    blob: _git.Oid | None
    operation: str
    expected: Any = _MISSING  # blob id the record must still have at the tip
    create: bool = False  # the record must not exist (not even as a tombstone)
    facts: BlobFacts = (LIVE, {})
    records: list[Record] = field(default_factory=list)


def parse_author(author: str | tuple[str, str] | None) -> tuple[str, str] | None:
    if author is None:
        return None
    if isinstance(author, tuple):
        return author
    match = _AUTHOR_RE.match(author)
    if not match or not match["name"]:
        raise GitRecordsError(f"author {author!r} must look like 'Name <email>'")
    return match["name"], match["email"]


def _date_from_env(name: str) -> tuple[int, int] | None:
    value = os.environ.get(name)
    if not value:
        return None
    match = re.match(r"^@?(\d+)(?:\s+([+-])(\d\d)(\d\d))?$", value.strip())
    if not match:
        return None
    offset = 0
    if match[2]:
        offset = (int(match[3]) * 60 + int(match[4])) * (1 if match[2] == "+" else -1)
    return int(match[1]), offset


class Transaction:
    """Several writes that become exactly one git commit, all or nothing."""

    def __init__(self, repo: Repository, message: str | None, author: Any) -> None:
        self.repo = repo
        self.message = message
        self.author = author
        self.changes: dict[uuid.UUID, Change] = {}
        self.minted: dict[str, int] = {}
        self.commit_id: _git.Oid | None = None
        self._lock: contextlib.ExitStack | None = None
        self._depth = 0

    def stage(self, change: Change) -> None:
        previous = self.changes.get(change.record_id)
        if previous is not None:
            # keep what the record had to be at the tip before this transaction
            change.expected = previous.expected
            change.create = previous.create
            change.records = previous.records + change.records
            if change.operation != previous.operation and previous.operation == "create":
                change.operation = "create"
        self.changes[change.record_id] = change

    def __enter__(self) -> Transaction:
        if self._depth == 0:
            self._lock = contextlib.ExitStack()
            self._lock.enter_context(self.repo._write_lock())
            self.repo._local.transaction = self
        self._depth += 1
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        try:
            if exc_type is None and self.changes:
                self.commit_id = self.repo._write(
                    list(self.changes.values()), message=self.message, author=self.author, locked=True
                )
        finally:
            self.repo._local.transaction = None
            assert self._lock is not None
            self._lock.close()
        if exc_type is None:
            for change in self.changes.values():
                for record in change.records:
                    record._refresh_after_write()


class Repository:
    """A gitrecords data repository: a git repository, bare or not.

    ``Repository(path)`` opens an existing repository; ``Repository.init(path)``
    creates one. Use ``with repo:`` to make it the current repository for the
    :class:`~gitrecords.Record` class methods.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        branch: str | None = None,
        author: str | tuple[str, str] | None = None,
        durable: bool = True,
        allow_remote_refs: bool = False,
        from_env: bool = False,
    ) -> None:
        self._git = _git.open_repository(path, from_env=from_env)
        self.path = Path(path)
        self.git_dir = Path(self._git.path)
        self.bare = self._git.is_bare
        self.durable = durable
        self.allow_remote_refs = allow_remote_refs
        self.author = parse_author(author)
        self.branch = branch or self._head_branch() or DEFAULT_CONFIG["branch"]
        self.ref = f"refs/heads/{self.branch}"
        self._local = threading.local()
        self._thread_lock = threading.RLock()
        self._config_cache: tuple[Any, dict[str, Any]] | None = None
        self._snapshot: Snapshot | None = None
        self._parsed = ParsedBlobs()
        self._store_cache: tuple[Any, SchemaStore] | None = None
        safe_branch = re.sub(r"[^A-Za-z0-9._-]", "_", self.branch)
        index_path = None if from_env else str(self.git_dir / "gitrecords" / f"index-{safe_branch}.sqlite")
        self.index = RevisionIndex(
            self._git,
            self.ref,
            index_path,
            records_dir=lambda: self.config["records"],
            pid_fields=lambda: self.config.get("pids") or {},
        )

    def _head_branch(self) -> str | None:
        try:
            head = self._git.references["HEAD"]
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
        **kwargs: Any,
    ) -> Repository:
        """Create a new data repository at ``path`` (bare unless ``bare=False``).

        With ``from_dir``, the files of that working tree (a ``gitrecords.json``,
        a schema store and record files) become the first commit; record files
        are placed at their canonical path and re-serialised canonically.
        """
        target = Path(path)
        if target.exists() and any(target.iterdir()):
            raise RepositoryError(f"{target}: already exists and is not empty")
        settings = dict(DEFAULT_CONFIG)
        files: dict[str, bytes] = {}
        if from_dir is not None:
            source_files, source_config = _read_source_tree(Path(from_dir))
            settings.update(source_config)
            files.update(source_files)
        settings.update(config or {})
        settings["branch"] = branch
        files[layout.CONFIG_FILE] = layout.dumps(settings)
        _git.init_repository(target, bare=bare, branch=branch)
        repo = cls(target, branch=branch, author=author, **kwargs)
        repo._git.config["core.logAllRefUpdates"] = True
        # short delta chains: reading one record must not unpack a chain of 50 deltas
        # (git's default); packs grow by about a quarter, reads are several times faster
        repo._git.config["pack.depth"] = 10
        count = sum(1 for p in files if layout.id_from_path(p, settings["records"]))
        if message is None:
            message = "initialise data repository"
            if from_dir is not None:
                message = f"import {count} records from {Path(from_dir).name}"
        changes = {p: _git.create_blob(repo._git, data) for p, data in files.items()}
        tree = _git.build_tree(repo._git, None, changes)
        author_sig, committer_sig = repo._signatures(None)
        commit = _git.create_commit(repo._git, None, author_sig, committer_sig, message + "\n", tree, [])
        if repo.durable:  # as every write: the objects on disk before the ref, the ref before returning
            _git.sync_filesystem(repo.git_dir)
        _git.create_ref(repo._git, repo.ref, commit)
        if repo.durable:
            _git.fsync_path(repo.git_dir / repo.ref)
            _git.fsync_path((repo.git_dir / repo.ref).parent)
        if not bare:
            _git.checkout(repo._git, tree)
        repo.index.sync(commit)
        return repo

    # -- context ---------------------------------------------------------

    def __enter__(self) -> Repository:
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
        return f"<Repository {str(self.path)!r} branch={self.branch!r}>"

    def close(self) -> None:
        self._snapshot = None
        self.index.close()
        self._git.free()

    # -- reading ---------------------------------------------------------

    def tip(self) -> _git.Oid | None:
        return _git.tip(self._git, self.ref)

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
        tree = _git.tree_of(self._git, tip)
        snap = Snapshot(tip, tree, self._config_in(tree))
        self._snapshot = snap
        return snap

    @property
    def config(self) -> dict[str, Any]:
        """The repository configuration (``gitrecords.json`` at the branch tip)."""
        return self.snapshot().config

    def _config_in(self, tree: Any) -> dict[str, Any]:
        blob = _git.entry_id(tree, layout.CONFIG_FILE)
        cached = self._config_cache
        if cached is not None and cached[0] == blob:
            return cached[1]
        settings = dict(DEFAULT_CONFIG)
        if blob is not None:
            try:
                loaded = layout.loads(_git.read_blob(self._git, blob), what=layout.CONFIG_FILE)
            except InvalidRecordError as err:
                raise RepositoryError(str(err)) from None
            if not isinstance(loaded, dict):
                raise RepositoryError(f"{layout.CONFIG_FILE} must hold a JSON object")
            settings.update(loaded)
            if settings.get("format") != layout.FORMAT_VERSION:
                raise RepositoryError(
                    f"{layout.CONFIG_FILE}: format {settings.get('format')!r} is not supported "
                    f"(this gitrecords reads format {layout.FORMAT_VERSION})"
                )
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
        tree = snap.tree if commit is None else _git.tree_of(self._git, commit)
        store_tree = _git.subtree(self._git, tree, settings["schemas"])
        key = (store_tree.id if store_tree is not None else None, self.allow_remote_refs)
        cached = self._store_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        schemas: dict[str, Any] = {}
        if store_tree is not None:
            for path, blob in _git.walk_blobs(self._git, store_tree):
                if path.endswith(".json"):
                    schemas[path] = parse_schema_file(_git.read_blob(self._git, blob), path)
        store = SchemaStore(schemas, settings["schemas"], allow_remote_refs=self.allow_remote_refs)
        self._store_cache = (key, store)
        return store

    def transaction(
        self, message: str | None = None, author: str | tuple[str, str] | None = None
    ) -> Transaction:
        """``with repo.transaction():`` makes every write inside one commit."""
        current = getattr(self._local, "transaction", None)
        if current is not None:
            return current
        return Transaction(self, message, author)

    @property
    def in_transaction(self) -> Transaction | None:
        return getattr(self._local, "transaction", None)

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
            return self._parsed.read(blob, limit, lambda: _git.read_blob(self._git, blob))
        except InvalidRecordError as err:
            where = f"record {record_id} ({self.path_for(record_id)}{self._written_in(record_id, blob)})"
            text = str(err)  # "record is not valid JSON: ...", or "NaN is not valid JSON ..."
            text = text.replace("record", where, 1) if text.startswith("record") else f"{where}: {text}"
            raise InvalidRecordError(text) from None

    def _written_in(self, record_id: uuid.UUID, blob: _git.Oid) -> str:
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
        tree = _git.subtree(self._git, _git.tree_of(self._git, self.tip()), self.records_dir)
        if tree is None:
            return
        records_dir = self.records_dir
        for path, blob in _git.walk_blobs(self._git, tree, records_dir + "/"):
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
        raw = _git.read_blob(self._git, blob)
        if len(raw) > 200 or layout.TOMBSTONE_KEY.encode() not in raw:
            return False
        try:
            return layout.is_tombstone(layout.loads(raw))
        except InvalidRecordError:
            return False

    def sync_index(self) -> None:
        self.index.sync(self.tip())

    def reindex(self) -> int:
        """Rebuild the revision and PID index from the branch; returns revisions indexed."""
        return self.index.rebuild()

    def lookup_pid(self, pid_type: str, value: str) -> uuid.UUID:
        self.sync_index()
        found = self.index.lookup_pid(pid_type, str(value))
        if found is None:
            raise NoResultFound(f"no record with PID {pid_type}:{value}")
        return found

    def next_integer_pid(self, pid_type: str) -> int:
        """The next free integer PID of ``pid_type`` (call while holding the write lock)."""
        self.sync_index()
        tx = self.in_transaction
        highest = self.index.max_integer_pid(pid_type)
        if tx is not None:
            highest = max(highest, tx.minted.get(pid_type, 0))
            tx.minted[pid_type] = highest + 1
        return highest + 1

    # -- schemas ---------------------------------------------------------

    def put_schema(
        self, path: str, schema: dict[str, Any], *, message: str | None = None, author: Any = None
    ) -> str:
        """Add or replace a schema in the store as one commit; returns its store path."""
        path = path.strip("/")
        prefix = self.config["schemas"] + "/"
        if path.startswith(prefix):
            path = path[len(prefix) :]
        if not path.endswith(".json") or ".." in path.split("/") or "\0" in path:
            raise SchemaError(f"schema path {path!r} must be a relative path ending in .json")
        data = schema_bytes(schema)
        store = SchemaStore({path: schema}, self.config["schemas"])
        problems = list(store.check_schemas())
        if problems:
            raise SchemaError(f"schema {path}: not a valid schema: {problems[0][1]}")
        with self._write_lock():
            for _ in range(MAX_ATTEMPTS):
                base = self.tip()
                tree = _git.tree_of(self._git, base)
                full = prefix + path
                blob = _git.create_blob(self._git, data)
                if _git.entry_id(tree, full) == blob:
                    return full
                self._check_worktree(base, {full: blob})
                new_tree = _git.build_tree(self._git, tree, {full: blob})
                author_sig, committer_sig = self._signatures(author)
                try:
                    self._commit(base, new_tree, author_sig, committer_sig, message or f"put schema {full}")
                except _git.RefMoved:
                    continue
                self._update_worktree(base, {full: blob})
                return full
        raise StaleRevisionError(f"{self.ref} kept moving; schema {path} was not written")

    # -- writing ---------------------------------------------------------

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        """Serialise local writers: a thread lock plus ``flock`` on a lock file."""
        with self._thread_lock:
            lock_path = self.git_dir / "gitrecords" / "write.lock"
            try:
                lock_path.parent.mkdir(exist_ok=True)
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                yield  # read-only repository: the compare-and-swap still protects us
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _signatures(self, author: Any) -> tuple[Any, Any]:
        name_email = parse_author(author) or self.author or self._config_author() or DEFAULT_AUTHOR
        author_sig = _git.signature(*name_email, _date_from_env("GIT_AUTHOR_DATE"))
        committer = (
            os.environ.get("GIT_COMMITTER_NAME") or name_email[0],
            os.environ.get("GIT_COMMITTER_EMAIL") or name_email[1],
        )
        committer_sig = _git.signature(*committer, _date_from_env("GIT_COMMITTER_DATE"))
        return author_sig, committer_sig

    def _config_author(self) -> tuple[str, str] | None:
        name = os.environ.get("GIT_AUTHOR_NAME")
        email = os.environ.get("GIT_AUTHOR_EMAIL")
        if name and email:
            return name, email
        try:
            config = self._git.config
            return config["user.name"], config["user.email"]
        except (KeyError, _git.GitError):
            return None

    def stage_or_write(
        self, change: Change, *, message: str | None = None, author: Any = None
    ) -> _git.Oid | None:
        """Stage ``change`` in the current transaction, or write it as one commit."""
        tx = self.in_transaction
        if tx is not None:
            self._check_staged(change)
            tx.stage(change)
            return None
        return self._write([change], message=message, author=author)

    def _check_staged(self, change: Change) -> None:
        tx = self.in_transaction
        assert tx is not None
        previous = tx.changes.get(change.record_id)
        if previous is not None:
            if change.create:
                raise RecordExistsError(f"record {change.record_id} already exists")
            if change.expected is not _MISSING and change.expected != previous.blob:
                raise StaleRevisionError(f"record {change.record_id} changed since it was read")
            change.expected = _MISSING
            return
        current = _git.entry_id(_git.tree_of(self._git, self.tip()), change.path)
        self._check_expectation(change, current)

    def _check_expectation(self, change: Change, current: _git.Oid | None) -> None:
        if change.create:
            if current is not None:
                raise RecordExistsError(f"record {change.record_id} already exists")
        elif change.expected is not _MISSING and current != change.expected:
            if change.expected is not None and current is None:
                raise NoResultFound(f"record {change.record_id} does not exist any more")
            raise StaleRevisionError(
                f"record {change.record_id} changed since it was read; read it again and retry"
            )

    def _write(
        self, changes: list[Change], *, message: str | None, author: Any, locked: bool = False
    ) -> _git.Oid | None:
        """Commit ``changes`` onto the branch (compare-and-swap, rebased on retry)."""
        with contextlib.nullcontext() if locked else self._write_lock():
            delay = 0.001
            for _ in range(MAX_ATTEMPTS):
                base = self.tip()
                tree = _git.tree_of(self._git, base)
                effective: dict[str, _git.Oid | None] = {}
                for change in changes:
                    current = _git.entry_id(tree, change.path)
                    self._check_expectation(change, current)
                    if current != change.blob:
                        effective[change.path] = change.blob
                if not effective:
                    return base
                live = [c for c in changes if c.path in effective]
                self._check_pids(base, live)
                self._check_worktree(base, effective)
                new_tree = _git.build_tree(self._git, tree, effective)
                author_sig, committer_sig = self._signatures(author)
                text = message or _message_for(live)
                text = text.rstrip("\n") + "\n" + _trailers(live)
                try:
                    commit = self._commit(base, new_tree, author_sig, committer_sig, text)
                except _git.RefMoved:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
                    continue
                facts = {str(c.blob): c.facts for c in live if c.blob is not None}
                self.index.sync(commit, facts)
                self._update_worktree(base, effective)
                return commit
        raise StaleRevisionError(f"{self.ref} kept moving under this write; nothing was written")

    def _commit(
        self, base: _git.Oid | None, tree: _git.Oid, author_sig: Any, committer_sig: Any, message: str
    ) -> _git.Oid:
        """Write the commit object, then move the branch from ``base`` to it (compare-and-swap).

        Durable mode: the objects are flushed with one ``syncfs`` before the ref
        moves, and the ref file and its folder are fsynced before this returns,
        so a write that returned survives a power cut and a crash leaves the
        branch at ``base`` or at the new commit, never pointing to a missing object.
        """
        _git.set_durable(False)
        commit = _git.create_commit(
            self._git, None, author_sig, committer_sig, message, tree, [] if base is None else [base]
        )
        if self.durable:
            _git.sync_filesystem(self.git_dir)
        _git.set_ref(self._git, self.ref, commit, base, message.split("\n", 1)[0])
        if self.durable:
            ref_file = self.git_dir / self.ref
            _git.fsync_path(ref_file)
            _git.fsync_path(ref_file.parent)
        return commit

    def _check_pids(self, base: _git.Oid | None, changes: list[Change]) -> None:
        if not any(c.facts[1] for c in changes):
            return
        self.index.sync(base)
        seen: dict[tuple[str, str], uuid.UUID] = {}
        for change in changes:
            for pid_type, value in change.facts[1].items():
                key = (pid_type, value)
                owner = seen.get(key) or self.index.lookup_pid(pid_type, value)
                if owner is not None and owner != change.record_id:
                    raise PIDError(
                        f"record {change.record_id}: PID {pid_type}:{value} is already used by record {owner}"
                    )
                seen[key] = change.record_id

    # -- working clones --------------------------------------------------

    def _checked_out(self) -> bool:
        return not self.bare and self._head_branch() == self.branch and self._git.workdir is not None

    def _check_worktree(self, base: _git.Oid | None, changes: dict[str, _git.Oid | None]) -> None:
        if not self._checked_out():
            return
        tree = _git.tree_of(self._git, base)
        index = self._git.index
        index.read()
        workdir = Path(self._git.workdir)
        for path in changes:
            committed = _git.entry_id(tree, path)
            entry = index[path] if path in index else None
            staged = entry.id if entry is not None else None
            if staged != committed:
                raise LocalChangesError(f"{path} has staged changes in {workdir}; commit or reset them first")
            file = workdir / path
            if file.exists():
                on_disk = _git.hash_file(file)
                if on_disk != committed:
                    raise LocalChangesError(
                        f"{path} has local edits in {workdir}; commit or restore them first"
                    )
            elif committed is not None:
                raise LocalChangesError(f"{path} was removed locally in {workdir}; restore it first")

    def _update_worktree(self, base: _git.Oid | None, changes: dict[str, _git.Oid | None]) -> None:
        if not self._checked_out():
            return
        index = self._git.index
        index.read()
        workdir = Path(self._git.workdir)
        for path, blob in changes.items():
            file = workdir / path
            if blob is None:
                with contextlib.suppress(FileNotFoundError):
                    file.unlink()
                if path in index:
                    index.remove(path)
                for parent in file.parents:
                    if parent == workdir:
                        break
                    with contextlib.suppress(OSError):
                        parent.rmdir()
            else:
                file.parent.mkdir(parents=True, exist_ok=True)
                temp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
                temp.write_bytes(_git.read_blob(self._git, blob))
                os.replace(temp, file)
                index.add(path)
        index.write()

    # -- hard delete -----------------------------------------------------

    def _forget_paths_in_worktree(self, paths: list[str]) -> None:
        """After a history rewrite, drop purged files from a clone's index and work tree."""
        if self.bare or self._git.workdir is None:
            return
        index = self._git.index
        index.read()
        workdir = Path(self._git.workdir)
        for path in paths:
            if path in index:
                index.remove(path)
            with contextlib.suppress(FileNotFoundError):
                (workdir / path).unlink()
        index.write()

    def _purge_log_commit(
        self, base: _git.Oid, record_ids: list[uuid.UUID], *, message: str | None, author: Any
    ) -> tuple[_git.Oid, dict[str, _git.Oid | None]]:
        """A commit on ``base`` adding the purged ids to purged.txt, so validation and replicas
        know of them; the hard delete moves the branch to it with the other refs, in one step.
        Returns the commit and the file it changes (for a working clone)."""
        tree = _git.tree_of(self._git, base)
        blob = _git.entry_id(tree, PURGED_FILE)
        known = set(_git.read_blob(self._git, blob).decode().split()) if blob is not None else set()
        known.update(str(i) for i in record_ids)
        new_blob = _git.create_blob(self._git, "".join(f"{i}\n" for i in sorted(known)).encode())
        new_tree = _git.build_tree(self._git, tree, {PURGED_FILE: new_blob})
        author_sig, committer_sig = self._signatures(author)
        if len(record_ids) == 1:
            text = message or f"hard delete record {record_ids[0]}"
        else:
            text = message or f"hard delete {len(record_ids)} records"
        text = (
            text.rstrip("\n")
            + "\n\nGitrecords-Operation: hard-delete\n"
            + "".join(f"Gitrecords-Record: {i}\n" for i in record_ids[:MAX_TRAILER_RECORDS])
        )
        commit = _git.create_commit(self._git, None, author_sig, committer_sig, text, new_tree, [base])
        return commit, {PURGED_FILE: new_blob}

    def import_records(
        self,
        items: Iterable[Any],
        *,
        message: str | None = None,
        author: Any = None,
        format_checker: Any = None,
        workers: int | None = None,
        progress: Any = None,
        source: str | None = None,
    ) -> Any:
        """Create many new records as ONE commit, through ``git fast-import``.

        ``items`` holds each record's data (a dict, or its JSON text as str or
        bytes), or ``(id, data)`` pairs. Every record is validated (in worker
        processes for large batches) and every problem of every record is
        reported in one :class:`~gitrecords.errors.BatchValidationError` before
        anything is written. Returns an ``ImportResult`` with the commit id and
        the record ids in input order. ``progress(count)`` is called as records
        are prepared.
        """
        from .bulk import import_records

        return import_records(
            self,
            items,
            message=message,
            author=author,
            format_checker=format_checker,
            workers=workers,
            progress=progress,
            source=source,
        )

    def hard_delete(
        self,
        record_ids: Iterable[uuid.UUID | str],
        *,
        message: str | None = None,
        author: Any = None,
        progress: Any = None,
    ) -> None:
        """Purge records from every commit, ref and object store (rewrites history)."""
        from .purge import purge

        if self.in_transaction is not None:
            raise GitRecordsError("a hard delete cannot run inside a transaction")
        ids = [layout.normalize_id(i) for i in record_ids]
        with self._write_lock():
            # local edits to a purged record's file would be lost: refuse, as every write does
            self._check_worktree(self.tip(), {self.path_for(i): None for i in ids})
            try:
                purge(self, ids, message=message, author=author, progress=progress)
            finally:
                self._parsed.clear()  # no copy of a purged record's data stays in memory


def _message_for(changes: list[Change]) -> str:
    operations = sorted({c.operation for c in changes})
    if len(changes) == 1:
        change = changes[0]
        return f"{change.operation} record {change.record_id}"
    if len(operations) == 1:
        return f"{operations[0]} {len(changes)} records"
    counts = ", ".join(f"{op} {sum(1 for c in changes if c.operation == op)}" for op in operations)
    return f"write {len(changes)} records ({counts})"


MAX_TRAILER_RECORDS = 50


def _trailers(changes: list[Change]) -> str:
    operations = sorted({c.operation for c in changes})
    lines = [f"Gitrecords-Operation: {' '.join(operations)}"]
    if len(changes) <= MAX_TRAILER_RECORDS:
        lines += [f"Gitrecords-Record: {c.record_id}" for c in changes]
    else:
        lines.append(f"Gitrecords-Records: {len(changes)}")
    return "\n" + "\n".join(lines) + "\n"


def _read_source_tree(root: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Files of a working tree like sample-repo/, placed where format 1 wants them."""
    if not root.is_dir():
        raise RepositoryError(f"{root}: not a directory")
    settings: dict[str, Any] = {}
    config_file = root / layout.CONFIG_FILE
    if config_file.exists():
        loaded = layout.loads(config_file.read_bytes(), what=str(config_file))
        if not isinstance(loaded, dict):
            raise RepositoryError(f"{config_file} must hold a JSON object")
        settings.update(loaded)
    records_dir = settings.get("records", layout.RECORDS_DIR)
    files: dict[str, bytes] = {}
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root).as_posix()
        if not file.is_file() or rel == layout.CONFIG_FILE or rel.split("/")[0] == ".git":
            continue
        data = file.read_bytes()
        if rel.startswith(records_dir + "/") and layout.is_record_file_name(file.name):
            record_id = uuid.UUID(file.name[:-5])
            try:
                record = layout.loads(data, what=f"{rel}")
            except InvalidRecordError as err:
                raise RepositoryError(str(err)) from None
            if not isinstance(record, dict):
                raise RepositoryError(f"{rel}: a record must be a JSON object")
            path = layout.path_for(record_id, records_dir)
            if path in files:
                raise RepositoryError(f"{rel}: record {record_id} appears twice")
            files[path] = layout.dumps(record)
        else:
            files[rel] = data
    return files, settings


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def record_facts(data: Any, repo: Repository) -> BlobFacts:
    return facts_from_data(data, repo.config.get("pids") or {})


TOMBSTONE_STATE = TOMBSTONE
