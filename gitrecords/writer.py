"""The write path: the one way the branch moves.

Every writer (a record write, a transaction, a bulk import, a hard delete, a
pull or merge, ``put_schema``) goes through :class:`WritePath`. It owns:

- the **write lock**: a thread lock plus ``flock`` on ``gitrecords/write.lock``
  (the kernel releases it when a writer dies, so a crash never blocks anyone);
- the **signatures** of new commits (``--author``, ``GIT_AUTHOR_*``, git config);
- the **durable compare-and-swap**: objects reach the disk (one ``syncfs``)
  before the ref moves, the ref moves only if it still names the commit the
  change was built on, and the ref file and its folders are fsynced before the
  write returns;
- **what happens after the branch moves**: a working clone's files follow, and
  every derived index subscribed with :meth:`WritePath.subscribe` catches up.
  Once the ref has moved the write has happened: a derived index that cannot
  catch up now (busy, locked) is logged, never raised, and catches up on the
  next read.

Record writes (:meth:`WritePath.write`) are rebuilt on the new tip when another
writer moved the branch, as long as the records they touch did not change, and
are checked there again: expectations, PIDs, purged ids, local edits.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import _git, layout
from .config import DEFAULT_LOCK_WAIT, PURGED_FILE, Purged, read_purged
from .errors import (
    GitRecordsError,
    NoResultFound,
    PIDError,
    RecordExistsError,
    RepositoryLockedError,
    StaleRevisionError,
)
from .index import LIVE, BlobFacts, RevisionIndex
from .worktree import WorkingClone

__all__ = [
    "DEFAULT_AUTHOR",
    "MAX_ATTEMPTS",
    "MAX_TRAILER_RECORDS",
    "Change",
    "DerivedIndex",
    "Transaction",
    "WritePath",
    "parse_author",
]

DEFAULT_AUTHOR = ("gitrecords", "gitrecords@localhost")
#: how often a write is rebuilt on a branch that keeps moving before it gives up
MAX_ATTEMPTS = 50
#: commit messages name at most this many records in trailers
MAX_TRAILER_RECORDS = 50

log = logging.getLogger("gitrecords")

_MISSING: Any = object()
_AUTHOR_RE = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>]*)>\s*$")

#: what a writer knows about the files it wrote: (record id, blob id) -> (state, PIDs)
Hints = Mapping[tuple[str, str], BlobFacts]


class DerivedIndex(Protocol):
    """Data derived from the branch (the revision/PID index, a search index): it subscribes to
    the write path and catches up whenever the branch moved, by any writer."""

    def catch_up(
        self,
        tip: _git.Oid | None,
        hints: Hints | None = None,
        since: tuple[_git.Oid | None, Mapping[str, _git.Oid | None]] | None = None,
    ) -> None:
        """Bring the index up to ``tip``; ``hints`` are facts the writer already knows, and
        ``since`` is ``(base, changes)``: the branch moved from ``base`` to ``tip`` and these
        files (path -> blob, None when removed) are all that differ between the two."""

    def rewritten(
        self, old_tip: _git.Oid | None, commit_map: Mapping[Any, Any], purged: list[uuid.UUID]
    ) -> None:
        """History was rewritten (a hard delete): commits in ``commit_map`` were replaced."""


#: descriptors a forked child closes at once: the lock files this process holds, the input of
#: a git fast-import it feeds
_HELD_LOCKS: set[int] = set()


def keep_out_of_children(fd: int) -> None:
    """Close ``fd`` in every process forked from now on (until :func:`release_in_children`)."""
    _HELD_LOCKS.add(fd)


def release_in_children(fd: int) -> None:
    _HELD_LOCKS.discard(fd)


def _close_inherited_locks() -> None:
    """In a forked child: close the copies of the parent's lock files (and pipes). The parent's
    lock stays held (it has its own descriptors), and dies with the parent, not with its
    children."""
    for fd in list(_HELD_LOCKS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


def _lock_holder(fd: int) -> str:
    """What the holder wrote into the lock file: ``pid N (command, started at ...)``."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"


def _wait_for_flock(fd: int, deadline: float, wait: float, git_dir: Path) -> None:
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise RepositoryLockedError(
                    f"waited {wait:g} s for the write lock of {git_dir}, held by {_lock_holder(fd)}; "
                    "wait longer (--wait SECONDS), or stop that process"
                ) from None
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _say_who_holds(fd: int) -> None:
    """Write ``pid N (command, started at ...)`` into the lock file for whoever waits next."""
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:3]))
    text = f"pid {os.getpid()} ({command or 'python'}, started at {_STARTED})\n".encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)


_STARTED = time.strftime("%Y-%m-%d %H:%M:%S %z")


def parse_author(author: str | tuple[str, str] | None) -> tuple[str, str] | None:
    """``"Name <email>"`` (or a ``(name, email)`` pair) as a pair; None stays None."""
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


@dataclass(slots=True)
class Change:
    """One record's new file content (blob None removes the file)."""

    record_id: uuid.UUID
    path: str
    blob: _git.Oid | None
    operation: str
    expected: Any = _MISSING  # blob id the record must still have at the tip
    create: bool = False  # the record must not exist (not even as a tombstone, nor purged)
    facts: BlobFacts = (LIVE, {})

    def frees(self, pid_type: str, value: str) -> bool:
        """Whether this change lets go of the PID ``pid_type:value`` (a tombstone keeps its PIDs)."""
        if self.blob is None:
            return True
        state, pids = self.facts
        return state == LIVE and pids.get(pid_type) != value


class _Hints(Mapping[tuple[str, str], BlobFacts]):
    """What a write tells the indexes of the files it wrote, ``(record id, blob) -> (state, PIDs)``,
    found through the write's own path -> blob mapping: the 100,000 changes of a bulk edit need
    no second dict of 100,000 keys, only the facts that are not "live, no PIDs"."""

    def __init__(self, changes: Iterable[Change], effective: Mapping[str, _git.Oid | None]) -> None:
        self.effective = effective
        self.folders: set[str] = set()
        self.facts: dict[str, BlobFacts] = {}
        self.count = 0
        for change in changes:
            if change.blob is None:
                continue
            self.count += 1
            self.folders.add(change.path.rsplit("/", 3)[0])
            if change.facts != _LIVE_NO_PIDS:
                self.facts[change.path] = change.facts

    def _path(self, key: tuple[str, str]) -> str | None:
        record_id, blob = key
        for folder in self.folders:
            try:
                path = layout.path_for(record_id, folder)
            except GitRecordsError:
                return None
            found = self.effective.get(path)
            if found is not None and str(found) == blob:
                return path
        return None

    def __getitem__(self, key: tuple[str, str]) -> BlobFacts:
        path = self._path(key)
        if path is None:
            raise KeyError(key)
        return self.facts.get(path, _LIVE_NO_PIDS)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for path, blob in self.effective.items():
            if blob is not None:
                yield path.rsplit("/", 1)[1].removesuffix(".json"), str(blob)

    def __len__(self) -> int:
        return self.count


_LIVE_NO_PIDS: BlobFacts = (LIVE, {})


class Transaction:
    """Several writes that become exactly one git commit, all or nothing.

    Transactions nest with savepoint semantics: when an inner ``with`` block
    raises, the writes staged inside it are dropped and the outer transaction
    goes on; the commit happens when the outermost block ends without error.
    ``on_commit(callback)`` asks to be told the commit id once it landed.
    """

    def __init__(self, writer: WritePath, message: str | None, author: Any) -> None:
        self.writer = writer
        self.message = message
        self.author = author
        self.changes: dict[uuid.UUID, Change] = {}
        self.minted: dict[str, int] = {}
        self.commit_id: _git.Oid | None = None
        self._lock: contextlib.ExitStack | None = None
        self._savepoints: list[tuple[dict[uuid.UUID, Change], dict[str, int], int]] = []
        self._callbacks: list[Callable[[_git.Oid | None], None]] = []

    def stage(self, change: Change) -> None:
        previous = self.changes.get(change.record_id)
        if previous is not None:
            # keep what the record had to be at the tip before this transaction
            change.expected = previous.expected
            change.create = previous.create
            if change.operation != previous.operation and previous.operation == "create":
                change.operation = "create"
        self.changes[change.record_id] = change

    def on_commit(self, callback: Callable[[_git.Oid | None], None]) -> None:
        """Call ``callback(commit id)`` when the transaction has committed (not on a rollback)."""
        self._callbacks.append(callback)

    def __enter__(self) -> Transaction:
        if self._lock is None:
            self._lock = contextlib.ExitStack()
            self._lock.enter_context(self.writer.lock())
            self.writer.local.transaction = self
        else:
            self._savepoints.append((dict(self.changes), dict(self.minted), len(self._callbacks)))
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._savepoints:
            changes, minted, callbacks = self._savepoints.pop()
            if exc_type is not None:  # roll back to the savepoint
                self.changes, self.minted = changes, minted
                del self._callbacks[callbacks:]
            return
        try:
            if exc_type is None and self.changes:
                self.commit_id = self.writer.write(
                    list(self.changes.values()), message=self.message, author=self.author, locked=True
                )
        finally:
            self.writer.local.transaction = None
            assert self._lock is not None
            self._lock.close()
            self._lock = None
        if exc_type is None:
            for callback in self._callbacks:
                callback(self.commit_id)


class WritePath:
    """The write path of one branch of one repository (see the module docstring)."""

    def __init__(
        self,
        git: Any,
        ref: str,
        *,
        durable: bool,
        author: tuple[str, str] | None,
        index: RevisionIndex,
        working_clone: WorkingClone,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        committer: tuple[str, str] | None = None,
    ) -> None:
        self.git = git
        self.git_dir = Path(git.path)
        self.ref = ref
        self.durable = durable
        self.author = author
        #: the committer of every commit, whoever its author (a server committing people's writes);
        #: None: ``GIT_COMMITTER_NAME``/``GIT_COMMITTER_EMAIL``, else the author
        self.committer = committer
        self.index = index
        self.working_clone = working_clone
        #: seconds :meth:`lock` waits for another writer
        self.lock_wait = lock_wait
        self.local = threading.local()
        self._thread_lock = threading.RLock()
        self._subscribers: list[DerivedIndex] = [index]
        self._purged_cache: tuple[Any, Purged] | None = None

    # -- subscribers -------------------------------------------------------

    def subscribe(self, derived: DerivedIndex) -> None:
        """Keep ``derived`` up to date with the branch from now on."""
        if derived not in self._subscribers:
            self._subscribers.append(derived)

    def catch_up(self, tip: _git.Oid | None) -> None:
        """Bring every derived index up to ``tip`` (for reads: errors are raised)."""
        for derived in self._subscribers:
            derived.catch_up(tip)

    def landed(
        self,
        old: _git.Oid | None,
        new: _git.Oid,
        changes: Mapping[str, _git.Oid | None] | None = None,
        hints: Hints | None = None,
    ) -> None:
        """What happens once the branch moved from ``old`` to ``new``: the working clone's files
        follow ``changes`` (path -> blob, all of old..new when None), then every derived index
        catches up. Nothing here raises: the write has happened."""
        try:
            if self.working_clone.checked_out():
                if changes is None:
                    changes = {
                        path: blob
                        for path, _old, blob in _git.changed_blobs(
                            self.git, _git.tree_of(self.git, old), _git.tree_of(self.git, new)
                        )
                    }
                self.working_clone.update(changes)
        except Exception:  # the files can be brought back with git; the commit stands
            log.warning("%s moved to %s but the working clone was not updated", self.ref, new, exc_info=True)
        for derived in self._subscribers:
            try:
                derived.catch_up(new, hints, None if changes is None else (old, changes))
            except Exception:
                log.warning("%r did not catch up with %s; the next read will", derived, new, exc_info=True)

    def rewritten(
        self, old_tip: _git.Oid | None, commit_map: Mapping[Any, Any], purged: list[uuid.UUID]
    ) -> None:
        """Tell every derived index that history was rewritten (a hard delete)."""
        for derived in self._subscribers:
            try:
                derived.rewritten(old_tip, commit_map, purged)
            except Exception:
                log.warning(
                    "%r did not follow the rewrite; the next read rebuilds it", derived, exc_info=True
                )

    # -- the lock and the signatures ----------------------------------------

    @property
    def transaction(self) -> Transaction | None:
        """The transaction this thread has open, if any."""
        return getattr(self.local, "transaction", None)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise local writers: a thread lock plus ``flock`` on ``gitrecords/write.lock``.

        Re-entrant within a thread. Waits at most :attr:`lock_wait` seconds, then raises
        :class:`RepositoryLockedError` naming the process that holds the lock (its pid, command
        and start time, which the holder writes into the lock file). Processes forked while the
        lock is held close their copy of it, so a child never keeps the lock after its parent dies.
        """
        if getattr(self.local, "lock_depth", 0):
            self.local.lock_depth += 1
            try:
                yield
            finally:
                self.local.lock_depth -= 1
            return
        deadline = time.monotonic() + self.lock_wait
        if not self._thread_lock.acquire(timeout=max(self.lock_wait, 0)):
            raise RepositoryLockedError(
                f"waited {self.lock_wait:g} s for the write lock of {self.git_dir}, "
                "held by another thread of this process"
            )
        try:
            lock_path = self.git_dir / "gitrecords" / "write.lock"
            try:
                lock_path.parent.mkdir(exist_ok=True)
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:
                fd = -1  # read-only repository: the compare-and-swap still protects us
            try:
                if fd >= 0:
                    _HELD_LOCKS.add(fd)
                    _wait_for_flock(fd, deadline, self.lock_wait, self.git_dir)
                    _say_who_holds(fd)
                self.local.lock_depth = 1
                try:
                    yield
                finally:
                    self.local.lock_depth = 0
            finally:
                if fd >= 0:
                    _HELD_LOCKS.discard(fd)
                    os.close(fd)
        finally:
            self._thread_lock.release()

    def identity(self, author: Any = None) -> tuple[str, str]:
        """(name, email) of ``author``, else of this repository's default author: the one it was
        opened with, ``GIT_AUTHOR_NAME``/``GIT_AUTHOR_EMAIL``, git config, gitrecords'."""
        return parse_author(author) or self.author or self._config_author() or DEFAULT_AUTHOR

    def signatures(self, author: Any = None) -> tuple[Any, Any]:
        """(author, committer) signatures for a new commit. The committer is :attr:`committer`
        when set, else ``GIT_COMMITTER_NAME``/``GIT_COMMITTER_EMAIL``, else the author."""
        name_email = self.identity(author)
        author_sig = _git.signature(*name_email, _date_from_env("GIT_AUTHOR_DATE"))
        committer = self.committer or (
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
            config = self.git.config
            return config["user.name"], config["user.email"]
        except (KeyError, _git.GitError):
            return None

    # -- moving the branch ---------------------------------------------------

    def tip(self) -> _git.Oid | None:
        return _git.tip(self.git, self.ref)

    def commit(
        self,
        base: _git.Oid | None,
        tree: _git.Oid,
        message: str,
        *,
        author: Any = None,
        signatures: tuple[Any, Any] | None = None,
        parents: list[_git.Oid] | None = None,
    ) -> _git.Oid:
        """Write a commit of ``tree`` and move the branch from ``base`` to it (compare-and-swap).

        ``parents`` defaults to ``[base]``. Raises :class:`gitrecords._git.RefMoved` when the
        branch is not at ``base`` any more; nothing refers to the new commit then.
        """
        _git.set_durable(False)  # one syncfs below instead of an fsync per object
        author_sig, committer_sig = signatures or self.signatures(author)
        if parents is None:
            parents = [] if base is None else [base]
        commit = _git.create_commit(self.git, None, author_sig, committer_sig, message, tree, parents)
        self.move(base, commit, message.split("\n", 1)[0])
        return commit

    def move(self, base: _git.Oid | None, target: _git.Oid, message: str) -> None:
        """Move the branch from ``base`` to the existing commit ``target`` (compare-and-swap).

        Durable mode: every object written so far reaches the disk (one ``syncfs``) before the
        ref moves, and the ref file and its folders are fsynced before this returns, so a write
        that returned survives a power cut, and a crash leaves the branch at ``base`` or at
        ``target``, never naming a missing object.
        """
        if self.durable:
            _git.sync_filesystem(self.git_dir)
        _git.set_ref(self.git, self.ref, target, base, message)
        if self.durable:
            self.sync_ref(self.ref, created=base is None)

    def sync_ref(self, ref: str, created: bool = False) -> None:
        """fsync a loose ref file and its folder; for a new ref, also the folders that may have
        been made for it (``refs/heads/a`` for a branch ``a/b``), up to ``refs/heads``."""
        ref_file = self.git_dir / ref
        if ref_file.exists():  # else the ref is packed (packed-refs is fsynced by libgit2's rename)
            _git.fsync_path(ref_file)
        folder = ref_file.parent
        top = self.git_dir / "refs"
        while folder.exists():
            _git.fsync_path(folder)
            if not created or folder.parent == top or folder == self.git_dir:
                break
            folder = folder.parent

    # -- record writes ---------------------------------------------------------

    def purged(self, tree: Any) -> Purged:
        """The hard-deleted ids and their reserved PIDs listed in ``tree``'s purged.txt."""
        blob = _git.entry_id(tree, PURGED_FILE)
        cached = self._purged_cache
        if cached is not None and cached[0] == blob:
            return cached[1]
        found = read_purged(_git.read_blob(self.git, blob) if blob is not None else b"")
        self._purged_cache = (blob, found)
        return found

    def check_expectation(self, change: Change, current: _git.Oid | None, tree: Any) -> None:
        """Refuse ``change`` if the record is not what the writer expected at the tip."""
        if change.create:
            if current is not None:
                raise RecordExistsError(f"record {change.record_id} already exists")
            if str(change.record_id) in self.purged(tree).ids:
                raise RecordExistsError(
                    f"record {change.record_id} was hard-deleted (it is listed in {PURGED_FILE}); "
                    "its id cannot be used again"
                )
        elif change.expected is not _MISSING and current != change.expected:
            if change.expected is not None and current is None:
                raise NoResultFound(f"record {change.record_id} does not exist any more")
            raise StaleRevisionError(
                f"record {change.record_id} changed since it was read; read it again and retry"
            )

    def check_staged(self, tx: Transaction, change: Change) -> None:
        """Check ``change`` against what ``tx`` staged before, or against the tip."""
        previous = tx.changes.get(change.record_id)
        if previous is not None:
            if change.create:
                raise RecordExistsError(f"record {change.record_id} already exists")
            if change.expected is not _MISSING and change.expected != previous.blob:
                raise StaleRevisionError(f"record {change.record_id} changed since it was read")
            change.expected = _MISSING
            return
        tree = _git.tree_of(self.git, self.tip())
        self.check_expectation(change, _git.entry_id(tree, change.path), tree)

    def check_pids(self, base: _git.Oid | None, tree: Any, changes: list[Change]) -> None:
        """Refuse PIDs that another record holds at ``base`` (and keeps after ``changes``), that
        two changed records both take, or that a hard-deleted record had."""
        if not any(c.facts[1] for c in changes if c.blob is not None and c.facts[0] == LIVE):
            return
        self.index.catch_up(base)
        changed = {c.record_id: c for c in changes}
        purged = self.purged(tree).pids
        seen: dict[tuple[str, str], uuid.UUID] = {}
        for change in changes:
            if change.blob is None or change.facts[0] != LIVE:
                continue
            for pid_type, value in change.facts[1].items():
                key = (pid_type, value)
                other = seen.get(key)
                if other is not None and other != change.record_id:
                    raise PIDError(
                        f"record {change.record_id}: PID {pid_type}:{value} is already used by record {other}"
                    )
                for owner in self.index.pid_owners(pid_type, value):
                    if owner == change.record_id:
                        continue
                    moving = changed.get(owner)
                    if moving is not None and moving.frees(pid_type, value):
                        continue
                    raise PIDError(
                        f"record {change.record_id}: PID {pid_type}:{value} is already used by record {owner}"
                    )
                if key in purged and purged[key] != str(change.record_id):
                    raise PIDError(
                        f"record {change.record_id}: PID {pid_type}:{value} belonged to hard-deleted "
                        f"record {purged[key]} and stays reserved"
                    )
                seen[key] = change.record_id

    def write(
        self,
        changes: list[Change],
        *,
        message: str | None,
        author: Any,
        locked: bool = False,
        trailers: Sequence[str] = (),
        prebuilt: tuple[_git.Oid, _git.Oid] | None = None,
    ) -> _git.Oid | None:
        """Commit ``changes`` onto the branch (compare-and-swap, rebuilt on the new tip on retry);
        returns the new tip (the old one when nothing changed). ``trailers`` are more
        ``Gitrecords-Name: value`` lines for the commit message (a bulk edit's query).
        ``prebuilt`` is ``(tree, new tree)``: the tree ``changes`` give on ``tree``, built
        already (by ``git fast-import``); it is used when the tip's tree is still ``tree``."""
        with contextlib.nullcontext() if locked else self.lock():
            delay = 0.001
            for _ in range(MAX_ATTEMPTS):
                base = self.tip()
                tree = _git.tree_of(self.git, base)
                effective: dict[str, _git.Oid | None] = {}
                for change in changes:
                    current = _git.entry_id(tree, change.path)
                    self.check_expectation(change, current, tree)
                    if current != change.blob:
                        effective[change.path] = change.blob
                if not effective:
                    return base
                live = changes  # every change has effect (a bulk edit): no second list of them
                if len(effective) != len(changes):
                    live = [c for c in changes if c.path in effective]
                self.check_pids(base, tree, live)
                self.working_clone.check(base, effective)
                if prebuilt is not None and tree is not None and tree.id == prebuilt[0]:
                    new_tree = prebuilt[1]
                else:
                    new_tree = _git.build_tree(self.git, tree, effective)
                text = (message or _message_for(live)).rstrip("\n") + "\n" + _trailers(live, trailers)
                try:
                    commit = self.commit(base, new_tree, text, author=author)
                except _git.RefMoved:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
                    continue
                hints = _Hints(live, effective)
                del changes, live  # (a bulk edit's 100,000 changes need not outlive the indexes' work)
                self.landed(base, commit, effective, hints)
                return commit
        raise StaleRevisionError(f"{self.ref} kept moving under this write; nothing was written")

    def write_files(self, files: Mapping[str, bytes], *, message: str, author: Any = None) -> _git.Oid | None:
        """Commit files that are not records (a schema, the configuration) onto the branch."""
        with self.lock():
            for _ in range(MAX_ATTEMPTS):
                base = self.tip()
                tree = _git.tree_of(self.git, base)
                changes = {path: _git.create_blob(self.git, data) for path, data in files.items()}
                changes = {p: b for p, b in changes.items() if _git.entry_id(tree, p) != b}
                if not changes:
                    return base
                self.working_clone.check(base, changes)
                new_tree = _git.build_tree(self.git, tree, changes)
                try:
                    commit = self.commit(base, new_tree, message, author=author)
                except _git.RefMoved:
                    continue
                self.landed(base, commit, changes)
                return commit
        raise StaleRevisionError(f"{self.ref} kept moving; {', '.join(files)} not written")


def _message_for(changes: list[Change]) -> str:
    operations = sorted({c.operation for c in changes})
    if len(changes) == 1:
        change = changes[0]
        return f"{change.operation} record {change.record_id}"
    if len(operations) == 1:
        return f"{operations[0]} {len(changes)} records"
    counts = ", ".join(f"{op} {sum(1 for c in changes if c.operation == op)}" for op in operations)
    return f"write {len(changes)} records ({counts})"


def _trailers(changes: list[Change], extra: Sequence[str] = ()) -> str:
    operations = sorted({c.operation for c in changes})
    lines = [f"Gitrecords-Operation: {' '.join(operations)}", *extra]
    if len(changes) <= MAX_TRAILER_RECORDS:
        lines += [f"Gitrecords-Record: {c.record_id}" for c in changes]
    else:
        lines.append(f"Gitrecords-Records: {len(changes)}")
    return "\n" + "\n".join(lines) + "\n"
