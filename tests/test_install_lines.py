"""gitrecords is not on PyPI: no install line in the docs or in a message may say
``pip install gitrecords`` or ``pip install 'gitrecords[web]'``, which on a fresh machine finds
nothing (or somebody else's package). The lines that install from the git repository must be
requirements pip accepts (PEP 508 direct references)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from packaging.requirements import Requirement

#: a pip/pipx/uv install of the name gitrecords (extras or not) that does not say where from
BARE = re.compile(
    r"""(?:pip|pipx|uv\s+tool)\s+install\s+(?:-\S+\s+)*["']?gitrecords(?:\[[^\]]*\])?(?![\w.\[-])(?!\s*@)"""
)
#: pre-commit's additional_dependencies naming the bare package
BARE_DEPENDENCY = re.compile(
    r"""additional_dependencies:\s*\[\s*["']?gitrecords(?:\[[^\]]*\])?["']?\s*[,\]]"""
)
#: a requirement that installs from a git repository
FROM_GIT = re.compile(r"""["'](gitrecords(?:\[[^\]]*\])?\s*@\s*git\+[^"']+)["']""")


def files() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found += sorted((ROOT / "gitrecords").rglob("*.py"))
    found += [ROOT / "sample-repo" / ".github" / "workflows" / "validate.yml"]
    found += [ROOT / "sample-repo" / ".pre-commit-config.yaml", ROOT / "sample-repo" / "README.md"]
    return found


def test_no_install_line_expects_gitrecords_on_pypi() -> None:
    bad = []
    for path in files():
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if BARE.search(line) or BARE_DEPENDENCY.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bad, "gitrecords is not on PyPI: install from a checkout or a git URL\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "line",
    [
        "pip install gitrecords",
        "    - pip install gitrecords",
        "run: pip install 'gitrecords[web]'",
        'pip install -q "gitrecords[web,test]"',
        "pipx install gitrecords",
        "$ pip install gitrecords==0.1.0",
    ],
)
def test_the_check_finds_bare_install_lines(line: str) -> None:
    assert BARE.search(line)


@pytest.mark.parametrize(
    "line",
    [
        "pip install 'gitrecords @ git+https://example.org/YOUR-ORG/gitrecords.git'",
        "pip install 'gitrecords[web] @ git+https://example.org/YOUR-ORG/gitrecords.git'",
        "pip install -e '.[web]'",
        "pip install gitrecords-tools",
        "pip install pre-commit && pre-commit install",
    ],
)
def test_the_check_lets_other_lines_be(line: str) -> None:
    assert not BARE.search(line)


def test_git_install_lines_are_requirements_pip_accepts() -> None:
    found = []
    for path in files():
        for requirement in FROM_GIT.findall(path.read_text("utf-8")):
            parsed = Requirement(requirement)
            assert parsed.name == "gitrecords" and parsed.url and parsed.url.startswith("git+https://")
            assert parsed.extras <= {"web"}, requirement
            found.append(path.name)
    assert {"README.md", "ci.md", "web.md", "validate.yml", ".pre-commit-config.yaml"} <= set(found)


def test_the_sample_pre_commit_config_installs_from_git() -> None:
    config = yaml.safe_load((ROOT / "sample-repo" / ".pre-commit-config.yaml").read_text("utf-8"))
    for hook in config["repos"][0]["hooks"]:
        (dependency,) = hook["additional_dependencies"]
        assert Requirement(dependency).url
