"""CLI: repository selection, init, help, exit codes; and the real executable in pipes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import jsonpatch
import jsonschema
import pytest
from click.testing import CliRunner
from helpers import SAMPLE_REPO, git

from gitrecords import NoResultFound, Record, Repository
from gitrecords.cli import GitRecordsGroup, cli
from gitrecords.errors import InvalidRecordError, RecordExistsError

SEED_ID = "deadbeef-9fe4-43d3-a08f-38c2b309afba"


# -- repository selection ------------------------------------------------------


def test_repo_option_env_and_discovery(gr, repo, tmp_path, monkeypatch):
    record_id = gr(repo, "create", input='{"title": "here"}').stdout.strip()
    # --repo
    assert gr(repo, "get", record_id).exit_code == 0
    # GITRECORDS_REPO
    monkeypatch.setenv("GITRECORDS_REPO", str(repo.path))
    assert json.loads(gr(None, "get", record_id, "--json").stdout)["data"] == {"title": "here"}
    monkeypatch.delenv("GITRECORDS_REPO")
    # the git repository around the current directory (a bare one here)
    monkeypatch.chdir(repo.path / "refs")
    assert gr(None, "list", "--count").stdout == "1\n"


def test_discovery_in_a_working_clone(gr, tmp_path, monkeypatch):
    result = gr(None, "init", "--no-bare", str(tmp_path / "clone"))
    assert result.exit_code == 0, result.stderr
    sub = tmp_path / "clone" / "deep" / "er"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    record_id = gr(None, "create", input='{"title": "t"}').stdout.strip()
    clone = tmp_path / "clone"
    assert (clone / Repository(clone).path_for(record_id)).read_text() == '{\n  "title": "t"\n}\n'
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True)
    assert status.stdout == ""


def test_no_repository_found(gr, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = gr(None, "list")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: no data repository here ({tmp_path} is not inside a git repository): "
        "use --repo PATH or set GITRECORDS_REPO\n"
    )
    result = gr(tmp_path, "list")
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path}: not a git repository (from --repo or GITRECORDS_REPO)\n"


def test_a_plain_git_repository_is_refused(gr, tmp_path, monkeypatch):
    plain = tmp_path / "code"
    subprocess.run(["git", "init", "-q", "-b", "main", str(plain)], check=True)
    (plain / "README").write_text("hi\n")
    subprocess.run(["git", "-C", str(plain), "add", "README"], check=True)
    subprocess.run(
        ["git", "-C", str(plain), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x"],
        check=True,
    )
    monkeypatch.chdir(plain)
    result = gr(None, "create", input="{}")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {plain} is not a gitrecords data repository (no gitrecords.json")
    assert git(plain / ".git", "rev-list", "--count", "main").strip() == "1"


def test_branch_option(gr, tmp_path):
    path = tmp_path / "b.git"
    assert gr(None, "--branch", "records", "init", str(path)).exit_code == 0
    repo = Repository(path)
    assert repo.branch == "records"
    record_id = gr(path, "--branch", "records", "create", input='{"title": "b"}').stdout.strip()
    assert git(path, "show", f"records:{repo.path_for(record_id)}").startswith("{")
    result = gr(path, "--branch", "nope", "list")
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}: there is no branch 'nope'\n"
    assert not list((path / "gitrecords").glob("index-nope*"))  # a mistyped branch leaves no file
    result = gr(path, "--branch", "a..b", "list")
    assert (result.exit_code, result.stderr) == (2, "Error: --branch a..b: not a valid branch name\n")


# -- init ----------------------------------------------------------------------


def test_init_from_sample(gr, tmp_path):
    path = tmp_path / "demo.git"
    result = gr(None, "init", "--from", str(SAMPLE_REPO), str(path), "-m", "Start", "--author", "A <a@b.org>")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"Initialised bare data repository in {path} (branch main, 60 records)\n"
    assert git(path, "log", "--format=%an %s").strip() == "A Start"
    assert gr(path, "list", "--count").stdout == "60\n"


def test_init_options(gr, tmp_path):
    result = gr(None, "init", "--no-bare", "--branch", "data", str(tmp_path / "w"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "w" / "gitrecords.json").exists()
    assert git(tmp_path / "w" / ".git", "symbolic-ref", "HEAD").strip() == "refs/heads/data"
    result = gr(None, "init", str(tmp_path / "w"))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'w'}: already exists and is not empty\n"


# -- help ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "-h"], prog_name="gitrecords")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"Usage: gitrecords {name}" in result.stdout


def test_version():
    result = CliRunner().invoke(cli, ["--version"], prog_name="gitrecords")
    assert result.exit_code == 0
    assert result.stdout.startswith("gitrecords, version ")


# -- exit codes, in one place --------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (NoResultFound("record x does not exist"), 1, "Error: record x does not exist\n"),
        (InvalidRecordError("bad\nrecord"), 1, "Error: bad record\n"),
        (
            RecordExistsError("record x already exists"),
            1,
            "Error: record x already exists: use --force to write a new revision\n",
        ),
        (
            jsonschema.ValidationError("'title' is a required property", path=["a", 0]),
            1,
            "Error: /a/0: 'title' is a required property\n",
        ),
        (jsonpatch.JsonPatchConflict("can't remove"), 1, "Error: can't remove\n"),
        (
            FileNotFoundError(2, "No such file or directory", "x.json"),
            1,
            "Error: x.json: No such file or directory\n",
        ),
        (click.UsageError("wrong"), 2, None),
        (
            RuntimeError("boom"),
            1,
            "Error: unexpected RuntimeError: boom (set GITRECORDS_DEBUG=1 for a traceback)\n",
        ),
    ],
)
def test_errors_become_exit_codes(error, code, message, monkeypatch):
    monkeypatch.delenv("GITRECORDS_DEBUG", raising=False)
    group = GitRecordsGroup()

    @group.command()
    def fail() -> None:
        raise error

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == code
    assert "Traceback" not in result.output
    if message is not None:
        assert result.stderr == message


def test_unexpected_errors_show_a_traceback_with_debug(gr, repo, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(Record, "get_record", boom)
    with pytest.raises(RuntimeError, match="boom"):
        gr(repo, "get", SEED_ID)


def test_no_input_on_a_terminal_is_a_usage_error(gr, repo, monkeypatch):
    monkeypatch.setattr("gitrecords.cli._input.stdin_is_tty", lambda: True)
    result = gr(repo, "create")
    assert result.exit_code == 2
    assert result.stderr == "Error: no input: give a FILE, or pipe JSON into the command ('-' means stdin)\n"


def test_missing_file_is_a_usage_error(gr, repo, tmp_path):
    result = gr(repo, "create", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# -- the real executable -------------------------------------------------------


@pytest.fixture
def exe() -> str:
    beside = Path(sys.executable).parent / "gitrecords"
    found = str(beside) if beside.exists() else shutil.which("gitrecords")
    if found is None:
        pytest.fail("the gitrecords executable is not installed: pip install -e '.[test]'")
    return found


def run(
    exe: str, *args: str, input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITRECORDS_DEBUG", "GITRECORDS_REPO")}
    return subprocess.run(
        [exe, *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def assert_one_error_line(proc: subprocess.CompletedProcess[str], start: str) -> None:
    assert proc.stderr.startswith(start), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_executable_export_to_dev_stdout(exe, title_repo, tmp_path):
    record_id = run(exe, "--repo", str(title_repo.path), "create", input='{"title": "a"}').stdout.strip()
    proc = run(exe, "--repo", str(title_repo.path), "export", "-o", "/dev/stdout")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == [record_id]
    out = tmp_path / "out.jsonl"
    with out.open("w") as stdout:  # stdout a file: written through, not replaced
        subprocess.run(
            [exe, "--repo", str(title_repo.path), "export", "-o", "/dev/stdout"], stdout=stdout, check=True
        )
    assert json.loads(out.read_text())["id"] == record_id


def test_executable_create_pipeline(exe, title_repo, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "GITRECORDS_DEBUG"},
        "GITRECORDS_REPO": str(title_repo.path),
        "PATH": f"{Path(exe).parent}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(
        ["bash", "-c", 'echo \'{"title": "New record"}\' | gitrecords create | xargs gitrecords get'],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"title": "New record"}
    assert proc.stderr.startswith("Created 1 record (commit ")


def test_executable_exit_codes(exe, title_repo):
    repo = str(title_repo.path)
    before = git(title_repo, "rev-parse", "main")

    invalid = run(exe, "--repo", repo, "create", input='{"title": ')
    assert invalid.returncode == 1
    assert_one_error_line(invalid, "Error: stdin is not valid JSON: Expecting value")

    batch = run(exe, "--repo", repo, "create", input='[{"title": 1}, {"title": "ok"}, {"year": 2}]')
    assert batch.returncode == 1
    assert batch.stderr.splitlines() == [
        "stdin[0]: new record: /title: 1 is not of type 'string'",
        "stdin[2]: new record: /: 'title' is a required property",
        "Error: 2 problems in 2 of 3 records; nothing was written",
    ]
    assert batch.stdout == ""
    assert git(title_repo, "rev-parse", "main") == before

    missing = run(exe, "--repo", repo, "get", SEED_ID)
    assert missing.returncode == 1
    assert_one_error_line(missing, f"Error: record {SEED_ID} does not exist")

    usage = run(exe, "--repo", repo, "patch", input="[]")
    assert usage.returncode == 2
    assert "Error: Missing option '-i' / '--id'." in usage.stderr
    assert "Traceback" not in usage.stderr

    created = run(exe, "--repo", repo, "create", "-i", SEED_ID, input='{"title": "x"}')
    assert created.returncode == 0
    assert created.stdout == SEED_ID + "\n"
    exists = run(exe, "--repo", repo, "create", "-i", SEED_ID, input='{"title": "y"}')
    assert exists.returncode == 1  # a data conflict (issue 18, 11), not a usage error
    assert_one_error_line(exists, f"Error: record {SEED_ID} already exists: use --force")


def test_executable_hard_delete_does_not_hang_without_a_terminal(exe, repo):
    record_id = run(exe, "--repo", str(repo.path), "create", input="{}").stdout.strip()
    proc = run(exe, "--repo", str(repo.path), "delete", "--force", "-i", record_id)
    assert proc.returncode == 2
    assert_one_error_line(proc, "Error: delete --force purges 1 record from the whole history")
    assert git(repo, "cat-file", "-t", f"main:{repo.path_for(record_id)}").strip() == "blob"


def test_executable_closed_pipe_is_quiet(exe, sample_repo):
    env = {**os.environ, "PATH": f"{Path(exe).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "-c", f"gitrecords --repo {sample_repo.path} export | head -c 10"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.stdout == '{"id": "dd'
    assert "Traceback" not in proc.stderr


def test_a_fresh_git_init_is_not_a_data_repository(gr, tmp_path: Path) -> None:
    """A `git init` with no commits gets the same advice as a repository without gitrecords.json."""
    subprocess.run(["git", "init", "-q", str(tmp_path / "fresh")], check=True)
    result = gr(tmp_path / "fresh", "list")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {tmp_path / 'fresh'} is not a gitrecords data repository (it has no commits): "
        "create one with 'gitrecords init'\n"
    )


# -- shell completion (docs/cli.md) --------------------------------------------


@pytest.mark.parametrize(
    ("shell", "start"),
    [
        ("bash", "_gitrecords_completion() {"),
        ("zsh", "#compdef gitrecords"),
        ("fish", "function _gitrecords_completion;"),
    ],
)
def test_the_executable_prints_a_completion_script(exe, shell, start):
    env = {k: v for k, v in os.environ.items() if k != "GITRECORDS_DEBUG"}
    proc = subprocess.run(
        [exe],
        env={**env, "_GITRECORDS_COMPLETE": f"{shell}_source"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.lstrip().startswith(start)
    assert "_GITRECORDS_COMPLETE=" in proc.stdout


def test_bash_completion_completes_commands_and_options(exe):
    script = (
        'eval "$(_GITRECORDS_COMPLETE=bash_source gitrecords)"\n'
        'ask() { COMPREPLY=(); _gitrecords_completion gitrecords && echo "${COMPREPLY[@]}"; }\n'
        "COMP_WORDS=(gitrecords li); COMP_CWORD=1; ask\n"
        "COMP_WORDS=(gitrecords list --c); COMP_CWORD=2; ask\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GITRECORDS_DEBUG"}
    env["PATH"] = f"{Path(exe).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == ["list", "--count --csv"]
