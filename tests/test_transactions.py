"""repo.transaction(): many writes become exactly one git commit, all or nothing."""

from __future__ import annotations

import json
import threading

import pytest
from helpers import fsck, git

from gitrecords import (
    GitRecordsError,
    InvalidRecordError,
    NoResultFound,
    Record,
    RecordExistsError,
    Repository,
    StaleRevisionError,
)


def count_commits(repo: Repository) -> int:
    return int(git(repo, "rev-list", "--count", "main"))


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", "main").strip()


def test_many_writes_make_one_commit(repo: Repository) -> None:
    existing = Record.create({"title": "existing"}, repo=repo)
    doomed = Record.create({"title": "doomed"}, repo=repo)
    before = count_commits(repo)
    with repo.transaction(message="import batch", author="Importer <import@example.org>") as tx:
        created = [Record.create({"n": n}, repo=repo) for n in range(10)]
        existing["title"] = "changed"
        existing.commit()
        doomed.delete()
        # nothing is on the branch before the transaction ends
        assert count_commits(repo) == before
    assert tx.commit_id is not None
    assert count_commits(repo) == before + 1
    assert tip(repo) == str(tx.commit_id)

    log = git(repo, "log", "-1", "--format=%an <%ae>%n%B", "main")
    assert log.startswith("Importer <import@example.org>\nimport batch\n")
    assert "Gitrecords-Operation: create delete update" in log
    for rec in [*created, existing, doomed]:
        assert f"Gitrecords-Record: {rec.id}" in log
    changed = git(repo, "show", "--name-only", "--format=", "main").split()
    assert sorted(changed) == sorted(repo.path_for(r.id) for r in [*created, existing, doomed])

    assert [Record.get_record(r.id, repo=repo)["n"] for r in created] == list(range(10))
    assert Record.get_record(existing.id, repo=repo) == {"title": "changed"}
    with pytest.raises(NoResultFound):
        Record.get_record(doomed.id, repo=repo)
    fsck(repo)


def test_default_message_counts_operations(repo: Repository) -> None:
    a = Record.create({"n": 0}, repo=repo)
    with repo.transaction():
        for n in range(3):
            Record.create({"n": n}, repo=repo)
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "create 3 records"
    with repo.transaction():
        Record.create({"n": 9}, repo=repo)
        a["n"] = 1
        a.commit()
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "write 2 records (create 1, update 1)"


def test_undelete_in_a_transaction_brings_back_what_it_staged_last(repo: Repository) -> None:
    record = Record.create({"title": "draft"}, repo=repo)
    with repo.transaction():
        record["title"] = "final"
        record = record.commit()
        record.delete()
        record.undelete()
        fresh = Record.create({"title": "new"}, repo=repo)
        fresh.delete()
        fresh.undelete()
    assert Record.get_record(record.id, repo=repo) == {"title": "final"}
    assert Record.get_record(fresh.id, repo=repo) == {"title": "new"}
    assert [r.revision_id for r in Record.get_record(record.id, repo=repo).revisions] == [0, 1]
    fsck(repo)


def test_exception_inside_writes_nothing(repo: Repository) -> None:
    existing = Record.create({"title": "existing"}, repo=repo)
    before = tip(repo)
    created = []
    with pytest.raises(RuntimeError, match="boom"):
        with repo.transaction():
            created.append(Record.create({"n": 1}, repo=repo))
            existing["title"] = "changed"
            existing.commit()
            raise RuntimeError("boom")
    assert tip(repo) == before
    assert repo.in_transaction is None
    with pytest.raises(NoResultFound):
        Record.get_record(created[0].id, repo=repo)
    assert Record.get_record(existing.id, repo=repo) == {"title": "existing"}
    assert Record.get_record(existing.id, repo=repo).revision_id == 0
    # the repository is usable afterwards (the lock was released)
    Record.create({"n": 2}, repo=repo)
    assert count_commits(repo) == 3


def test_invalid_record_inside_writes_nothing(repo: Repository) -> None:
    before = tip(repo)
    with pytest.raises(InvalidRecordError):
        with repo.transaction():
            Record.create({"n": 1}, repo=repo)
            Record.create({"n": float("nan")}, repo=repo)
    assert tip(repo) == before
    assert list(repo.ids()) == []


def test_create_then_commit_inside_is_one_revision(repo: Repository) -> None:
    with repo.transaction():
        rec = Record.create({"title": "v0"}, repo=repo)
        assert rec.revision_id == 0
        rec["title"] = "v1"
        rec.commit()
        assert rec.revision_id == 0
        rec["title"] = "v2"
        rec.commit()
    assert rec.revision_id == 0
    assert len(rec.revisions) == 1
    assert [r.revision_id for r in rec.revisions] == [0]
    assert rec.revisions[0] == {"title": "v2"}
    got = Record.get_record(rec.id, repo=repo)
    assert got == {"title": "v2"}
    assert got.revision_id == 0
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == f"create record {rec.id}"


def test_revision_ids_after_the_transaction(repo: Repository) -> None:
    a = Record.create({"v": 0}, repo=repo)
    a["v"] = 1
    a.commit()
    b = Record.create({"v": 0}, repo=repo)
    unchanged = Record.create({"v": 0}, repo=repo)
    with repo.transaction():
        a["v"] = 2
        a.commit()
        assert a.revision_id == 2
        a["v"] = 3
        a.commit()
        assert a.revision_id == 2
        b["v"] = 1
        b.commit()
        unchanged.commit()  # no change: stays at its revision
        c = Record.create({"v": 0}, repo=repo)
    assert (a.revision_id, b.revision_id, unchanged.revision_id, c.revision_id) == (2, 1, 0, 0)
    for rec in (a, b, unchanged, c):
        fresh = Record.get_record(rec.id, repo=repo)
        assert fresh.revision_id == rec.revision_id
        assert fresh.updated == rec.updated
        assert fresh.created == rec.created
        assert [r.revision_id for r in fresh.revisions] == list(range(rec.revision_id + 1))
    assert [r["v"] for r in a.revisions] == [0, 1, 3]


def test_change_that_is_undone_inside_writes_nothing(repo: Repository) -> None:
    rec = Record.create({"v": 0}, repo=repo)
    before = tip(repo)
    with repo.transaction():
        rec["v"] = 1
        rec.commit()
        rec["v"] = 0
        rec.commit()
    assert tip(repo) == before
    assert rec.revision_id == 0


def test_reads_inside_see_staged_writes(repo: Repository) -> None:
    rec = Record.create({"v": 0}, repo=repo)
    with repo.transaction():
        rec["v"] = 1
        rec.commit()
        assert Record.get_record(rec.id, repo=repo) == {"v": 1}
        new = Record.create({"w": 1}, repo=repo)
        assert Record.get_record(new.id, repo=repo) == {"w": 1}
        new.delete()
        with pytest.raises(NoResultFound):
            Record.get_record(new.id, repo=repo)
    # created and deleted in one commit: the file is a tombstone from its first revision
    got = Record.get_record(new.id, repo=repo, with_deleted=True)
    assert got.is_deleted
    assert got.revision_id == 0


def test_create_twice_inside_is_refused(repo: Repository) -> None:
    before = tip(repo)
    with pytest.raises(RecordExistsError):
        with repo.transaction():
            rec = Record.create({"v": 0}, repo=repo)
            Record.create({"v": 1}, id_=rec.id, repo=repo)
    assert tip(repo) == before


def test_stale_copy_inside_is_refused(repo: Repository) -> None:
    rec = Record.create({"v": 0}, repo=repo)
    copy_ = Record.get_record(rec.id, repo=repo)
    with repo.transaction():
        rec["v"] = 1
        rec.commit()
        copy_["v"] = 2
        with pytest.raises(StaleRevisionError):
            copy_.commit()
    assert Record.get_record(rec.id, repo=repo) == {"v": 1}


def test_nested_transactions_are_one_commit(repo: Repository) -> None:
    before = count_commits(repo)
    with repo.transaction(message="outer") as outer:
        Record.create({"n": 1}, repo=repo)
        with repo.transaction(message="inner") as inner:
            assert inner is outer
            Record.create({"n": 2}, repo=repo)
        assert count_commits(repo) == before
        Record.create({"n": 3}, repo=repo)
    assert count_commits(repo) == before + 1
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "outer"
    assert len(list(repo.ids())) == 3


def test_empty_transaction_writes_nothing(repo: Repository) -> None:
    before = tip(repo)
    with repo.transaction() as tx:
        pass
    assert tx.commit_id is None
    assert tip(repo) == before


def test_transaction_with_current_repository(repo: Repository) -> None:
    with repo, repo.transaction():
        a = Record.create({"n": 1})
        b = Record.create({"n": 2})
    assert count_commits(repo) == 2
    assert json.loads(git(repo, "show", f"main:{repo.path_for(a.id)}")) == {"n": 1}
    assert json.loads(git(repo, "show", f"main:{repo.path_for(b.id)}")) == {"n": 2}


def test_a_transaction_is_per_thread(repo: Repository) -> None:
    """A write from another thread is not swallowed by this thread's transaction."""
    seen: list[object] = []
    started = threading.Event()

    def write_elsewhere() -> None:
        seen.append(repo.in_transaction)
        started.set()
        Record.create({"from": "thread"}, repo=repo)  # waits for the write lock

    with repo.transaction() as tx:
        Record.create({"from": "tx"}, repo=repo)
        thread = threading.Thread(target=write_elsewhere)
        thread.start()
        assert started.wait(timeout=30)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert seen == [None]
    assert count_commits(repo) == 3
    # the transaction's commit first, then the other thread's own commit on top of it
    assert git(repo, "rev-parse", "main~1").strip() == str(tx.commit_id)
    last = git(repo, "show", "--format=", "--name-only", "main").split()
    assert json.loads(git(repo, "show", f"main:{last[0]}")) == {"from": "thread"}


def test_hard_delete_is_refused_inside_a_transaction(repo: Repository) -> None:
    from gitrecords import GitRecordsError

    rec = Record.create({"v": 0}, repo=repo)
    with pytest.raises(GitRecordsError, match="inside a transaction"):
        with repo.transaction():
            rec.delete(force=True)
    assert Record.get_record(rec.id, repo=repo) == {"v": 0}


def test_minting_in_a_transaction_counts_what_it_staged(repo: Repository) -> None:
    """In one transaction the branch's highest number is looked up once; the numbers minted and
    those written by hand in staged records count from then on, and a savepoint rolled back
    gives its hand-written number back."""
    with repo.transaction():
        first = Record.create({"title": "a"}, repo=repo, pid_minters=["recid"])
        Record.create({"title": "by hand", "control_number": "50"}, repo=repo, pid_minters=[])
        second = Record.create({"title": "b"}, repo=repo, pid_minters=["recid"])
        try:
            with repo.transaction():
                Record.create({"title": "dropped", "control_number": "90"}, repo=repo, pid_minters=[])
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        third = Record.create({"title": "c"}, repo=repo, pid_minters=["recid"])
    numbers = [Record.get_record(r.id, repo=repo)["control_number"] for r in (first, second, third)]
    assert numbers == ["1", "51", "52"]


def test_a_record_written_in_a_block_that_rolls_back_takes_back_what_is_stored(repo: Repository) -> None:
    """After a savepoint or the whole transaction rolls back, a record object written in it has
    the revision that is stored again (its data stays as the program left it, as a database
    session's objects do): its next commit is not refused as stale."""
    record = Record.create({"title": "a"}, repo=repo)
    with repo.transaction():
        record["title"] = "b"
        record.commit()
        with pytest.raises(RuntimeError), repo.transaction():
            record["title"] = "c"
            record.commit()
            assert record.revision_id == 1
            raise RuntimeError("the inner block fails")
        assert record.revision_id == 1
        record["title"] = "d"
        record.commit()
    assert Record.get_record(record.id, repo=repo)["title"] == "d"
    assert record.revision_id == 1 and len(record.revisions) == 2

    with pytest.raises(RuntimeError), repo.transaction():
        record["title"] = "e"
        record.commit()
        created = Record.create({"title": "never stored"}, repo=repo)
        raise RuntimeError
    assert record.revision_id == 1 == Record.get_record(record.id, repo=repo).revision_id
    assert record.commit()["title"] == "e" and record.revision_id == 2
    with pytest.raises(GitRecordsError, match="never written"):
        created.commit()


def test_revisions_in_a_transaction_include_the_staged_write(repo: Repository) -> None:
    """``revision_id`` is always an index into ``revisions``: the write staged in the open
    transaction is the last revision (no commit id yet), and can be reverted to."""
    old = Record.create({"title": "old"}, repo=repo)
    with repo.transaction():
        new = Record.create({"title": "new"}, repo=repo)
        assert new.revision_id == 0 and len(new.revisions) == 1
        assert new.revisions[0]["title"] == "new" and new.revisions[0].commit_id is None
        assert new.revisions[0].commit_info is None  # no commit made it yet
        old["title"] = "changed"
        old.commit()
        assert old.revision_id == 1 and len(old.revisions) == 2
        assert old.revisions[-1]["title"] == "changed"
        assert old.revert(0)["title"] == "old"
    assert [r["title"] for r in Record.get_record(old.id, repo=repo).revisions] == ["old"]  # undone inside
