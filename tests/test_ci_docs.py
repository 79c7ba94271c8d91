"""docs/ci.md and the CI set-up of sample-repo/: the examples run as shown.

Every ```console block of docs/ci.md runs, in order, in one bash process in a
temporary directory holding sample-repo/, through the installed ``gitrecords``
executable; each ``$ command`` is followed by its expected output (stdout and
stderr, trailing spaces ignored). Short commit ids match any commit id and
``...`` matches anything. The CI configurations the page shows (GitHub Actions,
GitLab CI, Python) run on a small repository, as CI would run them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ci_helpers import D, clone, commit_all, make_server, run, write
from helpers import ROOT, SAMPLE_REPO

from gitrecords import Repository, checks, layout

DOC = ROOT / "docs" / "ci.md"
WORKFLOW = SAMPLE_REPO / ".github" / "workflows" / "validate.yml"
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
YAML = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)
PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
TOKEN = re.compile(r"\.\.\.|\b(?=[0-9a-f]*\d)[0-9a-f]{7}\b")
MARKER = "@@ci-doc-step"


def parse_steps(text: str) -> list[tuple[str, str]]:
    steps: list[tuple[str, list[str]]] = []
    for block in CONSOLE.findall(text):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
    return [(command, "\n".join(expected)) for command, expected in steps]


def pattern(expected: str) -> re.Pattern[str]:
    parts, position = [], 0
    for match in TOKEN.finditer(expected):
        parts.append(re.escape(expected[position : match.start()]))
        parts.append(r"[\s\S]*?" if match.group() == "..." else "[0-9a-f]{7}")
        position = match.end()
    parts.append(re.escape(expected[position:]))
    return re.compile("".join(parts) + r"\Z")


def shell_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a person (or CI) with this gitrecords on PATH; git config in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITRECORDS_", "GIT_"))}
    (home / ".gitconfig").write_text("[user]\n\tname = Doc Writer\n\temail = doc@example.org\n")
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        LC_ALL="C.UTF-8",
        **extra,
    )
    return env


def test_ci_doc_examples_run(tmp_path: Path) -> None:
    (tmp_path / "sample-repo").symlink_to(SAMPLE_REPO, target_is_directory=True)
    steps = parse_steps(DOC.read_text("utf-8"))
    assert len(steps) > 20
    script = "".join(f"{command}\nprintf '\\n{MARKER} %d\\n' \"$?\"\n" for command, _ in steps)
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=shell_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    parts = re.split(rf"\n{MARKER} (\d+)\n", proc.stdout)
    outputs = list(zip(parts[0:-1:2], parts[1::2], strict=True))
    assert len(outputs) == len(steps), "a doc command ended the shell"
    failures = []
    for (command, expected), (output, code) in zip(steps, outputs, strict=True):
        got = "\n".join(line.rstrip() for line in output.rstrip("\n").splitlines())
        if not pattern(expected).match(got):
            failures.append(f"$ {command}\n--- expected\n{expected}\n--- got\n{got}")
        elif (int(code) != 0) != ("Error:" in expected or "error:" in expected):
            failures.append(f"$ {command}\nexit code {code} does not fit the output shown")
    assert not failures, "\n\n".join(failures)


def test_pattern() -> None:
    assert pattern("Error: 1a2b3c4..5d6e7f8: x ...").match("Error: 0a0b0c0..9f9f9f9: x and more")
    assert not pattern("abc").match("abcd")


def test_every_check_is_documented() -> None:
    text = DOC.read_text("utf-8")
    for name in checks.CHECKS:
        assert f"| `{name}` |" in text, name


def test_the_workflow_on_the_page_is_the_sample_one() -> None:
    blocks = YAML.findall(DOC.read_text("utf-8"))
    assert WORKFLOW.read_text("utf-8") in blocks


def test_the_sample_repo_brings_its_ci_set_up(sample_repo: Repository) -> None:
    tree = sample_repo.git[sample_repo.tip()].tree
    for path in (".github/workflows/validate.yml", ".pre-commit-config.yaml", "README.md"):
        assert (tree / path).data == (SAMPLE_REPO / path).read_bytes()
    assert checks.validate(sample_repo).ok


@pytest.fixture
def pull_request(tmp_path: Path) -> Path:
    """A CI checkout of a pull request: the merge of a branch (adding an invalid record) into
    main, on a detached HEAD, as actions/checkout leaves it."""
    server = make_server(tmp_path / "server.git")
    work = clone(server, tmp_path / "work")
    run(work, "git", "switch", "-q", "-c", "feature")
    write(work, layout.path_for(D), {"title": 4})
    commit_all(work, "add D")
    run(work, "git", "push", "-q", "origin", "feature")
    ci = clone(server, tmp_path / "ci")
    run(ci, "git", "checkout", "-q", "--detach", "origin/main")
    identity = ("-c", "user.name=CI", "-c", "user.email=ci@example.org")
    run(ci, "git", *identity, "merge", "-q", "--no-ff", "-m", "Merge feature into main", "origin/feature")
    return ci


def workflow_steps() -> dict[str, dict[str, object]]:
    steps = yaml.safe_load(WORKFLOW.read_text("utf-8"))["jobs"]["validate"]["steps"]
    return {step["name"]: step for step in steps if "name" in step}


def run_step(step: dict[str, object], cwd: Path, **github: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: re.sub(r"\$\{\{\s*github\.(\w+)\s*\}\}", lambda m: github[m[1]], str(value))
        for key, value in dict(step.get("env") or {}).items()  # type: ignore[call-overload]
    }
    return subprocess.run(
        ["bash", "-e", "-c", str(step["run"])],
        cwd=cwd,
        env=shell_env(cwd.parent, **env),
        capture_output=True,
        text=True,
    )


def test_github_workflow_on_a_pull_request_and_on_main(pull_request: Path) -> None:
    steps = workflow_steps()
    assert steps["Validate the pull request"]["if"] == "github.event_name == 'pull_request'"
    result = run_step(steps["Validate the pull request"], pull_request, base_ref="main")
    assert result.returncode == 1
    assert result.stdout == (
        f"::error file={layout.path_for(D)},line=2,title=gitrecords schema::"
        "/title: 4 is not of type 'string'\n"
    )
    run(pull_request, "git", "checkout", "-q", "origin/main")
    on_main = run_step(steps["Validate the branch"], pull_request)
    assert (on_main.returncode, on_main.stdout, on_main.stderr) == (0, "", "3 records valid\n")


def gitlab_script() -> str:
    (job,) = [block for block in YAML.findall(DOC.read_text("utf-8")) if block.startswith("validate:")]
    script = yaml.safe_load(job)["validate"]["script"]
    assert script[0] == "pip install 'gitrecords @ git+https://example.org/YOUR-ORG/gitrecords.git'"
    return "\n".join(script[1:])


def test_gitlab_job_on_a_merge_request_and_on_main(pull_request: Path) -> None:
    script = gitlab_script()
    env = shell_env(pull_request.parent, CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main")
    merge_request = subprocess.run(
        ["bash", "-e", "-c", script], cwd=pull_request, env=env, capture_output=True, text=True
    )
    assert merge_request.returncode == 1
    assert merge_request.stdout == f"{layout.path_for(D)}:2: [schema] /title: 4 is not of type 'string'\n"
    run(pull_request, "git", "checkout", "-q", "origin/main")
    env = shell_env(pull_request.parent)
    on_main = subprocess.run(
        ["bash", "-e", "-c", script], cwd=pull_request, env=env, capture_output=True, text=True
    )
    assert (on_main.returncode, on_main.stderr) == (0, "3 records valid\n")


def test_python_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(tmp_path / "records.git")
    work = clone(server, tmp_path / "work")
    run(work, "git", "switch", "-q", "-c", "feature")
    write(work, layout.path_for(D), {"title": 4})
    commit_all(work)
    run(work, "git", "push", "-q", "origin", "feature")
    (code,) = PYTHON.findall(DOC.read_text("utf-8"))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {})
    assert capsys.readouterr().out == f"{layout.path_for(D)} 2 {D} /title schema 4 is not of type 'string'\n"
