"""CLI: validate (ranges, formats, --staged), fmt, hooks install and hooks pre-receive."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from ci_helpers import A, B, D, clone, commit_all, make_server, run, write
from helpers import git

from gitrecords import Repository, layout
from gitrecords.checks import Problem
from gitrecords.cli import _output
from gitrecords.cli.ci import github_annotation


@pytest.fixture
def server(tmp_path: Path) -> Repository:
    return make_server(tmp_path / "server.git")


@pytest.fixture
def work(server: Repository, tmp_path: Path) -> Path:
    return clone(server, tmp_path / "work")


@pytest.fixture
def pr(work: Path) -> Path:
    """A clone with one commit on top of origin/main: record D's title is a number."""
    write(work, layout.path_for(D), {"title": 4})
    commit_all(work, "add D")
    return work


def head(work: Path, rev: str = "HEAD") -> str:
    return run(work, "git", "rev-parse", rev).stdout.strip()


# -- validate ----------------------------------------------------------------------


def test_validate_a_range(gr, pr: Path) -> None:
    result = gr(pr, "validate", "origin/main..HEAD")
    assert result.exit_code == 1
    assert result.stdout == f"{layout.path_for(D)}:2: [schema] /title: 4 is not of type 'string'\n"
    span = f"{head(pr, 'origin/main')[:7]}..{head(pr)[:7]}"
    assert result.stderr == f"Error: {span}: 1 problem in 1 of 1 record\n"
    since = gr(pr, "validate", "--since", "origin/main")
    assert (since.exit_code, since.stdout, since.stderr) == (1, result.stdout, result.stderr)
    clean = gr(pr, "validate", "HEAD~1")  # a revision: its whole tree
    assert (clean.exit_code, clean.stderr) == (0, "3 records valid\n")
    whole = gr(pr, "validate")
    assert (whole.exit_code, whole.stderr) == (1, "Error: 1 problem in 1 of 4 records\n")


def test_validate_json(gr, pr: Path) -> None:
    result = gr(pr, "validate", "--format", "json", "origin/main..")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out == {
        "valid": False,
        "head": head(pr),
        "base": head(pr, "origin/main"),
        "checked": 1,
        "invalid": 1,
        "problems": [
            {
                "path": layout.path_for(D),
                "line": 2,
                "id": D,
                "pointer": "/title",
                "check": "schema",
                "message": "4 is not of type 'string'",
            }
        ],
    }
    assert json.loads(gr(pr, "validate", "--json", "origin/main..").stdout) == out


def test_validate_github_annotations(gr, pr: Path) -> None:
    (pr / layout.path_for(B)).unlink()
    commit_all(pr, "remove B")
    result = gr(pr, "validate", "--format", "github", "origin/main..HEAD")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"::error file={layout.path_for(B)},title=gitrecords removed::record {B}'s file was removed: "
        "restore it and delete the record with 'gitrecords delete' (a soft delete leaves a tombstone), "
        "or purge it with 'gitrecords delete --force', which lists it in purged.txt",
        f"::error file={layout.path_for(D)},line=2,title=gitrecords schema::"
        "/title: 4 is not of type 'string'",
    ]
    assert result.stderr.startswith("Error: ")


def test_github_annotations_escape_what_workflow_commands_parse() -> None:
    problem = Problem("a,b:c.json", "schema", "100% wrong\nreally", 3, None, "/x")
    assert github_annotation(problem) == (
        "::error file=a%2Cb%3Ac.json,line=3,title=gitrecords schema::/x: 100%25 wrong%0Areally"
    )


def test_validate_in_a_bare_repository_and_a_detached_ci_checkout(gr, server: Repository, pr: Path) -> None:
    run(pr, "git", "push", "-q", "origin", "HEAD:refs/heads/feature")
    bare = gr(server, "validate", "main..feature")
    assert bare.exit_code == 1
    assert bare.stdout.startswith(layout.path_for(D))
    # a CI checkout: detached HEAD and no local main branch
    run(pr, "git", "checkout", "-q", "--detach")
    run(pr, "git", "branch", "-q", "-D", "main")
    detached = gr(pr, "validate", "origin/main..HEAD")
    assert (detached.exit_code, detached.stdout) == (1, bare.stdout)
    assert gr(pr, "validate").exit_code == 1


def test_validate_staged(gr, work: Path) -> None:
    write(work, layout.path_for(D), {"title": "fine"})
    run(work, "git", "add", "-A")
    write(work, layout.path_for(D), {"title": 4})  # not staged: not what the commit holds
    result = gr(work, "validate", "--staged")
    assert result.exit_code == 0, result.stdout
    assert result.stderr.endswith(": 1 record valid\n")
    run(work, "git", "add", "-A")
    staged = gr(work, "validate", "--staged")
    assert staged.exit_code == 1
    assert staged.stdout == f"{layout.path_for(D)}:2: [schema] /title: 4 is not of type 'string'\n"


def test_validate_staged_first_commit(gr, tmp_path: Path) -> None:
    work = tmp_path / "new"
    run(tmp_path, "git", "init", "-q", "new")
    write(work, "gitrecords.json", {"format": 1})
    write(work, layout.path_for(A), {"title": "first"})
    write(work, "records/README.md", b"records live here\n", raw=True)
    run(work, "git", "add", "-A")
    result = gr(work, "validate", "--staged")
    assert result.exit_code == 1
    assert result.stdout.startswith("records/README.md: [stray] only record files")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("a..b", "--since", "c"), "give a RANGE or --since, not both"),
        (("--staged", "HEAD"), "--staged checks the staged files against HEAD: give no RANGE or --since"),
        (("origin/nope..HEAD",), "unknown revision 'origin/nope' (is it fetched?)"),
        (("--since", "nope"), "unknown revision 'nope' (is it fetched?)"),
        (("HEAD", "HEAD~1"), "give one RANGE (BASE..HEAD) or REVISION, or record IDs"),
        ((A, "--since", "HEAD"), "--since checks a range, not record IDs"),
    ],
)
def test_validate_usage_errors(gr, work: Path, args: tuple[str, ...], message: str) -> None:
    result = gr(work, "validate", *args)
    assert (result.exit_code, result.stderr) == (2, f"Error: {message}\n")


def test_validate_staged_needs_a_working_clone(gr, server: Repository) -> None:
    result = gr(server, "validate", "--staged")
    assert result.exit_code == 2
    assert result.stderr == f"Error: {server.path} is a bare repository: --staged needs a working clone\n"


def test_validate_record_ids(gr, pr: Path) -> None:
    assert gr(pr, "validate", A).stderr == "1 record valid\n"
    result = gr(pr, "validate", D, B)
    assert (result.exit_code, result.stderr) == (1, "Error: 1 problem in 1 of 2 records\n")


def test_validate_progress_on_a_terminal(gr, server: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_output, "stderr_is_tty", lambda: True)
    result = gr(server, "validate", "--workers", "2")
    assert result.exit_code == 0
    assert result.stderr.split("\r")[-1].startswith("Validating  3/3  100%")
    assert result.stderr.endswith("3 records valid\n")


# -- fmt ---------------------------------------------------------------------------


def test_fmt_rewrites_record_files(gr, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(work)
    path = layout.path_for(A)
    (work / path).write_text('{"title": "é", "control_number": "1"}')
    check = gr(None, "fmt", "--check")
    assert check.exit_code == 1
    assert check.stdout == f"{path}\n"
    assert check.stderr == "Error: 1 of 3 files not in canonical form: run 'gitrecords fmt' to rewrite them\n"
    assert (work / path).read_text() == '{"title": "é", "control_number": "1"}'
    result = gr(None, "fmt")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"{path}\n", "Reformatted 1 of 3 files\n")
    assert (work / path).read_bytes() == layout.dumps({"control_number": "1", "title": "é"})
    again = gr(None, "fmt")
    assert (again.stdout, again.stderr) == ("", "3 files already in canonical form\n")
    assert gr(None, "fmt", "--check").stderr == "3 files in canonical form\n"
    assert gr(None, "validate").exit_code == 0


def test_fmt_paths_and_invalid_json(gr, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (work / "sub").mkdir()
    monkeypatch.chdir(work / "sub")
    (work / "sub" / "a.json").write_text('{"b": 1, "a": 2}\n')
    (work / "sub" / "bad.json").write_text('{\n  "a": NaN\n}\n')
    result = gr(None, "fmt", "a.json", "bad.json")
    assert result.exit_code == 1
    assert result.stdout == "a.json\n"
    assert result.stderr == (
        "bad.json:2: [json] bad.json is not valid JSON: NaN is not a JSON number (use null or a string)"
        " (line 2, at /a)\n"
        "Error: 1 of 2 files not valid JSON; left as they are\n"
    )
    assert (work / "sub" / "a.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'


def test_fmt_refuses_paths_outside_the_working_clone(gr, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = work.parent / "outside.json"
    outside.write_text('{"b": 1, "a": 2}')
    monkeypatch.chdir(work)
    result = gr(None, "fmt", "../outside.json")
    assert (result.exit_code, result.stdout) == (2, "")
    assert (
        result.stderr
        == f"Error: ../outside.json is outside the working clone {work}: fmt rewrites only its files\n"
    )
    assert outside.read_text() == '{"b": 1, "a": 2}'


def test_fmt_needs_a_data_repository(gr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(tmp_path, "git", "init", "-q", "code")
    ugly = tmp_path / "code" / "records" / "x.json"
    ugly.parent.mkdir()
    ugly.write_text('{"b": 1, "a": 2}')
    commit_all(tmp_path / "code")
    monkeypatch.chdir(tmp_path / "code")
    for args in ([], ["records/x.json"]):
        result = gr(None, "fmt", *args)
        assert result.exit_code == 2
        assert result.stderr == (
            f"Error: {tmp_path / 'code'} is not a gitrecords data repository "
            "(no gitrecords.json in its working tree): "
            "use --repo PATH, or create one with 'gitrecords init'\n"
        )
    assert ugly.read_text() == '{"b": 1, "a": 2}'


def test_fmt_paths_see_files_as_git_does(gr, server: Repository, tmp_path: Path, monkeypatch) -> None:
    """core.autocrlf=true checks files out with CRLF line ends: canonical for git, named or not."""
    work = tmp_path / "crlf"
    run(tmp_path, "git", "clone", "-q", "-c", "core.autocrlf=true", str(server.git_dir), str(work))
    path = layout.path_for(A)
    before = (work / path).read_bytes()
    assert b"\r\n" in before
    monkeypatch.chdir(work / "records")
    named = os.path.relpath(work / path)
    assert gr(None, "fmt", "--check").exit_code == 0
    check = gr(None, "fmt", "--check", named)
    assert (check.exit_code, check.stderr) == (0, "1 file in canonical form\n")
    assert gr(None, "fmt", named).stdout == ""
    assert (work / path).read_bytes() == before


def test_fmt_needs_a_working_clone(gr, server: Repository) -> None:
    result = gr(server, "fmt")
    assert (result.exit_code, result.stderr) == (
        2,
        f"Error: {server.path} is a bare repository: fmt rewrites files in a working clone\n",
    )


# -- hooks -------------------------------------------------------------------------


def test_hooks_install(gr, server: Repository) -> None:
    result = gr(server, "hooks", "install", "--reject-rewrites", "--allow-rewrite", "wip/*")
    assert result.exit_code == 0, result.stderr
    hook = server.git_dir / "hooks" / "pre-receive"
    assert result.stderr == (
        f"Installed {hook} (validates every push and rejects non-fast-forward updates except to "
        "refs/heads/wip/*)\n"
    )
    text = hook.read_text()
    assert text.splitlines()[-1] == (
        f"exec {sys.executable} -P -m gitrecords.cli hooks pre-receive --reject-rewrites "
        "--allow-rewrite 'refs/heads/wip/*'"
    )
    assert hook.stat().st_mode & stat.S_IXUSR
    assert gr(server, "hooks", "install", "--accept-rewrites").exit_code == 0  # its own hook is replaced
    assert hook.read_text().splitlines()[-1].endswith("hooks pre-receive --accept-rewrites")
    assert gr(server, "hooks", "install").exit_code == 0  # rewrites are refused by default
    assert hook.read_text().splitlines()[-1].endswith("hooks pre-receive --reject-rewrites")
    hook.write_text("#!/bin/sh\necho mine\n")
    refused = gr(server, "hooks", "install")
    assert (refused.exit_code, refused.stderr) == (
        2,
        f"Error: {hook} exists and was not written by gitrecords: use --force to replace it\n",
    )
    assert gr(server, "hooks", "install", "--force").exit_code == 0


def test_hooks_install_usage(gr, server: Repository) -> None:
    result = gr(server, "hooks", "install", "--accept-rewrites", "--allow-rewrite", "main")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: --allow-rewrite makes no sense with --accept-rewrites\n",
    )


def test_pre_receive_command(gr, server: Repository, pr: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the hook runs, fed by hand (the objects are already in the repository here)."""
    run(pr, "git", "push", "-q", "origin", "HEAD:refs/heads/feature")
    old, new = git(server, "rev-parse", "main", "feature").split()
    monkeypatch.setenv("GIT_DIR", str(server.git_dir))
    monkeypatch.chdir(server.git_dir)
    result = gr(None, "hooks", "pre-receive", input=f"{old} {new} refs/heads/main\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"refs/heads/main: 1 problem in 1 of 1 record ({old[:7]}..{new[:7]}):",
        f"  {layout.path_for(D)}:2: [schema] /title: 4 is not of type 'string'",
        "Error: push rejected (1 ref update): fix the problems above ('gitrecords validate' shows them "
        "before you push), commit and push again",
    ]
    deletion = gr(None, "hooks", "pre-receive", input=f"{new} {'0' * 40} refs/heads/feature\n")
    assert (deletion.exit_code, deletion.stderr) == (0, "")
    garbage = gr(None, "hooks", "pre-receive", input="nonsense\n")
    assert (garbage.exit_code, garbage.stderr) == (1, "Error: not a pre-receive line: 'nonsense'\n")
    assert os.environ["GIT_DIR"] == str(server.git_dir)


def test_validate_an_empty_repository(gr, tmp_path: Path) -> None:
    run(tmp_path, "git", "init", "-q", "--bare", "empty.git")
    result = gr(tmp_path / "empty.git", "validate")
    assert (result.exit_code, result.stderr) == (
        2,
        f"Error: {tmp_path / 'empty.git'} has no commit yet: there is nothing to check\n",
    )


def test_validate_a_tree_that_is_no_data_repository(gr, tmp_path: Path) -> None:
    run(tmp_path, "git", "init", "-q", "code")
    (tmp_path / "code" / "main.py").write_text("print()\n")
    commit_all(tmp_path / "code")
    result = gr(tmp_path / "code", "validate")
    assert result.exit_code == 1
    assert result.stdout == (
        "gitrecords.json: [config] there is no gitrecords.json: this is not a gitrecords data repository\n"
    )
    fmt = gr(tmp_path / "code", "fmt")
    assert fmt.exit_code == 2
    assert "is not a gitrecords data repository" in fmt.stderr


def test_keys_that_differ_only_in_unicode_normalization_are_a_warning(gr, work: Path) -> None:
    """Two keys spelled café (precomposed é, and e + combining accent) stay two keys: validate warns,
    in every format, without failing."""
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    (work / layout.path_for(D)).parent.mkdir(parents=True, exist_ok=True)
    (work / layout.path_for(D)).write_text(
        json.dumps(
            {composed: 1, decomposed: 2, "title": "two cafés"}, indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n",
        encoding="utf-8",
    )
    commit_all(work, "add D")
    result = gr(work, "validate", "origin/main..HEAD")
    assert result.exit_code == 0, result.stderr
    assert "warning: " in result.stderr and "[unicode-keys]" in result.stderr
    as_json = json.loads(gr(work, "validate", "origin/main..HEAD", "--json").stdout)
    assert as_json["valid"] is True
    assert [(w["check"], w["id"]) for w in as_json["warnings"]] == [("unicode-keys", D)]
    github = gr(work, "validate", "origin/main..HEAD", "--format", "github")
    assert github.exit_code == 0
    assert github.stdout.startswith("::warning file=")


@pytest.mark.parametrize("where", ["root", "other-folder"])
def test_record_files_outside_the_records_folder_are_reported(gr, work: Path, where: str) -> None:
    """A UUID-named .json file committed outside its fan-out path is a record nobody sees: validate
    reports it, in the whole tree and in a range, in every format."""
    path = f"{D}.json" if where == "root" else f"data/{D}.json"
    write(work, path, {"title": "lost"})
    commit_all(work, "a record in the wrong place")
    for args in (("validate", "origin/main..HEAD"), ("validate", "HEAD")):
        result = gr(work, *args, "--json")
        assert result.exit_code == 1, result.stderr
        problems = json.loads(result.stdout)["problems"]
        assert [(p["path"], p["check"], p["id"]) for p in problems] == [(path, "layout", D)]
        assert f"git mv it to {layout.path_for(D)}" in problems[0]["message"]
    text = gr(work, "validate", "HEAD")
    assert f"{path}: [layout] this is not where record {D} belongs" in text.stdout
    github = gr(work, "validate", "HEAD", "--format", "github")
    assert github.stdout.startswith(f"::error file={path}")
