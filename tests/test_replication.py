"""Replicas with the real git binary: a bare server, clones over file://, push, pull and merges."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from helpers import fsck, git

from gitrecords import NoResultFound, Record, Repository, layout
from gitrecords.errors import GitRecordsError, LocalChangesError
from gitrecords.merge import DUPLICATE_PID, EDIT_DELETE, PURGED, MergeConflictError
from gitrecords.replication import PushRejectedError, merge, pull, push

pytestmark = pytest.mark.usefixtures("curator_identity")


def sh(cwd: Path, *args: str) -> str:
    """Run git in a working directory (as a curator would)."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def clone(server: Repository, dest: Path, bare: bool = False) -> Repository:
    args = ["clone", "--quiet", *(["--bare"] if bare else []), f"file://{server.path}", str(dest)]
    subprocess.run(["git", *args], check=True, capture_output=True)
    return Repository(dest)


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", repo.branch).strip()


def parents(repo: Repository, rev: str = "main") -> list[str]:
    return git(repo, "rev-list", "--parents", "-n1", rev).split()[1:]


def edit(repo: Repository, record_id: uuid.UUID, **changes: object) -> Record:
    record = Record.get_record(record_id, repo=repo)
    record.update(changes)
    return record.commit()


def index_rows(repo: Repository) -> dict[uuid.UUID, list[tuple[int, str, str | None, int]]]:
    repo.sync_index()
    return {
        i: [(r.revision, r.commit_id, r.blob, r.state) for r in repo.index.revisions(i)]
        for i in repo.ids(with_deleted=True)
    }


def assert_index_is_right(repo: Repository) -> None:
    """The incrementally kept index equals one rebuilt from git, PIDs included."""
    before = index_rows(repo)
    pids = {i: repo.index.pids_of(i) for i in before}
    fresh = Repository(repo.path)
    fresh.reindex()
    assert index_rows(fresh) == before
    assert {i: fresh.index.pids_of(i) for i in before} == pids


@pytest.fixture
def server(tmp_path: Path) -> Repository:
    server = Repository.init(tmp_path / "server.git")
    for title in ("one", "two", "three"):
        Record.create({"title": title, "year": 2020, "tags": ["a"]}, repo=server, pid_minters=["recid"])
    return server


@pytest.fixture
def ids(server: Repository) -> list[uuid.UUID]:
    return sorted(server.ids(), key=lambda i: server.index.pids_of(i)["recid"])


# -- pull and push --------------------------------------------------------------------------------


def test_edits_of_different_records_merge_and_replicate(
    server: Repository, ids: list[uuid.UUID], tmp_path: Path
) -> None:
    alice = clone(server, tmp_path / "alice")  # a working clone
    bob = clone(server, tmp_path / "bob.git", bare=True)
    edit(alice, ids[0], title="one (alice)")
    assert push(alice).status == "pushed"
    edit(bob, ids[1], title="two (bob)")
    bob_before = tip(bob)

    with pytest.raises(PushRejectedError) as raised:
        push(bob)
    assert str(raised.value) == (
        "push to origin rejected: origin/main has commits that main does not have: "
        "run 'gitrecords pull' first"
    )

    outcome = pull(bob)
    assert outcome.status == "merged"
    assert outcome.records == [ids[0]] and outcome.merged == []
    # a real merge commit: the remote's tip first, then ours
    assert parents(bob) == [tip(server), bob_before]
    assert Record.get_record(ids[0], repo=bob)["title"] == "one (alice)"
    assert Record.get_record(ids[1], repo=bob)["title"] == "two (bob)"
    message = git(bob, "log", "-1", "--format=%B")
    assert message.startswith("merge origin/main into main\n")
    assert f"Gitrecords-Operation: merge\nGitrecords-Record: {ids[1]}\n" in message
    fsck(bob)

    assert push(bob).status == "pushed"
    assert tip(server) == tip(bob)
    fsck(server)

    outcome = pull(alice)
    assert outcome.status == "fast-forward" and outcome.records == [ids[1]]
    assert tip(alice) == tip(server)
    assert sh(alice.path, "status", "--porcelain") == ""
    file = alice.path / alice.path_for(ids[1])
    assert json.loads(file.read_text())["title"] == "two (bob)"
    assert pull(alice).status == "up-to-date"
    for repo in (server, alice, bob):
        assert_index_is_right(repo)
    assert git(bob, "for-each-ref", "refs/gitrecords") == ""  # the fetch's private ref is gone


def test_one_record_merges_field_by_field_and_published_revisions_stay(
    server: Repository, ids: list[uuid.UUID], tmp_path: Path
) -> None:
    alice = clone(server, tmp_path / "alice.git", bare=True)
    bob = clone(server, tmp_path / "bob.git", bare=True)
    edit(alice, ids[0], title="one (alice)")
    push(alice)
    edit(bob, ids[0], year=2021)
    edit(bob, ids[0], tags=["a", "b"])
    published = index_rows(server)[ids[0]]

    outcome = pull(bob)
    assert outcome.merged == [ids[0]]
    merged = {"control_number": "1", "title": "one (alice)", "year": 2021, "tags": ["a", "b"]}
    assert Record.get_record(ids[0], repo=bob) == merged
    path = bob.path_for(ids[0])
    assert git(bob, "show", f"main:{path}").encode() == layout.dumps(merged)  # canonical bytes

    # revisions number the first-parent history: the server's revisions come first and keep
    # their ids; bob's two local revisions become the merge's one revision
    rows = index_rows(bob)[ids[0]]
    assert rows[: len(published)] == published
    assert len(rows) == len(published) + 1 and rows[-1][1] == tip(bob)
    assert Record.get_record(ids[0], repo=bob).revision_id == len(published)
    push(bob)
    assert index_rows(server)[ids[0]] == rows
    assert [r["year"] for r in Record.get_record(ids[0], repo=server).revisions] == [2020, 2020, 2021]
    for repo in (server, bob):
        assert_index_is_right(repo)
        fsck(repo)


@pytest.mark.parametrize("strategy", ["ours", "theirs"])
def test_conflicting_edits_stop_the_pull_until_a_strategy_resolves_them(
    server: Repository, ids: list[uuid.UUID], tmp_path: Path, strategy: str
) -> None:
    alice = clone(server, tmp_path / "alice.git", bare=True)
    bob = clone(server, tmp_path / "bob")
    edit(alice, ids[0], title="alice's title")
    push(alice)
    edit(bob, ids[0], title="bob's title", year=1999)
    before = tip(bob)
    file = bob.path / bob.path_for(ids[0])
    on_disk = file.read_bytes()

    with pytest.raises(MergeConflictError) as raised:
        pull(bob)
    assert str(raised.value) == "merging origin/main into main stopped on 1 conflict; nothing was changed"
    [conflict] = raised.value.conflicts
    assert (conflict.kind, conflict.record, conflict.pointer) == ("both-changed", ids[0], "/title")
    assert (conflict.base, conflict.ours, conflict.theirs) == ("one", "bob's title", "alice's title")
    assert conflict.path == bob.path_for(ids[0])
    # nothing changed: the branch, the files, git's index, the refs
    assert tip(bob) == before
    assert file.read_bytes() == on_disk
    assert sh(bob.path, "status", "--porcelain") == ""
    assert git(bob, "for-each-ref", "refs/gitrecords") == ""

    outcome = pull(bob, strategy=strategy)
    assert outcome.status == "merged"
    assert [(c.pointer, c.resolved) for c in outcome.resolved] == [("/title", True)]
    record = Record.get_record(ids[0], repo=bob)
    assert record["title"] == ("bob's title" if strategy == "ours" else "alice's title")
    assert record["year"] == 1999  # bob's change that did not conflict is kept either way
    assert json.loads(file.read_text()) == dict(record)
    assert sh(bob.path, "status", "--porcelain") == ""
    assert f"Gitrecords-Strategy: {strategy}\n" in git(bob, "log", "-1", "--format=%B")
    fsck(bob)
    assert_index_is_right(bob)


def test_edit_versus_delete(server: Repository, ids: list[uuid.UUID], tmp_path: Path) -> None:
    alice = clone(server, tmp_path / "alice")
    bob = clone(server, tmp_path / "bob.git", bare=True)
    Record.get_record(ids[0], repo=alice).delete()  # soft delete: a tombstone
    sh(alice.path, "rm", "--quiet", alice.path_for(ids[1]))  # plain git rm
    sh(alice.path, "commit", "--quiet", "-m", "remove a record with git")
    sh(alice.path, "push", "--quiet", "origin", "main")
    edit(bob, ids[0], title="edited")
    edit(bob, ids[1], title="edited too")

    with pytest.raises(MergeConflictError) as raised:
        pull(bob)
    conflicts = sorted(raised.value.conflicts, key=lambda c: ids.index(c.record))
    assert [(c.kind, c.record, c.pointer) for c in conflicts] == [
        (EDIT_DELETE, ids[0], ""),
        (EDIT_DELETE, ids[1], ""),
    ]
    assert layout.is_tombstone(conflicts[0].theirs) and conflicts[0].ours["title"] == "edited"
    assert conflicts[1].to_json().keys() >= {"base", "ours"} and "theirs" not in conflicts[1].to_json()
    assert conflicts[0].describe().startswith(f"record {ids[0]}: deleted on theirs, changed on ours: base ")

    pull(bob, strategy="theirs")
    assert layout.is_tombstone(json.loads(git(bob, "show", f"main:{bob.path_for(ids[0])}")))
    assert ids[1] not in set(bob.ids(with_deleted=True))
    with pytest.raises(NoResultFound):
        Record.get_record(ids[0], repo=bob)
    assert_index_is_right(bob)


def test_two_records_minted_with_the_same_pid(server: Repository, tmp_path: Path) -> None:
    alice = clone(server, tmp_path / "alice.git", bare=True)
    bob = clone(server, tmp_path / "bob.git", bare=True)
    theirs = Record.create({"title": "alice's"}, repo=alice, pid_minters=["recid"])
    push(alice)
    ours = Record.create({"title": "bob's"}, repo=bob, pid_minters=["recid"])
    assert theirs["control_number"] == ours["control_number"] == "4"
    before = tip(bob)

    for strategy in (None, "ours", "theirs"):  # no strategy can give a PID to one record only
        with pytest.raises(MergeConflictError) as raised:
            pull(bob, strategy=strategy)
        [conflict] = raised.value.conflicts
        assert (conflict.kind, conflict.record, conflict.pointer) == (
            DUPLICATE_PID,
            theirs.id,
            "/control_number",
        )
        assert conflict.describe() == (
            f"record {theirs.id} /control_number: PID recid:4 is also used by record {ours.id}; "
            "give one of the two records another PID and merge again"
        )
        assert tip(bob) == before

    # giving bob's record another PID resolves it
    edit(bob, ours.id, control_number="5")
    pull(bob)
    assert bob.lookup_pid("recid", "4") == theirs.id
    assert bob.lookup_pid("recid", "5") == ours.id
    assert_index_is_right(bob)


def test_a_duplicate_pid_is_listed_with_the_field_conflicts(
    server: Repository, ids: list[uuid.UUID], tmp_path: Path
) -> None:
    """The PID check ran only once no field conflict was left: a pull listed the title
    conflict, and the duplicate PID came out only after --strategy, a round later."""
    alice = clone(server, tmp_path / "alice.git", bare=True)
    bob = clone(server, tmp_path / "bob.git", bare=True)
    edit(alice, ids[0], title="alice's title")
    theirs = Record.create({"title": "alice's"}, repo=alice, pid_minters=["recid"])
    push(alice)
    edit(bob, ids[0], title="bob's title")
    Record.create({"title": "bob's"}, repo=bob, pid_minters=["recid"])
    with pytest.raises(MergeConflictError) as raised:
        pull(bob)
    kinds = sorted((c.kind, c.record, c.pointer) for c in raised.value.conflicts)
    assert kinds == sorted(
        [("both-changed", ids[0], "/title"), (DUPLICATE_PID, theirs.id, "/control_number")]
    )


def test_index_follows_pulls(server: Repository, ids: list[uuid.UUID], tmp_path: Path) -> None:
    alice = clone(server, tmp_path / "alice.git", bare=True)
    bob = clone(server, tmp_path / "bob")
    bob.sync_index()
    new = Record.create({"title": "new"}, repo=alice, pid_minters=["recid"])
    edit(alice, ids[2], title="three, again")
    Record.get_record(ids[1], repo=alice).delete()
    push(alice)
    edit(bob, ids[0], title="bob")

    pull(bob)
    assert bob.lookup_pid("recid", "4") == new.id
    assert bob.lookup_pid("recid", "2") == ids[1]  # a soft-deleted record keeps its PID
    assert Record.get_record(new.id, repo=bob).revision_id == 0
    assert Record.get_record(ids[2], repo=bob).revision_id == 1
    assert Record.get_record(ids[0], repo=bob).revision_id == 1  # the merge commit
    assert [r.commit_id for r in bob.index.revisions(ids[0])][-1] == tip(bob)
    assert_index_is_right(bob)


def test_index_after_a_forced_update_and_a_stale_replica(
    server: Repository, ids: list[uuid.UUID], tmp_path: Path
) -> None:
    alice = clone(server, tmp_path / "alice")
    stale = clone(server, tmp_path / "stale.git", bare=True)
    assert alice.lookup_pid("recid", "2") == ids[1]  # alice's index is built
    server.hard_delete([ids[1]])  # rewrites the server's history

    # the documented way for a clone: fetch the rewritten history and reset to it
    sh(alice.path, "fetch", "--quiet", "--force", "origin")
    sh(alice.path, "reset", "--quiet", "--hard", "origin/main")
    with pytest.raises(NoResultFound):
        alice.lookup_pid("recid", "2")
    with pytest.raises(NoResultFound):
        Record.get_record(ids[1], repo=alice)
    assert alice.lookup_pid("recid", "3") == ids[2]
    assert Record.get_record(ids[2], repo=alice).revision_id == 0
    assert_index_is_right(alice)

    # a replica that kept the old history cannot bring the record back with a pull
    before = tip(stale)
    with pytest.raises(MergeConflictError) as raised:
        pull(stale, strategy="theirs")
    [conflict] = raised.value.conflicts
    assert (conflict.kind, conflict.record) == (PURGED, ids[1])
    assert "listed in purged.txt" in conflict.describe()
    assert tip(stale) == before


def test_local_edits_in_a_working_clone_stop_the_pull(
    server: Repository, ids: list[uuid.UUID], tmp_path: Path
) -> None:
    alice = clone(server, tmp_path / "alice.git", bare=True)
    bob = clone(server, tmp_path / "bob")
    edit(alice, ids[0], title="alice")
    push(alice)
    file = bob.path / bob.path_for(ids[0])
    file.write_text('{"title": "typed by hand"}\n')
    before = tip(bob)
    with pytest.raises(LocalChangesError, match="has local edits"):
        pull(bob)
    assert tip(bob) == before
    assert file.read_text() == '{"title": "typed by hand"}\n'


def test_criss_cross_histories_merge_through_a_virtual_base(server: Repository, ids: list[uuid.UUID]) -> None:
    git(server, "branch", "x", "main")
    git(server, "branch", "y", "main")
    x, y = Repository(server.path, branch="x"), Repository(server.path, branch="y")
    edit(x, ids[0], title="x1")
    edit(y, ids[1], title="y1")
    x1, y1 = tip(x), tip(y)
    merge(x, y1)
    merge(y, x1)
    edit(x, ids[0], year=2001)
    edit(y, ids[2], title="y2")
    assert len(git(server, "merge-base", "--all", "x", "y").split()) == 2

    outcome = merge(y, tip(x))
    assert outcome.status == "merged"
    assert Record.get_record(ids[0], repo=y) == {
        "control_number": "1",
        "title": "x1",
        "year": 2001,
        "tags": ["a"],
    }
    assert Record.get_record(ids[1], repo=y)["title"] == "y1"
    assert Record.get_record(ids[2], repo=y)["title"] == "y2"
    fsck(server)


def test_criss_cross_merges_that_decided_a_conflict_differently_conflict_again(
    server: Repository, ids: list[uuid.UUID]
) -> None:
    """x and y change one field differently, each merges the other's first commit keeping its
    own value; the next merge of the two must report that field again (as git does), not let
    one side's decision win because the virtual base held the other one. Where both sides
    agree, or only one changed, the merge goes through."""
    git(server, "branch", "x", "main")
    git(server, "branch", "y", "main")
    x, y = Repository(server.path, branch="x"), Repository(server.path, branch="y")
    edit(x, ids[0], year=1)
    edit(x, ids[1], year=7)
    edit(y, ids[0], year=2)
    edit(y, ids[1], year=7)
    x1, y1 = tip(x), tip(y)
    merge(x, y1, strategy="ours")  # x keeps year 1
    merge(y, x1, strategy="ours")  # y keeps year 2
    edit(x, ids[2], title="x2")
    assert len(git(server, "merge-base", "--all", "x", "y").split()) == 2
    for into, other in ((x, y), (y, x)):
        with pytest.raises(MergeConflictError) as raised:
            merge(into, tip(other))
        [conflict] = raised.value.conflicts
        assert (conflict.kind, conflict.record, conflict.pointer) == ("both-changed", ids[0], "/year")
        assert {conflict.ours, conflict.theirs} == {1, 2}
        assert "base (the merge bases disagree)" in conflict.describe()
    before = tip(y)
    assert merge(y, tip(x), strategy="theirs").status == "merged"
    assert Record.get_record(ids[0], repo=y)["year"] == 1
    assert Record.get_record(ids[1], repo=y)["year"] == 7  # both sides agree
    assert Record.get_record(ids[2], repo=y)["title"] == "x2"
    assert tip(y) != before
    fsck(server)


def test_pull_and_push_errors(server: Repository, tmp_path: Path) -> None:
    bob = clone(server, tmp_path / "bob.git", bare=True)
    with pytest.raises(GitRecordsError, match=r"^origin has no branch 'nope'$"):
        pull(bob, "origin", "nope")
    with pytest.raises(GitRecordsError, match=r"^'-x' is not a remote name or URL$"):
        pull(bob, "-x")
    with pytest.raises(GitRecordsError, match=r"^'a..b' is not a valid branch name$"):
        push(bob, "origin", "a..b")
    with pytest.raises(GitRecordsError) as raised:
        pull(bob, "nowhere")
    assert (
        str(raised.value)
        == "git fetch nowhere failed: fatal: 'nowhere' does not appear to be a git repository"
    )
    other = Repository.init(tmp_path / "other.git", message="another data repository")
    with pytest.raises(GitRecordsError, match="have no common history"):
        pull(bob, str(other.path))
    with pytest.raises(GitRecordsError, match="unknown merge strategy"):
        pull(bob, strategy="mine")
    with pytest.raises(GitRecordsError) as raised:
        push(bob, "nowhere")
    assert (
        str(raised.value)
        == "git push nowhere failed: fatal: 'nowhere' does not appear to be a git repository"
    )


def test_a_push_declined_by_a_server_hook(server: Repository, ids: list[uuid.UUID], tmp_path: Path) -> None:
    bob = clone(server, tmp_path / "bob.git", bare=True)
    hook = server.git_dir / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\necho 'record 1 breaks its schema' >&2\nexit 1\n")
    hook.chmod(0o755)
    edit(bob, ids[0], title="bob")
    with pytest.raises(PushRejectedError) as raised:
        push(bob)
    assert str(raised.value) == (
        "push to origin rejected: [remote rejected] (pre-receive hook declined): record 1 breaks its schema"
    )


def test_other_files_merge_as_whole_files(server: Repository, tmp_path: Path) -> None:
    alice = clone(server, tmp_path / "alice")
    bob = clone(server, tmp_path / "bob")
    alice.put_schema("a.json", {"type": "object"})
    bob.put_schema("b.json", {"type": "object"})
    for repo, ids_ in ((alice, ["00000000-0000-4000-8000-000000000002"]), (bob, [str(uuid.UUID(int=1))])):
        (repo.path / "purged.txt").write_text("".join(f"{i}\n" for i in ids_))
        sh(repo.path, "add", "purged.txt")
        sh(repo.path, "commit", "--quiet", "-m", "purged")
    push(alice)
    pull(bob)
    assert git(bob, "ls-tree", "--name-only", "main", "schemas/") == "schemas/a.json\nschemas/b.json\n"
    assert git(bob, "show", "main:purged.txt") == (
        "00000000-0000-0000-0000-000000000001\n00000000-0000-4000-8000-000000000002\n"
    )
    push(bob)
    pull(alice)

    # both change gitrecords.json: a conflict on the whole file
    for repo, value in ((alice, "a.json"), (bob, "b.json")):
        config = json.loads((repo.path / "gitrecords.json").read_text())
        config["default_schema"] = value
        (repo.path / "gitrecords.json").write_bytes(layout.dumps(config))
        sh(repo.path, "commit", "--quiet", "-am", f"default schema {value}")
    push(alice)
    with pytest.raises(MergeConflictError) as raised:
        pull(bob)
    [conflict] = raised.value.conflicts
    assert (conflict.kind, conflict.path, conflict.record) == ("file", "gitrecords.json", None)
    assert conflict.describe().startswith("gitrecords.json: changed on both sides (blobs base ")
    assert conflict.describe().endswith("only record files merge field by field")
    pull(bob, strategy="theirs")
    assert bob.config["default_schema"] == "a.json"
    assert sh(bob.path, "status", "--porcelain") == ""
    fsck(bob)


def test_a_stricter_schema_from_the_other_side_applies_to_this_sides_records(
    server: Repository, tmp_path: Path
) -> None:
    """A merge checked only the records it changed: this side's own new record, invalid under
    the schema the other side made stricter (or under a default schema it set), was merged and
    pushed. When the merge changes the schema store or gitrecords.json, every record is checked
    under the merged settings."""
    from gitrecords.errors import InvalidRecordError

    alice = clone(server, tmp_path / "alice")
    bob = clone(server, tmp_path / "bob")
    loose = {"$id": "https://example.org/s.json", "type": "object"}
    alice.put_schema("s.json", loose)
    push(alice)
    pull(bob)
    alice.put_schema("s.json", {**loose, "required": ["year"]})
    push(alice)
    Record.create({"$schema": "https://example.org/s.json", "title": "no year"}, repo=bob)
    before = tip(bob)
    with pytest.raises(InvalidRecordError, match="would not be valid at /: 'year' is a required property"):
        pull(bob)
    assert tip(bob) == before
    # gitrecords.json: a default schema set on the other side
    carol = clone(server, tmp_path / "carol")
    dave = clone(server, tmp_path / "dave")
    carol.put_schema("t.json", {"type": "object", "required": ["year"]})
    config = json.loads((carol.path / "gitrecords.json").read_text())
    config["default_schema"] = "t.json"
    (carol.path / "gitrecords.json").write_bytes(layout.dumps(config))
    sh(carol.path, "commit", "--quiet", "-am", "a default schema")
    push(carol)
    Record.create({"title": "no year either"}, repo=dave)
    with pytest.raises(InvalidRecordError, match="'year' is a required property"):
        pull(dave)


def test_pull_from_a_path_and_push_to_a_new_branch(
    server: Repository, ids: list[uuid.UUID], tmp_path: Path
) -> None:
    bob = clone(server, tmp_path / "bob.git", bare=True)
    edit(server, ids[0], title="on the server")
    outcome = pull(bob, str(server.path))
    assert outcome.status == "fast-forward"
    assert git(bob, "log", "-1", "--format=%s") == f"update record {ids[0]}\n"
    result = push(bob, "origin", "review")
    assert (result.status, result.previous) == ("created", None)
    assert git(server, "rev-parse", "review").strip() == tip(bob)
    assert push(bob, "origin", "review").status == "up-to-date"


# -- the command line -----------------------------------------------------------------------------


def test_cli_pull_and_push(server: Repository, ids: list[uuid.UUID], tmp_path: Path, gr) -> None:  # type: ignore[no-untyped-def]
    alice = clone(server, tmp_path / "alice.git", bare=True)
    bob = clone(server, tmp_path / "bob.git", bare=True)
    edit(alice, ids[0], title="alice")
    result = gr(alice, "push")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.startswith("Pushed main to origin/main (") and result.stderr.endswith(").\n")
    edit(bob, ids[0], title="bob")

    result = gr(bob, "push")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: push to origin rejected: origin/main has commits that main does not have: "
        "run 'gitrecords pull' first\n"
    )
    result = gr(bob, "push", "--json")  # a script reading stdout learns it too
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "status": "rejected",
        "remote": "origin",
        "branch": "main",
        "reason": "push to origin rejected: origin/main has commits that main does not have: "
        "run 'gitrecords pull' first",
    }

    result = gr(bob, "pull")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f'record {ids[0]} /title: changed on both sides: base "one", ours "bob", theirs "alice"\n'
        "Error: merging origin/main into main stopped on 1 conflict; nothing was changed: resolve with "
        "--strategy ours|theirs, or change the records so that both sides agree and pull again\n"
    )
    result = gr(bob, "pull", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "conflict"
    assert [
        {k: c[k] for k in ("kind", "record", "pointer", "base", "ours", "theirs")}
        for c in report["conflicts"]
    ] == [
        {
            "kind": "both-changed",
            "record": str(ids[0]),
            "pointer": "/title",
            "base": "one",
            "ours": "bob",
            "theirs": "alice",
        }
    ]
    assert result.stderr.startswith("Error: merging origin/main into main stopped on 1 conflict")

    result = gr(bob, "pull", "--strategy", "theirs", "-m", "take alice's title", "--json")
    assert result.exit_code == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "merged" and outcome["commit"] == tip(bob)
    assert [c["pointer"] for c in outcome["resolved"]] == ["/title"]
    assert git(bob, "log", "-1", "--format=%s") == "take alice's title\n"

    assert gr(bob, "push").exit_code == 0
    result = gr(alice, "pull")
    assert result.stderr == f"Fast-forwarded main to {tip(alice)[:7]} (origin/main): 0 records changed.\n"
    assert gr(alice, "pull").stderr == "Already up to date with origin/main.\n"
    assert gr(alice, "push").stderr == "origin/main is up to date.\n"
    result = gr(bob, "pull", "--strategy", "mine")
    assert result.exit_code == 2 and "'mine' is not one of 'ours', 'theirs'" in result.stderr


def test_pulls_while_local_writers_write(server: Repository, ids: list[uuid.UUID], tmp_path: Path) -> None:
    """A pull takes the write lock like any write: local writes made meanwhile are neither lost nor
    doubled, and the clone's files and index stay in step."""
    work = clone(server, tmp_path / "work")
    upstream = clone(server, tmp_path / "upstream.git", bare=True)
    writer_repo = Repository(work.path)  # another handle on the same clone, as another program has
    written: list[Record] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(40):
                written.append(Record.create({"i": i}, repo=writer_repo))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    thread = threading.Thread(target=writer)
    thread.start()
    statuses = []
    for round_ in range(6):
        edit(upstream, ids[0], year=2000 + round_)
        push(upstream)
        statuses.append(pull(work).status)
    thread.join(timeout=60)
    assert not errors
    assert pull(work).status == "up-to-date"
    print("pull outcomes:", statuses)

    assert Record.get_record(ids[0], repo=work)["year"] == 2005
    for record in written:
        assert Record.get_record(record.id, repo=work) == dict(record)
        # exactly one commit wrote each record
        log = git(work, "log", "--format=%H", "--no-merges", "main", "--", work.path_for(record.id))
        assert len(log.split()) == 1
    assert sh(work.path, "status", "--porcelain") == ""
    assert_index_is_right(work)
    fsck(work)


def test_a_merging_pull_indexes_from_the_fork_point_without_a_rebuild(
    server: Repository, ids: list[uuid.UUID], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge's first parent is the remote's tip: the index goes back to where the two lines
    meet and indexes on from there, instead of reading the whole history again (issue 18, 24)."""
    alice = clone(server, tmp_path / "alice.git", bare=True)
    bob = clone(server, tmp_path / "bob.git", bare=True)
    bob.sync_index()
    Record.create({"title": "alice's", "control_number": "40"}, repo=alice)
    edit(alice, ids[2], title="three, again")
    push(alice)
    edit(bob, ids[0], title="bob", control_number="41")  # a local revision the merge folds in
    edit(bob, ids[1], title="bob too")
    monkeypatch.setattr(bob.index, "_clear", lambda: pytest.fail("the index was rebuilt"))
    outcome = pull(bob)
    assert outcome.status == "merged"
    assert bob.lookup_pid("recid", "41") == ids[0]
    monkeypatch.undo()
    assert_index_is_right(bob)
