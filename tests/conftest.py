"""Shared fixtures: real repositories in tmp paths, isolated from the user's git config."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitrecords import Repository

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_REPO = ROOT / "sample-repo"


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ignore the git configuration of the person running the tests."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GITRECORDS_REPO", "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    """A new bare data repository."""
    return Repository.init(tmp_path / "data.git")


@pytest.fixture
def sample_repo(tmp_path: Path) -> Repository:
    """A bare data repository built from sample-repo/ (60 DataCite records)."""
    return Repository.init(tmp_path / "sample.git", from_dir=SAMPLE_REPO)


def git(repo: Repository | Path | str, *args: str, check: bool = True) -> str:
    """Run the real git binary on a repository's git dir; return stdout."""
    git_dir = repo.git_dir if isinstance(repo, Repository) else Path(repo)
    proc = subprocess.run(
        ["git", "--git-dir", str(git_dir), *args], capture_output=True, text=True, env=dict(os.environ)
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def fsck(repo: Repository | Path | str) -> None:
    git(repo, "fsck", "--strict", "--no-progress")
