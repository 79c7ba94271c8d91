"""The pre-receive hook, with real ``git push`` over file:// into a bare repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from ci_helpers import B, D, clone, commit_all, make_server, run, write
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


def test_without_reject_rewrites_a_valid_force_push_lands(server: Repository, work: Path) -> None:
    githooks.install(server)
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
