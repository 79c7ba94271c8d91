"""Shared fixtures: real repositories in tmp paths, isolated from the user's git config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from helpers import SAMPLE_REPO, TITLE_SCHEMA
from pygit2.enums import ConfigLevel

from gitrecords import Repository


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ignore the git configuration of the person running the tests."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    # git runs its automatic gc in the background after a fetch (always after `fetch --refetch`):
    # a test that runs fsck next would meet its half-written .tmp pack. Run it in the foreground.
    (home / "gitconfig").write_text("[gc]\n\tautoDetach = false\n")
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


@pytest.fixture(autouse=True)
def isolated_libgit2(isolated_git: None) -> Iterator[None]:
    """libgit2 reads HOME once, when pygit2 is imported, and ignores GIT_CONFIG_GLOBAL/NOSYSTEM:
    point its configuration search paths at the empty home as well."""
    home = os.environ["HOME"]
    levels = (ConfigLevel.SYSTEM, ConfigLevel.XDG, ConfigLevel.GLOBAL)
    saved = {level: pygit2.settings.search_path[level] for level in levels}
    for level in levels:
        pygit2.settings.search_path[level] = home
    yield
    for level, value in saved.items():
        pygit2.settings.search_path[level] = value


# -- CLI fixtures (tests/test_cli*.py) ----------------------------------------


@pytest.fixture
def title_repo(tmp_path: Path) -> Repository:
    """A bare data repository whose default schema (title.json) requires a string ``title``."""
    repo = Repository.init(tmp_path / "titles.git", config={"default_schema": "title.json"})
    repo.put_schema("title.json", TITLE_SCHEMA)
    return repo


@pytest.fixture
def gr(monkeypatch: pytest.MonkeyPatch):
    """Run the CLI in-process: ``gr(repo, "create", input=...)`` -> click's Result.

    ``repo`` (a Repository, a path or None for no ``--repo``) comes first. stdout
    and stderr are kept apart (``result.stdout``, ``result.stderr``); unexpected
    exceptions propagate (GITRECORDS_DEBUG) so a bug shows its traceback.
    """
    from click.testing import CliRunner, Result

    from gitrecords.cli import cli

    monkeypatch.setenv("GITRECORDS_DEBUG", "1")
    runner = CliRunner()

    def run(repo: Repository | Path | str | None, *args: str, input: str | bytes | None = None) -> Result:
        where = repo.path if isinstance(repo, Repository) else repo
        argv = ["--repo", str(where)] if where is not None else []
        return runner.invoke(cli, [*argv, *args], input=input, catch_exceptions=False, prog_name="gitrecords")

    return run


CURATOR = {
    "GIT_AUTHOR_NAME": "Curator",
    "GIT_AUTHOR_EMAIL": "curator@example.org",
    "GIT_COMMITTER_NAME": "Curator",
    "GIT_COMMITTER_EMAIL": "curator@example.org",
}


@pytest.fixture
def curator_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits by gitrecords and by the git binary carry one curator's name."""
    for name, value in CURATOR.items():
        monkeypatch.setenv(name, value)
