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

Durable single writes that meet while one of them flushes are committed together
(**group commit**, :mod:`gitrecords._groupcommit`): each keeps its own commit, author and
message, checked against the commit before it; the group is flushed once and published with
one compare-and-swap.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import _git, errors, layout
from ._groupcommit import REQUEST_TRAILER, Queue, applied_in
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
#: seconds a queued write sleeps at most before it looks at the lock again (a leader that
#: answers, or lets go of the lock, wakes it at once; one that dies does not)
WAKE_AT_LEAST = 0.05

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


#: the file bulk imports and bulk edits hold a shared ``flock`` on while they prepare their
#: records without the write lock (:func:`gitrecords.bulk.import_slot`)
IMPORT_SLOT = "imports.running"
_EXCLUDING = threading.local()


@contextlib.contextmanager
def imports_excluded(git_dir: Path, wait: float) -> Iterator[None]:
    """Wait, at most ``wait`` seconds, until no bulk import or bulk edit is preparing its records,
    and keep new ones from starting until the block ends (they wait): a history rewrite must not
    run beside an import built on a commit it rewrites away (the import's temporary ref kept the
    purged content reachable through the purge, or the import failed on its deleted base).
    Take it before the write lock, never inside it: an import ends by taking the write lock.
    Re-entrant within a thread."""
    if getattr(_EXCLUDING, "depth", 0):
        _EXCLUDING.depth += 1
        try:
            yield
        finally:
            _EXCLUDING.depth -= 1
        return
    fd = open_lock_file(git_dir, IMPORT_SLOT)
    if fd < 0:  # a read-only repository: nothing imports into it
        yield
        return
    _HELD_LOCKS.add(fd)
    try:
        _wait_for_flock(
            fd,
            time.monotonic() + wait,
            lambda: (
                f"waited {wait:g} s for the bulk imports or bulk edits running in {git_dir} to "
                "finish: a hard delete does not run beside them; try again when they end"
            ),
        )
        _EXCLUDING.depth = 1
        try:
            yield
        finally:
            _EXCLUDING.depth = 0
    finally:
        _HELD_LOCKS.discard(fd)
        os.close(fd)


def open_lock_file(git_dir: Path, name: str) -> int:
    """A descriptor of ``<git dir>/gitrecords/<name>`` to ``flock`` (made if missing); -1 when
    it cannot be opened (a read-only repository)."""
    path = git_dir / "gitrecords" / name
    try:
        path.parent.mkdir(exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return -1


def _lock_holder(fd: int) -> str:
    """What the holder wrote into the lock file: ``pid N (command, started at ...)``."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip().split("\n", 1)[0].strip()
    except OSError:
        text = ""
    return text or "another process"


def _wait_for_flock(fd: int, deadline: float, refused: Callable[[], str]) -> None:
    """Take an exclusive ``flock`` on ``fd``, waiting until ``deadline`` at most; then raise
    :class:`RepositoryLockedError` saying ``refused()``."""
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise RepositoryLockedError(refused()) from None
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _say_who_holds(fd: int) -> None:
    """Write ``pid N (command, started at ...)`` into the lock file for whoever waits next."""
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:3]))
    text = f"pid {os.getpid()} ({command or 'python'}, started at {_STARTED})\n".encode()
    with contextlib.suppress(OSError):
        if len(text) < _HOLDER_BYTES:
            # padded to a fixed size: no truncation, which costs a journaled metadata change
            # on every lock (milliseconds on a busy ext4)
            os.pwrite(fd, text.ljust(_HOLDER_BYTES), 0)
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, text, 0)


#: bytes the holder's line is padded to in the lock file
_HOLDER_BYTES = 512


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

    def __init__(
        self, changes: Iterable[Change], effective: Mapping[str, _git.Oid | None], written: Any = None
    ) -> None:
        self.effective = effective
        #: the old and new file of each changed record, as the writer had them
        #: (:class:`gitrecords._written.WrittenFiles`), or None
        self.written = written
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
        check_message(message)
        self.writer = writer
        self.message = message
        self.author = author
        self.changes: dict[uuid.UUID, Change] = {}
        #: the last live file staged for each record (an undelete after a delete in the same
        #: transaction brings that back, not the last one committed)
        self.live_blobs: dict[uuid.UUID, _git.Oid] = {}
        self.minted: dict[str, int] = {}
        #: per PID type: the highest integer the branch held when this transaction first minted
        #: one (the lock is held: it cannot change), and the highest one its staged records hold
        self.pid_floor: dict[str, int] = {}
        self.staged_high: dict[str, int] = {}
        self.commit_id: _git.Oid | None = None
        self._lock: contextlib.ExitStack | None = None
        self._savepoints: list[
            tuple[
                dict[uuid.UUID, Change], dict[uuid.UUID, _git.Oid], dict[str, int], dict[str, int], int, int
            ]
        ] = []
        self._callbacks: list[Callable[[_git.Oid | None], None]] = []
        #: called, the latest first, when the block they were registered in rolls back
        self._rollbacks: list[Callable[[], None]] = []

    def stage(self, change: Change) -> None:
        previous = self.changes.get(change.record_id)
        if previous is not None:
            # keep what the record had to be at the tip before this transaction
            change.expected = previous.expected
            change.create = previous.create
            if change.operation != previous.operation and previous.operation == "create":
                change.operation = "create"
        self.changes[change.record_id] = change
        if change.blob is not None and change.facts[0] == LIVE:
            self.live_blobs[change.record_id] = change.blob
        if change.blob is not None:  # a number a staged record holds is taken, by hand or minted
            for pid_type, value in change.facts[1].items():
                if value.isascii() and value.isdigit():
                    self.staged_high[pid_type] = max(self.staged_high.get(pid_type, 0), int(value))

    def on_commit(self, callback: Callable[[_git.Oid | None], None]) -> None:
        """Call ``callback(commit id)`` when the transaction has committed (not on a rollback)."""
        self._callbacks.append(callback)

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` if the block this is called in (the transaction, or a savepoint in
        it) rolls back, or if the transaction's commit fails: a record object staged in it
        takes back the identity it had (as a database session expires its objects)."""
        self._rollbacks.append(callback)

    def _roll_back(self, to: int) -> None:
        undone, self._rollbacks = self._rollbacks[to:], self._rollbacks[:to]
        for callback in reversed(undone):
            callback()

    def __enter__(self) -> Transaction:
        if self._lock is None:
            self._lock = contextlib.ExitStack()
            self._lock.enter_context(self.writer.lock())
            self.writer.local.transaction = self
        else:
            self._savepoints.append(
                (
                    dict(self.changes),
                    dict(self.live_blobs),
                    dict(self.minted),
                    dict(self.staged_high),
                    len(self._callbacks),
                    len(self._rollbacks),
                )
            )
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._savepoints:
            changes, live_blobs, minted, staged_high, callbacks, rollbacks = self._savepoints.pop()
            if exc_type is not None:  # roll back to the savepoint
                self.changes, self.live_blobs, self.minted = changes, live_blobs, minted
                self.staged_high = staged_high
                del self._callbacks[callbacks:]
                self._roll_back(rollbacks)
            return
        landed = False
        try:
            if exc_type is None and self.changes:
                self.commit_id = self.writer.write(
                    list(self.changes.values()), message=self.message, author=self.author, locked=True
                )
            landed = exc_type is None
        finally:
            self.writer.local.transaction = None
            assert self._lock is not None
            self._lock.close()
            self._lock = None
            if not landed:
                self._roll_back(0)
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
        #: group commit (see :meth:`write`): durable record writes that find the lock busy queue
        #: up and are committed, flushed and published together by the lock's holder
        self.group_commit = True
        self._queue = Queue(self.git_dir, ref)
        self._queue_usable: bool | None = None

    # -- subscribers -------------------------------------------------------

    def compares_files(self) -> bool:
        """Whether a derived index compares the old and new files of a write's records (then
        a bulk writer keeps them for it: see :meth:`write`'s ``written``)."""
        return any(getattr(derived, "compares_files", False) for derived in self._subscribers)

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
            # -1 in a read-only repository: the compare-and-swap still protects us
            fd = open_lock_file(self.git_dir, "write.lock")
            try:
                if fd >= 0:
                    _HELD_LOCKS.add(fd)
                    _wait_for_flock(
                        fd,
                        deadline,
                        lambda: (
                            f"waited {self.lock_wait:g} s for the write lock of {self.git_dir}, held by "
                            f"{_lock_holder(fd)}; wait longer (--wait SECONDS), or stop that process"
                        ),
                    )
                    _say_who_holds(fd)
                self.local.lock_depth = 1
                self.local.lock_fd = fd
                try:
                    yield
                finally:
                    self.local.lock_depth = 0
                    self.local.lock_fd = -1
            finally:
                if fd >= 0:
                    _HELD_LOCKS.discard(fd)
                    os.close(fd)
        finally:
            self._thread_lock.release()
        # group commit: queued writes waited for this lock; those of writers that died go
        with contextlib.suppress(OSError):
            self._queue.sweep()
        self._queue.wake_waiting()

    def lock_fds(self) -> tuple[int, ...]:
        """The descriptor of the write lock this thread holds (none when it holds none), for a
        git process that changes the object store under the lock: given to it (``pass_fds``),
        the lock stays held while that process or any process it starts lives, so a ``git gc``
        that outlives a killed ``gitrecords gc`` still keeps writers and hard deletes out."""
        fd = getattr(self.local, "lock_fd", -1) if getattr(self.local, "lock_depth", 0) else -1
        return (fd,) if fd >= 0 else ()

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
        check_message(message)
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
        written: Any = None,
    ) -> _git.Oid | None:
        """Commit ``changes`` onto the branch (compare-and-swap, rebuilt on the new tip on retry);
        returns the new tip (the old one when nothing changed). ``trailers`` are more
        ``Gitrecords-Name: value`` lines for the commit message (a bulk edit's query).
        ``prebuilt`` is ``(tree, new tree)``: the tree ``changes`` give on ``tree``, built
        already (by ``git fast-import``); it is used when the tip's tree is still ``tree``.
        ``written`` (:class:`gitrecords._written.WrittenFiles`) holds the old and new file of
        changed records, the old one the blob each change expects: the derived indexes read
        them there rather than out of the packs.

        **Group commit.** A durable write of a bare repository that is not part of a transaction
        (nor of a bulk edit) and finds the write lock busy does not wait for it: it queues its
        change (:mod:`gitrecords._groupcommit`) and waits for the answer of the lock's holder,
        which commits every queued write on top of its own, each one checked as here against
        the commit before it, with its own author, committer and message, then flushes once
        and moves the branch once (:meth:`_lead`). What this method returns or raises is the
        same either way."""
        check_message(message)
        if self._groups(locked, prebuilt):
            return self._write_grouped(changes, message=message, author=author, trailers=trailers)
        with contextlib.nullcontext() if locked else self.lock():
            delay = 0.001
            for _ in range(MAX_ATTEMPTS):
                base = self.tip()
                tree = _git.tree_of(self.git, base)
                effective = self._effective(tree, changes)
                if not effective:
                    return base
                live = _live(changes, effective)
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
                hints = _Hints(live, effective, written)
                del changes, live  # (a bulk edit's 100,000 changes need not outlive the indexes' work)
                self.landed(base, commit, effective, hints)
                return commit
        raise StaleRevisionError(f"{self.ref} kept moving under this write; nothing was written")

    def _effective(self, tree: Any, changes: Iterable[Change]) -> dict[str, _git.Oid | None]:
        """The files ``changes`` change in ``tree`` (path -> blob, None: removed), each change
        checked against the file it finds there (see :meth:`check_expectation`)."""
        effective: dict[str, _git.Oid | None] = {}
        for change in changes:
            current = _git.entry_id(tree, change.path)
            self.check_expectation(change, current, tree)
            if current != change.blob:
                effective[change.path] = change.blob
        return effective

    # -- group commit ------------------------------------------------------------------------

    def _groups(self, locked: bool, prebuilt: Any) -> bool:
        """Whether a write goes through the queue: durable, alone (no transaction, no prebuilt
        tree, the lock not held by this thread) and in a bare repository (a working clone's
        files follow each write in order)."""
        if not (self.group_commit and self.durable) or locked or prebuilt is not None:
            return False
        if getattr(self.local, "lock_depth", 0) or self.working_clone.checked_out():
            return False
        if self._queue_usable is None:
            self._queue_usable = self._queue.usable()
        return self._queue_usable

    @contextlib.contextmanager
    def _try_lock(self) -> Iterator[bool]:
        """The write lock if it is free now (True), else False at once."""
        if not self._thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            fd = os.open(
                self.git_dir / "gitrecords" / "write.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
            try:
                _HELD_LOCKS.add(fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    held = False
                else:
                    held = True
                    _say_who_holds(fd)
                    self.local.lock_depth = 1
                if not held:
                    yield False
                    return
                try:
                    yield True
                finally:
                    self.local.lock_depth = 0
            finally:
                _HELD_LOCKS.discard(fd)
                os.close(fd)
        finally:
            self._thread_lock.release()

    def _write_grouped(
        self, changes: list[Change], *, message: str | None, author: Any, trailers: Sequence[str]
    ) -> _git.Oid | None:
        own = _Pending(uuid.uuid4().hex, changes, message, list(trailers), self.signatures(author))
        group: _Group | None = None
        with self._try_lock() as held:
            if held:
                group = self._lead(own)
        if group is not None:
            self._queue.wake_waiting()  # the lock is free: the next group may start meanwhile
            return self._finish(group)
        # another writer holds the lock: queue this write and wait for its answer
        tip = self.tip()
        request = {
            "id": own.id,
            "pid": os.getpid(),
            "seen": None if tip is None else str(tip),
            "changes": [_change_to_json(c) for c in changes],
            "message": message,
            "trailers": own.trailers,
            "author": _git.signature_fields(own.signatures[0]),
            "committer": _git.signature_fields(own.signatures[1]),
        }
        queue = self._queue
        name = queue.enqueue(request)
        answered = False
        try:
            deadline = time.monotonic() + self.lock_wait
            withdrawable = True
            wait = 0.0
            while True:
                result = queue.receive(own.id, wait)
                if result is not None:
                    answered = True
                    return self._answered(own, result)
                outcome: Any = _MISSING
                group = None
                with self._try_lock() as held:
                    if held:
                        outcome, group = self._lead_waiting(own, request)
                if held:
                    queue.wake_waiting()
                    if group is not None:
                        # this writer's own answer, if its request was in the group, comes by the FIFO
                        led = self._finish(group)
                        if group.own is not None:
                            return led
                    if outcome is not _MISSING:
                        return outcome
                    wait = 0.0
                    continue
                if withdrawable and time.monotonic() >= deadline:
                    if queue.withdraw(name):
                        raise RepositoryLockedError(
                            f"waited {self.lock_wait:g} s for the write lock of {self.git_dir}, held by "
                            f"{self._holder()}; wait longer (--wait SECONDS), or stop that process"
                        )
                    withdrawable = False  # a leader took it: its answer comes
                # the leader answers or wakes us; one that dies does not: look again now and then
                wait = min(WAKE_AT_LEAST, max(deadline - time.monotonic(), 0.001))
        finally:
            if not answered:  # interrupted (or refused): take the request back if no leader has it
                queue.withdraw(name)
            queue.leave(request)

    def _holder(self) -> str:
        try:
            fd = os.open(self.git_dir / "gitrecords" / "write.lock", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return "another process"
        try:
            return _lock_holder(fd)
        finally:
            os.close(fd)

    def _lead_waiting(self, own: _Pending, request: dict[str, Any]) -> tuple[Any, _Group | None]:
        """A queued writer got the lock: (its answer, None) if it came meanwhile; (_MISSING, the
        group to finish) when its request is still queued (it leads, its answer comes by the
        FIFO; a leader still answering may hold it); and when its request vanished unanswered
        (its leader died between deleting the file and answering): its commit if the branch has
        it, else the group of its write done now."""
        queue = self._queue
        result = queue.receive(own.id, 0)
        if result is not None:
            return self._answered(own, result), None
        if queue.queued(own.id):
            return _MISSING, self._lead(None)
        tip = self.tip()
        commit = applied_in(self.git, tip, request)
        if commit is not None:
            return self._answered(own, {"commit": str(commit), "published": str(tip)}), None
        return _MISSING, self._lead(own)

    def _answered(self, own: _Pending, result: dict[str, Any]) -> _git.Oid | None:
        """What the leader's answer means for this writer: the commit, or the error raised."""
        if "error" in result:
            found = getattr(errors, result["error"], None)
            if not (isinstance(found, type) and issubclass(found, GitRecordsError)):
                found = GitRecordsError
            raise found(result["message"])
        if "noop" in result:
            return None if result["noop"] is None else _git.oid_from_hex(result["noop"])
        commit = _git.oid_from_hex(result["commit"])
        published = _git.oid_from_hex(result["published"])
        hints = {(str(c.record_id), str(c.blob)): c.facts for c in own.changes if c.blob is not None}
        for derived in self._subscribers:  # the leader's indexes caught up; this process's may not have
            try:
                derived.catch_up(published, hints)
            except Exception:
                log.warning(
                    "%r did not catch up with %s; the next read will", derived, published, exc_info=True
                )
        return commit

    def _lead(self, own: _Pending | None) -> _Group:
        """Holding the lock: commit ``own`` (this writer's write, if any) and every queued
        request in arrival order, and publish them with one flush and one compare-and-swap.
        :meth:`_finish` (after the lock is let go) does the rest."""
        queue = self._queue
        pending: list[_Pending] = []
        tip = self.tip()
        answers: list[tuple[_Pending, dict[str, Any]]] = []
        for name, request in queue.left():  # taken by a leader that died: committed, or not?
            item = _pending_from(name, request)
            commit = applied_in(self.git, tip, request)
            if commit is not None:
                answers.append((item, {"commit": str(commit), "published": str(tip)}))
            else:
                pending.append(item)
        if own is not None:
            pending.append(own)
        pending.extend(_pending_from(name, request) for name, request in queue.claim())
        try:
            group = self._commit_group(pending)
        except BaseException:
            # nothing of this group was published unless the branch says so: put the rest back
            tip = self.tip()
            for item in pending:
                if item.request is not None and item.name is not None:
                    if applied_in(self.git, tip, item.request) is None:
                        queue.unclaim(item.name)
            raise
        group.own = own
        group.answers = answers
        return group

    def _finish(self, group: _Group) -> _git.Oid | None:
        """After the lock is let go: the derived indexes catch up once for the whole group,
        then every queued writer gets its answer (each request's file is deleted first, so no
        request is answered twice). Returns (or raises) the leader's own outcome."""
        if group.last is not None:
            self.landed(group.first_base, group.last, group.changed, group.hints)
        answers = list(group.answers)
        for item in group.pending:
            if item.request is None:
                continue
            kind, value = group.outcomes[item.id]
            if kind == "error":
                result = {"error": type(value).__name__, "message": str(value)}
            elif kind == "noop":
                result = {"noop": None if value is None else str(value)}
            else:
                result = {"commit": str(value), "published": str(group.last)}
            answers.append((item, result))
        queue = self._queue
        for item, result in answers:
            assert item.request is not None and item.name is not None
            try:
                queue.done(item.name)
            except OSError:  # answered anyway; a later leader would only find its commit
                log.warning("request %s: its file was not deleted", item.id, exc_info=True)
            try:
                queue.answer(item.request, result)
            except OSError:  # its writer looks for its commit itself (see _lead_waiting)
                log.warning("request %s was not answered", item.id, exc_info=True)
        with contextlib.suppress(OSError):
            queue.sweep()
        if group.own is None:
            return None
        kind, value = group.outcomes[group.own.id]
        if kind == "error":
            raise value
        return value

    def _commit_group(self, pending: list[_Pending]) -> _Group:
        """Commit ``pending`` in order, each on the one before, and publish them; the outcome of
        each: ("commit", commit), ("noop", tip) or ("error", exception)."""
        group = _Group(pending)
        todo = pending
        while todo:
            delay = 0.001
            for _ in range(MAX_ATTEMPTS):
                base = self.tip()
                count, chained, head, changed, hints, subject = self._chain(base, todo)
                if head == base:
                    break
                try:
                    self.move(base, head, subject)
                except _git.RefMoved:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
                    continue
                if group.last is None:
                    group.first_base = base
                group.last = head
                group.changed.update(changed)
                group.hints.update(hints)
                break
            else:
                error = StaleRevisionError(f"{self.ref} kept moving under this write; nothing was written")
                group.outcomes.update((item.id, ("error", error)) for item in todo)
                break
            group.outcomes.update(chained)
            todo = todo[count:]
        return group

    def _chain(
        self, base: _git.Oid | None, todo: list[_Pending]
    ) -> tuple[
        int, dict[str, tuple[str, Any, Any]], Any, dict[str, Any], dict[tuple[str, str], BlobFacts], str
    ]:
        """Check and commit the writes of ``todo`` one on the other from ``base``, as
        :meth:`write` does one; stops before a write with PIDs once a commit is chained (PIDs
        are checked against the index, which knows published commits only). Returns how many
        were handled, their outcomes, the last commit, the files changed, the hints, and the
        subject for the reflog."""
        tree = _git.tree_of(self.git, base)
        head = base
        outcomes: dict[str, tuple[str, Any]] = {}
        changed: dict[str, _git.Oid | None] = {}
        hints: dict[tuple[str, str], BlobFacts] = {}
        subjects: list[str] = []
        count = 0
        for item in todo:
            try:
                effective = self._effective(tree, item.changes)
                if not effective:
                    outcomes[item.id] = ("noop", head)
                    count += 1
                    continue
                live = _live(item.changes, effective)
                has_pids = any(c.facts[1] for c in live if c.blob is not None and c.facts[0] == LIVE)
                if has_pids and head != base:
                    break
                self.check_pids(head, tree, live)
                self.working_clone.check(head, effective)
            except GitRecordsError as err:
                outcomes[item.id] = ("error", err)
                count += 1
                continue
            new_tree = _git.build_tree(self.git, tree, effective)
            extra = [*item.trailers]
            if item.request is not None:
                extra.append(f"{REQUEST_TRAILER}: {item.id}")
            text = (item.message or _message_for(live)).rstrip("\n") + "\n" + _trailers(live, extra)
            _git.set_durable(False)  # one syncfs for the whole group
            parents = [] if head is None else [head]
            head = _git.create_commit(self.git, None, *item.signatures, text, new_tree, parents)
            tree = _git.tree_of(self.git, head)
            outcomes[item.id] = ("commit", head)
            changed.update(effective)
            hints.update({(str(c.record_id), str(c.blob)): c.facts for c in live if c.blob is not None})
            subjects.append(text.split("\n", 1)[0])
            count += 1
        subject = subjects[0] if len(subjects) == 1 else f"group commit of {len(subjects)} writes"
        return count, outcomes, head, changed, hints, subject

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


def check_message(message: str | None) -> None:
    """Refuse a commit message git cannot store (a NUL character ends a C string: libgit2 refuses
    it, and other tools would cut the message there), before anything is written."""
    if message is not None and "\x00" in message:
        raise GitRecordsError("commit message: it contains a NUL character, which git cannot store")


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


@dataclass
class _Pending:
    """One write of a group: the leader's own (``request`` None) or a queued request."""

    id: str
    changes: list[Change]
    message: str | None
    trailers: list[str]
    signatures: tuple[Any, Any]
    request: dict[str, Any] | None = None
    name: str | None = None  # the request's claimed file


@dataclass
class _Group:
    """What a leader published (see :meth:`WritePath._lead`) and has still to do."""

    pending: list[_Pending]
    outcomes: dict[str, tuple[str, Any]] = field(default_factory=dict)
    first_base: _git.Oid | None = None
    last: _git.Oid | None = None
    changed: dict[str, _git.Oid | None] = field(default_factory=dict)
    hints: dict[tuple[str, str], BlobFacts] = field(default_factory=dict)
    own: _Pending | None = None
    answers: list[tuple[_Pending, dict[str, Any]]] = field(default_factory=list)


def _live(changes: list[Change], effective: Mapping[str, _git.Oid | None]) -> list[Change]:
    """The ``changes`` that change a file (see :meth:`WritePath._effective`); all of them, with
    no second list, when every one does (a bulk edit's)."""
    if len(effective) == len(changes):
        return changes
    return [c for c in changes if c.path in effective]


def _change_to_json(change: Change) -> dict[str, Any]:
    found: dict[str, Any] = {
        "record_id": str(change.record_id),
        "path": change.path,
        "blob": None if change.blob is None else str(change.blob),
        "operation": change.operation,
        "create": change.create,
        "facts": [change.facts[0], change.facts[1]],
    }
    if change.expected is not _MISSING:
        found["expected"] = None if change.expected is None else str(change.expected)
    return found


def _change_from_json(found: dict[str, Any]) -> Change:
    change = Change(
        uuid.UUID(found["record_id"]),
        found["path"],
        None if found["blob"] is None else _git.oid_from_hex(found["blob"]),
        found["operation"],
        create=found["create"],
        facts=(found["facts"][0], dict(found["facts"][1])),
    )
    if "expected" in found:
        change.expected = None if found["expected"] is None else _git.oid_from_hex(found["expected"])
    return change


def _pending_from(name: str, request: dict[str, Any]) -> _Pending:
    author, committer = request["author"], request["committer"]
    return _Pending(
        request["id"],
        [_change_from_json(c) for c in request["changes"]],
        request["message"],
        list(request["trailers"]),
        (
            _git.signature(*author[:2], (author[2], author[3])),
            _git.signature(*committer[:2], (committer[2], committer[3])),
        ),
        request,
        name,
    )
