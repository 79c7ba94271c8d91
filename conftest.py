"""Doctests in docs/ run in a fresh temporary directory, with an empty git configuration
and fixed commit dates."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent / "docs"


@pytest.fixture(autouse=True)
def _doc_environment(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if DOCS not in Path(str(request.node.path)).parents:
        return
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "1700000000 +0000")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "1700000000 +0000")
    monkeypatch.delenv("GITRECORDS_REPO", raising=False)
    monkeypatch.chdir(tmp_path)
