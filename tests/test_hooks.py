"""The pre-receive hook, with real ``git push`` over file:// into a bare repository."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from ci_helpers import B, C, D, clone, commit_all, make_server, run, write
from helpers import fsck, git

from gitrecords import Record, Repository, githooks, layout


@pytest.fixture
def server(tmp_path: Path) -> Repository:
    repo = make_server(tmp_path / "server.git")
    githooks.install(repo, reject_rewrites=True, allow_rewrite=["wip/*"])
    return repo


@pytest.fixture
def work(server: Repository, tmp_path: Path) -> Path:
    return clone(server, tmp_path / "work")


def push(work: Path, *args: str) -> tuple[int, str]:
    proc = run(work, "git", "push", "origin", *args, check=False)
    return proc.returncode, proc.stderr


def tip(server: Repository, ref: str = "main") -> str:
    return git(server, "rev-parse", ref).strip()


def test_an_invalid_push_is_rejected_and_nothing_moves(server: Repository, work: Path) -> None:
    before = tip(server)
    write(work, layout.path_for(D), {"title": 4})
    (work / layout.path_for(B)).unlink()
    commit_all(work, "bad")
    pushed = run(work, "git", "rev-parse", "HEAD").stdout.strip()
    code, stderr = push(work, "HEAD:main")
    assert code != 0
    remote = [
        line.removeprefix("remote: ").rstrip() for line in stderr.splitlines() if line.startswith("remote:")
    ]
    assert remote == [
        f"refs/heads/main: 2 problems in 2 files (1 record checked) ({before[:7]}..{pushed[:7]}):",
        f"  {layout.path_for(B)}: [removed] record {B}'s file was removed: restore it and delete the "
        "record with 'gitrecords delete' (a soft delete leaves a tombstone), or purge it with "
        "'gitrecords delete --force', which lists it in purged.txt",
        f"  {layout.path_for(D)}:2: [schema] /title: 4 is not of type 'string'",
        "Error: push rejected (1 ref update): fix the problems above ('gitrecords validate' shows them "
        "before you push), commit and push again",
    ]
    assert "[remote rejected] HEAD -> main (pre-receive hook declined)" in stderr
    assert tip(server) == before
    # the pushed objects stayed in quarantine, which git threw away
    assert run(server.git_dir, "git", "cat-file", "-e", pushed, check=False).returncode != 0
    fsck(server)


def test_a_valid_push_lands(server: Repository, work: Path) -> None:
    write(work, layout.path_for(D), {"title": "a new record", "control_number": "4"})
    commit_all(work, "add D")
    code, stderr = push(work, "HEAD:main")
    assert code == 0, stderr
    assert "remote: refs/heads/main: 1 record valid" in stderr
    assert tip(server) == run(work, "git", "rev-parse", "HEAD").stdout.strip()
    assert Record.get_record(D, repo=server)["title"] == "a new record"
    assert server.lookup_pid("recid", "4") == Record.get_record(D, repo=server).id
    fsck(server)


def test_a_pid_clash_is_rejected(server: Repository, work: Path) -> None:
    write(work, layout.path_for(D), {"title": "a new record", "control_number": "2"})
    commit_all(work)
    code, stderr = push(work, "HEAD:main")
    assert code != 0
    assert f"[pid] /control_number: PID recid:2 is also used by record {B}" in stderr


def test_rewrites_are_rejected_except_where_allowed(server: Repository, work: Path) -> None:
    write(work, layout.path_for(D), {"title": "first"})
    commit_all(work, "first")
    assert push(work, "HEAD:main")[0] == 0
    assert push(work, "HEAD:refs/heads/wip/x")[0] == 0
    before = tip(server)
    run(work, "git", "reset", "-q", "--hard", "HEAD~1")
    write(work, layout.path_for(D), {"title": "rewritten"})
    commit_all(work, "rewritten")
    code, stderr = push(work, "--force", "HEAD:main")
    assert code != 0
    assert (
        "remote: refs/heads/main: a non-fast-forward update (history rewrite) is not allowed here: "
        "pull, merge or rebase onto the current branch, and push without --force"
    ) in stderr
    assert tip(server) == before
    code, stderr = push(work, "--force", "HEAD:refs/heads/wip/x")
    assert code == 0, stderr
    assert tip(server, "wip/x") == run(work, "git", "rev-parse", "HEAD").stdout.strip()
    assert push(work, ":refs/heads/wip/x")[0] == 0  # deleting a branch is fine
    assert git(server, "branch", "--list", "wip/x") == ""


def test_with_accept_rewrites_a_valid_force_push_lands(server: Repository, work: Path) -> None:
    githooks.install(server, reject_rewrites=False)
    run(work, "git", "reset", "-q", "--hard", "HEAD~1")
    write(work, layout.path_for(D), {"title": "history rewritten"})
    commit_all(work, "rewrite")
    code, stderr = push(work, "--force", "HEAD:main")
    assert code == 0, stderr
    assert tip(server) == run(work, "git", "rev-parse", "HEAD").stdout.strip()


def test_a_new_branch_is_checked_from_its_merge_base(server: Repository, work: Path) -> None:
    with server:
        Record.create({"title": "on main"})  # main moves on: the branch does not remove this record
    write(work, layout.path_for(D), {"title": 4})
    commit_all(work)
    code, stderr = push(work, "HEAD:refs/heads/feature")
    assert code != 0
    assert "remote: refs/heads/feature: 1 problem in 1 of 1 record" in stderr
    assert git(server, "branch", "--list", "feature") == ""


def test_quarantined_objects_reach_git_cat_file_and_worker_processes(server: Repository, work: Path) -> None:
    """A hook that reads every blob through git cat-file, in two worker processes: the pushed
    objects are still in quarantine, visible through the environment git gives the hook."""
    hook = server.git_dir / "hooks" / "pre-receive"
    code = (
        "import sys, gitrecords._checkfile as c; c.CAT_FILE_THRESHOLD = 0; "
        "from gitrecords.cli import main; sys.argv[1:] = ['hooks', 'pre-receive', '-j', '2']; main()"
    )
    hook.write_text(f"#!/bin/sh\nexec {sys.executable} -P -c {shlex.quote(code)}\n")
    with server:
        Record.create({"title": "main moves on"})  # the branch's base is not main's tip: a PID scan
    write(work, layout.path_for(D), {"title": "clash", "control_number": "3"})
    commit_all(work)
    code_, stderr = push(work, "HEAD:refs/heads/feature")
    assert code_ != 0
    assert f"[pid] /control_number: PID recid:3 is also used by record {C}" in stderr
    write(work, layout.path_for(D), {"title": "fine", "control_number": "5"})
    commit_all(work)
    code_, stderr = push(work, "HEAD:refs/heads/feature")
    assert code_ == 0, stderr


def test_server_index(server: Repository, tmp_path: Path) -> None:
    opened = githooks.server_index(Repository(server.git_dir, from_env=True))
    assert opened is not None
    assert opened.index.indexed_tip() == tip(server)
    opened.close()
    bare = tmp_path / "plain.git"
    run(tmp_path, "git", "clone", "-q", "--bare", f"file://{server.path}", "plain.git")
    assert githooks.server_index(Repository(bare)) is None  # never indexed: not built in a hook


def test_the_first_push_into_an_empty_repository_is_checked_whole(work: Path, tmp_path: Path) -> None:
    run(tmp_path, "git", "init", "-q", "--bare", "--initial-branch", "main", "empty.git")
    empty = Repository(tmp_path / "empty.git")
    githooks.install(empty)
    run(work, "git", "remote", "add", "empty", f"file://{empty.path}")
    proc = run(work, "git", "push", "empty", "HEAD:main", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "remote: refs/heads/main: 3 records valid (the whole tree of " in proc.stderr
    # a repository that is not a data repository cannot be pushed there
    other = tmp_path / "code"
    run(tmp_path, "git", "init", "-q", "code")
    (other / "main.py").write_text("print('hello')\n")
    commit_all(other)
    proc = run(other, "git", "push", f"file://{empty.path}", "HEAD:refs/heads/code", check=False)
    assert proc.returncode != 0
    assert (
        "gitrecords.json: [config] there is no gitrecords.json: this is not a gitrecords data repository"
        in (proc.stderr)
    )


def test_git_notes_can_be_pushed(server: Repository, work: Path) -> None:
    """refs/notes/* hold notes keyed by commit ids, not records: they were checked as a data
    tree and refused ("there is no gitrecords.json"); a hard delete moves them (format.md)."""
    run(
        work,
        "git",
        "-c",
        "user.name=C",
        "-c",
        "user.email=c@example.org",
        "notes",
        "add",
        "-m",
        "reviewed",
        "HEAD",
    )
    code, stderr = push(work, "refs/notes/commits")
    assert code == 0, stderr
    noted = run(work, "git", "rev-parse", "refs/notes/commits").stdout.strip()
    assert git(server, "rev-parse", "refs/notes/commits").strip() == noted
    fsck(server)
