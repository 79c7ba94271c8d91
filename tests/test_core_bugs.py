"""Regression tests for the core bugs of issue 15, through the public API and the real git binary.

Each test is named after its bug id and states the guarantee it proves. Commits "made by
another writer" are made with git plumbing (hash-object, update-index on a private index,
write-tree, commit-tree, update-ref), as a push or a plain ``git commit`` elsewhere would.
A second Repository object in the same process cannot stand in for that writer while the
first one holds the write lock: ``flock`` on a second descriptor of the lock file blocks
the process against itself.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import TITLE_SCHEMA, git

from gitrecords import GitRecordsError, NoResultFound, Record, Repository, ValidationError, _git, layout
from gitrecords.errors import BatchValidationError
from gitrecords.replication import pull

IDENTITY = ["-c", "user.name=Other Writer", "-c", "user.email=other@example.org"]


# -- helpers ----------------------------------------------------------------------------------


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", "refs/heads/main").strip()


def plain_commit(
    repo: Repository, files: Mapping[str, bytes | None], message: str = "plain git commit"
) -> str:
    """Commit ``files`` (None removes one) onto main with the git binary alone; returns the commit."""
    git_dir = str(repo.git_dir)
    parent = tip(repo)
    with tempfile.TemporaryDirectory() as temp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(temp) / "index")}

        def run(*args: str, data: bytes | None = None) -> str:
            proc = subprocess.run(
                ["git", "--git-dir", git_dir, *IDENTITY, *args], input=data, capture_output=True, env=env
            )
            if proc.returncode != 0:
                raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
            return proc.stdout.decode().strip()

        run("read-tree", parent)
        lines = []
        for path, content in files.items():
            if content is None:  # mode 0 removes the entry
                lines.append(f"0 {'0' * 40}\t{path}\n")
            else:
                blob = run("hash-object", "-w", "--stdin", data=content)
                lines.append(f"100644 {blob}\t{path}\n")
        run("update-index", "--index-info", data="".join(lines).encode())
        tree = run("write-tree")
        commit = run("commit-tree", tree, "-p", parent, "-m", message)
        run("update-ref", "refs/heads/main", commit, parent)
    return commit


def record_file(repo: Repository, record_id: uuid.UUID, data: dict[str, Any]) -> dict[str, bytes | None]:
    return {repo.path_for(record_id): layout.dumps(data)}


def by_path(repo: Repository, *records: Record) -> list[Record]:
    return sorted(records, key=lambda r: repo.path_for(r.id))


def file_at_tip(repo: Repository, record_id: uuid.UUID) -> str:
    return git(repo, "rev-parse", f"main:{repo.path_for(record_id)}").strip()


def assert_owns(repo: Repository, record: Record, value: str) -> None:
    assert repo.lookup_pid("recid", value) == record.id
    assert repo.index.pids_of(record.id) == {"recid": value}


# -- the derived index and the branch ---------------------------------------------------------


def test_f1_soft_deleting_two_records_in_one_transaction_keeps_each_records_pid(repo: Repository) -> None:
    """F1: each soft-deleted record keeps its own PID reserved, even when the tombstones are equal."""
    for _ in range(3):  # the tombstones are equal when both deletes fall in one second
        first, second = by_path(
            repo, *(Record.create({"title": t}, repo=repo, pid_minters=["recid"]) for t in "ab")
        )
        numbers = {first.id: first["control_number"], second.id: second["control_number"]}
        with repo.transaction():
            second.delete()
            first.delete()  # staged last: its facts win the blob, the record sorted last wins the PID
        if file_at_tip(repo, first.id) == file_at_tip(repo, second.id):
            break
    else:
        pytest.fail("three attempts to delete two records within one second failed")
    for record in (first, second):
        assert_owns(repo, record, numbers[record.id])


def test_f1_reverting_two_records_to_equal_tombstones_keeps_each_records_pid(repo: Repository) -> None:
    """F1: reverting two records to byte-identical tombstone revisions in one transaction keeps their PIDs."""
    first, second = by_path(
        repo, *(Record.create({"title": t}, repo=repo, pid_minters=["recid"]) for t in "ab")
    )
    numbers = {first.id: first["control_number"], second.id: second["control_number"]}
    # another writer soft-deletes both with one tombstone (a fixed date: the same bytes)
    tombstone = layout.tombstone(datetime(2020, 1, 1, tzinfo=UTC))
    plain_commit(repo, {**record_file(repo, first.id, tombstone), **record_file(repo, second.id, tombstone)})
    for record in (first, second):
        Record.get_record(record.id, with_deleted=True, repo=repo).undelete()
        assert_owns(repo, record, numbers[record.id])
    with repo.transaction():
        Record.get_record(second.id, repo=repo).revert(1)
        Record.get_record(first.id, repo=repo).revert(1)
    assert file_at_tip(repo, first.id) == file_at_tip(repo, second.id)
    for record in (first, second):
        assert_owns(repo, record, numbers[record.id])


def import_while_another_writer_commits(
    repo: Repository, items: list[Any], files: Mapping[str, bytes | None]
) -> tuple[Callable[[], Any], list[str]]:
    """An import whose progress callback makes a plain-git commit of ``files`` (once)."""
    foreign: list[str] = []

    def progress(count: int) -> None:
        if not foreign:
            foreign.append(plain_commit(repo, files, "pushed by another writer"))

    return (lambda: repo.import_records(items, progress=progress, workers=1)), foreign


def test_f7_a_bulk_import_after_the_branch_moved_indexes_the_commits_in_between(repo: Repository) -> None:
    """F7: a bulk import rebuilt on a moved branch leaves the other writer's commits indexed."""
    x = Record.create({"title": "x v0"}, repo=repo)
    run, foreign = import_while_another_writer_commits(
        repo, [{"title": "imported"}], record_file(repo, x.id, {"title": "x v1"})
    )
    result = run()
    assert foreign
    git(repo, "merge-base", "--is-ancestor", foreign[0], "main")  # the import landed on top of it
    assert Record.get_record(result.ids[0], repo=repo)["title"] == "imported"
    current = Record.get_record(x.id, repo=repo)
    assert current["title"] == "x v1"
    assert current.revision_id == 1
    assert [r["title"] for r in current.revisions] == ["x v0", "x v1"]


def test_f15_a_bulk_import_rebuilt_on_a_moved_branch_checks_pids_against_the_new_tip(
    repo: Repository,
) -> None:
    """F15: an import never gives a PID that another writer's commit took meanwhile; nothing is written."""
    Record.create({"title": "first"}, repo=repo, pid_minters=["recid"])
    other = uuid.uuid4()
    run, foreign = import_while_another_writer_commits(
        repo,
        [{"title": "imported", "control_number": "5"}],
        record_file(repo, other, {"title": "pushed", "control_number": "5"}),
    )
    with pytest.raises(GitRecordsError):
        run()
    assert foreign and tip(repo) == foreign[0]  # the import wrote nothing
    assert repo.lookup_pid("recid", "5") == other
    assert repo.count_records() == 2


def test_f10_get_record_answers_data_and_revision_from_one_snapshot(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F10: a read record's revision_id is the revision of the data it holds, however the branch moved."""
    x = Record.create({"title": "v0"}, repo=repo)
    plain_commit(repo, record_file(repo, x.id, {"title": "v1"}))  # the index is one commit behind now
    real_read = repo.read_record_file

    def read_then_another_writer_commits(*args: Any, **kwargs: Any) -> Any:
        data = real_read(*args, **kwargs)
        monkeypatch.setattr(repo, "read_record_file", real_read)
        plain_commit(repo, record_file(repo, x.id, {"title": "v2"}))
        return data

    monkeypatch.setattr(repo, "read_record_file", read_then_another_writer_commits)
    record = Record.get_record(x.id, repo=repo)
    assert record["title"] == "v1"
    assert record.revision_id == 1
    assert record.revisions[record.revision_id]["title"] == "v1"


def test_f13_a_write_whose_branch_moved_does_not_fail_because_the_index_is_busy(repo: Repository) -> None:
    """F13: once the branch moved, the write returns even if the index is locked; reads catch up later."""
    record = Record.create({"title": "v0"}, repo=repo)  # no PID: nothing to check in the index before
    before = tip(repo)
    assert repo.index.path is not None
    repo.index._conn.execute("PRAGMA busy_timeout=100")
    blocker = sqlite3.connect(repo.index.path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process writing the index
        record["title"] = "v1"
        record.commit()
        assert tip(repo) != before
        assert json.loads(git(repo, "show", f"main:{repo.path_for(record.id)}")) == {"title": "v1"}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    again = Record.get_record(record.id, repo=repo)
    assert again["title"] == "v1" and again.revision_id == 1
    assert [r["title"] for r in again.revisions] == ["v0", "v1"]


def test_f14_a_reader_with_an_old_snapshot_never_rewinds_the_shared_index(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F14: a read at an older tip leaves the shared index at the newest tip it reached."""
    writer = repo
    x = Record.create({"title": "v0"}, repo=writer)
    reader = Repository(writer.path)
    seen = Record.get_record(x.id, repo=reader)
    real_snapshot = reader.snapshot

    def snapshot_then_another_writer_commits() -> Any:
        snap = real_snapshot()
        monkeypatch.setattr(reader, "snapshot", real_snapshot)
        newer = Record.get_record(x.id, repo=writer)
        newer["title"] = "v1"
        newer.commit()  # moves the branch and the shared index on
        return snap

    monkeypatch.setattr(reader, "snapshot", snapshot_then_another_writer_commits)
    try:
        listed = seen.revisions.rows()  # the revisions at the reader's (old) snapshot
        assert listed
        newest = tip(writer)
        assert writer.index.indexed_tip() == newest
        assert reader.index.indexed_tip() == newest
    finally:
        reader.close()


def test_f3_a_pid_held_by_two_records_stays_owned_when_one_of_them_changes_it(repo: Repository) -> None:
    """F3: when one of two records sharing a PID gives it up, the PID stays owned by the other one."""
    Record.create({"title": "first"}, repo=repo, pid_minters=["recid"])
    one, two = uuid.uuid4(), uuid.uuid4()
    plain_commit(
        repo,
        {
            **record_file(repo, one, {"title": "one", "control_number": "7"}),
            **record_file(repo, two, {"title": "two", "control_number": "7"}),
        },
        "two records with one PID, pushed with plain git",
    )
    # the record whose path sorts last is the one today's index keeps as the owner
    other, owner = sorted((one, two), key=repo.path_for)
    moved = Record.get_record(owner, repo=repo)
    moved["control_number"] = "8"
    moved.commit()
    assert repo.lookup_pid("recid", "8") == owner
    assert repo.lookup_pid("recid", "7") == other
    before = tip(repo)
    with pytest.raises(GitRecordsError):
        Record.create({"title": "third", "control_number": "7"}, repo=repo)
    assert tip(repo) == before


# -- transactions and PIDs ----------------------------------------------------------------------


class InnerFailure(Exception):
    pass


def test_f2_a_nested_transaction_that_raises_rolls_back_its_own_writes(repo: Repository) -> None:
    """F2: an inner transaction block that raises undoes its own writes and keeps the outer ones."""
    inner: list[Record] = []
    with repo.transaction():
        outer = Record.create({"title": "outer"}, repo=repo)
        try:
            with repo.transaction():
                inner.append(Record.create({"title": "inner"}, repo=repo))
                raise InnerFailure
        except InnerFailure:
            pass
    assert Record.get_record(outer.id, repo=repo)["title"] == "outer"
    with pytest.raises(NoResultFound):
        Record.get_record(inner[0].id, repo=repo)
    assert git(repo, "ls-tree", "-r", "--name-only", "main").count(str(inner[0].id)) == 0


def test_f12_a_pid_moves_from_one_record_to_another_inside_one_transaction(repo: Repository) -> None:
    """F12: a transaction may take a PID from one record and give it to another."""
    a = Record.create({"title": "a"}, repo=repo, pid_minters=["recid"])
    b = Record.create({"title": "b"}, repo=repo, pid_minters=["recid"])
    assert (a["control_number"], b["control_number"]) == ("1", "2")
    with repo.transaction():
        a["control_number"] = "3"
        a.commit()
        b["control_number"] = "1"
        b.commit()
    assert_owns(repo, a, "3")
    assert_owns(repo, b, "1")


def test_f8_a_hard_deleted_id_cannot_be_created_again(repo: Repository) -> None:
    """F8: Record.create and import_records refuse an id listed as hard-deleted, and write nothing."""
    record = Record.create({"title": "purged"}, repo=repo)
    record.delete(force=True)
    before = tip(repo)
    with pytest.raises(GitRecordsError):
        Record.create({"title": "again"}, id_=record.id, repo=repo)
    assert tip(repo) == before
    with pytest.raises(BatchValidationError):
        repo.import_records([(record.id, {"title": "again"})], workers=1)
    assert tip(repo) == before
    with pytest.raises(NoResultFound):
        Record.get_record(record.id, repo=repo)


def test_f11_the_highest_recid_is_not_reused_after_a_hard_delete(repo: Repository) -> None:
    """F11: a recid minted once is never minted again, even after its record was hard-deleted."""
    records = [Record.create({"n": n}, repo=repo, pid_minters=["recid"]) for n in range(3)]
    assert [r["control_number"] for r in records] == ["1", "2", "3"]
    records[2].delete(force=True)
    new = Record.create({"n": 3}, repo=repo, pid_minters=["recid"])
    assert new["control_number"] == "4"


# -- durability of merges -----------------------------------------------------------------------


Sync = tuple[str, str, str, frozenset[str]]  # (function, path, branch tip, objects in the repository)


@pytest.fixture
def replicas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Repository, Repository]:
    """A server with three records and a bare clone of it, with a curator's identity."""
    for name in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{name}_NAME", "Curator")
        monkeypatch.setenv(f"{name}_EMAIL", "curator@example.org")
    server = Repository.init(tmp_path / "server.git")
    for title in ("one", "two", "three"):
        Record.create({"title": title}, repo=server, pid_minters=["recid"])
    dest = tmp_path / "bob.git"
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", f"file://{server.path}", str(dest)],
        check=True,
        capture_output=True,
    )
    return server, Repository(dest)


def objects(repo: Repository) -> frozenset[str]:
    listing = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    return frozenset(listing.split())


def record_syncs(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> list[Sync]:
    calls: list[Sync] = []
    real_syncfs, real_fsync = _git.sync_filesystem, _git.fsync_path

    def sync_filesystem(path: Any) -> None:
        calls.append(("sync_filesystem", str(path), tip(repo), objects(repo)))
        real_syncfs(path)

    def fsync_path(path: Any) -> None:
        calls.append(("fsync_path", str(path), tip(repo), frozenset()))
        real_fsync(path)

    monkeypatch.setattr(_git, "sync_filesystem", sync_filesystem)
    monkeypatch.setattr(_git, "fsync_path", fsync_path)
    return calls


def edit(repo: Repository, record_id: uuid.UUID, title: str) -> None:
    record = Record.get_record(record_id, repo=repo)
    record["title"] = title
    record.commit()


def test_f9_a_merging_pull_syncs_the_merge_before_the_branch_moves(
    replicas: tuple[Repository, Repository], monkeypatch: pytest.MonkeyPatch
) -> None:
    """F9: a merging pull flushes the merged objects before moving the branch, then fsyncs the ref."""
    server, bob = replicas
    ids = sorted(server.ids(), key=str)
    edit(server, ids[0], "one (server)")
    edit(bob, ids[1], "two (bob)")
    before = tip(bob)
    calls = record_syncs(bob, monkeypatch)
    assert pull(bob).status == "merged"
    after = tip(bob)
    merge_tree = git(bob, "rev-parse", "main^{tree}").strip()
    flushes = [c for c in calls if c[0] == "sync_filesystem" and c[2] == before and merge_tree in c[3]]
    assert flushes, (
        f"no syncfs after the merge tree {merge_tree} was written and before the ref moved: {calls}"
    )
    ref_file = str(bob.git_dir / "refs" / "heads" / "main")
    assert ("fsync_path", ref_file, after, frozenset()) in calls, calls
    assert ("fsync_path", str(Path(ref_file).parent), after, frozenset()) in calls, calls


def test_f9_a_fast_forward_pull_syncs_objects_then_fsyncs_the_ref(
    replicas: tuple[Repository, Repository], monkeypatch: pytest.MonkeyPatch
) -> None:
    """F9: a fast-forward pull flushes the fetched objects before moving the branch, then fsyncs the ref."""
    server, bob = replicas
    edit(server, sorted(server.ids(), key=str)[0], "one (server)")
    before = tip(bob)
    calls = record_syncs(bob, monkeypatch)
    assert pull(bob).status == "fast-forward"
    after = tip(bob)
    assert after == tip(server)
    assert [c for c in calls if c[0] == "sync_filesystem" and c[2] == before and after in c[3]], calls
    ref_file = str(bob.git_dir / "refs" / "heads" / "main")
    assert ("fsync_path", ref_file, after, frozenset()) in calls, calls
    assert ("fsync_path", str(Path(ref_file).parent), after, frozenset()) in calls, calls


# -- suspected --------------------------------------------------------------------------------


def test_changing_the_records_folder_keeps_the_history_written_before(repo: Repository) -> None:
    """A change of ``records`` in gitrecords.json loses no revision written before it, on a rebuild too."""
    x = Record.create({"title": "v0"}, repo=repo)
    x["title"] = "v1"
    x.commit()
    config = json.loads(git(repo, "show", f"main:{layout.CONFIG_FILE}"))
    assert config["records"] == "records"
    config["records"] = "data"
    old_path, new_path = repo.path_for(x.id), layout.path_for(x.id, "data")
    plain_commit(
        repo,
        {
            layout.CONFIG_FILE: layout.dumps(config),
            old_path: None,
            new_path: git(repo, "show", f"main:{old_path}").encode(),
        },
        "move the records to data/",
    )
    assert Record.get_record(x.id, repo=repo)["title"] == "v1"
    repo.reindex()
    titles = [r["title"] for r in Record.get_record(x.id, repo=repo).revisions]
    assert titles[:2] == ["v0", "v1"]


def test_a_merge_result_taken_from_the_other_side_is_validated(tmp_path: Path) -> None:
    """A merge refuses a record the other side made invalid against the schema, naming the record."""
    server = Repository.init(tmp_path / "server.git", config={"default_schema": "title.json"})
    server.put_schema("title.json", TITLE_SCHEMA)
    x = Record.create({"title": "x"}, repo=server)
    y = Record.create({"title": "y"}, repo=server)
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", f"file://{server.path}", str(tmp_path / "bob.git")],
        check=True,
        capture_output=True,
    )
    bob = Repository(tmp_path / "bob.git")
    plain_commit(server, record_file(server, x.id, {"title": 5}), "an invalid record, pushed with plain git")
    edit(bob, y.id, "y (bob)")
    before = tip(bob)
    with pytest.raises((GitRecordsError, ValidationError)) as raised:
        pull(bob)
    named = str(raised.value) + " ".join(str(c.record) for c in getattr(raised.value, "conflicts", []))
    assert str(x.id) in named
    assert tip(bob) == before


def test_minting_in_a_transaction_skips_numbers_staged_by_hand(repo: Repository) -> None:
    """A record staged with control_number "1" and a minted one in the same transaction: the minter
    takes 2 (found by the index state machine)."""
    with repo.transaction():
        first = Record.create({"title": "by hand", "control_number": "1"}, repo=repo)
        minted = Record.create({"title": "minted"}, repo=repo, pid_minters=["recid"])
    assert minted["control_number"] == "2"
    assert repo.lookup_pid("recid", "1") == first.id and repo.lookup_pid("recid", "2") == minted.id
