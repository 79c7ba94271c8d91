"""Replication with git itself: pull (fetch + record-aware merge), push, the merge driver.

Fetching and pushing run the ``git`` binary, so every transport git knows
works (``file://``, paths, ssh, https) with the user's own git setup. Merges
never go through git's or libgit2's text merge: :mod:`gitrecords.merge` merges
records, and the merge commit is written under the repository's write lock
with a compare-and-swap on the branch, like every other write.

A pull that has to merge makes the **remote's tip the first parent** of the
merge commit and the local tip the second. The branch's first-parent
history, which numbers the revisions (docs/format.md), then stays the one the
server already published: pushing the merge is a fast-forward that adds one
revision per record changed locally, and revision ids that others have seen
never change. Revisions made locally and not yet pushed are the ones folded
into the merge.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jsonschema.exceptions import best_match

from . import _git, layout
from .config import PURGED_FILE
from .errors import GitRecordsError, InvalidRecordError, RepositoryError, SchemaError, StaleRevisionError
from .merge import (
    VIRTUAL_BASE,
    Conflict,
    MergeConflictError,
    TreeMerge,
    _check_strategy,
    merge_trees,
)
from .schema import pointer
from .storage import Storage as Repository
from .writer import MAX_ATTEMPTS, MAX_TRAILER_RECORDS, check_message, imports_excluded

__all__ = [
    "MergeOutcome",
    "PushRejectedError",
    "PushResult",
    "driver_command",
    "follow",
    "install_merge_driver",
    "merge",
    "prune_fetch_refs",
    "pull",
    "push",
    "remote_url",
    "shown_url",
]

DRIVER_NAME = "gitrecords"
#: the merge driver's name in git's configuration (merge.gitrecords.name)
DRIVER_DESCRIPTION = "gitrecords: record-aware three-way merge of JSON records"
#: the driver of git's inner merges (of two merge bases, criss-cross histories): where the bases
#: disagree the virtual base holds a value no record holds (merge.gitrecords.recursive)
BASE_DRIVER_NAME = "gitrecords-base"
BASE_DRIVER_DESCRIPTION = "gitrecords: merge of two merge bases into git's virtual base"
FETCH_REFS = "refs/gitrecords/fetch"
#: how deep criss-cross histories are merged into virtual bases before giving up
MAX_VIRTUAL_DEPTH = 8


class PushRejectedError(GitRecordsError):
    """The remote refused the push (it has commits we do not have, or a hook declined)."""


@dataclass
class MergeOutcome:
    """What a pull or merge did to the branch."""

    #: "up-to-date", "fast-forward" or "merged" (and for :func:`follow`, "realigned": it followed
    #: a hard delete that rewrote the remote's history)
    status: str
    #: the branch tip after the pull (None: the branch does not exist)
    commit: str | None
    #: the branch tip before
    previous: str | None
    #: the commit that was merged (the remote's tip for a pull)
    merged_commit: str
    #: records whose file changed on the branch
    records: list[uuid.UUID] = field(default_factory=list)
    #: records changed on both sides and merged field by field
    merged: list[uuid.UUID] = field(default_factory=list)
    #: conflicts that ``strategy`` resolved
    resolved: list[Conflict] = field(default_factory=list)
    strategy: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "commit": self.commit,
            "previous": self.previous,
            "merged_commit": self.merged_commit,
            "records": sorted(str(r) for r in self.records),
            "merged": sorted(str(r) for r in self.merged),
            "strategy": self.strategy,
            "resolved": [c.to_json() for c in self.resolved],
        }


@dataclass
class PushResult:
    #: "pushed", "created" or "up-to-date"
    status: str
    remote: str
    branch: str
    commit: str
    previous: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "remote": self.remote,
            "branch": self.branch,
            "commit": self.commit,
            "previous": self.previous,
        }


# -- the git binary -------------------------------------------------------------------------------


def _interactive() -> bool:
    """Whether a person may answer git's prompts: stdin is a terminal."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed or replaced
        return False


def _run(repo: Repository, *args: str) -> subprocess.CompletedProcess[str]:
    """Run git on the repository. On a terminal git may ask for a user name and password (on
    /dev/tty, as ``git push`` does); otherwise it fails at once instead of waiting for an answer
    (credential helpers and ``GIT_ASKPASS`` work either way)."""
    env = dict(os.environ, LC_ALL="C")
    if not _interactive():
        env["GIT_TERMINAL_PROMPT"] = "0"
    return subprocess.run(
        ["git", "--git-dir", str(repo.git_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


#: a URL's user name and password (its userinfo), wherever a URL appears in a text
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/\s]*@")
#: git's advice after "Could not read from remote repository.", which explains nothing
_ADVICE = ("Please make sure you have the correct access rights", "and the repository exists.")
#: how many lines of ssh's, the server's or curl's own output before git's error are kept
MAX_REASON_LINES = 5


def shown_url(remote: str) -> str:
    """``remote`` (a remote's name, a path or a URL) as it may be shown: without a user name and
    password, as git shows URLs (``https://user:token@host/x.git`` -> ``https://host/x.git``,
    ``user@host:x.git`` -> ``host:x.git``). Messages, labels, JSON output and commits use this."""
    colon, slash = remote.find(":"), remote.find("/")
    if colon < 0 or 0 <= slash < colon:  # a name or a local path
        return remote
    scheme = remote.find("://")
    if scheme < 0:  # scp-like: [user@]host:path
        host = remote[:colon]
        return remote[host.rfind("@") + 1 :] if "@" in host else remote
    if not re.fullmatch(r"[A-Za-z0-9+.-]+", remote[:scheme]):
        return remote
    start = scheme + 3
    end = remote.find("/", start)
    authority = remote[start : end if end >= 0 else len(remote)]
    if "@" not in authority:
        return remote
    return remote[:start] + remote[start + authority.rfind("@") + 1 :]


def _redacted(text: str, remote: str | None = None) -> str:
    """``text`` with the user name and password of every URL in it removed."""
    if remote is not None and remote != shown_url(remote):
        text = text.replace(remote, shown_url(remote))
    return _USERINFO.sub(r"\1", text)


def _reason(text: str, remote: str | None = None) -> str:
    """What went wrong, on one line, from git's stderr: git's first error, after the lines that
    ssh, curl or the server printed before it ("Host key verification failed.", "Permission
    denied (publickey)."), which say why; without git's advice and hints, and without
    credentials."""
    lines = [_redacted(line.strip(), remote) for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(_ADVICE) and not line.startswith("hint:")]
    first = next((i for i, line in enumerate(lines) if line.startswith(("fatal: ", "error: "))), None)
    if first is None:
        return lines[-1] if lines else "no message"
    return "; ".join([*lines[:first][-MAX_REASON_LINES:], lines[first]])


def _check_names(repo: Repository, remote: str, branch: str) -> None:
    if not remote or remote.startswith("-") or "\0" in remote:
        raise GitRecordsError(f"{shown_url(remote)!r} is not a remote name or URL")
    if _run(repo, "check-ref-format", f"refs/heads/{branch}").returncode != 0 or branch.startswith("-"):
        raise GitRecordsError(f"{branch!r} is not a valid branch name")


def _is_named_remote(repo: Repository, remote: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9._-]+", remote)) and (
        _run(repo, "config", "--get", f"remote.{remote}.url").returncode == 0
    )


def _merge_bases(repo: Repository, a: _git.Oid, b: _git.Oid) -> list[_git.Oid]:
    proc = _run(repo, "merge-base", "--all", str(a), str(b))
    if proc.returncode not in (0, 1):
        raise RepositoryError(f"git merge-base failed: {_reason(proc.stderr)}")
    return [_git.Oid(hex=line) for line in proc.stdout.split()]


@contextmanager
def _fetched(repo: Repository, remote: str, branch: str) -> Iterator[_git.Oid]:
    """Fetch ``branch`` of ``remote`` into a private ref, kept until the merge is done."""
    _check_names(repo, remote, branch)
    temp = f"{FETCH_REFS}/{os.getpid()}-{uuid.uuid4().hex[:12]}"
    refspecs = [f"+refs/heads/{branch}:{temp}"]
    if _is_named_remote(repo, remote) and _run(repo, "config", "--get-all", f"remote.{remote}.fetch").stdout:
        refspecs.append(f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    proc = _run(repo, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, *refspecs)
    shown = shown_url(remote)
    try:
        if proc.returncode != 0:
            if "couldn't find remote ref" in proc.stderr:
                raise GitRecordsError(f"{shown} has no branch {branch!r}")
            raise RepositoryError(f"git fetch {shown} failed: {_reason(proc.stderr, remote)}")
        fetched = _git.tip(repo.git, temp)
        if fetched is None:  # pragma: no cover - git said it fetched
            raise RepositoryError(f"git fetch {shown} did not fetch {branch!r}")
        yield fetched
    finally:
        _run(repo, "update-ref", "-d", temp)


# -- merging --------------------------------------------------------------------------------------


def _tree(repo: Repository, commit: _git.Oid | None) -> Any:
    return _git.tree_of(repo.git, commit)


def _base_tree(
    repo: Repository, ours: _git.Oid, theirs: _git.Oid, bases: list[_git.Oid], depth: int = 0
) -> Any:
    """The merge base's tree; with several bases (criss-cross merges), their merge.

    As git's recursive strategy does, the bases are merged into a virtual
    base first. Where they disagree it holds a value no record holds
    (:data:`~gitrecords.merge.VIRTUAL_BASE`), so the real merge reports the
    spot unless both sides agree there: keeping one base's side there let the
    other side's value win without a conflict.
    """
    if len(bases) == 1:
        return _tree(repo, bases[0])
    if depth >= MAX_VIRTUAL_DEPTH:
        raise GitRecordsError(f"{ours} and {theirs} have too many criss-cross merges to merge")
    virtual = bases[0]
    for other in bases[1:]:
        inner = _merge_bases(repo, virtual, other)
        inner_tree = _base_tree(repo, virtual, other, inner, depth + 1) if inner else None
        merged = merge_trees(
            repo, inner_tree, _tree(repo, virtual), _tree(repo, other), strategy=VIRTUAL_BASE, checks=False
        )
        tree = _git.build_tree(repo.git, _tree(repo, virtual), merged.changes)
        signature = _git.signature("gitrecords", "gitrecords@localhost", (0, 0))
        virtual = _git.create_commit(
            repo.git, None, signature, signature, "virtual merge base\n", tree, [virtual, other]
        )
    return _tree(repo, virtual)


def _record_ids(repo: Repository, paths: Any) -> list[uuid.UUID]:
    records_dir = repo.records_dir
    found = (layout.id_from_path(p, records_dir) for p in paths)
    return [i for i in found if i is not None]


def _message(title: str, first_parent_changes: list[uuid.UUID], strategy: str | None, resolved: int) -> str:
    lines = ["Gitrecords-Operation: merge"]
    if resolved and strategy:
        lines.append(f"Gitrecords-Strategy: {strategy}")
    if len(first_parent_changes) <= MAX_TRAILER_RECORDS:
        lines += [f"Gitrecords-Record: {i}" for i in sorted(first_parent_changes, key=str)]
    else:
        lines.append(f"Gitrecords-Records: {len(first_parent_changes)}")
    return title.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"


def merge(
    repo: Repository,
    commit: _git.Oid | str,
    *,
    strategy: str | None = None,
    message: str | None = None,
    author: Any = None,
    mainline: Literal["ours", "theirs"] = "ours",
    name: str | None = None,
) -> MergeOutcome:
    """Merge ``commit`` into the repository's branch, record by record.

    Fast-forwards when the branch is an ancestor of ``commit``; otherwise
    writes a merge commit with both parents (``mainline="theirs"`` makes
    ``commit`` the first parent, as :func:`pull` does). Conflicts raise
    :class:`~gitrecords.merge.MergeConflictError` and change nothing, unless
    ``strategy`` ("ours" or "theirs") resolves them. In a working clone with
    the branch checked out, the files and git's index follow; local edits to
    a file the merge changes raise :class:`~gitrecords.errors.LocalChangesError`.
    """
    _check_strategy(strategy)
    if repo.in_transaction is not None:
        raise GitRecordsError("a merge cannot run inside a transaction")
    check_message(message)
    git = repo.git
    theirs = commit if isinstance(commit, _git.Oid) else _resolve(repo, commit)
    label = name or str(theirs)[:12]
    writer = repo.writer
    with writer.lock():
        for _ in range(MAX_ATTEMPTS):
            ours = repo.tip()
            if ours == theirs:
                return MergeOutcome("up-to-date", str(ours), str(ours), str(theirs), strategy=strategy)
            bases = _merge_bases(repo, ours, theirs) if ours is not None else []
            if ours is not None and bases == [theirs]:
                return MergeOutcome("up-to-date", str(ours), str(ours), str(theirs), strategy=strategy)
            if ours is None or bases == [ours]:
                changes = {
                    p: new for p, _old, new in _git.changed_blobs(git, _tree(repo, ours), _tree(repo, theirs))
                }
                repo.working_clone.check(ours, changes)
                try:  # the fetched objects reach the disk before the branch names them
                    writer.move(ours, theirs, f"gitrecords: fast-forward to {label}")
                except _git.RefMoved:
                    continue
                writer.landed(ours, theirs, changes)
                return MergeOutcome(
                    "fast-forward",
                    str(theirs),
                    str(ours) if ours is not None else None,
                    str(theirs),
                    records=_record_ids(repo, changes),
                    strategy=strategy,
                )
            if not bases:
                raise GitRecordsError(
                    f"{repo.branch} and {label} have no common history; if the remote's history was "
                    "rewritten (a hard delete), fetch it and reset to it, or clone again"
                )
            repo.index.catch_up(ours)
            ours_tree = _tree(repo, ours)
            result: TreeMerge = merge_trees(
                repo,
                _base_tree(repo, ours, theirs, bases),
                ours_tree,
                _tree(repo, theirs),
                strategy=strategy,
                pid_owner=repo.index.lookup_pid,
            )
            if result.unresolved:
                count = len(result.unresolved)
                plural = "s" if count != 1 else ""
                raise MergeConflictError(
                    f"merging {label} into {repo.branch} stopped on {count} conflict{plural}; "
                    "nothing was changed",
                    result.unresolved,
                )
            repo.working_clone.check(ours, result.changes)
            tree = _git.build_tree(git, ours_tree, result.changes)
            _validate_merged(repo, tree, result.changes, f"merging {label} into {repo.branch}")
            parents = [theirs, ours] if mainline == "theirs" else [ours, theirs]
            records_dir = repo.records_dir
            first_parent_changes = _record_ids(
                repo,
                (
                    path
                    for path, _old, _new in _git.changed_blobs(
                        git,
                        _git.subtree(git, _tree(repo, parents[0]), records_dir),
                        _git.subtree(git, _tree(repo, tree), records_dir),
                        records_dir + "/",
                    )
                ),
            )
            resolved = [c for c in result.conflicts if c.resolved]
            text = _message(
                message or f"merge {label} into {repo.branch}", first_parent_changes, strategy, len(resolved)
            )
            try:  # the merged trees and blobs reach the disk before the branch names them
                merge_commit = writer.commit(ours, tree, text, author=author, parents=parents)
            except _git.RefMoved:
                continue
            writer.landed(ours, merge_commit, result.changes)
            return MergeOutcome(
                "merged",
                str(merge_commit),
                str(ours),
                str(theirs),
                records=_record_ids(repo, result.changes),
                merged=result.merged,
                resolved=resolved,
                strategy=strategy,
            )
    raise StaleRevisionError(f"{repo.ref} kept moving under the merge; nothing was merged")


def _validate_merged(repo: Repository, tree: _git.Oid, changes: Any, what: str) -> None:
    """Every record the merge writes (merged field by field, or taken from the other side) must be
    valid against the schemas of the merged tree: a merge never lands what a write would refuse.
    When the merge changes the schema store or ``gitrecords.json``, every record of the merged
    tree is checked, under the merged settings: the other side's stricter schema applies to the
    records of this side too."""
    git = repo.git
    merged = git[tree]
    settings = repo.config_in(merged)
    records_dir = settings["records"]
    store = repo.schema_store(tree)
    if any(p == layout.CONFIG_FILE or p.startswith(settings["schemas"] + "/") for p in changes):
        records = _git.subtree(git, merged, records_dir)
        changes = dict(_git.walk_blobs(git, records, records_dir + "/")) if records is not None else {}
    for path, blob in sorted(changes.items()):
        record_id = layout.id_from_path(path, records_dir)
        if record_id is None or blob is None:
            continue
        try:
            data = layout.loads(_git.read_blob(git, blob), what=f"record {record_id}")
        except InvalidRecordError as err:
            raise InvalidRecordError(f"{what}: {err}; nothing was changed") from None
        if not isinstance(data, dict) or layout.is_tombstone(data):
            continue
        schema_ref = data.get("$schema", settings.get("default_schema"))
        if schema_ref is None:
            continue
        try:
            error = best_match(store.iter_errors(data, schema_ref))
        except SchemaError as err:
            raise SchemaError(f"{what}: record {record_id} ({path}): {err}; nothing was changed") from None
        if error is not None:
            raise InvalidRecordError(
                f"{what}: record {record_id} ({path}) would not be valid at {pointer(error)}: "
                f"{error.message}; nothing was changed"
            )


def _resolve(repo: Repository, revision: str) -> _git.Oid:
    proc = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    if proc.returncode != 0:
        raise GitRecordsError(f"{revision!r} is not a commit in {repo.path}")
    return _git.Oid(hex=proc.stdout.strip())


def pull(
    repo: Repository,
    remote: str = "origin",
    branch: str | None = None,
    *,
    strategy: str | None = None,
    message: str | None = None,
    author: Any = None,
) -> MergeOutcome:
    """Fetch ``branch`` (default: the repository's branch) from ``remote`` and merge it.

    Works on bare repositories and working clones. Fast-forwards when it
    can; otherwise merges record by record into a merge commit whose first
    parent is the remote's tip (see the module docstring). Conflicts raise
    :class:`~gitrecords.merge.MergeConflictError` and leave the repository
    as it was, unless ``strategy`` resolves them.

    A URL's user name and password never reach the merge commit's message or
    any error: they are removed as git removes them (:func:`shown_url`).
    """
    _check_strategy(strategy)
    check_message(message)
    branch = branch or repo.branch
    label = f"{remote}/{branch}" if _is_named_remote(repo, remote) else f"{branch} of {shown_url(remote)}"
    with _fetched(repo, remote, branch) as fetched:
        return merge(
            repo,
            fetched,
            strategy=strategy,
            message=message or f"merge {label} into {repo.branch}",
            author=author,
            mainline="theirs",
            name=label,
        )


def remote_url(repo: Repository, remote: str = "origin") -> str | None:
    """The URL of the configured remote ``remote`` (as configured, credentials included: show it
    through :func:`shown_url`); None when there is no such remote."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", remote):
        return None
    proc = _run(repo, "config", "--get", f"remote.{remote}.url")
    url = proc.stdout.strip() if proc.returncode == 0 else ""
    return url or None


def prune_fetch_refs(repo: Repository) -> list[str]:
    """Remove the private refs of fetches whose process is gone (killed in the middle of a pull or
    a follow: each fetch removes its own ref when it ends); returns the refs removed."""
    proc = _run(repo, "for-each-ref", "--format=%(refname)", FETCH_REFS)
    removed = []
    for ref in proc.stdout.split():
        pid = ref.rsplit("/", 1)[-1].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if _run(repo, "update-ref", "-d", ref).returncode == 0:
            removed.append(ref)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def follow(repo: Repository, remote: str = "origin", branch: str | None = None) -> MergeOutcome:
    """Bring a read replica's branch to ``remote``'s: fetch, then fast-forward.

    A replica never writes, so the remote's tip always contains its own: the
    branch fast-forwards (through the write path, so the working clone's files
    and every derived index follow) or is already up to date.

    A hard delete on the remote rewrites its history: the records its
    ``purged.txt`` newly lists (and no longer has) are then hard-deleted here
    too, the same rewrite of the same commits, which gives the remote's
    commits back; the branch then moves to the remote's tip (status
    ``"realigned"``), and the purged content is gone from this repository's
    commits, refs, object store and indexes as it is from the remote's.

    When the two have diverged otherwise (someone wrote to the replica),
    nothing moves and :class:`GitRecordsError` says how to realign the replica
    by hand: a replica never merges and never throws its own commits away.
    """
    branch = branch or repo.branch
    label = f"{remote}/{branch}" if _is_named_remote(repo, remote) else f"{branch} of {shown_url(remote)}"
    with _fetched(repo, remote, branch) as fetched:
        ours = repo.tip()
        if ours is not None and ours != fetched and _merge_bases(repo, ours, fetched) != [ours]:
            realigned = _follow_hard_delete(repo, ours, fetched, label)
            if realigned is not None:
                return realigned
            raise GitRecordsError(
                f"{repo.branch} has diverged from {label} (commits written on the replica, or a "
                f"history rewrite on the primary); a replica never merges: realign it with "
                f"git fetch --force {shown_url(remote)} {branch}:{repo.branch}, or clone again"
            )
        return merge(repo, fetched, mainline="theirs", name=label)


def _follow_hard_delete(
    repo: Repository, ours: _git.Oid, theirs: _git.Oid, label: str
) -> MergeOutcome | None:
    """Follow a hard delete on the remote (see :func:`follow`); None when the branches diverged
    for another reason, and ``ours`` is then as it was but for the records purged there.

    The remote's ``purged.txt`` is its word that those records were hard-deleted: a record it
    lists but still has is not purged here. This repository's own hard delete of them rewrites
    the same commits into the same commits (a rewrite keeps everything of a commit but the
    purged files and a signature), so the remote's history then holds this branch's: proved
    by ancestry before the branch moves, never assumed."""
    from .purge import hard_delete

    git = repo.git
    writer = repo.writer
    with imports_excluded(repo.git_dir, writer.lock_wait), writer.lock():
        if repo.tip() != ours:
            return None  # another process is following too: the next fetch sees what it did
        their_tree = _git.tree_of(git, theirs)
        our_tree = _git.tree_of(git, ours)
        newly = writer.purged(their_tree).ids - writer.purged(our_tree).ids
        gone = sorted(
            uuid.UUID(i)
            for i in newly
            if _git.entry_id(their_tree, repo.path_for(i)) is None
            and _git.entry_id(our_tree, repo.path_for(i)) is not None
        )
        if gone:
            hard_delete(repo, gone, message=f"follow the hard delete on {label}", author=_REPLICA_AUTHOR)
        # the rewritten branch, and on it the commits that log the purges here: this one's, or
        # those of an earlier follow that stopped before the branch moved (local edits in the way)
        logged = repo.tip()
        assert logged is not None
        rewritten = _below_replica_logs(repo, logged)
        if rewritten == logged or not _git.is_ancestor(git, rewritten, theirs):
            return None
        changes = {
            path: new for path, _old, new in _git.changed_blobs(git, _tree(repo, logged), _tree(repo, theirs))
        }
        repo.working_clone.check(logged, changes)
        writer.move(logged, theirs, f"gitrecords: follow the rewritten history of {label}")
        writer.landed(logged, theirs, changes)
        return MergeOutcome(
            "realigned", str(theirs), str(ours), str(theirs), records=_record_ids(repo, changes)
        )


#: the author of the commit a replica makes to log a hard delete it follows (the branch moves past
#: it to the remote's own at once: no branch keeps it)
_REPLICA_AUTHOR = ("gitrecords replica", "gitrecords@localhost")


def _below_replica_logs(repo: Repository, tip: _git.Oid) -> _git.Oid:
    """``tip``, or the first commit below the commits a replica made to log the hard deletes it
    followed (by :data:`_REPLICA_AUTHOR`, changing ``purged.txt`` alone)."""
    git = repo.git
    while True:
        commit = git[tip]
        parents = _git.commit_parents(git, tip)
        if (commit.author.name, commit.author.email) != _REPLICA_AUTHOR or len(parents) != 1:
            return tip
        changed = [
            path for path, _old, _new in _git.changed_blobs(git, _tree(repo, parents[0]), _tree(repo, tip))
        ]
        if changed != [PURGED_FILE]:
            return tip
        tip = parents[0]


_REJECTED = {
    "non-fast-forward": "{remote} has commits that {branch} does not have: run 'gitrecords pull{args}' first",
    "fetch first": "{remote} has commits that {branch} does not have: run 'gitrecords pull{args}' first",
    "stale info": "{remote} changed since it was last fetched: run 'gitrecords pull{args}' first",
}


def push(repo: Repository, remote: str = "origin", branch: str | None = None) -> PushResult:
    """Push the repository's branch to ``branch`` (default: the same name) of ``remote``.

    Never forces: when the remote has commits this repository does not have,
    :class:`PushRejectedError` says to pull first. The result and the errors
    show ``remote`` without a URL's user name and password (:func:`shown_url`).
    """
    branch = branch or repo.branch
    _check_names(repo, remote, branch)
    shown = shown_url(remote)
    local = repo.tip()
    if local is None:
        raise GitRecordsError(f"nothing to push: branch {repo.branch!r} has no commits")
    proc = _run(repo, "push", "--porcelain", remote, f"{repo.ref}:refs/heads/{branch}")
    line = next((x for x in proc.stdout.splitlines() if f":refs/heads/{branch}\t" in x), None)
    if line is None:
        raise RepositoryError(f"git push {shown} failed: {_reason(proc.stderr, remote)}")
    flag, _refs, summary = line.split("\t", 2)
    if flag == "=":
        return PushResult("up-to-date", shown, branch, str(local), str(local))
    if flag in (" ", "*") and proc.returncode == 0:
        previous = str(_resolve(repo, summary.split("..")[0])) if ".." in summary else None
        return PushResult("created" if flag == "*" else "pushed", shown, branch, str(local), previous)
    reason = _redacted(summary.strip(), remote)
    match = re.search(r"\(([^)]*)\)", reason)
    key = match[1] if match else reason
    args = "" if (remote, branch) == ("origin", repo.branch) else f" {shown} {branch}"
    if key in _REJECTED:
        text = _REJECTED[key].format(remote=f"{shown}/{branch}", branch=repo.branch, args=args)
    else:
        remote_lines = [
            _redacted(x[len("remote: ") :].strip(), remote)
            for x in proc.stderr.splitlines()
            if x.startswith("remote: ")
        ]
        said = "; ".join(x for x in remote_lines if x)
        text = f"{reason}{': ' + said if said else ''}"
    raise PushRejectedError(f"push to {shown} rejected: {text}")


# -- the merge driver -----------------------------------------------------------------------------


def driver_command(executable: str | None = None) -> str:
    """The command git runs to merge a record file: this Python's gitrecords, by absolute path."""
    python = shlex.quote(executable or sys.executable)
    return f"{python} -m gitrecords.cli merge-driver %O %A %B %P"


def base_driver_command(command: str) -> str | None:
    """The command of git's inner merges for a driver ``command``: the same with
    ``--virtual-base``; None when ``command`` is not ``gitrecords merge-driver``."""
    words = command.split(" ")
    if "merge-driver" not in words:
        return None
    at = words.index("merge-driver") + 1
    return " ".join([*words[:at], "--virtual-base", *words[at:]])


def install_merge_driver(repo: Repository, command: str | None = None) -> list[str]:
    """Make plain ``git merge``/``git pull`` merge record files through gitrecords.

    Writes ``merge.gitrecords.name`` and ``merge.gitrecords.driver`` into the
    repository's git config, and the attribute line
    ``<records>/**/*.json merge=gitrecords`` into ``.gitattributes`` in a
    working clone (commit it to share it), or ``info/attributes`` in a bare
    repository. Returns the files written.

    git also merges two merge bases into a virtual one (criss-cross
    histories) with the driver that ``merge.gitrecords.recursive`` names:
    ``gitrecords-base`` (the same command with ``--virtual-base``), or git's
    ``binary`` (the bases' common ancestor) for a ``command`` of another kind.
    With the driver itself there, a spot the bases disagree on kept one base's
    side, and the other side won the real merge without a conflict.
    """
    command = command or driver_command()
    base_command = base_driver_command(command)
    settings = [
        (f"merge.{DRIVER_NAME}.name", DRIVER_DESCRIPTION),
        (f"merge.{DRIVER_NAME}.driver", command),
        (f"merge.{DRIVER_NAME}.recursive", BASE_DRIVER_NAME if base_command else "binary"),
    ]
    if base_command:
        settings += [
            (f"merge.{BASE_DRIVER_NAME}.name", BASE_DRIVER_DESCRIPTION),
            (f"merge.{BASE_DRIVER_NAME}.driver", base_command),
        ]
    for key, value in settings:
        proc = _run(repo, "config", key, value)
        if proc.returncode != 0:
            raise RepositoryError(f"git config {key} failed: {_reason(proc.stderr)}")
    line = f"{repo.records_dir}/**/*.json merge={DRIVER_NAME}"
    workdir = repo.git.workdir
    target = (
        Path(workdir) / ".gitattributes"
        if workdir and not repo.bare
        else repo.git_dir / "info" / "attributes"
    )
    existing = target.read_text("utf-8") if target.exists() else ""
    if line not in existing.splitlines():
        target.parent.mkdir(parents=True, exist_ok=True)
        separator = "" if not existing or existing.endswith("\n") else "\n"
        target.write_text(existing + separator + line + "\n", "utf-8")
    return [str(target), str(repo.git_dir / "config")]
