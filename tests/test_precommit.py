"""The pre-commit hooks (.pre-commit-hooks.yaml), run by the real pre-commit tool, offline.

pre-commit would install gitrecords from the hook repository into an environment
of its own, which needs the network. The test keeps every field of our hook
definitions and only switches them to ``language: system``, in a ``repo: local``
configuration, so that pre-commit runs the gitrecords of this environment.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from ci_helpers import A, D, clone, commit_all, make_server, run, write
from helpers import ROOT, SAMPLE_REPO

from gitrecords import layout

MANIFEST = ROOT / ".pre-commit-hooks.yaml"
SAMPLE_CONFIG = SAMPLE_REPO / ".pre-commit-config.yaml"


def pre_commit() -> str:
    beside = Path(sys.executable).parent / "pre-commit"
    found = str(beside) if beside.exists() else shutil.which("pre-commit")
    if found is None:
        pytest.fail("pre-commit is not installed: pip install -e '.[test]'")
    return found


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache"),
        "PRE_COMMIT_COLOR": "never",
    }


def test_manifest_and_sample_config_are_valid(env: dict[str, str]) -> None:
    run(ROOT, pre_commit(), "validate-manifest", str(MANIFEST), env=env)
    run(ROOT, pre_commit(), "validate-config", str(SAMPLE_CONFIG), env=env)
    manifest = {hook["id"]: hook for hook in yaml.safe_load(MANIFEST.read_text())}
    assert set(manifest) == {"gitrecords-validate", "gitrecords-fmt"}
    # the sample data repository runs the same commands as the manifest defines
    (local,) = yaml.safe_load(SAMPLE_CONFIG.read_text())["repos"]
    for hook in local["hooks"]:
        assert hook["entry"] == manifest[hook["id"]]["entry"]


def test_pre_commit_blocks_an_invalid_record(tmp_path: Path, env: dict[str, str]) -> None:
    server = make_server(tmp_path / "server.git")
    work = clone(server, tmp_path / "work")
    hooks = [{**hook, "language": "system"} for hook in yaml.safe_load(MANIFEST.read_text())]
    config = {"repos": [{"repo": "local", "hooks": hooks}]}
    (work / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit_all(work, "use pre-commit")
    run(work, pre_commit(), "install", env=env)
    before = run(work, "git", "rev-parse", "HEAD").stdout

    write(work, layout.path_for(D), {"title": 4})
    blocked = commit_all(work, "invalid", check=False, env=env)
    assert blocked.returncode != 0
    output = blocked.stdout + blocked.stderr
    assert "gitrecords validate" in output and "Failed" in output
    assert f"{layout.path_for(D)}:2: [schema] /title: 4 is not of type 'string'" in output
    assert "..staged: 1 problem in 1 of 1 record" in output
    assert run(work, "git", "rev-parse", "HEAD").stdout == before

    write(work, layout.path_for(D), {"title": "valid"})
    passed = commit_all(work, "valid", check=False, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert run(work, "git", "rev-parse", "HEAD").stdout != before

    # a record edited by hand out of canonical form: fmt rewrites it and stops the commit once
    (work / layout.path_for(A)).write_text('{"title": "edited", "control_number": "1"}')
    first = commit_all(work, "edit A", check=False, env=env)
    assert first.returncode != 0
    assert "files were modified by this hook" in first.stdout + first.stderr
    assert (work / layout.path_for(A)).read_bytes() == layout.dumps(
        {"control_number": "1", "title": "edited"}
    )
    second = commit_all(work, "edit A", check=False, env=env)
    assert second.returncode == 0, second.stdout + second.stderr


def test_pre_commit_blocks_a_plain_removal(tmp_path: Path, env: dict[str, str]) -> None:
    """A commit that only deletes files still runs the hook (always_run)."""
    server = make_server(tmp_path / "server.git")
    work = clone(server, tmp_path / "work")
    hooks = [{**hook, "language": "system"} for hook in yaml.safe_load(MANIFEST.read_text())]
    (work / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]})
    )
    commit_all(work, "use pre-commit")
    run(work, pre_commit(), "install", env=env)
    (work / layout.path_for(A)).unlink()
    blocked = commit_all(work, "remove A", check=False, env=env)
    assert blocked.returncode != 0
    assert f"{layout.path_for(A)}: [removed] record {A}'s file was removed" in blocked.stdout + blocked.stderr
