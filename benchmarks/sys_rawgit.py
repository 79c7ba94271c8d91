"""Raw git, the physical limit: pygit2 and ``git fast-import`` on the same blobs and trees.

Works on copies of the same repositories as the gitrecords rows (same pack,
same two-level layout), with none of gitrecords' checks, index or hooks:

* import: ``git fast-import`` reading a prebuilt stream of the same canonical
  blobs at the same paths (one commit);
* create / update / revert / soft delete: a blob, the three trees on its path
  (path copy with TreeBuilder) and a commit, written loose; then (durable) one
  ``syncfs`` of the filesystem, the ref update, and an fsync of the ref file
  and its folder: the cheapest way to make a commit durable in order;
* get: tree lookup, blob read and ``json.loads``;
* revisions: a first-parent walk of the whole history comparing the blob at
  the record's path (what ``git log --first-parent -- PATH`` does, no index),
  then reading and parsing the 50 revisions;
* hard delete: rewriting every commit without the file (trees and commits
  written with pygit2), moving the ref, expiring reflogs and ``git gc --prune=now``;
* validate: every blob of the tip read, parsed and checked with a compiled
  jsonschema validator, in one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import jsonschema
import pygit2
from pygit2.enums import FileMode, ObjectType

from gitrecords._git import fsync_path, sync_filesystem  # the same syscalls as gitrecords

from . import data
from .measure import Result, budgeted, timed_each, timed_once, timed_within

REF = "refs/heads/main"
SIG = pygit2.Signature("Bench Mark", "bench@example.org")


def write_path(repo: pygit2.Repository, tree: pygit2.Tree | None, path: str, blob: pygit2.Oid | None) -> Any:
    """A tree equal to ``tree`` with the file at ``path`` set to ``blob`` (None removes it)."""
    head, sep, rest = path.partition("/")
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    if not sep:
        if blob is None:
            if builder.get(head) is not None:
                builder.remove(head)
        else:
            builder.insert(head, blob, FileMode.BLOB)
        return builder.write()
    entry = builder.get(head)
    sub = repo[entry.id] if entry is not None and entry.type == ObjectType.TREE else None
    builder.insert(head, write_path(repo, sub, rest, blob), FileMode.TREE)
    return builder.write()


#: set by run(): make each commit durable (objects synced before the ref moves)
DURABLE = True


def commit_blob(repo: pygit2.Repository, path: str, blob: pygit2.Oid, message: str) -> None:
    ref = repo.references[REF]
    tip = ref.target
    tree = write_path(repo, repo[tip].tree, path, blob)
    commit = repo.create_commit(None, SIG, SIG, message, tree, [tip])
    if DURABLE:
        sync_filesystem(repo.path)
    ref.set_target(commit, message)
    if DURABLE:
        ref_file = os.path.join(repo.path, REF)
        fsync_path(ref_file)
        fsync_path(os.path.dirname(ref_file))


def read(repo: pygit2.Repository, path: str) -> Any:
    tree = repo[repo.references[REF].target].tree
    return json.loads(repo[tree[path].id].data)


def first_parent_revisions(repo: pygit2.Repository, path: str) -> list[pygit2.Oid]:
    """Blob ids of the revisions of ``path``, oldest first, by walking the first-parent chain."""
    blobs: list[pygit2.Oid | None] = []
    current: Any = repo.references[REF].target
    previous: Any = "start"
    while current is not None:
        commit = repo[current]
        try:
            blob = commit.tree[path].id
        except KeyError:
            blob = None
        if previous != "start" and previous != blob:
            blobs.append(previous)  # the newer commit changed it
        previous = blob
        parents = commit.parent_ids
        current = parents[0] if parents else None
    if previous is not None:
        blobs.append(previous)
    return [b for b in reversed(blobs) if b is not None]


def rewrite_without(repo: pygit2.Repository, path: str) -> pygit2.Oid:
    """Rewrite every commit of the branch without ``path``; returns the new tip."""
    tree_map: dict[Any, Any] = {}
    commit_map: dict[Any, Any] = {}
    walker = repo.walk(
        repo.references[REF].target, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE
    )
    for commit in walker:
        old_tree = commit.tree_id
        if old_tree not in tree_map:
            tree = repo[old_tree]
            try:
                tree[path]
                tree_map[old_tree] = write_path(repo, tree, path, None)
            except KeyError:
                tree_map[old_tree] = old_tree
        new_tree = tree_map[old_tree]
        parents = [commit_map.get(p, p) for p in commit.parent_ids]
        if new_tree == old_tree and parents == commit.parent_ids:
            commit_map[commit.id] = commit.id
        elif (
            len(parents) == 1
            and new_tree == repo[parents[0]].tree_id
            and old_tree != repo[commit.parent_ids[0]].tree_id
        ):
            commit_map[commit.id] = parents[0]  # it only changed the purged file
        else:
            raw = commit.read_raw()
            header, _, message = raw.partition(b"\n\n")
            lines = [ln for ln in header.split(b"\n") if not ln.startswith((b"tree ", b"parent "))]
            new_header = b"\n".join(
                [
                    b"tree %s" % str(new_tree).encode(),
                    *(b"parent %s" % str(p).encode() for p in parents),
                    *lines,
                ]
            )
            commit_map[commit.id] = repo.odb.write(ObjectType.COMMIT, new_header + b"\n\n" + message)
    return commit_map[repo.references[REF].target]


def git(target: Path, *args: str, stdin: Any = None) -> None:
    subprocess.run(
        ["git", "--git-dir", str(target), *args], stdin=stdin, check=True, capture_output=stdin is None
    )


def run(op: str, spec: dict[str, Any]) -> Result:
    n = spec["n"]
    target = Path(spec["target"])
    budget = spec["budget"]
    if op == "import":
        pygit2.init_repository(str(target), bare=True, initial_head="main")

        def fast_import() -> int:
            with open(spec["stream"], "rb") as stream:
                git(target, "fast-import", "--quiet", "--done", stdin=stream)
            return n

        return timed_once(fast_import)
    global DURABLE
    DURABLE = not spec.get("nondurable", False)
    # as gitrecords does: cache the 256-entry fan-out trees (libgit2 caches trees under 4 KiB only)
    pygit2.settings.cache_object_limit(ObjectType.TREE, 1024 * 1024)
    repo = pygit2.Repository(str(target))
    ops = spec["ops"]
    if op == "create":
        new = [(data.record_path(data.record_id(n + j)), data.record(n + j)) for j in range(ops)]

        def create(item: Any) -> None:
            commit_blob(repo, item[0], repo.create_blob(data.canonical(item[1])), "create")

        return timed_each(budgeted(new, budget), create)
    if op == "get":
        paths = [data.record_path(data.record_id(i)) for i in data.sample(n, ops, "get", exclude_hot=False)]
        return timed_each(budgeted(paths, budget), lambda p: read(repo, p))
    if op == "update":
        paths = [data.record_path(data.record_id(i)) for i in data.sample(n, ops, "update")]

        def update(path: str) -> None:
            record = read(repo, path)
            record["version"] = "3.0"
            commit_blob(repo, path, repo.create_blob(data.canonical(record)), "update")

        return timed_each(budgeted(paths, budget), update)
    if op == "soft_delete":
        paths = [data.record_path(data.record_id(i)) for i in data.sample(n, ops, "delete")]
        tombstone = {"$gitrecords": {"deleted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}

        def delete(path: str) -> None:
            commit_blob(repo, path, repo.create_blob(data.canonical(tombstone)), "delete")

        return timed_each(budgeted(paths, budget), delete)
    hot = data.record_path(data.record_id(data.HOT))
    if op == "revisions":
        expected = spec["hot_revisions"]

        def listing(_: int) -> None:
            revisions = [json.loads(repo[b].data) for b in first_parent_revisions(repo, hot)]
            if len(revisions) != expected:
                raise AssertionError(f"{len(revisions)} revisions, expected {expected}")

        result = timed_each(budgeted(list(range(ops)), budget), listing)
        result.note = "first-parent walk, no index"
        return result
    if op == "revert":
        blobs = first_parent_revisions(repo, hot)[:2]  # known before, as an index would know them
        return timed_each(
            budgeted(list(range(ops)), budget), lambda j: commit_blob(repo, hot, blobs[j % 2], "revert")
        )
    if op == "hard_delete":
        times: dict[str, float] = {}

        def purge() -> None:
            started = time.perf_counter()
            old = repo.references[REF].target
            new = rewrite_without(repo, hot)
            sync_filesystem(repo.path)
            repo.references[REF].set_target(new, "hard delete")
            assert old != new
            times["rewrite_s"] = time.perf_counter() - started
            git(target, "reflog", "expire", "--expire=now", "--expire-unreachable=now", "--all")
            git(target, "gc", "--prune=now", "--quiet")
            times["gc_s"] = time.perf_counter() - started - times["rewrite_s"]

        result = timed_once(purge)
        result.extra.update(times)
        result.note = f"rewrite {times['rewrite_s']:.1f} s + gc {times['gc_s']:.1f} s"
        return result
    if op == "validate":
        validator = jsonschema.Draft202012Validator(data.schema())
        deadline = time.perf_counter() + budget

        def validate_all() -> int:
            done = 0
            records = repo[repo.references[REF].target].tree / "records"
            for shard in records:
                for leaf in repo[shard.id]:
                    for entry in repo[leaf.id]:
                        for error in validator.iter_errors(json.loads(repo[entry.id].data)):
                            raise AssertionError(error.message)
                        done += 1
                if time.perf_counter() > deadline:
                    break
            return done

        return timed_within(validate_all, n, budget)
    raise ValueError(f"unknown operation {op!r}")


def write_import_stream(path: Path, n: int, tsv: Path) -> None:
    """The fast-import stream of the raw 'import' row: the same canonical blobs at the same paths."""
    with open(path, "wb") as out, open(tsv, "rb") as source:
        paths = []
        for mark, line in enumerate(source, 1):
            record_id, _, payload = line.rstrip(b"\n").partition(b"\t")
            blob = data.canonical(json.loads(payload))
            out.write(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(blob), blob))
            paths.append(data.record_path(record_id.decode()))
        stamp = b"Bench Mark <bench@example.org> %d +0000\n" % int(time.time())
        message = b"import %d records\n" % n
        out.write(b"commit refs/heads/main\nauthor " + stamp + b"committer " + stamp)
        out.write(b"data %d\n%s\n" % (len(message), message))
        for mark, record_path in enumerate(paths, 1):
            out.write(b"M 100644 :%d %s\n" % (mark, record_path.encode()))
        out.write(b"\ndone\n")
