"""A lock left by a crashed writer is explained, and the kernel lock never outlives its process."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import git

from gitrecords import Record, Repository
from gitrecords.errors import RepositoryLockedError


def test_stale_ref_lock_is_explained_and_nothing_is_written(repo: Repository) -> None:
    lock = repo.git_dir / "refs" / "heads" / "main.lock"
    lock.write_text("")
    before = git(repo, "rev-parse", "main")
    with pytest.raises(RepositoryLockedError) as info:
        Record.create({"title": "blocked"}, repo=repo)
    assert str(lock) in str(info.value)
    assert "remove that file" in str(info.value)
    assert git(repo, "rev-parse", "main") == before
    lock.unlink()
    Record.create({"title": "after the lock is gone"}, repo=repo)
    assert git(repo, "rev-parse", "main") != before


def test_writer_killed_while_holding_the_write_lock_does_not_block(repo: Repository) -> None:
    """The write lock is an flock: the kernel releases it when the holder dies."""
    code = (
        "import os, sys, time\n"
        "from gitrecords import Repository\n"
        "repo = Repository(sys.argv[1])\n"
        "with repo.transaction():\n"
        "    print('locked', flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(repo.path)], capture_output=True, text=True)
    assert proc.stdout.strip() == "locked"
    assert proc.returncode == -9
    record = Record.create({"title": "not blocked"}, repo=repo)
    assert Record.get_record(record.id, repo=repo)["title"] == "not blocked"
