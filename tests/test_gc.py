"""gitrecords gc: the object store packed again with wider delta settings, nothing lost."""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import fsck, git

from gitrecords import GitRecordsError, Record, Repository
from gitrecords.errors import RepositoryLockedError
from gitrecords.maintenance import DEFAULT_WINDOW, gc

PUBLISHERS = ["Zenodo", "CERN", "Dryad", "Figshare"]


def similar(i: int) -> tuple[uuid.UUID, dict[str, Any]]:
    """Record ``i``: the same fields as every other record, different values."""
    return uuid.UUID(int=i + 1, version=4), {
        "title": f"Observations of the night sky, series {i}",
        "publisher": PUBLISHERS[i % len(PUBLISHERS)],
        "year": 2000 + i % 25,
        "creators": [{"name": f"Person {i % 37}", "orcid": f"0000-0002-{i % 9999:04d}-{i % 97:04d}"}],
        "keywords": ["astronomy", "photometry", f"field {i % 11}"],
        "description": "Nightly photometry of one field, calibrated against the reference stars.",
    }


def populated(repo: Repository, count: int = 300) -> dict[str, Any]:
    """``count`` records imported in one commit, then a few single-record commits (loose
    objects) and one soft delete; returns every record's data by id."""
    repo.import_records([similar(i) for i in range(count)])
    for i in range(3):
        record = Record.get_record(similar(i)[0], repo=repo)
        record["year"] = 1999
        record.commit()
    Record.get_record(similar(count - 1)[0], repo=repo).delete()
    return contents(repo)


def contents(repo: Repository) -> dict[str, Any]:
    """Every live record's data, read by a new Repository (nothing remembered)."""
    fresh = Repository(repo.path)
    try:
        return {str(i): dict(Record.get_record(i, repo=fresh)) for i in fresh.ids()}
    finally:
        fresh.close()


def longest_chain(repo: Repository) -> int:
    """The longest delta chain in the packs, by ``git verify-pack -v``."""
    longest = 0
    for idx in (repo.git_dir / "objects" / "pack").glob("*.idx"):
        out = git(repo, "verify-pack", "-v", str(idx))
        longest = max([longest, *(int(n) for n in re.findall(r"^chain length = (\d+):", out, re.M))])
    return longest


def test_gc_packs_smaller_and_keeps_every_record(tmp_path: Path, gr) -> None:
    repo = Repository.init(tmp_path / "clone", bare=False)
    before = populated(repo)
    result = gr(repo, "gc", "--json", "--ratio")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {
        "before",
        "after",
        "window",
        "depth",
        "seconds",
        "records",
        "jsonl_gzip_bytes",
        "ratio",
    }
    fields = {"packs", "pack_bytes", "packed_objects", "loose_objects", "loose_bytes", "objects"}
    assert set(report["before"]) == set(report["after"]) == fields
    old, new = report["before"], report["after"]
    assert old["loose_objects"] > 0
    assert new["pack_bytes"] + new["loose_bytes"] < old["pack_bytes"] + old["loose_bytes"]
    assert new["pack_bytes"] < old["pack_bytes"]  # the import's pack alone was larger
    assert (new["packs"], new["loose_objects"]) == (1, 0)
    assert new["objects"] == new["packed_objects"]
    assert int(git(repo, "count-objects", "-v").split("in-pack: ")[1].split()[0]) == new["packed_objects"]
    assert (report["window"], report["depth"]) == (DEFAULT_WINDOW, 10)  # pack.depth of gitrecords init
    assert report["records"] == 299  # live ones: the soft-deleted record is a tombstone
    assert report["ratio"] == round(new["pack_bytes"] / report["jsonl_gzip_bytes"], 2)
    assert result.stderr == ""  # no progress off a terminal
    assert 1 <= longest_chain(repo) <= 10
    fsck(repo)
    git(repo, "fsck", "--full", "--no-progress")
    assert contents(repo) == before
    assert git(repo, "--work-tree", str(tmp_path / "clone"), "status", "--porcelain") == ""
    # the branch still takes writes, and gc runs again
    Record.create({"title": "after gc"}, repo=repo)
    again = gr(repo, "gc", "--json")
    assert again.exit_code == 0, again.stderr
    second = json.loads(again.stdout)
    assert (second["after"]["packs"], second["after"]["loose_objects"]) == (1, 0)
    assert second["records"] is None and second["ratio"] is None
    git(repo, "fsck", "--full", "--no-progress")
    assert len(contents(repo)) == len(before) + 1


def test_gc_bare_repository_one_line_summary(repo: Repository, gr) -> None:
    before = populated(repo, 200)
    result = gr(repo, "gc", "--aggressive", "--ratio")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # a message for people: stderr
    assert re.fullmatch(
        r"Packed [\d,]+ objects: [\d.]+ kB in 1 pack and [\d,]+ loose objects before, "
        r"[\d.]+ kB in 1 pack after; [\d.]+x the gzip'd JSON Lines of 199 records\n",
        result.stderr,
    ), result.stderr
    git(repo, "fsck", "--full", "--no-progress")
    assert contents(repo) == before


def test_gc_api_result_and_settings(repo: Repository) -> None:
    populated(repo, 50)
    result = gc(repo, window=5, depth=3)
    assert (result.window, result.depth) == (5, 3)
    assert result.ratio is None and result.records is None
    assert result.after.loose_objects == 0
    assert longest_chain(repo) <= 3
    fsck(repo)
    with pytest.raises(GitRecordsError, match="the delta window must be 1 or more"):
        gc(repo, window=0)
    # git's own progress (drawn only when our stderr is a terminal, which the CLI checks)
    shown = gc(repo, show_progress=True)
    assert (shown.after.packs, shown.after.loose_objects) == (1, 0)


def test_gc_holds_the_write_lock(repo: Repository) -> None:
    populated(repo, 20)
    other = Repository(repo.path, lock_wait=0.2)
    try:
        with repo.writer.lock(), pytest.raises(RepositoryLockedError):
            gc(other)
    finally:
        other.close()
    with repo.transaction(), pytest.raises(GitRecordsError, match="inside a transaction"):
        gc(repo)


def test_gc_failure_is_one_error_line(repo: Repository, gr) -> None:
    # another git gc running (git's own lock, gc.pid, names a live process here) makes git gc refuse
    (repo.git_dir / "gc.pid").write_text(f"{os.getpid()} {socket.gethostname()}")
    result = gr(repo, "gc")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: git gc failed: ")
    assert result.stderr.count("\n") == 1


def test_hard_delete_after_gc_and_gc_after_hard_delete(repo: Repository) -> None:
    """gc packs the refs and may write a bitmap; a hard delete copes with both, and the purged
    content stays gone through the next gc."""
    before = populated(repo, 100)
    gc(repo)
    purged_id = similar(5)[0]
    blob = git(repo, "rev-parse", f"main:{repo.path_for(purged_id)}").strip()
    repo.hard_delete([purged_id])
    del before[str(purged_id)]
    gc(repo)
    git(repo, "fsck", "--full", "--no-progress")
    assert contents(repo) == before
    listed = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    assert blob not in listed.split()


def test_a_git_gc_that_outlives_a_killed_gitrecords_gc_keeps_the_write_lock(repo: Repository) -> None:
    """git gc and the repack it starts go on after ``gitrecords gc`` is killed: they inherit the
    write lock, so no writer and no hard delete runs beside a repack that holds no lock (a hard
    delete then left the purged record's blob in the pack the orphaned repack wrote)."""
    import fcntl
    import signal
    import subprocess
    import sys
    import time

    repo.import_records([similar(i) for i in range(20000)])
    script = (
        "from gitrecords import Repository; from gitrecords.maintenance import gc;"
        f" gc(Repository({str(repo.path)!r}), window=250)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    lock_file = repo.git_dir / "gitrecords" / "write.lock"

    def descendants(root: int) -> dict[int, bytes]:
        """The processes below ``root``: pid -> command line."""
        parents: dict[int, int] = {}
        commands: dict[int, bytes] = {}
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
                commands[int(entry.name)] = (entry / "cmdline").read_bytes()
            except (OSError, ValueError):  # not a process, or one that ended meanwhile
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        below = {root}
        for _ in range(5):
            below |= {pid for pid, parent in parents.items() if parent in below}
        return {pid: commands[pid] for pid in below - {root}}

    deadline = time.monotonic() + 30
    repacking: dict[int, bytes] = {}
    while proc.poll() is None and time.monotonic() < deadline:
        repacking = descendants(proc.pid)
        if any(b"pack-objects" in command for command in repacking.values()):
            break
        time.sleep(0.005)
    if proc.poll() is not None:
        pytest.skip("git gc ended before it could be caught repacking")
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def alive() -> list[int]:
        return [pid for pid in repacking if Path(f"/proc/{pid}").exists()]

    assert alive(), "the repack did not outlive gitrecords gc"
    fd = os.open(lock_file, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_EX)  # free once git is done
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert not [pid for pid in alive() if b"pack-objects" in repacking[pid]]
    finally:
        os.close(fd)
    fsck(repo)
