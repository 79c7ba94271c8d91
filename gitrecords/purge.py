"""Hard delete: rewrite history so that a record's content is gone for good.

Every commit reachable from any ref (branches, tags, remote-tracking refs,
notes, stash) or a detached HEAD is rewritten without the record's file;
commits whose only change was that file are dropped. Commit and tag objects
are rewritten byte for byte except for their ``tree``/``parent``/``object``
lines (signatures become invalid and are removed), so authors, dates and
messages are kept and every other record keeps exactly the same blobs. A commit
on the rewritten branch appends the purged ids to ``purged.txt``; then all refs
move together in one locked reference transaction, compare-and-swap against
the values read at the start, so a crash leaves every ref as it was or every
ref purged and logged. Then reflogs are expired, the unreachable objects are
deleted and the derived index is updated.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pygit2
from pygit2.enums import FileMode, ObjectType

from . import _git
from .errors import NoResultFound, StaleRevisionError

if TYPE_CHECKING:
    from .repository import Repository

_TREE_LINE = re.compile(rb"^tree [0-9a-f]{40}\n", re.M)
_PARENT_LINES = re.compile(rb"^parent [0-9a-f]{40}\n", re.M)
_OBJECT_LINE = re.compile(rb"^object [0-9a-f]{40}\n")


def _strip_signature(header: bytes) -> bytes:
    lines = header.split(b"\n")
    kept: list[bytes] = []
    skipping = False
    for line in lines:
        if line.startswith((b"gpgsig ", b"gpgsig-sha256 ")):
            skipping = True
            continue
        if skipping and line.startswith(b" "):
            continue
        skipping = False
        kept.append(line)
    return b"\n".join(kept)


def _rewrite_commit_raw(raw: bytes, tree: pygit2.Oid, parents: list[pygit2.Oid]) -> bytes:
    header, sep, message = raw.partition(b"\n\n")
    header = _strip_signature(header) + b"\n"
    header = _PARENT_LINES.sub(b"", header)
    parent_lines = b"".join(b"parent " + str(p).encode() + b"\n" for p in parents)
    header = _TREE_LINE.sub(lambda _m: b"tree " + str(tree).encode() + b"\n" + parent_lines, header, count=1)
    return header[:-1] + sep + message


def purge(
    repo: Repository,
    record_ids: list[uuid.UUID],
    *,
    message: str | None = None,
    author: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    git = repo._git
    paths = [repo.path_for(i) for i in record_ids]
    tip = repo.tip()
    tree = _git.tree_of(git, tip)
    missing = [str(i) for i, p in zip(record_ids, paths, strict=True) if _git.entry_id(tree, p) is None]
    if missing:
        raise NoResultFound(f"record {missing[0]} does not exist")

    refs: dict[str, pygit2.Oid] = {}
    for name in git.references:
        ref = git.references[name]
        if ref.type == pygit2.enums.ReferenceType.DIRECT:
            refs[name] = ref.target
    detached = git.head.target if git.head_is_detached else None
    tips = [_peel_commit(git, oid) for oid in refs.values()]
    if detached is not None:
        tips.append(detached)
    tips = [t for t in dict.fromkeys(tips) if t is not None]

    commit_map: dict[pygit2.Oid, pygit2.Oid] = {}
    odb = git.odb
    purged_blobs: set[pygit2.Oid] = set()
    scratch: list[pygit2.Oid] = []
    memo: dict[tuple[pygit2.Oid, frozenset[tuple[str, ...]]], pygit2.Oid] = {}
    wanted = frozenset(tuple(p.split("/")) for p in paths)

    def strip(tree_id: pygit2.Oid, remove: frozenset[tuple[str, ...]]) -> pygit2.Oid:
        """``tree_id`` without the paths in ``remove``; shared subtrees are rewritten once."""
        key = (tree_id, remove)
        cached = memo.get(key)
        if cached is not None:
            return cached
        tree = git[tree_id]
        builder = None
        deeper: dict[str, set[tuple[str, ...]]] = {}
        for parts in remove:
            if len(parts) > 1:
                deeper.setdefault(parts[0], set()).add(parts[1:])
            elif parts[0] in tree:
                purged_blobs.add(tree[parts[0]].id)
                builder = builder or git.TreeBuilder(tree)
                builder.remove(parts[0])
        for name, rest in deeper.items():
            if name not in tree or tree[name].type != ObjectType.TREE:
                continue
            old = tree[name].id
            new = strip(old, frozenset(rest))
            if new != old:
                builder = builder or git.TreeBuilder(tree)
                if len(git[new]) == 0:
                    scratch.append(new)  # an empty tree, written only to find it is empty
                    builder.remove(name)
                else:
                    builder.insert(name, new, FileMode.TREE)
        result = builder.write() if builder is not None else tree_id
        memo[key] = result
        return result

    def new_tree_for(old: pygit2.Oid) -> pygit2.Oid:
        return strip(old, wanted)

    _git.set_durable(False)  # synced once below, before any ref moves
    commits = list(_git.walk_all(git, tips))
    total = len(commits)
    for done, commit in enumerate(commits, 1):
        old_parents = commit.parent_ids
        parents = [commit_map.get(p, p) for p in old_parents]
        tree_id = new_tree_for(commit.tree_id)
        if tree_id == commit.tree_id and parents == old_parents:
            commit_map[commit.id] = commit.id
        elif (
            len(parents) == 1
            and tree_id == git[parents[0]].tree_id
            and commit.tree_id != git[old_parents[0]].tree_id
        ):
            commit_map[commit.id] = parents[0]  # it only changed the purged records
        else:
            raw = _rewrite_commit_raw(commit.read_raw(), tree_id, parents)
            commit_map[commit.id] = odb.write(ObjectType.COMMIT, raw)
        if progress is not None:
            progress(done, total)

    updates: dict[str, pygit2.Oid] = {}
    for name, target in refs.items():
        new = _map_target(git, target, commit_map)
        if new != target:
            updates[name] = new
    # the purge log (purged.txt) moves with the other refs, in the one transaction: a crash leaves
    # every ref as it was, or every ref rewritten and the purge logged
    rewritten_tip = updates.get(repo.ref, refs[repo.ref])
    updates[repo.ref], log_changes = repo._purge_log_commit(
        rewritten_tip, record_ids, message=message, author=author
    )
    if repo.durable:
        _git.sync_filesystem(repo.git_dir)
    with git.transaction() as tx:
        for name in updates:
            tx.lock_ref(name)
        for name, new in updates.items():
            if git.references[name].target != refs[name]:
                raise StaleRevisionError(f"{name} moved during the hard delete; nothing was changed, retry")
            tx.set_target(name, new, message="gitrecords: hard delete")
    if repo.durable:
        for name in updates:
            if (repo.git_dir / name).exists():  # a loose ref file (else packed)
                _git.fsync_path(repo.git_dir / name)
        for folder in {(repo.git_dir / name).parent for name in updates}:
            if folder.exists():
                _git.fsync_path(folder)
    if detached is not None and commit_map.get(detached, detached) != detached:
        git.set_head(commit_map[detached])

    repo._forget_paths_in_worktree(paths)
    repo._update_worktree(rewritten_tip, log_changes)
    for stale in ("ORIG_HEAD", "FETCH_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD"):
        try:
            os.unlink(repo.git_dir / stale)
        except FileNotFoundError:
            pass
    git_dir = str(repo.git_dir)
    _git.git(git_dir, "reflog", "expire", "--expire=now", "--expire-unreachable=now", "--all")
    # what is now unreachable: the record's blobs (unless another record has the same
    # content), the rewritten commits and the trees they had
    shared = repo.index.blobs_in_use([str(b) for b in purged_blobs], exclude=record_ids)
    exclusive = [b for b in purged_blobs if str(b) not in shared]
    old_objects = [old for old, new in commit_map.items() if old != new]
    old_objects += [old for (old, _paths), new in memo.items() if old != new]
    old_objects += [
        target for name, target in refs.items() if name in updates and git[target].type == ObjectType.TAG
    ]
    root_trees = {git[new].tree_id for new in set(commit_map.values())}
    old_objects += [oid for oid in set(scratch) if oid not in root_trees]
    if any(not _is_loose(repo.git_dir, oid) for oid in exclusive):
        # a packed copy of the content: write the packs again without what is unreachable
        _git.git(git_dir, "repack", "-a", "-d", "-q")
        _git.git(git_dir, "prune", "--expire=now")
    else:
        # loose objects are files: delete exactly those, without walking the whole history
        # (packed old commits and trees hold no record content; the next gc drops them)
        for oid in (*exclusive, *old_objects):
            _unlink_loose(repo.git_dir, oid)
    if _has_commit_graph(repo.git_dir):
        # a commit-graph written by gc still lists the old commits: write it again
        _git.git(git_dir, "commit-graph", "write", "--reachable", "--no-progress")
    if not repo.index.remap(tip, commit_map, record_ids):
        repo.reindex()
    repo.index.sync(updates[repo.ref])


def _has_commit_graph(git_dir: Any) -> bool:
    info = os.path.join(git_dir, "objects", "info")
    return os.path.exists(os.path.join(info, "commit-graph")) or os.path.isdir(
        os.path.join(info, "commit-graphs")
    )


def _unlink_loose(git_dir: Any, oid: pygit2.Oid) -> None:
    text = str(oid)
    try:
        os.unlink(os.path.join(git_dir, "objects", text[:2], text[2:]))
    except FileNotFoundError:
        pass


def _is_loose(git_dir: Any, oid: pygit2.Oid) -> bool:
    text = str(oid)
    return os.path.exists(os.path.join(git_dir, "objects", text[:2], text[2:]))


def _peel_commit(git: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Oid | None:
    obj = git[oid]
    while obj.type == ObjectType.TAG:
        obj = git[obj.target]
    return obj.id if obj.type == ObjectType.COMMIT else None


def _map_target(
    git: pygit2.Repository, target: pygit2.Oid, commit_map: dict[pygit2.Oid, pygit2.Oid]
) -> pygit2.Oid:
    obj = git[target]
    if obj.type == ObjectType.COMMIT:
        return commit_map.get(target, target)
    if obj.type == ObjectType.TAG:
        inner = _map_target(git, obj.target, commit_map)
        if inner == obj.target:
            return target
        raw = _strip_tag_signature(obj.read_raw())
        raw = _OBJECT_LINE.sub(b"object " + str(inner).encode() + b"\n", raw, count=1)
        return git.odb.write(ObjectType.TAG, raw)
    return target


def _strip_tag_signature(raw: bytes) -> bytes:
    marker = b"-----BEGIN PGP SIGNATURE-----"
    index = raw.find(marker)
    return raw[:index] if index >= 0 else raw
