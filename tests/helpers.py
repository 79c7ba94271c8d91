"""Helpers the tests import: paths, schemas, and the real git binary."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gitrecords import Repository

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_REPO = ROOT / "sample-repo"

TITLE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["title"],
    "properties": {"title": {"type": "string", "minLength": 1}, "year": {"type": "integer"}},
}


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


def assert_revision_index_equals_rebuild(repo: Repository) -> None:
    """The repository's revision and PID index holds what one rebuilt from git holds."""
    from gitrecords.index import RevisionIndex

    fresh = RevisionIndex(repo.git, repo.ref, None)
    try:
        fresh.rebuild()
        assert repo.index.contents() == fresh.contents()
    finally:
        fresh.close()


def annotated_tag(repo: Repository | Path | str, name: str, message: str, rev: str) -> None:
    """Tag ``rev`` with an annotated tag (a tag object, which a history rewrite must rewrite too)."""
    tagger = ["-c", "user.name=Tagger", "-c", "user.email=tagger@example.org"]
    git(repo, *tagger, "tag", "-a", name, "-m", message, rev)


def commit_file_by_plumbing(
    repo: Repository,
    ref: str,
    path: str,
    blob: str,
    message: str,
    who: tuple[str, str] = ("T", "t@example.org"),
) -> str:
    """Commit blob ``blob`` at ``path`` on top of ``ref`` with git plumbing alone (a temporary
    index, write-tree, commit-tree, update-ref), behind gitrecords' back; returns the commit."""
    index = repo.git_dir / f"plumbing-index-{os.getpid()}"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    plumbing = ["git", "--git-dir", str(repo.git_dir)]
    try:
        subprocess.run([*plumbing, "read-tree", ref], env=env, check=True)
        subprocess.run(
            [*plumbing, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], env=env, check=True
        )
        tree = subprocess.run(
            [*plumbing, "write-tree"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
    finally:
        index.unlink(missing_ok=True)
    identity = ["-c", f"user.name={who[0]}", "-c", f"user.email={who[1]}"]
    commit = git(repo, *identity, "commit-tree", tree, "-p", ref, "-m", message).strip()
    git(repo, "update-ref", ref if ref.startswith("refs/") else f"refs/heads/{ref}", commit)
    return commit
