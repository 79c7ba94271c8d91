"""Durability: by default a write that returned is on disk; ``durable=False`` skips the syncs.

Every write path of the default mode flushes the new objects with one ``syncfs`` while the
branch still points to the old commit, then moves the ref, then fsyncs the ref file and its
folder before returning (the order SQLite's synchronous=FULL keeps for its journal). The
syncs are counted in-process; the tip of the branch at each call shows the order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, fsck, git

from gitrecords import Record, Repository, _git

Call = tuple[str, str, str | None]  # (sync_filesystem or fsync_path, path, branch tip at the call)


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Call]:
    """Every sync, with the tip of the branch of ``tmp_path/data.git`` when it was called."""
    calls: list[Call] = []
    real_syncfs, real_fsync = _git.sync_filesystem, _git.fsync_path

    def tip() -> str | None:
        ref = tmp_path / "data.git" / "refs" / "heads" / "main"
        if ref.exists():
            return ref.read_text().strip()
        return None

    def sync_filesystem(path: Any) -> None:
        calls.append(("sync_filesystem", str(path), tip()))
        real_syncfs(path)

    def fsync_path(path: Any) -> None:
        calls.append(("fsync_path", str(path), tip()))
        real_fsync(path)

    monkeypatch.setattr(_git, "sync_filesystem", sync_filesystem)
    monkeypatch.setattr(_git, "fsync_path", fsync_path)
    return calls


def create(repo: Repository) -> None:
    Record.create({"title": "new"}, repo=repo)


def commit(repo: Repository) -> None:
    record = Record.get_record(FIRST, repo=repo)
    record["title"] = "changed"
    record.commit()


def soft_delete(repo: Repository) -> None:
    Record.get_record(FIRST, repo=repo).delete()


def transaction(repo: Repository) -> None:
    with repo.transaction():
        for n in range(3):
            Record.create({"n": n}, repo=repo)


def put_schema(repo: Repository) -> None:
    repo.put_schema("s.json", {"type": "object"})


def bulk_import(repo: Repository) -> None:
    repo.import_records([{"n": n} for n in range(5)], workers=1)


def hard_delete(repo: Repository) -> None:
    repo.hard_delete([FIRST])


FIRST = uuid.UUID("deadbeef-9fe4-43d3-a08f-38c2b309afba")
WRITES: dict[str, Callable[[Repository], None]] = {
    "create": create,
    "commit": commit,
    "soft delete": soft_delete,
    "transaction": transaction,
    "put_schema": put_schema,
    "import_records": bulk_import,
    "hard delete": hard_delete,
}


def make_repo(tmp_path: Path, durable: bool) -> Repository:
    repo = Repository.init(tmp_path / "data.git", durable=durable)
    Record.create({"title": "first"}, id_=FIRST, repo=repo)
    return repo


@pytest.mark.parametrize("name", list(WRITES))
def test_the_default_write_path_syncs_objects_then_moves_the_ref_then_syncs_it(
    name: str, tmp_path: Path, syncs: list[Call]
) -> None:
    repo = make_repo(tmp_path, durable=True)
    before = git(repo, "rev-parse", "main").strip()
    syncs.clear()
    WRITES[name](repo)
    after = git(repo, "rev-parse", "main").strip()
    assert after != before
    ref_file = str(repo.git_dir / "refs" / "heads" / "main")
    # the objects are flushed while the branch still points to the old commit
    first = syncs[0]
    assert first == ("sync_filesystem", str(repo.git_dir), before), syncs
    # the ref file and its folder are fsynced once the branch points to the new commit
    assert ("fsync_path", ref_file, after) in syncs, syncs
    assert ("fsync_path", str(Path(ref_file).parent), after) in syncs, syncs
    # the last sync is of the ref, once it moved
    assert syncs[-1][2] == after
    fsck(repo)


def test_a_single_write_costs_one_syncfs_and_two_fsyncs(tmp_path: Path, syncs: list[Call]) -> None:
    repo = make_repo(tmp_path, durable=True)
    syncs.clear()
    create(repo)
    assert [name for name, _path, _tip in syncs] == ["sync_filesystem", "fsync_path", "fsync_path"]


def test_init_is_durable(tmp_path: Path, syncs: list[Call]) -> None:
    repo = Repository.init(tmp_path / "data.git")
    tip = git(repo, "rev-parse", "main").strip()
    assert syncs == [
        ("sync_filesystem", str(repo.git_dir), None),
        ("fsync_path", str(repo.git_dir / "refs" / "heads" / "main"), tip),
        ("fsync_path", str(repo.git_dir / "refs" / "heads"), tip),
    ]


@pytest.mark.parametrize("name", list(WRITES))
def test_durable_false_skips_every_sync(name: str, tmp_path: Path, syncs: list[Call]) -> None:
    repo = make_repo(tmp_path, durable=False)
    WRITES[name](repo)
    assert syncs == []
    # the write is there all the same (it is only not flushed to the disk yet)
    reopened = Repository(repo.path)
    assert reopened.tip() == repo.tip()
    fsck(repo)


def test_durable_false_is_per_repository_object(tmp_path: Path, syncs: list[Call]) -> None:
    fast = make_repo(tmp_path, durable=False)
    safe = Repository(fast.path)
    assert safe.durable and not fast.durable
    create(fast)
    assert syncs == []
    create(safe)
    assert [name for name, _path, _tip in syncs] == ["sync_filesystem", "fsync_path", "fsync_path"]


def test_the_non_durable_mode_is_documented() -> None:
    reliability = (ROOT / "docs" / "reliability.md").read_text("utf-8")
    assert "durable=False" in reliability
    assert "Repository(path, durable=False)" in reliability


def test_reliability_tables_are_up_to_date() -> None:
    """docs/reliability.md's tables are generated from the crash and input cases (cog)."""
    proc = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", str(ROOT / "docs" / "reliability.md")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"run: cog -r docs/reliability.md\n{proc.stdout}{proc.stderr}"


def test_sync_filesystem_and_fsync_path_really_sync(tmp_path: Path) -> None:
    """The real functions work on this system (syncfs, or os.sync where it is missing)."""
    target = tmp_path / "file"
    target.write_bytes(b"data")
    _git.sync_filesystem(tmp_path)
    _git.fsync_path(target)
    _git.fsync_path(tmp_path)
    assert os.path.getsize(target) == 4
