"""A hard delete stays done: a clone made before it cannot push the purged history back
(issue 16, finding 1), through a real `git push` into a bare repository with the hook installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ci_helpers import A, B, E, clone, commit_all, make_server, run, write

from gitrecords import Repository, layout
from gitrecords.checks import validate
from gitrecords.githooks import install

SECRET = "record 1"  # the purged record's title (make_server): it must not come back


@pytest.fixture
def server(tmp_path: Path) -> Repository:
    return make_server(tmp_path / "server.git")


def reachable_content(server: Repository, text: str) -> str:
    """Commits reachable from any ref of the server whose changes mention ``text`` (git log -S)."""
    return run(server.git_dir, "git", "log", "--all", "--format=%H", f"-S{text}").stdout.strip()


def stale_clone_after_plain_pull(server: Repository, tmp_path: Path) -> Path:
    """A clone made before the hard delete of A that then ran a plain `git pull` (joining the old
    history with the rewritten one) and followed the advice: `git rm` the file, commit."""
    work = clone(server, tmp_path / "old")
    write(work, layout.path_for(E), {"title": "added offline", "control_number": "5"})
    commit_all(work, "add E offline")
    server.hard_delete([A])
    assert not reachable_content(server, SECRET)
    identity = ("-c", "user.name=T", "-c", "user.email=t@example.org")
    run(work, "git", *identity, "pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
    assert (work / layout.path_for(A)).exists()  # the old history kept it on this side
    run(work, "git", "rm", "-q", layout.path_for(A))
    commit_all(work, "remove the purged record again")
    return work


def test_a_fast_forward_push_of_a_purged_history_is_refused(server: Repository, tmp_path: Path) -> None:
    install(server)
    work = stale_clone_after_plain_pull(server, tmp_path)
    before = run(server.git_dir, "git", "rev-parse", "main").stdout
    push = run(work, "git", "push", "origin", "HEAD:main", check=False)
    assert push.returncode != 0
    assert f"this history contains content of record {A}, purged in" in push.stderr
    assert "clone again" in push.stderr
    assert run(server.git_dir, "git", "rev-parse", "main").stdout == before
    assert not reachable_content(server, SECRET)


def test_a_purged_history_is_refused_when_the_push_also_copies_the_record_elsewhere(
    server: Repository, tmp_path: Path
) -> None:
    """git lists each object once, under the first path it meets it at: with the purged record's
    bytes also in another, newer file, the record's own path was never seen, and the old history
    came back. Every new tree is read, wherever git met it."""
    install(server)
    work = stale_clone_after_plain_pull(server, tmp_path)
    path = layout.path_for(A)
    copy = run(work, "git", "show", f"HEAD~1^1:{path}").stdout  # the old side of the merge
    (work / "copy.txt").write_text(copy)
    commit_all(work, "an unrelated file")
    before = run(server.git_dir, "git", "rev-parse", "main").stdout
    push = run(work, "git", "push", "origin", "HEAD:main", check=False)
    assert push.returncode != 0
    assert f"this history contains content of record {A}, purged in" in push.stderr
    assert run(server.git_dir, "git", "rev-parse", "main").stdout == before
    assert not reachable_content(server, SECRET)


def test_the_purged_history_is_refused_even_where_rewrites_are_accepted(
    server: Repository, tmp_path: Path
) -> None:
    install(server, reject_rewrites=False)
    work = clone(server, tmp_path / "old")
    server.hard_delete([A])
    push = run(work, "git", "push", "--force", "origin", "HEAD:main", check=False)  # the old history
    assert push.returncode != 0
    assert f"record {A} was hard-deleted (it is listed in purged.txt) and cannot come back" in push.stderr
    assert not reachable_content(server, SECRET)


def test_a_tag_of_a_purged_file_or_tree_is_refused(server: Repository, tmp_path: Path) -> None:
    """A ref that names a blob or a tree is never validated: such refs are refused, so the stale
    clone cannot keep the purged record's file on the server under a tag."""
    install(server)
    work = clone(server, tmp_path / "old")
    server.hard_delete([A])
    run(work, "git", "tag", "purged-blob", f"HEAD:{layout.path_for(A)}")
    run(work, "git", "tag", "purged-tree", "HEAD^{tree}")
    for tag in ("purged-blob", "purged-tree"):
        push = run(work, "git", "push", "origin", tag, check=False)
        assert push.returncode != 0
        assert f"refs/tags/{tag}: names no commit" in push.stderr
    assert run(server.git_dir, "git", "tag").stdout == ""
    assert not reachable_content(server, SECRET)


def test_rewrites_of_the_branch_are_refused_by_default(server: Repository, tmp_path: Path) -> None:
    install(server)
    work = clone(server, tmp_path / "work")
    run(work, "git", "reset", "-q", "--hard", "HEAD~1")
    write(work, layout.path_for(B), {"title": "rewritten", "control_number": "2"})
    commit_all(work, "a rewrite")
    push = run(work, "git", "push", "--force", "origin", "HEAD:main", check=False)
    assert push.returncode != 0
    assert "non-fast-forward update (history rewrite) is not allowed" in push.stderr


def test_validate_reports_a_purged_history_that_plain_git_merged(server: Repository, tmp_path: Path) -> None:
    work = stale_clone_after_plain_pull(server, tmp_path)
    report = validate(Repository(work), "HEAD")
    purged = [p for p in report.problems if p.check == "purged"]
    assert [(p.record_id, p.path) for p in purged] == [(A, layout.path_for(A))]
    assert "this history contains content of record" in purged[0].message
    # a range that does not bring the old history in is fine
    assert not [p for p in validate(Repository(work), "HEAD", "HEAD~1").problems if p.check == "purged"]


def test_a_purged_records_pid_stays_reserved_in_a_push(server: Repository, tmp_path: Path) -> None:
    """format.md: the PIDs of hard-deleted records are never minted or accepted again. A record
    written with plain git that takes one, and a purged.txt that drops one, are refused."""
    install(server)
    server.hard_delete([A])  # it held control_number 1
    work = clone(server, tmp_path / "work")
    write(work, layout.path_for(E), {"title": "new", "control_number": "1"})
    commit_all(work, "a new record with a reserved PID")
    push = run(work, "git", "push", "origin", "HEAD:main", check=False)
    assert push.returncode != 0
    assert f"PID recid:1 belonged to hard-deleted record {A} and stays reserved" in push.stderr
    run(work, "git", "reset", "-q", "--hard", "HEAD~1")
    (work / "purged.txt").write_text(f"{A}\n")  # the id stays, its PID is dropped
    commit_all(work, "forget the reserved PID")
    push = run(work, "git", "push", "origin", "HEAD:main", check=False)
    assert push.returncode != 0
    assert "1 PID of hard-deleted records no longer listed (recid:1)" in push.stderr


def test_a_notes_ref_naming_the_old_history_is_refused(server: Repository, tmp_path: Path) -> None:
    """Notes refs are not checked as records (a00929d), but a notes ref can name any commit: the
    old clone's branch pushed as refs/notes/commits put the purged record back on the server."""
    install(server)
    work = clone(server, tmp_path / "old")
    server.hard_delete([A])
    push = run(work, "git", "push", "origin", "HEAD:refs/notes/commits", check=False)
    assert push.returncode != 0
    assert f"this history contains content of record {A}, purged in" in push.stderr
    assert not reachable_content(server, SECRET)
    # real notes, on the rewritten history, go through
    fresh = clone(server, tmp_path / "new")
    identity = ("-c", "user.name=T", "-c", "user.email=t@example.org")
    run(fresh, "git", *identity, "notes", "add", "-m", "checked by the curator", "HEAD")
    assert run(fresh, "git", "push", "origin", "refs/notes/commits", check=False).returncode == 0


def test_a_hard_delete_pushed_where_rewrites_are_allowed_is_not_refused_for_old_commits(
    server: Repository, tmp_path: Path
) -> None:
    """A history with a broken commit fixed by the next (pushed before the hook was installed),
    then a hard delete in a clone, force-pushed where rewrites are allowed: the rewritten commits
    are not new, and are not refused as [revision] problems."""
    work = clone(server, tmp_path / "work")
    (work / layout.path_for(B)).write_text('{"title": \n')
    commit_all(work, "broken")
    write(work, layout.path_for(B), {"title": "record 2, fixed", "control_number": "2"})
    commit_all(work, "fixed")
    run(work, "git", "push", "-q", "origin", "HEAD:main")
    install(server, allow_rewrite=["main"])
    clone_repo = Repository(work)
    clone_repo.hard_delete([A])
    clone_repo.close()
    push = run(work, "git", "push", "--force", "origin", "HEAD:main", check=False)
    assert push.returncode == 0, push.stderr
    assert not reachable_content(server, SECRET)
    # the same history as a new push of those commits is refused: they would be new revisions
    assert (
        "[revision]"
        in run(work, sys.executable, "-m", "gitrecords.cli", "validate", "HEAD~3..HEAD", check=False).stdout
    )
