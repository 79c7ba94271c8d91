"""Fault injection: writers killed with SIGKILL at many points lose nothing and leave no half state.

Each case runs a child process that imports gitrecords, wraps one internal function so that
the process kills itself (``os.kill(os.getpid(), SIGKILL)``) before or after the Nth call, and
then writes. The child prints every operation before it starts (``op``: the branch tip it
starts from and what it will write) and every write that returned (``ack``). The library is
not changed: the hook lives in the child script only.

After the kill the parent checks, with the real ``git`` binary where it can:

* ``git fsck --strict`` is clean and no lock file is left (the write lock is free);
* the branch is exactly before or exactly after the interrupted operation, as the case says;
* every acknowledged write is there, one commit each, nothing else;
* the derived index catches up by itself and agrees with a rebuild from git;
* the next writer is not blocked.

``CASES`` is also the source of the table in docs/reliability.md (tests/reliability_table.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import annotated_tag, fsck, git

from gitrecords import Record, Repository, layout
from gitrecords.errors import LocalChangesError, RepositoryLockedError

TIMEOUT = 120  # seconds: a bound for a hung child, never an expectation

#: the ids the children write, so that the parent knows them in advance
IDS = [str(uuid.UUID(int=n + 1, version=4)) for n in range(4)]
BATCH = 300  # records in a transaction or an import
TARGET = IDS[0]  # the record a hard delete purges


@dataclass(frozen=True)
class Crash:
    """One kill point: the child runs ``operation`` and dies at the ``nth`` call of ``target``."""

    id: str
    operation: str  # what the child does: writes, transaction, cli-batch, import, cli-import, ...
    point: str  # where it dies, for people
    target: str  # "module.attribute" or "module.Class.method" wrapped in the child
    when: str  # "before" or "after" the call; "lock": leave refs/heads/main.lock, then die
    nth: int
    outcome: str  # "before" or "after": where the branch must be
    notes: tuple[str, ...] = ()  # extra facts the test checks (see NOTES)


#: extra facts a case checks, and how the table in docs/reliability.md words them
NOTES = {
    "index-behind": "the index lags behind the branch and catches up on the next read",
    "index-kept": "the index keeps its state from before the kill (its SQLite transaction rolled back)",
    "stale-lock": "the next write fails with RepositoryLockedError naming the lock file, "
    "as the docs say; after removing it, writes work",
    "worktree-behind": "the work tree and git's index keep the previous revision of the file (`git status` "
    "shows it staged) until the next write, which finishes the interrupted update from its journal "
    "and succeeds",
    "import-ref": "a temporary `refs/gitrecords/import-*` ref is left; the next import removes it",
    "fast-import-exits": "the orphaned `git fast-import` reads the end of its input and exits without "
    "writing a ref",
    "in-reflog": "the purged content stays in reflogs and objects until `git reflog expire "
    "--expire=now --all && git gc --prune=now`",
    "dangling": "the purged content stays as unreachable objects until `git gc --prune=now`",
    "purged": "the purged content is gone from the object store",
}

OPERATIONS = {
    "writes": "single writes (create, update, soft delete), one commit each",
    "clone-writes": "single writes in a working clone (the file is checked out after the ref moves)",
    "transaction": f"a transaction of {BATCH} creates and 1 update (one commit)",
    "cli-batch": f"`gitrecords import --force` of {BATCH} records (one commit)",
    "import": f"bulk import (`import_records`) of {BATCH} records",
    "cli-import": f"`gitrecords import` of {BATCH} new records (fast-import)",
    "reindex": "`reindex()`: rebuilding the index",
    "catch-up": "first read after the index file was lost: the index rebuilds itself",
    "hard-delete": "hard delete: history rewrite and purge log, one ref transaction, reflog expire, "
    "deletion of the unreachable objects",
    "packed-hard-delete": "hard delete after `git gc` packed the content: each pack that holds it is "
    "copied without it, then the copies replace the old packs",
}
#: operations that hard-delete TARGET
PURGES = ("hard-delete", "packed-hard-delete")

CASES = [
    # -- single writes: blob, trees, commit object, syncfs, ref move, ref fsync, index ------------
    Crash("write-blob", "writes", "writing the record's blob", "_git.create_blob", "before", 3, "before"),
    Crash("write-tree", "writes", "writing the trees", "_git.build_tree", "before", 10, "before"),
    Crash("write-commit", "writes", "commit object written", "_git.create_commit", "after", 3, "before"),
    Crash(
        "write-syncfs",
        "writes",
        "objects synced, ref not moved",
        "_git.sync_filesystem",
        "after",
        3,
        "before",
    ),
    Crash(
        "write-ref-lock",
        "writes",
        "inside the ref update (lock file written)",
        "_git.set_ref",
        "lock",
        3,
        "before",
        ("stale-lock",),
    ),
    Crash(
        "write-ref-moved",
        "writes",
        "ref moved, not yet fsynced",
        "_git.set_ref",
        "after",
        4,
        "after",
        ("index-behind",),
    ),
    Crash(
        "write-ref-fsync",
        "writes",
        "ref file fsynced, folder not",
        "_git.fsync_path",
        "after",
        7,
        "after",
        ("index-behind",),
    ),
    Crash(
        "write-index",
        "writes",
        "updating the index",
        "index.RevisionIndex._apply",
        "before",
        5,
        "after",
        ("index-behind",),
    ),
    Crash(
        "clone-ref-moved",
        "clone-writes",
        "ref moved, work tree not updated",
        "_git.set_ref",
        "after",
        3,
        "after",
        ("index-behind", "worktree-behind"),
    ),
    # -- a large transaction ----------------------------------------------------------------------
    Crash(
        "tx-staging", "transaction", "staging record 150 of 300", "_git.create_blob", "before", 150, "before"
    ),
    Crash("tx-trees", "transaction", "trees written", "_git.build_tree", "after", 1, "before"),
    Crash("tx-ref", "transaction", "before the ref moves", "_git.set_ref", "before", 1, "before"),
    Crash("tx-ref-moved", "transaction", "ref moved", "_git.set_ref", "after", 1, "after", ("index-behind",)),
    Crash(
        "tx-index",
        "transaction",
        "indexing the commit",
        "index.RevisionIndex._apply",
        "before",
        1,
        "after",
        ("index-behind",),
    ),
    Crash(
        "cli-batch-staging",
        "cli-batch",
        "staging record 200 of 301",
        "_git.create_blob",
        "before",
        200,
        "before",
    ),
    Crash("cli-batch-ref", "cli-batch", "ref moved", "_git.set_ref", "after", 1, "after", ("index-behind",)),
    # -- bulk import through git fast-import -------------------------------------------------------
    Crash(
        "import-stream",
        "import",
        "streaming blob 150 to fast-import",
        "bulk._FastImport.blob",
        "before",
        150,
        "before",
        ("fast-import-exits",),
    ),
    Crash(
        "import-commit",
        "import",
        "fast-import wrote its commit on a temporary ref",
        "bulk._FastImport.commit",
        "after",
        1,
        "before",
        ("import-ref",),
    ),
    Crash(
        "import-syncfs",
        "import",
        "objects synced, ref not moved",
        "_git.sync_filesystem",
        "after",
        1,
        "before",
        ("import-ref",),
    ),
    Crash(
        "import-ref-moved",
        "import",
        "ref moved",
        "_git.set_ref",
        "after",
        1,
        "after",
        ("index-behind", "import-ref"),
    ),
    Crash(
        "import-index",
        "import",
        "indexing the import",
        "index.PendingImport.apply",
        "before",
        1,
        "after",
        ("index-behind", "import-ref"),
    ),
    Crash(
        "cli-import-stream",
        "cli-import",
        "streaming blob 100 to fast-import",
        "bulk._FastImport.blob",
        "before",
        100,
        "before",
        ("fast-import-exits",),
    ),
    Crash(
        "cli-import-ref-moved",
        "cli-import",
        "ref moved",
        "_git.set_ref",
        "after",
        1,
        "after",
        ("index-behind", "import-ref"),
    ),
    # -- the derived index ------------------------------------------------------------------------
    Crash(
        "reindex",
        "reindex",
        "re-indexing commit 4",
        "index.RevisionIndex._apply",
        "before",
        4,
        "before",
        ("index-kept",),
    ),
    Crash(
        "catch-up",
        "catch-up",
        "indexing commit 3",
        "index.RevisionIndex._apply",
        "before",
        3,
        "before",
        ("index-behind", "index-kept"),
    ),
    # -- hard delete ------------------------------------------------------------------------------
    Crash(
        "purge-rewrite", "hard-delete", "rewriting commit 3 of the history", "progress", "before", 3, "before"
    ),
    Crash(
        "purge-syncfs",
        "hard-delete",
        "history rewritten and synced, refs not moved",
        "_git.sync_filesystem",
        "after",
        1,
        "before",
    ),
    Crash(
        "purge-refs-moved",
        "hard-delete",
        "refs moved, reflogs not expired",
        "_git.git",
        "before",
        1,
        "after",
        ("index-behind", "in-reflog"),
    ),
    Crash(
        "purge-prune",
        "hard-delete",
        "reflogs expired, unreachable objects not deleted",
        "_git.git",
        "after",
        1,
        "after",
        ("index-behind", "dangling"),
    ),
    Crash(
        "purge-index",
        "hard-delete",
        "objects deleted, updating the index",
        "index.RevisionIndex.remap",
        "before",
        1,
        "after",
        ("index-behind", "purged"),
    ),
    Crash(
        "purge-pack-copied",
        "packed-hard-delete",
        "the pack copied without the content and in place, the old pack not deleted",
        "_pack.PendingPack.install",
        "after",
        1,
        "after",
        ("index-behind", "dangling"),
    ),
    Crash(
        "purge-packs-replaced",
        "packed-hard-delete",
        "old packs deleted, updating the index",
        "index.RevisionIndex.remap",
        "before",
        1,
        "after",
        ("index-behind", "purged"),
    ),
]


# -- the child --------------------------------------------------------------------------------

CHILD = r"""
import json, os, signal, sys, uuid

import gitrecords
from gitrecords import Record, Repository, _git, _pack, bulk, index, layout

spec = json.loads(sys.argv[1])
path = spec["repo"]
IDS = spec["ids"]
calls = 0
armed = False


def say(kind, **fields):
    print(json.dumps({"kind": kind, **fields}), flush=True)


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def install(target, when, nth):
    *owner_path, attr = target.split(".")
    owner = gitrecords
    for name in owner_path:
        owner = getattr(owner, name)
    original = getattr(owner, attr)

    def wrapper(*args, **kwargs):
        global calls
        number = 0
        if armed:
            calls += 1
            number = calls
            if number == nth and when == "lock":
                # what a writer killed inside libgit2's ref update leaves: the lock file
                repo_, ref, target_ = args[0], args[1], args[2]
                with open(os.path.join(repo_.path, ref + ".lock"), "w") as lock:
                    lock.write(f"{target_}\n")
                die()
            if number == nth and when == "before":
                die()
        result = original(*args, **kwargs)
        if number == nth and when == "after":
            die()
        return result

    setattr(owner, attr, wrapper)


original_fast_import = bulk._FastImport.__init__


def fast_import_init(self, repo):
    original_fast_import(self, repo)
    say("fast-import", pid=self.proc.pid)


bulk._FastImport.__init__ = fast_import_init
if spec["target"] != "progress":
    install(spec["target"], spec["when"], spec["nth"])


def progress(done, total):
    # the hard delete's progress callback: one call per commit rewritten
    global calls
    if armed and spec["target"] == "progress":
        calls += 1
        if calls == spec["nth"]:
            die()


repo = Repository(path)


def tip():
    found = repo.tip()
    return str(found) if found is not None else None


def op(changes, **extra):
    say("op", base=tip(), changes=changes, **extra)


def ack():
    say("ack", commit=tip())


def batch_data(n):
    return {"title": f"batch record {n}", "n": n}


operation = spec["operation"]
if operation in ("writes", "clone-writes"):
    armed = True
    steps = [
        ("create", 0, {"title": "a", "n": 0}),
        ("create", 1, {"title": "b", "n": 1}),
        ("update", 0, {"title": "a", "n": 2}),
        ("create", 2, {"title": "c", "n": 3}),
        ("update", 1, {"title": "b", "n": 4, "tags": ["x", "y"]}),
        ("delete", 0, None),
        ("update", 2, {"title": "c", "n": 6}),
        ("create", 3, {"title": "d", "n": 7}),
    ]
    records = {}
    for kind, k, data in steps:
        op({repo.path_for(IDS[k]): data if data is not None else "tombstone"})
        if kind == "create":
            records[k] = Record.create(data, id_=IDS[k], repo=repo)
        elif kind == "update":
            records[k].clear()
            records[k].update(data)
            records[k].commit()
        else:
            records[k].delete()
        ack()
elif operation in ("transaction", "cli-batch", "import", "cli-import"):
    op({repo.path_for(IDS[0]): {"title": "first", "n": -1}})
    first = Record.create({"title": "first", "n": -1}, id_=IDS[0], repo=repo)
    ack()
    new_ids = [str(uuid.UUID(int=1000 + n, version=4)) for n in range(spec["batch"])]
    changes = {repo.path_for(i): batch_data(n) for n, i in enumerate(new_ids)}
    updated = {"title": "first", "n": -2}
    if operation in ("transaction", "cli-batch"):
        changes[repo.path_for(IDS[0])] = updated
    op(changes)
    armed = True
    if operation == "transaction":
        with repo.transaction(message="a large transaction"):
            for n, record_id in enumerate(new_ids):
                Record.create(batch_data(n), id_=record_id, repo=repo)
            first.update(updated)
            first.commit()
    elif operation == "import":
        repo.import_records([(i, batch_data(n)) for n, i in enumerate(new_ids)], workers=1)
    else:
        lines = [{"id": i, "data": batch_data(n)} for n, i in enumerate(new_ids)]
        if operation == "cli-batch":
            lines.append({"id": IDS[0], "data": updated})
        source = os.path.join(os.path.dirname(path), "input.jsonl")
        with open(source, "w") as file:
            file.writelines(json.dumps(line) + "\n" for line in lines)
        from gitrecords.cli import cli

        args = ["--repo", path, "import", source]
        if operation == "cli-batch":
            args.append("--force")
        try:
            cli.main(args, prog_name="gitrecords")
        except SystemExit as exit:
            if exit.code:
                raise
    ack()
elif operation == "reindex":
    op({})
    armed = True
    repo.reindex()
    ack()
elif operation == "catch-up":
    op({})
    armed = True
    Record.get_record(IDS[2], repo=repo).revisions
    ack()
elif operation in ("hard-delete", "packed-hard-delete"):
    op({}, purge=IDS[0])
    armed = True
    repo.hard_delete([IDS[0]], progress=progress)
    ack()
say("done")
"""


# -- helpers ----------------------------------------------------------------------------------


def rev(repo_path: Path, name: str) -> str:
    return git(repo_path, "rev-parse", "--verify", "--quiet", name, check=False).strip()


def refs(repo_path: Path) -> str:
    return git(repo_path, "for-each-ref", "--format=%(refname) %(objectname)")


def histories(repo_path: Path, ref: str = "main") -> dict[str, list[tuple[str, str | None]]]:
    """(commit, blob) of every first-parent commit of ``ref`` that changed each path, oldest first
    (blob None: the file was removed). One ``git log`` for the whole branch."""
    out = git(
        repo_path,
        "log",
        "--first-parent",
        "--reverse",
        "--format=C %H",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        ref,
    )
    found: dict[str, list[tuple[str, str | None]]] = {}
    commit = ""
    for line in out.splitlines():
        if line.startswith("C "):
            commit = line[2:]
        elif line.startswith(":"):
            meta, path = line.split("\t", 1)
            blob = meta.split()[3]
            found.setdefault(path, []).append((commit, None if set(blob) == {"0"} else blob))
    return found


def blobs_anywhere(repo_path: Path, path: str) -> list[str]:
    """Every blob ``path`` had in the history of any ref."""
    out = git(repo_path, "log", "--all", "--format=", "--raw", "--no-abbrev", "--no-renames", "--", path)
    blobs = {word for line in out.splitlines() for word in line.split()[2:4]}
    return sorted(blobs - {"0" * 40})


def changed_paths(repo_path: Path, old: str, new: str) -> dict[str, str | None]:
    out = git(repo_path, "diff-tree", "-r", "--no-renames", "--no-abbrev", old, new)
    changed: dict[str, str | None] = {}
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        blob = meta.split()[3]
        changed[path] = None if set(blob) == {"0"} else blob
    return changed


def tree_blobs(repo_path: Path, commit: str) -> dict[str, str]:
    """path -> blob of every file of ``commit``."""
    out = git(repo_path, "ls-tree", "-r", "--full-tree", commit)
    return {line.split("\t", 1)[1]: line.split()[2] for line in out.splitlines()}


def check_contents(repo_path: Path, expectations: list[tuple[str, str | None, Any]]) -> None:
    """Each (label, blob, expected): the blob holds ``expected`` (data as canonical JSON, or
    "tombstone"); None expects no file. One ``git cat-file --batch`` reads all the blobs."""
    oids = sorted({blob for _label, blob, _expected in expectations if blob is not None})
    proc = subprocess.run(
        ["git", "--git-dir", str(repo_path), "cat-file", "--batch"],
        input="".join(f"{oid}\n" for oid in oids).encode(),
        capture_output=True,
        check=True,
        timeout=TIMEOUT,
    )
    contents: dict[str, bytes] = {}
    out = proc.stdout
    for oid in oids:
        header, out = out.split(b"\n", 1)
        size = int(header.split()[2])
        contents[oid], out = out[:size], out[size + 1 :]
    for label, blob, expected in expectations:
        if blob is None or expected is None:
            assert blob is None and expected is None, label
        elif expected == "tombstone":
            assert layout.is_tombstone(layout.loads(contents[blob])), label
        else:
            assert contents[blob] == layout.dumps(expected), label


def wait_for_exit(pid: int) -> None:
    """Wait until an orphaned process (not our child) has exited."""
    deadline = time.monotonic() + TIMEOUT
    while Path(f"/proc/{pid}").exists():
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
        if stat.split(") ", 1)[-1].startswith("Z"):
            return  # a zombie has released everything
        assert time.monotonic() < deadline, f"process {pid} did not exit"
        time.sleep(0.05)


def run_child(repo: Repository, case: Crash, tmp_path: Path) -> list[dict[str, Any]]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    spec = {
        "repo": str(repo.path),
        "ids": IDS,
        "batch": BATCH,
        "operation": case.operation,
        "target": case.target,
        "when": case.when,
        "nth": case.nth,
    }
    env = {k: v for k, v in os.environ.items() if k != "GITRECORDS_DEBUG"}
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == -signal.SIGKILL, (
        f"the child was not killed at the fault point (exit {proc.returncode})\n"
        f"{proc.stdout[-1000:]}{proc.stderr[-3000:]}"
    )
    assert not any(e["kind"] == "done" for e in events)
    for event in events:
        if event["kind"] == "fast-import":
            wait_for_exit(event["pid"])
    return events


def setup_repo(case: Crash, tmp_path: Path) -> Repository:
    if case.operation == "clone-writes":
        repo = Repository.init(tmp_path / "clone", bare=False)
    else:
        repo = Repository.init(tmp_path / "data.git")
    if case.operation in ("reindex", "catch-up", *PURGES):
        # a story: three records, several revisions, a tag and a second branch
        records = [Record.create({"title": f"r{n}", "v": 0}, id_=IDS[n], repo=repo) for n in range(3)]
        for v in range(1, 4):
            for record in records:
                record["v"] = v
                record.commit()
        annotated_tag(repo, "v1", "release", "main~2")
        git(repo, "branch", "archive", "main~4")
        records[1].delete()
        if case.operation == "packed-hard-delete":
            git(repo, "gc", "--quiet")
        if case.operation == "catch-up":
            for suffix in ("", "-wal", "-shm"):
                (repo.git_dir / "gitrecords" / f"index-main.sqlite{suffix}").unlink(missing_ok=True)
    repo.close()
    return repo


# -- what every case checks -------------------------------------------------------------------


def check_no_locks_left(repo_path: Path) -> None:
    left = [p for p in repo_path.rglob("*.lock") if p.name != "write.lock"]
    assert not left, left
    with open(repo_path / "gitrecords" / "write.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a writer still held it
        fcntl.flock(lock, fcntl.LOCK_UN)


def classify(repo_path: Path, events: list[dict[str, Any]]) -> str:
    """ "before" or "after" the interrupted operation (the last op without an ack); fails otherwise.

    Also checks that every acknowledged operation is in the first-parent history, one commit
    each, with exactly the changes it announced, and nothing else is.
    """
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for event in events:
        if event["kind"] == "op":
            pairs.append((event, None))
        elif event["kind"] == "ack":
            pairs[-1] = (pairs[-1][0], event)
    *acked, (interrupted, last_ack) = pairs
    assert last_ack is None, "the interrupted operation was acknowledged"
    for op_, ack_ in acked:
        assert ack_ is not None
        commit = ack_["commit"]
        if op_["changes"]:
            assert git(repo_path, "rev-parse", f"{commit}^").strip() == op_["base"]
            changed = changed_paths(repo_path, op_["base"], commit)
            assert set(changed) == set(op_["changes"]), "an acknowledged commit has other changes"
            check_contents(repo_path, [(p, changed[p], e) for p, e in op_["changes"].items()])
    tip = rev(repo_path, "main")
    base = interrupted["base"]
    if tip == base:
        state = "before"
    else:
        assert rev(repo_path, "main^") == base, "the branch is neither before nor after the operation"
        changed = changed_paths(repo_path, base, tip)
        assert set(changed) == set(interrupted["changes"]), "the branch holds part of the operation"
        check_contents(repo_path, [(p, changed[p], e) for p, e in interrupted["changes"].items()])
        state = "after"
    # every acknowledged write is in the branch, in order, and nothing else is
    chain = git(repo_path, "rev-list", "--first-parent", "--reverse", "main").split()
    written = [ack_["commit"] for op_, ack_ in acked if op_["changes"] and ack_ is not None]
    if written:
        start = chain.index(written[0])
        expected_chain = written + ([tip] if state == "after" else [])
        assert chain[start:] == expected_chain
    # the latest content of every path is the last acknowledged (or the interrupted) write
    latest: dict[str, Any] = {}
    for op_, _ack in acked:
        latest.update(op_["changes"])
    if state == "after":
        latest.update(interrupted["changes"])
    files = tree_blobs(repo_path, tip)
    check_contents(repo_path, [(p, files.get(p), e) for p, e in latest.items()])
    return state


def check_index(repo_path: Path) -> None:
    """The index catches up by itself, agrees with git, and with a rebuild."""
    index_file = repo_path / "gitrecords" / "index-main.sqlite"
    if index_file.exists():
        conn = sqlite3.connect(index_file)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
    history = histories(repo_path)
    repo = Repository(repo_path)
    try:
        ids = list(repo.ids(with_deleted=True))
        seen: dict[uuid.UUID, list[Any]] = {}
        expected: list[tuple[str, str | None, Any]] = []
        for record_id in ids:
            record = Record.get_record(record_id, with_deleted=True, repo=repo)
            path = repo.path_for(record_id)
            rows = record.revisions.rows()
            assert [(r.commit_id, r.blob) for r in rows] == history[path], record_id
            assert record.revision_id == len(history[path]) - 1
            expected.append((path, history[path][-1][1], "tombstone" if record.is_deleted else dict(record)))
            seen[record_id] = rows
        check_contents(repo_path, expected)
        assert repo.index.indexed_tip() == rev(repo_path, "main")
        repo.reindex()
        assert {i: repo.index.revisions(i) for i in ids} == seen
    finally:
        repo.close()


def check_next_writer(repo_path: Path, operation: str) -> None:
    repo = Repository(repo_path)
    try:
        if operation in ("import", "cli-import"):
            result = repo.import_records([{"title": "after the crash"}], workers=1)
            assert Record.get_record(result.ids[0], repo=repo) == {"title": "after the crash"}
            assert "refs/gitrecords/" not in refs(repo_path)
        else:
            record = Record.create({"title": "after the crash"}, repo=repo)
            assert Record.get_record(record.id, repo=repo) == {"title": "after the crash"}
    finally:
        repo.close()
    fsck(repo_path)


def check_purge(repo_path: Path, before: dict[str, Any]) -> str:
    """A hard delete is all or nothing for the refs: every ref as it was ("before"), or every ref
    rewritten without the record and the branch ending in the purge-log commit ("after")."""
    if refs(repo_path) == before["refs"]:
        return "before"
    path = layout.path_for(TARGET)
    assert git(repo_path, "log", "--all", "--format=%H", "--", path) == "", "a ref still has the record"
    assert git(repo_path, "show", "main:purged.txt").split() == [TARGET], "the purge log is missing"
    assert git(repo_path, "log", "-1", "--format=%s", "main").strip() == f"hard delete record {TARGET}"
    after = histories(repo_path)
    for record_id, blobs in before["histories"].items():
        assert [b for _c, b in after[layout.path_for(record_id)]] == blobs, record_id
    for name in ("refs/heads/archive", "refs/tags/v1"):
        assert name in refs(repo_path)
    return "after"


def check_worktree_behind(git_dir: Path, events: list[dict[str, Any]]) -> None:
    """The interrupted write is on the branch but not in the work tree; the next write finishes
    the update from the journal (issue 18, 21) and succeeds, and a real local edit made after
    a crash is still refused."""
    workdir = git_dir.parent
    interrupted = [e for e in events if e["kind"] == "op"][-1]
    [path] = interrupted["changes"]
    status = subprocess.run(
        ["git", "-C", str(workdir), "status", "--porcelain"], capture_output=True, text=True, check=True
    ).stdout
    assert status == f"M  {path}\n"
    repo = Repository(workdir)
    try:
        record_id = layout.id_from_path(path)
        record = Record.get_record(record_id, repo=repo)
        record["after"] = "the crash"
        record.commit()
        assert (workdir / path).read_bytes() == layout.dumps(dict(record))
        status = subprocess.run(
            ["git", "-C", str(workdir), "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout
        assert status == ""
        (workdir / path).write_text("a local edit")
        again = Record.get_record(record_id, repo=repo)
        again["and"] = "a local edit"
        with pytest.raises(LocalChangesError, match=f"{path} has local edits"):
            again.commit()
    finally:
        repo.close()


def object_exists(repo_path: Path, oid: str) -> bool:
    proc = subprocess.run(
        ["git", "--git-dir", str(repo_path), "cat-file", "-e", oid], capture_output=True, timeout=TIMEOUT
    )
    return proc.returncode == 0


def check_notes(case: Crash, repo_path: Path, before: dict[str, Any], events: list[dict[str, Any]]) -> None:
    repo = Repository(repo_path)
    try:
        indexed = repo.index.indexed_tip()
    finally:
        repo.close()
    tip = rev(repo_path, "main")
    assert ("index-behind" in case.notes) == (indexed != tip), (indexed, tip)
    if "worktree-behind" in case.notes:
        check_worktree_behind(repo_path, events)
    if "index-kept" in case.notes:
        assert indexed == before["indexed"]
    import_refs = [r for r in refs(repo_path).splitlines() if r.startswith("refs/gitrecords/import-")]
    assert bool(import_refs) == ("import-ref" in case.notes), import_refs
    assert not list(repo_path.glob("fast_import_crash_*"))
    if case.operation in PURGES and case.outcome == "after":
        blobs = before["target_blobs"]
        in_reflog = git(repo_path, "log", "--all", "--reflog", "--format=%H", "--", layout.path_for(TARGET))
        assert bool(in_reflog) == ("in-reflog" in case.notes)
        still_there = [b for b in blobs if object_exists(repo_path, b)]
        if "purged" in case.notes:
            assert not still_there
        else:
            assert still_there == blobs


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_killed_writer(case: Crash, tmp_path: Path) -> None:
    repo = setup_repo(case, tmp_path)
    path = repo.git_dir
    before: dict[str, Any] = {"refs": refs(path)}
    if case.operation in PURGES:
        before["target_blobs"] = blobs_anywhere(path, layout.path_for(TARGET))
        story = histories(path)
        before["histories"] = {i: [b for _c, b in story[layout.path_for(i)]] for i in IDS[1:3]}
    reopened = Repository(path)
    before["indexed"] = reopened.index.indexed_tip()
    reopened.close()

    events = run_child(repo, case, tmp_path)

    fsck(path)
    if case.when == "lock":
        lock = path / "refs" / "heads" / "main.lock"
        assert lock.exists()
        blocked = Repository(path)
        with pytest.raises(RepositoryLockedError, match="remove that file") as info:
            Record.create({"title": "blocked"}, repo=blocked)
        blocked.close()
        assert str(lock) in str(info.value)
        lock.unlink()
    check_no_locks_left(path)
    if case.operation in PURGES:
        state = check_purge(path, before)
    elif case.operation in ("reindex", "catch-up"):
        state = "before" if refs(path) == before["refs"] else "changed"
    else:
        state = classify(path, events)
    assert state == case.outcome
    check_notes(case, path, before, events)
    check_index(path)
    check_next_writer(path, case.operation)


def test_every_case_is_named_once() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.operation for c in CASES} == set(OPERATIONS)
    assert {n for c in CASES for n in c.notes} <= set(NOTES)
