"""A bulk import killed with SIGKILL at any point leaves the store usable at once (issue 16, finding 3):
no orphaned worker or git fast-import keeps the write lock, the next write succeeds within seconds,
the next import cleans up what the killed one left, and fsck is clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import fsck, git

from gitrecords import Record, Repository
from gitrecords.errors import RepositoryLockedError

COUNT = 12_000  # above the threshold for worker processes

DRIVER = textwrap.dedent(
    """
    import sys
    from gitrecords import Repository

    repo = Repository(sys.argv[1])
    items = ({"title": f"record {n}", "n": n} for n in range(int(sys.argv[2])))

    def progress(done):
        print(done, flush=True)

    repo.import_records(items, workers=2, progress=progress)
    print("done", flush=True)
    """
)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions ``text`` (workers are forks of the driver)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue
        if text.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("when", [256, 6000, COUNT])
def test_an_import_killed_at_any_point_leaves_the_store_usable(when: int, tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "data.git")
    before = repo.tip()
    driver = tmp_path / "import_driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.Popen(
        [sys.executable, str(driver), str(repo.git_dir), str(COUNT)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.strip() == "done" or int(line) >= when:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stdout.close()
    # the workers (forks of the driver) and git fast-import die with it
    deadline = time.monotonic() + 10
    while processes_mentioning(str(driver)) + processes_mentioning(str(repo.git_dir)):
        assert time.monotonic() < deadline, "orphaned import processes are still running"
        time.sleep(0.05)

    # the next write gets the lock at once (a lock still held would fail after 5 s, naming its holder)
    other = Repository(repo.path, lock_wait=5)
    started = time.monotonic()
    record = Record.create({"title": "after the kill"}, repo=other)
    assert time.monotonic() - started < 5
    assert Record.get_record(record.id, repo=other)["title"] == "after the kill"
    assert git(repo, "rev-parse", "main~1").strip() in (str(before), git(repo, "rev-parse", "main~1").strip())

    # the next import cleans up the killed one's temporary ref and pack (once the pack has been
    # left alone for STALE_TEMP_SECONDS: a recent one may be a running fetch's)
    old = time.time() - 3600
    for temp in (repo.git_dir / "objects" / "pack").glob("tmp_*"):
        os.utime(temp, (old, old))
    result = other.import_records([{"title": "next import"}])
    assert len(result) == 1
    assert not list((repo.git_dir / "objects" / "pack").glob("tmp_*"))
    assert not git(repo, "for-each-ref", "refs/gitrecords/").strip()
    assert not list(repo.git_dir.glob("fast_import_crash_*"))
    fsck(repo)


def test_a_lock_wait_has_a_bound_and_names_the_holder(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "data.git")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from gitrecords import Repository\n"
            "repo = Repository(sys.argv[1])\n"
            "with repo.writer.lock():\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            str(repo.git_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waiter = Repository(repo.path, lock_wait=0.5)
        started = time.monotonic()
        with pytest.raises(RepositoryLockedError) as raised:
            Record.create({"title": "waits"}, repo=waiter)
        waited = time.monotonic() - started
        assert 0.5 <= waited < 5
        message = str(raised.value)
        assert f"held by pid {holder.pid} (" in message and "started at" in message
        assert "--wait" in message
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    # once the holder is gone, the lock is free
    Record.create({"title": "free"}, repo=Repository(repo.path, lock_wait=5))


def test_the_cli_waits_as_long_as_wait_says(gr, tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "data.git")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from gitrecords import Repository\n"
            "with Repository(sys.argv[1]).writer.lock():\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            str(repo.git_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = gr(repo, "--wait", "0.2", "create", input='{"title": "x"}')
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: waited 0.2 s for the write lock of ")
        assert f"held by pid {holder.pid} (" in result.stderr
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


def test_an_import_leaves_a_temporary_pack_being_written_alone(tmp_path: Path) -> None:
    """A fetch into the repository writes objects/pack/tmp_pack_*, as a killed fast-import left
    one: an import that started meanwhile deleted it, and the fetch failed."""
    repo = Repository.init(tmp_path / "data.git")
    pack_dir = repo.git_dir / "objects" / "pack"
    fresh, stale = pack_dir / "tmp_pack_fetching", pack_dir / "tmp_pack_killed"
    fresh.write_bytes(b"PACK being written")
    stale.write_bytes(b"PACK left over")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    repo.import_records([{"title": "an import beside a fetch"}])
    assert fresh.exists() and not stale.exists()
