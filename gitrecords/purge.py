"""Hard delete: rewrite history so that a record's content is gone for good.

Every commit reachable from any ref (branches, tags, remote-tracking refs,
notes, every stash entry), a detached HEAD or a linked worktree's HEAD is
rewritten without the record's file; commits whose only change was that file
are dropped. A ref or tag naming a tree is moved to the tree without the file;
one naming a purged blob makes the hard delete refuse before anything is
written, as does a linked worktree that cannot be rewritten. Commit and tag
objects are rewritten byte for byte except for their ``tree``/``parent``/``object``
lines (signatures become invalid and are removed), so authors, dates and
messages are kept and every other record keeps exactly the same blobs. A commit
on the rewritten branch appends the purged ids to ``purged.txt``; then all refs
move together in one locked reference transaction, compare-and-swap against
the values read at the start, so a crash leaves every ref as it was or every
ref purged and logged (a notes ref moves to a notes commit that keys the notes
by the rewritten ids). Then linked worktrees follow (HEAD, index, files), the
stash list (refs/stash's reflog) is written again with the rewritten commits,
the other reflogs are expired, the unreachable objects are deleted and the
derived index is updated.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _git, _pack, layout
from .config import PURGED_FILE, purged_text
from .errors import (
    GitRecordsError,
    HardDeleteRefusedError,
    LocalChangesError,
    NoResultFound,
    RepositoryError,
    StaleRevisionError,
)
from .writer import MAX_TRAILER_RECORDS, check_message, imports_excluded

if TYPE_CHECKING:
    from .storage import Storage as Repository

__all__ = ["HardDeleteRefusedError", "hard_delete", "purge"]

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


def _rewrite_commit_raw(raw: bytes, tree: _git.Oid, parents: list[_git.Oid]) -> bytes:
    header, sep, message = raw.partition(b"\n\n")
    header = _strip_signature(header) + b"\n"
    header = _PARENT_LINES.sub(b"", header)
    parent_lines = b"".join(b"parent " + str(p).encode() + b"\n" for p in parents)
    header = _TREE_LINE.sub(lambda _m: b"tree " + str(tree).encode() + b"\n" + parent_lines, header, count=1)
    return header[:-1] + sep + message


def hard_delete(
    repo: Repository,
    record_ids: list[uuid.UUID],
    *,
    message: str | None = None,
    author: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Purge records from every commit, ref and object store, holding the write lock."""
    if repo.in_transaction is not None:
        raise GitRecordsError("a hard delete cannot run inside a transaction")
    check_message(message)
    shared = _git.common_dir(repo.git)
    if os.path.normpath(shared) != os.path.normpath(str(repo.git.path)):
        # opened in a linked worktree: its git folder holds its HEAD and index, not the objects
        # and refs the rewrite replaces
        raise RepositoryError(
            f"a hard delete rewrites the whole repository: run it there, not in a linked worktree "
            f"(gitrecords --repo {shared.rstrip(os.sep)} --branch {repo.branch} delete --force ...)"
        )
    with imports_excluded(repo.git_dir, repo.writer.lock_wait), repo.writer.lock():
        # local edits to a purged record's file, or to purged.txt (which the hard delete writes),
        # would be lost: refuse, as every write does; in the clone's own work tree whatever
        # branch it has checked out (the rewrite removes the files there too)
        paths = [repo.path_for(i) for i in record_ids]
        repo.working_clone.check(repo.tip(), [*paths, PURGED_FILE])
        repo.working_clone.check_checked_out(paths)
        try:
            purge(repo, record_ids, message=message, author=author, progress=progress)
        finally:
            repo.parsed.clear()  # no copy of a purged record's data stays in memory


def _records_folders(repo: Repository, commits: list[Any]) -> set[str]:
    """The records folders the ``gitrecords.json`` of ``commits`` name, and the branch's; a file
    that cannot be read names none."""
    folders = {repo.records_dir}
    for commit in commits:  # (config_in reads a file once while the commits share it)
        with contextlib.suppress(GitRecordsError):
            folders.add(str(repo.config_in(repo.git[commit.tree_id])["records"]).strip("/"))
    return folders


def _purge_log_commit(
    repo: Repository, base: _git.Oid, record_ids: list[uuid.UUID], *, message: str | None, author: Any
) -> tuple[_git.Oid, dict[str, _git.Oid | None]]:
    """A commit on ``base`` adding the purged ids, with the PIDs they held, to purged.txt, so that
    validation, minters and replicas know of them; the hard delete moves the branch to it with
    the other refs, in one step. Returns the commit and the file it changes (for a working clone)."""
    git = repo.git
    tree = _git.tree_of(git, base)
    repo.index.catch_up(repo.tip())
    added = {i: repo.index.pids_of(i) for i in record_ids}
    new_blob = _git.create_blob(git, purged_text(repo.writer.purged(tree), added))
    new_tree = _git.build_tree(git, tree, {PURGED_FILE: new_blob})
    author_sig, committer_sig = repo.writer.signatures(author)
    if len(record_ids) == 1:
        text = message or f"hard delete record {record_ids[0]}"
    else:
        text = message or f"hard delete {len(record_ids)} records"
    text = (
        text.rstrip("\n")
        + "\n\nGitrecords-Operation: hard-delete\n"
        + "".join(f"Gitrecords-Record: {i}\n" for i in record_ids[:MAX_TRAILER_RECORDS])
    )
    commit = _git.create_commit(git, None, author_sig, committer_sig, text, new_tree, [base])
    return commit, {PURGED_FILE: new_blob}


def purge(
    repo: Repository,
    record_ids: list[uuid.UUID],
    *,
    message: str | None = None,
    author: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    git = repo.git
    paths = [repo.path_for(i) for i in record_ids]
    tip = repo.tip()
    tree = _git.tree_of(git, tip)
    missing = [str(i) for i, p in zip(record_ids, paths, strict=True) if _git.entry_id(tree, p) is None]
    if missing:
        raise NoResultFound(f"record {missing[0]} does not exist")

    refs = _git.direct_refs(git)
    detached = _git.detached_head(git)
    worktrees = _linked_worktrees(repo, paths, refs)  # refuses now if one cannot be rewritten
    peeled = {name: _peel(git, oid) for name, oid in refs.items()}  # what a tag names, in the end
    tips = [oid for kind, oid in peeled.values() if kind == _git.COMMIT]
    if detached is not None:
        tips.append(detached)
    tips += [worktree.head for worktree in worktrees if worktree.head is not None]
    # the stash list is refs/stash's reflog: every entry (a commit whose parents are the commit
    # it was made on, the index as a commit and, with -u, the untracked files) is rewritten; the
    # index and untracked commits are never dropped, so that each entry keeps its shape
    stash_log = _git.read_reflog(git, _STASH)
    stashes = [entry[1] for entry in map(_parse_reflog_line, stash_log) if entry is not None]
    stashes = [oid for oid in dict.fromkeys(stashes) if oid != _ZERO]
    tips += stashes
    keep_shape = {parent for oid in stashes for parent in _git.commit_parents(git, oid)[1:]}

    tips = list(dict.fromkeys(tips))
    commit_map: dict[_git.Oid, _git.Oid] = {}
    dropped: set[_git.Oid] = set()  # the commits that only changed the purged records
    purged_blobs: set[_git.Oid] = set()
    memo: dict[tuple[_git.Oid, frozenset[tuple[bytes, ...]]], _git.Oid] = {}
    pack = _pack.PackWriter(str(repo.git_dir / "objects" / "pack"), _delta_depth(git))
    reader = _pack.PackReader(str(repo.git_dir / "objects" / "pack"))

    def strip(tree_id: _git.Oid, remove: frozenset[tuple[bytes, ...]], slot: tuple[bytes, ...]) -> _git.Oid:
        """``tree_id`` without the paths in ``remove``; shared subtrees are rewritten once.

        Works on the raw tree: an entry is ``mode SP name NUL id``, sorted by name, so removing
        a file or replacing a subtree's id is a splice of bytes.
        """
        key = (tree_id, remove)
        cached = memo.get(key)
        if cached is not None:
            return cached
        found = reader.read(tree_id.raw)
        raw = found[1] if found is not None and found[0] == _pack.TREE else _git.read_object(git, tree_id)[1]
        new_raw = raw
        deeper: dict[bytes, set[tuple[bytes, ...]]] = {}
        for parts in remove:
            if len(parts) > 1:
                deeper.setdefault(parts[0], set()).add(parts[1:])
                continue
            found = _find_entry(new_raw, parts[0])
            if found is not None:
                start, end, _mode = found
                purged_blobs.add(_git.oid_from_raw(new_raw[end - 20 : end]))
                new_raw = new_raw[:start] + new_raw[end:]
        for name, rest in deeper.items():
            found = _find_entry(new_raw, name)
            if found is None or found[2] != b"40000":
                continue
            start, end, _mode = found
            old = _git.oid_from_raw(new_raw[end - 20 : end])
            new = strip(old, frozenset(rest), (*slot, name))
            if new == _git.EMPTY_TREE:
                new_raw = new_raw[:start] + new_raw[end:]
            elif new != old:
                new_raw = new_raw[: end - 20] + new.raw + new_raw[end:]
        if new_raw is raw:
            result = tree_id
        elif not new_raw and slot:
            result = _git.EMPTY_TREE  # the parent drops the entry: git keeps no empty folders
        else:
            result = _git.oid_from_raw(pack.add(_pack.TREE, new_raw, slot))
        memo[key] = result
        return result

    _git.set_durable(False)  # synced once below, before any ref moves
    trees: dict[_git.Oid, _git.Oid] = {}  # commit (old or rewritten) -> its tree

    def tree_of(commit_id: _git.Oid) -> _git.Oid:
        found = trees.get(commit_id)
        return found if found is not None else _git.commit_tree(git, commit_id)

    try:
        commits = list(_git.walk_all(git, tips))
        # the record's file wherever a commit's own gitrecords.json put the records folder: a
        # commit from before the folder moved has the file at the old place
        wanted = frozenset(
            tuple(part.encode() for part in layout.path_for(record_id, folder).split("/"))
            for folder in _records_folders(repo, commits)
            for record_id in record_ids
        )
        total = len(commits)
        for done, commit in enumerate(commits, 1):
            old_parents = commit.parent_ids
            # two parents that only changed the purged records become one: git never writes a
            # commit with the same parent twice
            parents = list(dict.fromkeys(commit_map.get(p, p) for p in old_parents))
            old_tree = commit.tree_id
            trees[commit.id] = old_tree
            tree_id = strip(old_tree, wanted, ())
            if tree_id == old_tree and parents == old_parents:
                commit_map[commit.id] = commit.id
            elif (
                len(parents) == 1
                and tree_id == tree_of(parents[0])
                and (old_tree != tree_of(old_parents[0]) or len(old_parents) > 1)
                and commit.id not in keep_shape
            ):
                # it only changed the purged records, or merged branches that only did
                commit_map[commit.id] = parents[0]
                dropped.add(commit.id)
            else:
                raw = _rewrite_commit_raw(commit.read_raw(), tree_id, parents)
                new = _git.oid_from_raw(pack.add(_pack.COMMIT, raw))
                trees[new] = tree_id
                commit_map[commit.id] = new
            if progress is not None:
                progress(done, total)
        # a ref or tag may name a tree, any folder of a commit's tree: the record's file goes from
        # every suffix of its path (records/ab/cd/<id>.json, ab/cd/<id>.json, cd/<id>.json, ...)
        anywhere = frozenset(parts[n:] for parts in wanted for n in range(len(parts)))
        tree_map = {oid: strip(oid, anywhere, ()) for kind, oid in peeled.values() if kind == _git.TREE}
        # a ref or tag naming one of the record's blobs cannot be rewritten: refuse, before any ref moves
        for name, (kind, oid) in sorted(peeled.items()):
            if kind == _git.BLOB and oid in purged_blobs:
                raise HardDeleteRefusedError(
                    f"{name} names {oid}, the content of a record to purge: delete that ref first "
                    "(nothing was changed)"
                )
        # the new trees and commits go into the repository as one pack, before anything refers to them
        pack.finish()
    except BaseException:
        pack.abort()
        raise
    finally:
        reader.close()

    updates: dict[str, _git.Oid] = {}
    tag_map: dict[_git.Oid, _git.Oid] = {}  # the rewritten tag objects
    for name, target in refs.items():
        new = _map_target(git, target, commit_map, tree_map, tag_map)
        if new != target:
            updates[name] = new
    # the purge log (purged.txt) moves with the other refs, in the one transaction: a crash leaves
    # every ref as it was, or every ref rewritten and the purge logged
    rewritten_tip = updates.get(repo.ref, refs[repo.ref])
    updates[repo.ref], log_changes = _purge_log_commit(
        repo, rewritten_tip, record_ids, message=message, author=author
    )
    # notes are keyed by the id of the object they annotate: they move to the rewritten objects,
    # in a notes commit by the purge log's author, in the same transaction
    renamed = {old: new for old, new in commit_map.items() if old != new and old not in dropped}
    renamed.update(tag_map)
    renamed.update({old: new for old, new in tree_map.items() if old != new})
    renamed.update({old: new for (old, remove), new in memo.items() if remove == wanted and old != new})
    gone = dropped | purged_blobs
    for name in refs:
        if name.startswith("refs/notes/") and peeled[name][0] == _git.COMMIT:
            notes = updates.get(name, refs[name])
            moved = _move_notes(git, notes, renamed, gone, identity_of=updates[repo.ref])
            if moved is not None:
                updates[name] = moved
    if repo.durable:
        _git.sync_filesystem(repo.git_dir)
    # a hard delete killed once the refs moved leaves a note: the next write brings the clone's
    # files and index to the new branch (the old tree will be gone: the blobs before are noted)
    old_tree = _git.tree_of(git, refs[repo.ref])
    clone_changes = {**dict.fromkeys(paths), **log_changes}
    repo.working_clone.journal(
        None, clone_changes, before={path: _git.entry_id(old_tree, path) for path in clone_changes}
    )
    try:
        _git.move_refs(git, updates, refs, "gitrecords: hard delete")
    except _git.RefMoved as moved:
        message = f"{moved} moved during the hard delete; nothing was changed, retry"
        raise StaleRevisionError(message) from None
    if repo.durable:
        for name in updates:
            repo.writer.sync_ref(name)
    if detached is not None and commit_map.get(detached, detached) != detached:
        _git.set_detached_head(git, commit_map[detached])
    for worktree in worktrees:
        _rewrite_linked_worktree(repo, worktree, refs, updates, commit_map)
    keep_stash = bool(stash_log)
    if stash_log:
        # the stash's entries with the rewritten commits, in place of the old ones (and of the line
        # the ref transaction added); if that cannot be written, the stash goes with the other reflogs
        mapped = [_map_reflog_line(line, commit_map) for line in stash_log]
        if mapped != stash_log:
            newest = updates.get(_STASH, refs.get(_STASH))
            keep_stash = _git.write_reflog(git, _STASH, mapped, newest, repo.durable)

    repo.working_clone.forget(paths)
    repo.working_clone.update(log_changes)
    for stale in ("ORIG_HEAD", "FETCH_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD"):
        try:
            os.unlink(repo.git_dir / stale)
        except FileNotFoundError:
            pass
    git_dir = str(repo.git_dir)
    expire = ("reflog", "expire", "--expire=now", "--expire-unreachable=now")
    if keep_stash:  # every reflog but the stash list
        names = [name for name in _git.reflog_names(git) if name != _STASH]
        for start in range(0, len(names), 1000):
            _git.git(git_dir, *expire, *names[start : start + 1000])
    else:
        _git.git(git_dir, *expire, "--all")
    # what is now unreachable: the record's blobs (unless something else has the same content),
    # the rewritten commits, the trees they had and the rewritten tags. One walk of what the refs,
    # HEADs and indexes reach says which of them really are (it also finds a blob that another
    # record, on any branch, or any other file shares); the packs are copied meanwhile
    old_objects = [old for old, new in commit_map.items() if old != new]
    old_objects += [old for (old, _paths), new in memo.items() if old != new]
    old_objects += list(tag_map)
    walk = _git.git_background(
        git_dir, "rev-list", "--objects", "--no-object-names", "--all", "--reflog", "--indexed-objects"
    )
    _delete_objects(
        repo, {b.raw for b in purged_blobs}, {o.raw for o in old_objects if not pack.known(o.raw)}, walk
    )
    if _has_commit_graph(repo.git_dir):
        # a commit-graph written by gc still lists the old commits: write it again
        _git.git(git_dir, "commit-graph", "write", "--reachable", "--no-progress")
    repo.writer.rewritten(tip, commit_map, record_ids)


_ENTRY_FINDERS: dict[bytes, re.Pattern[bytes]] = {}


def _find_entry(raw: bytes, name: bytes) -> tuple[int, int, bytes] | None:
    """(start, end, mode) of the entry ``name`` in a raw tree, or None.

    One regular expression walks the entries (``mode SP name NUL`` and a 20-byte id) from the
    start, in C, and stops at the one named ``name``: a search for the name alone could match
    inside an id.
    """
    found = _find_in_fan_out(raw, name)
    if found is not None:
        return found
    finder = _ENTRY_FINDERS.get(name)
    if finder is None:
        finder = re.compile(
            rb"(?:[0-7]+ [^\x00]+\x00.{20})*?([0-7]+) " + re.escape(name) + rb"\x00.{20}", re.S
        )
        if len(_ENTRY_FINDERS) < 4096:
            _ENTRY_FINDERS[name] = finder
    match = finder.match(raw)
    if match is None:
        return None
    return match.start(1), match.end(), match.group(1)


def _find_in_fan_out(raw: bytes, name: bytes) -> tuple[int, int, bytes] | None:
    """:func:`_find_entry` for a fan-out tree (``records/`` and its folders), where every entry is
    a folder whose name is as long as ``name``, so every entry is as long: a few strided slices
    check that (each entry ``40000 ``, a name without NUL, NUL, then the id), then a binary
    search finds the name. None when the tree is not of that shape or has no such entry (the
    caller then walks the entries)."""
    size = len(name)
    width = 27 + size
    count, rest = divmod(len(raw), width)
    if rest or not count:
        return None
    for column, expected in enumerate(b"40000 "):
        if raw[column::width] != bytes((expected,)) * count:
            return None
    if raw[6 + size :: width] != b"\x00" * count:
        return None
    if any(b"\x00" in raw[6 + column :: width] for column in range(size)):
        return None
    lo, hi = 0, count
    while lo < hi:  # folder names of one length sort as plain bytes
        mid = (lo + hi) // 2
        here = raw[mid * width + 6 : mid * width + 6 + size]
        if here < name:
            lo = mid + 1
        elif here > name:
            hi = mid
        else:
            return mid * width, (mid + 1) * width, b"40000"
    return None


def _delta_depth(git: _git.GitRepository) -> int:
    """The longest delta chain the rewritten trees may form: the repository's ``pack.depth``
    (gitrecords sets a short one so that old revisions read fast), else git's default, 50."""
    depth = _git.config_int(git, "pack.depth")
    return 50 if depth is None else max(0, min(depth, 4095))


def _delete_objects(
    repo: Repository, content: set[bytes], others: set[bytes], walk: Callable[[], bytes]
) -> None:
    """Delete the purged blobs ``content`` and the old commits, trees and tags ``others`` from
    the object store, except those that ``walk`` (the output of a running ``git rev-list
    --objects``) lists as still reachable.

    Loose objects are files: they are unlinked. A pack that holds purged content is copied
    without the unreachable ``content`` and ``others`` (entries reused byte for byte, without a
    walk or a delta search, much faster than ``git repack -a -d``), and the copy replaces it.
    The copies are written while the walk runs, as if none of the objects were reachable, and
    written again in the rare case that some are. ``others`` in packs without content stay
    until the next ``git gc``: they hold no record content.
    """
    git_dir = repo.git_dir
    pack_dir = git_dir / "objects" / "pack"
    affected, special = _packs_holding(pack_dir, content)
    pending: list[_pack.PendingPack] = []
    try:
        try:
            if not special:
                pending = _copy_packs(repo, affected, content | others)
        except BaseException:
            with contextlib.suppress(Exception):
                walk()  # no process left behind
            raise
        reachable = set(walk().split())
        exclusive = {oid for oid in content if oid.hex().encode() not in reachable}
        unused = {oid for oid in others if oid.hex().encode() not in reachable}
        if exclusive != content or unused != others:
            for copy in pending:
                copy.discard()
            affected, special = _packs_holding(pack_dir, exclusive)
            pending = [] if special else _copy_packs(repo, affected, exclusive | unused)
        objects = git_dir / "objects"
        loose = _loose_objects(objects)
        for oid in (*exclusive, *unused):
            if oid in loose:
                os.unlink(objects / oid[:1].hex() / oid[1:].hex())
        if special:
            # kept, promisor or cruft packs, a multi-pack-index, an old index format: let git do it
            _git.git(str(git_dir), "repack", "-a", "-d", "-q", "--window=0")
            _git.git(str(git_dir), "prune", "--expire=now")
            return
        written = [copy.install() for copy in pending]
    finally:
        for copy in pending:
            copy.discard()
    if repo.durable:
        # the copies reach the disk before the packs they replace go
        for path in written:
            _git.fsync_path(path)
            _git.fsync_path(path[: -len(".pack")] + ".idx")
        _git.fsync_path(pack_dir)
    for idx, _index in affected:
        stem = idx[: -len(".idx")]
        if stem + ".pack" in written:
            continue  # the same content (cannot happen: each affected pack loses an object)
        for suffix in (".idx", ".pack", ".rev", ".bitmap"):
            try:
                os.unlink(stem + suffix)
            except FileNotFoundError:
                pass
    if written and repo.durable:
        _git.fsync_path(pack_dir)
    if written and (git_dir / "objects" / "info" / "packs").exists():
        # the list of packs for dumb HTTP clients names the deleted packs (git repack updated it)
        _git.git(str(git_dir), "update-server-info")


def _packs_holding(pack_dir: Path, content: set[bytes]) -> tuple[list[tuple[str, _pack.PackIndex]], bool]:
    """The packs (index path, index) that hold any of ``content``, and whether git must do the
    job instead (a kept, promisor or cruft pack among them, an index this code does not read,
    a multi-pack-index)."""
    affected: list[tuple[str, _pack.PackIndex]] = []
    special = False
    for idx in sorted(pack_dir.glob("pack-*.idx")) if content else ():
        try:
            index = _pack.read_index(str(idx))
        except _pack.UnsupportedPack:
            special = True  # it may hold the content
            continue
        if any(index.find(oid) >= 0 for oid in content):
            affected.append((str(idx), index))
            if any(idx.with_suffix(s).exists() for s in (".keep", ".promisor", ".mtimes")):
                special = True
    if affected and (pack_dir / "multi-pack-index").exists():
        special = True
    return affected, special


def _copy_packs(
    repo: Repository, affected: list[tuple[str, _pack.PackIndex]], drop: set[bytes]
) -> list[_pack.PendingPack]:
    git = repo.git

    def read(oid: bytes) -> tuple[int, bytes]:
        return _git.read_object(git, _git.oid_from_raw(oid))

    pending: list[_pack.PendingPack] = []
    try:
        for idx, index in affected:
            pending.append(_pack.copy_without(idx[: -len(".idx")] + ".pack", index, drop, read))
    except BaseException:
        for copy in pending:
            copy.discard()
        raise
    return pending


def _has_commit_graph(git_dir: Any) -> bool:
    info = os.path.join(git_dir, "objects", "info")
    return os.path.exists(os.path.join(info, "commit-graph")) or os.path.isdir(
        os.path.join(info, "commit-graphs")
    )


def _loose_objects(objects: Path) -> set[bytes]:
    """The ids of the loose objects (a listing of 256 folders costs less than an unlink per old
    object when most of them are packed)."""
    found: set[bytes] = set()
    for folder in os.scandir(objects):
        if len(folder.name) == 2 and folder.is_dir():
            prefix = folder.name
            for entry in os.scandir(folder.path):
                if len(entry.name) == 38:
                    try:
                        found.add(bytes.fromhex(prefix + entry.name))
                    except ValueError:
                        pass
    return found


_HEX_ID = re.compile(r"[0-9a-f]{40}")
_IDENTITY_LINES = re.compile(rb"^(?:author|committer) .*\n", re.M)


def _move_notes(
    git: _git.GitRepository,
    notes: _git.Oid,
    renamed: dict[_git.Oid, _git.Oid],
    gone: set[_git.Oid],
    identity_of: _git.Oid,
) -> _git.Oid | None:
    """A commit on the notes commit ``notes`` whose tree keys each note by the rewritten id of the
    object it annotates, without the notes of ``gone`` objects (the dropped commits, the purged
    blobs); None when no note moves. The tree keeps each note's fan-out (``ab/cdef...``) and any
    file that is not a note; the commit has the author and committer of ``identity_of``."""
    tree = _git.tree_of(git, notes)
    if tree is None:
        return None
    changes: dict[str, _git.Oid | None] = {}
    added: dict[str, _git.Oid] = {}
    kept: set[str] = set()
    for path, blob in _git.walk_blobs(git, tree):
        key = path.replace("/", "")
        if _HEX_ID.fullmatch(key) is None:
            continue  # not a note
        annotated = _git.oid_from_hex(key)
        if annotated in gone:
            changes[path] = None
        elif annotated in renamed:
            changes[path] = None
            new_key, start, parts = str(renamed[annotated]), 0, []
            for part in path.split("/"):  # the same fan-out
                parts.append(new_key[start : start + len(part)])
                start += len(part)
            added["/".join(parts)] = blob
        else:
            kept.add(key)
    for path, blob in added.items():
        if path.replace("/", "") not in kept:  # a note already on that object wins
            changes[path] = blob
    if not changes:
        return None
    new_tree = _git.build_tree(git, tree, changes)
    identity = b"".join(_IDENTITY_LINES.findall(_git.read_object(git, identity_of)[1]))
    raw = b"tree %s\nparent %s\n%s\nNotes moved to the commits rewritten by a hard delete\n" % (
        str(new_tree).encode(),
        str(notes).encode(),
        identity,
    )
    return _git.write_object(git, _git.COMMIT, raw)


_STASH = "refs/stash"
_ZERO = _git.oid_from_hex("0" * 40)


_REFLOG_LINE = re.compile(rb"([0-9a-f]{40}) ([0-9a-f]{40}) (.*)", re.S)


def _parse_reflog_line(line: bytes) -> tuple[_git.Oid, _git.Oid, bytes] | None:
    """(old, new, the rest) of a reflog line ``old new identity time zone TAB message``."""
    match = _REFLOG_LINE.fullmatch(line)
    if match is None:
        return None
    return _git.oid_from_hex(match[1].decode()), _git.oid_from_hex(match[2].decode()), match[3]


def _map_reflog_line(line: bytes, commit_map: dict[_git.Oid, _git.Oid]) -> bytes:
    """The reflog line naming the rewritten commits (a line it cannot read stays as it is)."""
    entry = _parse_reflog_line(line)
    if entry is None:
        return line
    old, new, rest = entry
    return b" ".join((str(commit_map.get(old, old)).encode(), str(commit_map.get(new, new)).encode(), rest))


def _linked_worktrees(
    repo: Repository, paths: list[str], refs: dict[str, _git.Oid]
) -> list[_git.LinkedWorktree]:
    """The linked worktrees (``git worktree add``), whose HEADs, indexes and files the hard delete
    rewrites as well. Raises, before anything is written, when one cannot be: its folder is gone,
    or it has local changes to a file that the hard delete changes there."""
    git = repo.git
    worktrees = _git.linked_worktrees(git)
    for worktree in worktrees:
        if not worktree.exists:
            raise HardDeleteRefusedError(
                f"the linked worktree {worktree.path} is missing, and its HEAD and index may hold "
                "the record: restore it or run `git worktree prune` (nothing was changed)"
            )
        private = _worktree_refs(worktree)
        if private:
            raise HardDeleteRefusedError(
                f"the linked worktree {worktree.path} has refs of its own ({', '.join(private[:3])}), "
                "which a hard delete cannot rewrite with the others: delete them first ('git bisect "
                f"reset' there, or 'git -C {worktree.path} update-ref -d {private[0]}'; nothing was changed)"
            )
        head = _worktree_commit(worktree, refs)
        tree = _git.tree_of(git, head)
        opened = _git.open_worktree(worktree)
        for path in [*paths, PURGED_FILE] if worktree.branch == repo.ref else paths:
            committed = _git.entry_id(tree, path)
            if _git.staged_blob(opened, path) != committed:
                raise LocalChangesError(
                    f"{path} has staged changes in the linked worktree {worktree.path}; "
                    "commit or reset them first"
                )
            file = Path(worktree.path) / path
            if (_git.hash_worktree_file(opened, file) if file.exists() else None) != committed:
                raise LocalChangesError(
                    f"{path} has local edits in the linked worktree {worktree.path}; "
                    "commit or restore them first"
                )
    return worktrees


def _worktree_refs(worktree: _git.LinkedWorktree) -> list[str]:
    """The refs a linked worktree keeps for itself (refs/worktree/*, refs/bisect/*, ...: files
    under its own folder, which the repository's refs do not list)."""
    root = Path(worktree.admin) / "refs"
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            found.append(str(Path(folder, name).relative_to(worktree.admin)))
    return sorted(found)


def _worktree_commit(worktree: _git.LinkedWorktree, refs: dict[str, _git.Oid]) -> _git.Oid | None:
    """The commit a linked worktree has checked out (before the rewrite)."""
    if worktree.head is not None:
        return worktree.head
    return refs.get(worktree.branch) if worktree.branch is not None else None


def _rewrite_linked_worktree(
    repo: Repository,
    worktree: _git.LinkedWorktree,
    refs: dict[str, _git.Oid],
    updates: dict[str, _git.Oid],
    commit_map: dict[_git.Oid, _git.Oid],
) -> None:
    """After the refs moved: a detached HEAD moves to the rewritten commit, and the files and the
    index follow the commit now checked out (the record's file goes, purged.txt comes)."""
    git = repo.git
    old = _worktree_commit(worktree, refs)
    if old is None:
        return
    if worktree.head is not None:
        new = commit_map.get(old, old)
    else:
        new = updates.get(worktree.branch or "", old)
    if new == old:
        return
    opened = _git.open_worktree(worktree)
    if worktree.head is not None:
        _git.set_detached_head(opened, new)
        if repo.durable:
            _git.fsync_path(os.path.join(worktree.admin, "HEAD"))
            _git.fsync_path(worktree.admin)
    changes = {
        path: blob
        for path, _old, blob in _git.changed_blobs(git, _git.tree_of(git, old), _git.tree_of(git, new))
    }
    _git.apply_to_worktree(opened, changes)
    for stale in ("ORIG_HEAD", "FETCH_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(worktree.admin, stale))


def _peel(git: _git.GitRepository, oid: _git.Oid) -> tuple[int, _git.Oid]:
    """(kind, id) of the object that ``oid`` names, through any chain of tags."""
    kind = _git.object_kind(git, oid)
    while kind == _git.TAG:
        oid = _git.tag_target(git, oid)
        kind = _git.object_kind(git, oid)
    return kind, oid


def _map_target(
    git: _git.GitRepository,
    target: _git.Oid,
    commit_map: dict[_git.Oid, _git.Oid],
    tree_map: dict[_git.Oid, _git.Oid],
    tag_map: dict[_git.Oid, _git.Oid],
) -> _git.Oid:
    """What a ref naming ``target`` names after the rewrite: the rewritten commit or tree, or a
    tag object rewritten to name it (recorded in ``tag_map``); blobs stay."""
    kind = _git.object_kind(git, target)
    if kind == _git.COMMIT:
        return commit_map.get(target, target)
    if kind == _git.TREE:
        return tree_map.get(target, target)
    if kind == _git.TAG:
        if target in tag_map:
            return tag_map[target]
        inner_old = _git.tag_target(git, target)
        inner = _map_target(git, inner_old, commit_map, tree_map, tag_map)
        if inner == inner_old:
            return target
        raw = _strip_tag_signature(_git.read_object(git, target)[1])
        raw = _OBJECT_LINE.sub(b"object " + str(inner).encode() + b"\n", raw, count=1)
        tag_map[target] = _git.write_object(git, _git.TAG, raw)
        return tag_map[target]
    return target


def _strip_tag_signature(raw: bytes) -> bytes:
    marker = b"-----BEGIN PGP SIGNATURE-----"
    index = raw.find(marker)
    return raw[:index] if index >= 0 else raw
