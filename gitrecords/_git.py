"""The one module that talks to pygit2: blobs, trees, commits, refs, walks."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pygit2
from pygit2.enums import FileMode, ObjectType, RepositoryOpenFlag, SortMode

from .errors import RepositoryError, RepositoryLockedError

Oid = pygit2.Oid
GitError = pygit2.GitError

# libgit2 caches only trees under 4 KiB by default; a fan-out tree of 256 entries is ~10 KiB,
# so every record lookup would parse the same two trees again (2x slower reads)
pygit2.settings.cache_object_limit(ObjectType.TREE, 1024 * 1024)
pygit2.settings.cache_object_limit(ObjectType.COMMIT, 64 * 1024)
#: libgit2 maps pack files in windows of 1 GiB, up to 8 GiB in all, and keeps them: reading
#: every record of a million (a search index build, an import's catch-up) left the whole 500 MB
#: pack resident in the process. Smaller windows and a bound keep that part of its memory flat;
#: a read that misses the mapped windows maps another (a system call, no copy). Set only while
#: libgit2's defaults stand, and before the first pack is mapped (later settings are ignored).
MWINDOW_SIZE = 32 * 1024 * 1024
MWINDOW_MAPPED_LIMIT = 128 * 1024 * 1024
if pygit2.settings.mwindow_mapped_limit == 8 * 1024**3 and pygit2.settings.mwindow_size == 1024**3:
    pygit2.settings.mwindow_size = MWINDOW_SIZE
    pygit2.settings.mwindow_mapped_limit = MWINDOW_MAPPED_LIMIT

#: while a catch-up reads two versions of many records (:func:`narrow_pack_windows`)
NARROW_WINDOW_SIZE = 4 * 1024 * 1024
NARROW_MAPPED_LIMIT = 32 * 1024 * 1024
_narrow_lock = threading.Lock()
_narrowed = 0


@contextlib.contextmanager
def narrow_pack_windows() -> Iterator[None]:
    """Meanwhile, map pack files in small windows and at most :data:`NARROW_MAPPED_LIMIT` of
    them (process-wide; nested and concurrent uses share one narrowing, undone by the last).

    For reads that jump all over the packs and would otherwise keep up to the usual limit of
    them resident (a bulk edit's catch-up reading each record's old and new file); a read that
    misses the mapped windows maps another. Left alone when the settings are not ours."""
    global _narrowed
    with _narrow_lock:
        ours = _narrowed > 0 or (
            pygit2.settings.mwindow_size == MWINDOW_SIZE
            and pygit2.settings.mwindow_mapped_limit == MWINDOW_MAPPED_LIMIT
        )
        if ours:
            if _narrowed == 0:
                pygit2.settings.mwindow_size = NARROW_WINDOW_SIZE
                pygit2.settings.mwindow_mapped_limit = NARROW_MAPPED_LIMIT
            _narrowed += 1
    try:
        yield
    finally:
        if ours:
            with _narrow_lock:
                _narrowed -= 1
                if _narrowed == 0:
                    pygit2.settings.mwindow_size = MWINDOW_SIZE
                    pygit2.settings.mwindow_mapped_limit = MWINDOW_MAPPED_LIMIT


#: messages libgit2 uses when a ref moved under a compare-and-swap
_MOVED = ("current tip is not the first parent", "old reference value does not match")
_LOCKED = ("failed to lock", "locked")
#: seconds a write waits for a ref lock file held by another writer before calling it stale
#: (git waits 100 ms, core.filesRefLockTimeout; a gitrecords writer may be fsyncing)
REF_LOCK_WAIT = 0.5

T = TypeVar("T")


class RefMoved(Exception):
    """The branch tip is no longer the expected parent (internal)."""


@dataclass(frozen=True)
class CommitInfo:
    id: str
    author_name: str
    author_email: str
    time: datetime
    message: str


def valid_branch_name(name: str) -> bool:
    """Whether git takes ``name`` as a branch name (``refs/heads/<name>``)."""
    return bool(pygit2.reference_is_valid_name(f"refs/heads/{name}"))


def open_repository(
    path: str | os.PathLike[str], from_env: bool = False, *, allow_shallow: bool = False
) -> pygit2.Repository:
    """Open the git repository at ``path``; refuse one gitrecords cannot read whole.

    Raises :class:`RepositoryError` saying why: not a git repository; owned by
    another user (libgit2's ``safe.directory`` check, with the command that
    trusts it); a partial clone (``git clone --filter``), whose missing blobs
    libgit2 cannot fetch; a shallow clone (``git clone --depth``), whose
    revision numbers would not be the server's, unless ``allow_shallow`` (for
    readers that never count revisions, as ``validate`` in a CI checkout). The
    last two name the git commands that make the clone complete.
    """
    try:
        if from_env:
            repo = pygit2.Repository(str(path), RepositoryOpenFlag.FROM_ENV)
        else:
            repo = pygit2.Repository(str(path), RepositoryOpenFlag.NO_SEARCH)
    except (GitError, KeyError) as err:
        raise RepositoryError(_open_error(path, str(err))) from err
    where = (repo.workdir if not repo.is_bare and repo.workdir else repo.path).rstrip("/")
    problem = _partial_clone(path, where, repo.config)
    if problem is None and repo.is_shallow and not allow_shallow:
        problem = (
            f"{path} is a shallow clone (git clone --depth): revision numbers and creation dates "
            "need the whole history; clone again without --depth, or complete this clone, run: "
            f"{_git_in(where)} fetch --unshallow"
        )
    if problem is not None:
        repo.free()
        raise RepositoryError(problem)
    return repo


#: how libgit2 says that a repository belongs to another user (its safe.directory check)
_NOT_OWNED = " is not owned by current user"


def _open_error(path: str | os.PathLike[str], text: str) -> str:
    """The message for a repository libgit2 would not open (``text``: libgit2's reason)."""
    reason = text.split(": ", 1)[1] if text.startswith(f"{path}: ") else text
    if _NOT_OWNED in reason:
        # "repository path '/srv/x.git' is not owned by current user": safe.directory names that path
        owned = reason.split(_NOT_OWNED)[0].split("repository path ", 1)[-1].strip("'\"")
        return (
            f"{path}: not owned by current user (git and libgit2 refuse a repository that belongs "
            f"to another user); if you trust it, run: git config --global --add safe.directory "
            f"{_quoted(owned)}"
        )
    if "extensions.partialclone" in reason:  # libgit2 does not know this extension
        files = (os.path.join(path, "config"), os.path.join(path, ".git", "config"))
        config_file = next((f for f in files if os.path.isfile(f)), None)
        if config_file is not None:
            problem = _partial_clone(path, os.fspath(path), pygit2.Config(config_file))
            if problem is not None:
                return problem
    if "not found" in reason.lower() or not reason:
        return f"{path}: not a git repository"
    return f"{path}: cannot open this git repository: {reason}"


def _quoted(word: str) -> str:
    """``word`` quoted for a shell command in a message."""
    import shlex  # here, not at the top: only error messages need it

    return shlex.quote(word)


def _git_in(where: str) -> str:
    return f"git -C {_quoted(where)}"


def _partial_clone(path: str | os.PathLike[str], where: str, config: pygit2.Config) -> str | None:
    """Why a partial clone cannot be used, with the commands that complete it; None if it is not one.

    git marks a partial clone with ``remote.<name>.promisor`` (and, before git 2.28 or so,
    ``extensions.partialClone = <name>``).
    """
    promisors: list[str] = []
    extension = None
    for entry in config:
        name = entry.name  # libgit2 gives section and key in lower case
        if name == "extensions.partialclone":
            extension = entry.value
        elif name.startswith("remote.") and name.endswith(".promisor"):
            remote = name[len("remote.") : -len(".promisor")]
            try:
                promising = config.get_bool(name)
            except GitError:
                promising = True
            if promising and remote not in promisors:
                promisors.append(remote)
    if extension is None and not promisors:
        return None
    run = _git_in(where)
    steps = []
    for remote in promisors or [extension or "origin"]:
        quoted = _quoted(remote)
        steps.append(f"{run} fetch --refetch --no-filter {quoted}")
        if remote in promisors:
            steps.append(f"{run} config --unset remote.{quoted}.promisor")
        if f"remote.{remote}.partialclonefilter" in config:
            steps.append(f"{run} config --unset remote.{quoted}.partialclonefilter")
    if extension is not None:
        steps.append(f"{run} config --unset extensions.partialClone")
    return (
        f"{path} is a partial clone (git clone --filter): it lacks files that gitrecords reads "
        "and cannot fetch; clone again without --filter, or complete this clone, run: " + " && ".join(steps)
    )


def discover(path: str | os.PathLike[str]) -> str | None:
    return pygit2.discover_repository(str(path))


def init_repository(path: str | os.PathLike[str], bare: bool, branch: str) -> pygit2.Repository:
    return pygit2.init_repository(str(path), bare=bare, initial_head=branch)


def signature(name: str, email: str, when: tuple[int, int] | None = None) -> pygit2.Signature:
    if when is None:
        return pygit2.Signature(name, email)
    return pygit2.Signature(name, email, when[0], when[1])


def set_durable(durable: bool) -> None:
    """fsync loose objects and refs on every write (libgit2's global option)."""
    pygit2.settings.enable_fsync_gitdir(durable)


def sync_filesystem(path: str | os.PathLike[str]) -> None:
    """Flush every written file of the filesystem holding ``path`` to disk (Linux ``syncfs``).

    One ``syncfs`` after writing a commit's objects costs less than libgit2's
    fsync of each loose object and its folder, and gives the same guarantee.
    """
    syncfs = _load_syncfs()
    if syncfs is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a folder (a folder's fsync makes a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _load_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs``, looked up on the first write: ctypes costs a read 2 ms (issue 21)."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).syncfs  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def tip(repo: pygit2.Repository, ref: str) -> Oid | None:
    try:
        return repo.references[ref].target
    except KeyError:
        return None


def tree_of(repo: pygit2.Repository, commit_id: Oid | None) -> pygit2.Tree | None:
    if commit_id is None:
        return None
    return repo[commit_id].peel(pygit2.Tree)


def entry_id(tree: pygit2.Tree | None, path: str) -> Oid | None:
    """Blob id at ``path`` in ``tree``, or None."""
    if tree is None:
        return None
    try:
        entry = tree[path]
    except KeyError:
        return None
    if entry.type != ObjectType.BLOB:
        return None
    return entry.id


def read_blob(repo: pygit2.Repository, oid: Oid) -> bytes:
    # the raw read skips building a Blob object: 40% faster than repo[oid].data
    return repo.read(oid)[1]


def create_blob(repo: pygit2.Repository, data: bytes) -> Oid:
    return repo.create_blob(data)


def build_tree(
    repo: pygit2.Repository,
    base: pygit2.Tree | None,
    changes: Mapping[str, Oid | None],
) -> Oid:
    """Write a tree equal to ``base`` with ``changes`` applied (None removes).

    Only the trees on the touched paths are rewritten; empty trees are pruned.
    """
    grouped: dict[str, dict[str, Oid | None]] = {}
    leaves: dict[str, Oid | None] = {}
    for path, oid in changes.items():
        head, sep, rest = path.partition("/")
        if sep:
            grouped.setdefault(head, {})[rest] = oid
        else:
            leaves[head] = oid
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    for name, oid in leaves.items():
        if oid is None:
            if builder.get(name) is not None:
                builder.remove(name)
        else:
            builder.insert(name, oid, FileMode.BLOB)
    for name, sub in grouped.items():
        existing = builder.get(name)
        subtree = repo[existing.id] if existing is not None and existing.type == ObjectType.TREE else None
        new_id = build_tree(repo, subtree, sub)
        if len(repo[new_id]) == 0:
            if existing is not None:
                builder.remove(name)
        else:
            builder.insert(name, new_id, FileMode.TREE)
    return builder.write()


def create_commit(
    repo: pygit2.Repository,
    ref: str | None,
    author: pygit2.Signature,
    committer: pygit2.Signature,
    message: str,
    tree: Oid,
    parents: list[Oid],
) -> Oid:
    """Create a commit; with ``ref``, move it only if its tip is ``parents[0]``.

    Raises :class:`RefMoved` when another writer moved the ref first.
    """
    return _waiting_for_ref_lock(
        lambda: repo.create_commit(ref, author, committer, message, tree, parents), repo, ref
    )


def _waiting_for_ref_lock(action: Callable[[], T], repo: pygit2.Repository, ref: str | None) -> T:
    """Run a ref update; while another writer holds the ref's lock file, retry for up to
    :data:`REF_LOCK_WAIT` seconds (as git does), then explain the lock."""
    deadline = time.monotonic() + REF_LOCK_WAIT
    delay = 0.001
    while True:
        try:
            return action()
        except (GitError, OSError) as err:
            text = str(err)
            if any(m in text for m in _MOVED):
                raise RefMoved(text) from err
            if not any(m in text.lower() for m in _LOCKED):
                raise
            if time.monotonic() >= deadline:
                raise locked_error(repo, ref) from err
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def locked_error(repo: pygit2.Repository, ref: str | None) -> RepositoryLockedError:
    lock = os.path.join(repo.path, (ref or "HEAD") + ".lock")
    age = ""
    try:
        age = f", {int(time.time() - os.stat(lock).st_mtime)} s old"
    except OSError:
        pass
    return RepositoryLockedError(
        f"{ref} is locked by {lock}{age}; if no git or gitrecords process is "
        "writing to this repository, the lock was left by a crash: remove that file"
    )


def create_ref(repo: pygit2.Repository, ref: str, target: Oid) -> None:
    repo.references.create(ref, target)


def set_ref(repo: pygit2.Repository, ref: str, target: Oid, expected: Oid | None, message: str) -> None:
    """Move ``ref`` from ``expected`` to ``target`` atomically (compare-and-swap)."""
    if expected is None:
        try:
            repo.references.create(ref, target)
        except (GitError, ValueError) as err:
            raise RefMoved(str(err)) from err
        return
    try:
        reference = repo.references[ref]
    except KeyError as err:
        raise RefMoved(f"{ref} was deleted") from err
    if reference.target != expected:
        raise RefMoved(f"{ref} moved")
    _waiting_for_ref_lock(lambda: reference.set_target(target, message), repo, ref)


def commit_info(repo: pygit2.Repository, oid: Oid | str) -> CommitInfo:
    commit = repo[oid]
    return CommitInfo(
        id=str(commit.id),
        author_name=commit.author.name,
        author_email=commit.author.email,
        time=datetime.fromtimestamp(commit.commit_time, UTC),
        message=commit.message,
    )


def commit_time(repo: pygit2.Repository, oid: Oid) -> int:
    return repo[oid].commit_time


def first_parent_chain(repo: pygit2.Repository, start: Oid, stop: Oid | None) -> list[Oid] | None:
    """Commits from ``start`` back along first parents, newest first, excluding ``stop``.

    Returns None when ``stop`` is not on the first-parent chain of ``start``.
    """
    chain: list[Oid] = []
    current: Oid | None = start
    while current is not None:
        if current == stop:
            return chain
        chain.append(current)
        parents = repo[current].parent_ids
        current = parents[0] if parents else None
    return chain if stop is None else None


def is_ancestor(repo: pygit2.Repository, ancestor: Oid, descendant: Oid) -> bool:
    """Whether ``ancestor`` is ``descendant`` or one of its ancestors. False when a commit of the
    walk is gone: a hard delete rewrote it away, or ``git gc`` pruned it, and this handle's cache
    still knew its id (``in`` still says it is there)."""
    if ancestor == descendant:
        return True
    try:
        return bool(repo.descendant_of(descendant, ancestor))
    except pygit2.GitError:
        return False


def resolve_commit(repo: pygit2.Repository, name: str) -> Oid | None:
    """The commit ``name`` names (a full or abbreviated id, a ref, ``HEAD~2``...), or None."""
    try:
        return repo.revparse_single(name).peel(pygit2.Commit).id
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return None


def first_parent(repo: pygit2.Repository, oid: Oid) -> Oid | None:
    parents = repo[oid].parent_ids
    return parents[0] if parents else None


def changed_blobs(
    repo: pygit2.Repository,
    old: pygit2.Tree | None,
    new: pygit2.Tree | None,
    prefix: str = "",
) -> Iterator[tuple[str, Oid | None, Oid | None]]:
    """(path, old blob, new blob) for every blob that differs, skipping equal subtrees."""
    if old is not None and new is not None and old.id == new.id:
        return
    old_entries = {e.name: e for e in old} if old is not None else {}
    new_entries = {e.name: e for e in new} if new is not None else {}
    for name in sorted(old_entries.keys() | new_entries.keys()):
        a = old_entries.get(name)
        b = new_entries.get(name)
        if a is not None and b is not None and a.id == b.id and a.type == b.type:
            continue
        path = prefix + name
        a_tree = repo[a.id] if a is not None and a.type == ObjectType.TREE else None
        b_tree = repo[b.id] if b is not None and b.type == ObjectType.TREE else None
        if a_tree is not None or b_tree is not None:
            yield from changed_blobs(repo, a_tree, b_tree, path + "/")
        a_blob = a.id if a is not None and a.type == ObjectType.BLOB else None
        b_blob = b.id if b is not None and b.type == ObjectType.BLOB else None
        if a_blob != b_blob:
            yield path, a_blob, b_blob


def walk_blobs(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str = "") -> Iterator[tuple[str, Oid]]:
    for entry in tree:
        if entry.type == ObjectType.TREE:
            yield from walk_blobs(repo, repo[entry.id], prefix + entry.name + "/")
        elif entry.type == ObjectType.BLOB:
            yield prefix + entry.name, entry.id


def new_links(
    repo: pygit2.Repository, old: pygit2.Tree | None, new: pygit2.Tree | None, prefix: str = ""
) -> Iterator[str]:
    """Paths of the gitlinks (submodule entries: no file, a commit id) that ``new`` has and
    ``old`` has not the same, skipping equal subtrees; ``old`` None: every one in ``new``."""
    if new is None or (old is not None and old.id == new.id):
        return
    old_entries = {e.name: e for e in old} if old is not None else {}
    for entry in new:
        before = old_entries.get(entry.name)
        if before is not None and before.id == entry.id and before.type == entry.type:
            continue
        if entry.type == ObjectType.TREE:
            was = repo[before.id] if before is not None and before.type == ObjectType.TREE else None
            yield from new_links(repo, was, repo[entry.id], prefix + entry.name + "/")
        elif entry.type == ObjectType.COMMIT:
            yield prefix + entry.name


def subtree(repo: pygit2.Repository, tree: pygit2.Tree | None, path: str) -> pygit2.Tree | None:
    if tree is None:
        return None
    try:
        entry = tree[path]
    except KeyError:
        return None
    if entry.type != ObjectType.TREE:
        return None
    return repo[entry.id]


def git(
    repo_path: str, *args: str, input: bytes | None = None, work_tree: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the git binary on ``repo_path`` (its git dir; ``work_tree``: with that work tree);
    raise RepositoryError on failure."""
    env = dict(os.environ)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    place = (
        ["--git-dir", repo_path] if work_tree is None else ["--git-dir", repo_path, "--work-tree", work_tree]
    )
    proc = subprocess.run(
        ["git", *place, *args],
        input=input,
        capture_output=True,
        env=env,
    )
    if proc.returncode != 0:
        raise RepositoryError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc


def git_background(repo_path: str, *args: str) -> Callable[[], bytes]:
    """Start the git binary on ``repo_path`` and return a function that waits for it and returns
    its output (raising RepositoryError on failure). The output goes to a temporary file, so
    git never waits on a full pipe while the caller works."""
    import tempfile  # 4 ms that reading a record does not need (issue 21)

    env = dict(os.environ)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    proc = subprocess.Popen(["git", "--git-dir", repo_path, *args], stdout=out, stderr=err, env=env)

    def wait() -> bytes:
        try:
            code = proc.wait()
            out.seek(0)
            err.seek(0)
            if code != 0:
                message = err.read().decode(errors="replace").strip()
                raise RepositoryError(f"git {' '.join(args)} failed: {message}")
            return out.read()
        finally:
            out.close()
            err.close()

    return wait


def walk_all(repo: pygit2.Repository, tips: list[Oid]) -> Iterator[pygit2.Commit]:
    """Every commit reachable from ``tips``, parents before children."""
    walker = repo.walk(tips[0], SortMode.TOPOLOGICAL | SortMode.REVERSE)
    for other in tips[1:]:
        walker.push(other)
    yield from walker


def hash_bytes(data: bytes) -> Oid:
    """The blob id of ``data``."""
    return pygit2.hash(data)


def hash_worktree_file(repo: pygit2.Repository, path: str | os.PathLike[str]) -> Oid:
    """The blob id ``git add`` would give a file of ``repo``'s work tree: through the filters its
    attributes and configuration name (``core.autocrlf``: the file has CRLF, the blob LF)."""
    return repo.hashfile(str(path))


def checkout(repo: pygit2.Repository, tree: Oid) -> None:
    """Write ``tree`` into the working directory and the index of a new clone."""
    from pygit2.enums import CheckoutStrategy

    repo.checkout_tree(repo[tree], strategy=CheckoutStrategy.FORCE)
    index = repo.index
    index.read_tree(repo[tree])
    index.write()


# -- objects and refs for the hard delete (gitrecords/purge.py) --------------------------------------

#: a repository handle, for type annotations outside this module
GitRepository = pygit2.Repository

#: the kinds of git object, numbered as in packs (and by libgit2)
COMMIT, TREE, BLOB, TAG = (
    int(ObjectType.COMMIT),
    int(ObjectType.TREE),
    int(ObjectType.BLOB),
    int(ObjectType.TAG),
)

#: the id of the empty tree
EMPTY_TREE = Oid(hex="4b825dc642cb6eb9a060e54bf8d69288fbee4904")


def oid_from_raw(raw: bytes) -> Oid:
    """The id of 20 raw bytes (as a tree entry stores it)."""
    return Oid(raw=raw)


def oid_from_hex(text: str) -> Oid:
    return Oid(hex=text)


def read_object(repo: pygit2.Repository, oid: Oid) -> tuple[int, bytes]:
    """(kind, raw content) of any object, read from the object database."""
    kind, data = repo.odb.read(oid)
    return int(kind), data


def write_object(repo: pygit2.Repository, kind: int, raw: bytes) -> Oid:
    """Write a raw object of ``kind`` as a loose object; its id."""
    return repo.odb.write(kind, raw)


def object_kind(repo: pygit2.Repository, oid: Oid) -> int:
    """The kind of an object (COMMIT, TREE, BLOB or TAG), from its header alone."""
    return int(repo.odb.read_header(oid)[0])


def tag_target(repo: pygit2.Repository, oid: Oid) -> Oid:
    """The object a tag object points at."""
    return repo[oid].target


def commit_tree(repo: pygit2.Repository, oid: Oid) -> Oid:
    return repo[oid].tree_id


def direct_refs(repo: pygit2.Repository) -> dict[str, Oid]:
    """Every ref that names an object (not another ref), with its target."""
    refs: dict[str, Oid] = {}
    for name in repo.references:
        ref = repo.references[name]
        if ref.type == pygit2.enums.ReferenceType.DIRECT:
            refs[name] = ref.target
    return refs


def detached_head(repo: pygit2.Repository) -> Oid | None:
    """The commit a detached HEAD names, or None when HEAD is on a branch."""
    return repo.head.target if repo.head_is_detached else None


def set_detached_head(repo: pygit2.Repository, oid: Oid) -> None:
    repo.set_head(oid)


def config_int(repo: pygit2.Repository, name: str) -> int | None:
    """An integer setting of the repository's git configuration, or None (unset or not a number)."""
    try:
        return repo.config.get_int(name)
    except (KeyError, ValueError, GitError):
        return None


def move_refs(
    repo: pygit2.Repository, updates: Mapping[str, Oid], expected: Mapping[str, Oid], message: str
) -> None:
    """Move every ref of ``updates`` in one locked reference transaction, compare-and-swap: raise
    :class:`RefMoved` (naming the ref) and move none if any is no longer at its ``expected`` value."""
    with repo.transaction() as tx:
        for name in updates:
            tx.lock_ref(name)
        for name, new in updates.items():
            current = repo.references.get(name)
            if current is None or current.target != expected[name]:
                raise RefMoved(name)
            tx.set_target(name, new, message=message)


@dataclass(frozen=True)
class LinkedWorktree:
    """A worktree added with ``git worktree add``: its own HEAD, index and files."""

    name: str
    admin: str  #: its folder in the git dir (.git/worktrees/<name>: HEAD, index, logs)
    path: str  #: its files
    exists: bool  #: False when its folder is gone (``git worktree prune`` would forget it)
    head: Oid | None  #: the commit of a detached HEAD
    branch: str | None  #: the ref HEAD is on, when it is on one


def common_dir(repo: pygit2.Repository) -> str:
    """The git directory every worktree shares: ``repo.path`` itself, unless ``repo`` was opened
    in a linked worktree (then ``repo.path`` is that worktree's folder under ``worktrees/``)."""
    try:
        with open(os.path.join(repo.path, "commondir"), encoding="utf-8") as file:
            shared = file.read().strip()
    except OSError:
        return str(repo.path)
    return os.path.normpath(os.path.join(repo.path, shared)) + os.sep


def linked_worktrees(repo: pygit2.Repository) -> list[LinkedWorktree]:
    found: list[LinkedWorktree] = []
    shared = common_dir(repo)
    for name in repo.list_worktrees():
        worktree = repo.lookup_worktree(name)
        admin = os.path.join(shared, "worktrees", name)
        try:
            with open(os.path.join(admin, "HEAD"), encoding="utf-8") as file:
                head = file.read().strip()
        except OSError:
            head = ""
        branch = head[len("ref:") :].strip() if head.startswith("ref:") else None
        detached = Oid(hex=head) if branch is None and len(head) == 40 else None
        path = worktree.path.rstrip("/")
        found.append(LinkedWorktree(name, admin, path, os.path.isdir(path), detached, branch))
    return found


def open_worktree(worktree: LinkedWorktree) -> pygit2.Repository:
    return open_repository(worktree.path)


def staged_blob(repo: pygit2.Repository, path: str) -> Oid | None:
    """The blob the index of ``repo``'s worktree has at ``path``, or None."""
    index = repo.index
    index.read()
    return index_blob(index, path)


def index_blob(index: pygit2.Index, path: str) -> Oid | None:
    """The blob ``index`` has at ``path``: None when it has none, or only the stages of an
    unresolved merge conflict (see :func:`in_conflict`)."""
    try:
        return index[path].id
    except KeyError:  # no entry, or conflict stages only (``path in index`` is True for those)
        return None


def in_conflict(index: pygit2.Index, path: str) -> bool:
    """Whether ``index`` holds an unresolved merge conflict at ``path``."""
    conflicts = index.conflicts
    if conflicts is None:
        return False
    try:
        conflicts[path]
    except KeyError:
        return False
    return True


def skip_worktree(repo: pygit2.Repository, paths: list[str]) -> set[str]:
    """Those of ``paths`` that git's index marks skip-worktree (outside a sparse checkout: the
    file is absent from the work tree on purpose). Asks the git binary (libgit2 does not show
    the flag): only for files that are missing."""
    if not paths:
        return set()
    # many paths (a bulk write in a sparse checkout) would pass the system's limit of a command
    # line: then the whole index is listed
    named = paths if len(paths) <= 100 else []
    try:
        listed = git(
            repo.path, "--literal-pathspecs", "ls-files", "-v", "-z", "--", *named, work_tree=repo.workdir
        )
    except RepositoryError:
        return set()
    wanted = set(paths)
    marked = set()
    for line in listed.stdout.decode("utf-8", "surrogateescape").split("\0"):
        tag, _, path = line.partition(" ")
        if tag in ("S", "s") and path in wanted:
            marked.add(path)
    return marked


def sparse_checkout(repo: pygit2.Repository) -> bool:
    """Whether ``repo``'s work tree is a sparse checkout (``core.sparseCheckout``; git puts it in
    config.worktree, which libgit2 does not read, so the git binary is asked, and only when the
    patterns' file exists)."""
    if not os.path.exists(os.path.join(repo.path, "info", "sparse-checkout")):
        return False
    try:  # (git config exits 1 when the setting is not there)
        return git(repo.path, "config", "--bool", "core.sparseCheckout").stdout.strip() == b"true"
    except RepositoryError:
        return False


def reapply_sparse_checkout(repo: pygit2.Repository) -> None:
    """Let git take the files a sparse checkout leaves out out of the work tree again (new ones
    written there are then only in the index, marked skip-worktree, as git's own checkout
    leaves them)."""
    git(repo.path, "sparse-checkout", "reapply", work_tree=repo.workdir)


def set_index_entry_outside_worktree(repo: pygit2.Repository, path: str, blob: Oid) -> None:
    """Point the index entry of a skip-worktree ``path`` at ``blob``, keeping the flag and
    writing no file (the git binary: libgit2 cannot set the flag)."""
    git(repo.path, "update-index", "--cacheinfo", f"100644,{blob},{path}", work_tree=repo.workdir)
    git(repo.path, "update-index", "--skip-worktree", "--", path, work_tree=repo.workdir)


def apply_to_worktree(repo: pygit2.Repository, changes: Mapping[str, Oid | None]) -> None:
    """Write ``changes`` (path -> blob, None removes) into the files and the index of ``repo``'s
    worktree, as checking out a commit that differs by them would."""
    index = repo.index
    index.read()
    workdir = os.path.normpath(repo.workdir)
    for path, blob in changes.items():
        file = os.path.join(workdir, path)
        if blob is None:
            try:
                os.unlink(file)
            except FileNotFoundError:
                pass
            if path in index:
                index.remove(path)
            parent = os.path.dirname(file)
            while parent != workdir and parent.startswith(workdir):
                try:
                    os.rmdir(parent)
                except OSError:
                    break
                parent = os.path.dirname(parent)
        else:
            os.makedirs(os.path.dirname(file), exist_ok=True)
            temp = os.path.join(os.path.dirname(file), f".{os.path.basename(file)}.{os.getpid()}.tmp")
            with open(temp, "wb") as out:
                out.write(read_blob(repo, blob))
            os.replace(temp, file)
            index.add(path)
    index.write()


def commit_parents(repo: pygit2.Repository, oid: Oid) -> list[Oid]:
    return list(repo[oid].parent_ids)


def read_reflog(repo: pygit2.Repository, ref: str) -> list[bytes]:
    """The lines of ``ref``'s reflog (``old new identity time zone TAB message``), oldest first."""
    try:
        with open(os.path.join(repo.path, "logs", ref), "rb") as file:
            return [line for line in file.read().split(b"\n") if line]
    except FileNotFoundError:
        return []


def write_reflog(
    repo: pygit2.Repository, ref: str, lines: list[bytes], expected: Oid | None, durable: bool
) -> bool:
    """Replace ``ref``'s reflog with ``lines``, holding the ref's lock file (as git does when it
    appends to a reflog) and only while ``ref`` is at ``expected``. False when it was not written:
    the lock stayed taken for :data:`REF_LOCK_WAIT` seconds, or the ref moved."""
    lock = os.path.join(repo.path, ref + ".lock")
    deadline = time.monotonic() + REF_LOCK_WAIT
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            break
        except FileExistsError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
    try:
        if tip(repo, ref) != expected:
            return False
        log = os.path.join(repo.path, "logs", ref)
        temp = os.path.join(repo.path, f"gitrecords-reflog-{os.getpid()}.tmp")
        with open(temp, "wb") as file:
            file.write(b"".join(line + b"\n" for line in lines))
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temp, log)
        if durable:
            fsync_path(os.path.dirname(log))
        return True
    finally:
        os.close(fd)
        os.unlink(lock)


def reflog_names(repo: pygit2.Repository) -> list[str]:
    """The refs that have a reflog, named as ``git reflog expire`` takes them (a linked
    worktree's HEAD as ``worktrees/<name>/HEAD``); refs that do not resolve are left out, as git
    refuses them."""

    def resolves(name: str) -> bool:
        try:
            repo.references[name].resolve()
        except (KeyError, GitError):
            return False
        return True

    names = [
        name
        for name in ["HEAD", *repo.references]
        if os.path.isfile(os.path.join(repo.path, "logs", name)) and resolves(name)
    ]
    for worktree in linked_worktrees(repo):
        if not os.path.isfile(os.path.join(worktree.admin, "logs", "HEAD")):
            continue
        if worktree.head is not None or (worktree.branch is not None and resolves(worktree.branch)):
            names.append(f"worktrees/{worktree.name}/HEAD")
    return names


def walk_first_parents(repo: pygit2.Repository, start: Oid) -> Iterator[Oid]:
    """``start`` and its first parents, newest first, as far as the history goes."""
    current: Oid | None = start
    while current is not None:
        yield current
        parents = repo[current].parent_ids
        current = parents[0] if parents else None


def new_first_parents(repo: pygit2.Repository, start: Oid, known: Oid | None) -> list[Oid]:
    """The commits of ``start``'s first-parent line that ``known`` does not reach, newest first
    (what a push of ``start`` onto ``known`` adds to the branch's first-parent history)."""
    walker = repo.walk(start, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.simplify_first_parent()
    if known is not None:
        walker.hide(known)
    return [commit.id for commit in walker]


def commit_with_line(
    repo: pygit2.Repository, start: Oid | None, stop: Oid | None, line: str, limit: int
) -> Oid | None:
    """The newest commit from ``start`` back along first parents to ``stop`` (excluded), at most
    ``limit`` of them, whose message has ``line`` as one of its lines; None if there is none."""
    current = start
    for _ in range(limit):
        if current is None or current == stop:
            return None
        commit = repo[current]
        if line in commit.message.splitlines():
            return current
        parents = commit.parent_ids
        current = parents[0] if parents else None
    return None


def signature_fields(signature: pygit2.Signature) -> list[Any]:
    """(name, email, time, offset) of a signature, for :func:`signature` to make it again."""
    return [signature.name, signature.email, signature.time, signature.offset]
