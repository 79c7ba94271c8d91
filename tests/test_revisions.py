"""Revisions and the derived revision index: timestamps, plain-git commits, forced updates, merges."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import assert_revision_index_equals_rebuild, fsck, git

from gitrecords import NoResultFound, Record, Repository, layout


def run(cwd: Path, *args: str) -> str:
    """The git binary in a working clone, with a fixed identity."""
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="Plain Git",
        GIT_AUTHOR_EMAIL="plain@example.org",
        GIT_COMMITTER_NAME="Plain Git",
        GIT_COMMITTER_EMAIL="plain@example.org",
    )
    proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def clone(repo: Repository, target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(repo.git_dir), str(target)], check=True, capture_output=True)
    return target


def write_record(work: Path, record_id: uuid.UUID, data: dict, *, canonical: bool = True) -> None:
    file = work / layout.path_for(record_id)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(layout.dumps(data) if canonical else json.dumps(data).encode())


def revision_table(repo: Repository, record_id: uuid.UUID) -> list[tuple[int, str, str | None, int]]:
    return [(r.revision, r.commit_id, r.blob, r.state) for r in repo.index.revisions(record_id)]


def commit_time(repo: Repository, rev: str) -> datetime:
    return datetime.fromtimestamp(int(git(repo, "log", "-1", "--format=%ct", rev)), UTC)


# -- timestamps ----------------------------------------------------------------------


def test_created_and_updated_are_the_commit_times(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_COMMITTER_DATE", "1700000000 +0200")
    rec = Record.create({"v": 0}, repo=repo)
    t0 = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert rec.created == rec.updated == t0
    assert commit_time(repo, "main") == t0

    monkeypatch.setenv("GIT_COMMITTER_DATE", "1700000100 +0000")
    rec["v"] = 1
    rec.commit()
    assert rec.created == t0
    assert rec.updated == datetime.fromtimestamp(1700000100, UTC)
    assert rec.updated.tzinfo == UTC

    got = Record.get_record(rec.id, repo=repo)
    assert (got.created, got.updated) == (rec.created, rec.updated)
    assert [r.updated for r in got.revisions] == [t0, rec.updated]
    assert [r.created for r in got.revisions] == [t0, t0]


def test_revisions_of_one_record_ignore_other_records(repo: Repository) -> None:
    a = Record.create({"n": "a0"}, repo=repo)
    b = Record.create({"n": "b0"}, repo=repo)
    for n in range(1, 4):
        b["n"] = f"b{n}"
        b.commit()
    a["n"] = "a1"
    a.commit()
    assert [r["n"] for r in a.revisions] == ["a0", "a1"]
    assert [r["n"] for r in b.revisions] == ["b0", "b1", "b2", "b3"]
    # each revision is a commit of the branch that changed the record's file
    log = git(repo, "log", "--reverse", "--format=%H", "main", "--", repo.path_for(a.id)).split()
    assert [r.commit_id for r in a.revisions] == log


def test_revision_commit_ids_match_git_log(repo: Repository) -> None:
    rec = Record.create({"v": 0}, repo=repo)
    for n in range(1, 5):
        rec["v"] = n
        rec.commit()
    rec.delete()
    path = repo.path_for(rec.id)
    log = git(repo, "log", "--reverse", "--format=%H", "main", "--", path).split()
    rows = rec.revisions.rows()
    assert [row.commit_id for row in rows] == log
    for row in rows:
        assert row.blob == git(repo, "rev-parse", f"{row.commit_id}:{path}").strip()
    assert [row.deleted for row in rows] == [False] * 5 + [True]


# -- the index catches up with plain git -----------------------------------------------


def test_index_catches_up_with_commits_pushed_by_plain_git(repo: Repository, tmp_path: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=repo)
    rec["title"] = "v1"
    rec.commit()
    assert rec.revision_id == 1

    work = clone(repo, tmp_path / "work")
    write_record(work, rec.id, {"title": "edited by hand", "extra": [1, 2]})
    new_id = uuid.uuid4()
    write_record(work, new_id, {"title": "added by hand"}, canonical=False)
    run(work, "add", "-A")
    run(work, "commit", "-q", "-m", "edit by hand")
    run(work, "push", "-q", "origin", "main")

    # the Repository object that was open all along
    got = Record.get_record(rec.id, repo=repo)
    assert got == {"title": "edited by hand", "extra": [1, 2]}
    assert got.revision_id == 2
    assert got.revisions[2].commit_info.message == "edit by hand\n"
    assert got.revisions[2].commit_info.author_name == "Plain Git"
    added = Record.get_record(new_id, repo=repo)
    assert added == {"title": "added by hand"}
    assert added.revision_id == 0
    assert set(repo.ids()) == {rec.id, new_id}

    # a stale in-memory copy cannot overwrite the hand edit
    from gitrecords import StaleRevisionError

    with pytest.raises(StaleRevisionError):
        rec.commit()

    # a fresh Repository object on the same git dir
    reopened = Repository(repo.path)
    assert Record.get_record(rec.id, repo=reopened).revision_id == 2

    # and a write through gitrecords continues the sequence
    got["title"] = "v3"
    got.commit()
    assert got.revision_id == 3
    assert [r["title"] for r in got.revisions] == ["v0", "v1", "edited by hand", "v3"]
    fsck(repo)


def test_file_removed_by_plain_git(repo: Repository, tmp_path: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=repo)
    work = clone(repo, tmp_path / "work")
    run(work, "rm", "-q", layout.path_for(rec.id))
    run(work, "commit", "-q", "-m", "remove by hand")
    run(work, "push", "-q", "origin", "main")

    with pytest.raises(NoResultFound):
        Record.get_record(rec.id, repo=repo)
    with pytest.raises(NoResultFound):
        Record.get_record(rec.id, repo=repo, with_deleted=True)
    assert list(repo.ids(with_deleted=True)) == []
    repo.sync_index()
    rows = repo.index.revisions(rec.id)
    assert [r.blob is None for r in rows] == [False, True]
    # the id is free again; revision ids continue without a hole
    again = Record.create({"title": "back"}, id_=rec.id, repo=repo)
    assert again.revision_id == 2
    assert [r.revision_id for r in again.revisions] == [0, 1, 2]


def test_index_rebuilds_after_a_forced_update(repo: Repository, tmp_path: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=repo)
    other = Record.create({"title": "other"}, repo=repo)
    for n in range(1, 4):
        rec["title"] = f"v{n}"
        rec.commit()
    assert rec.revision_id == 3
    assert repo.index.indexed_tip() == git(repo, "rev-parse", "main").strip()

    work = clone(repo, tmp_path / "work")
    run(work, "reset", "-q", "--hard", "HEAD~2")  # drop v2 and v3
    write_record(work, rec.id, {"title": "rewritten"})
    run(work, "commit", "-q", "-am", "rewrite history")
    run(work, "push", "-q", "--force", "origin", "main")

    got = Record.get_record(rec.id, repo=repo)
    assert got == {"title": "rewritten"}
    assert got.revision_id == 2
    assert [r["title"] for r in got.revisions] == ["v0", "v1", "rewritten"]
    assert Record.get_record(other.id, repo=repo).revision_id == 0
    incremental = {i: revision_table(repo, i) for i in (rec.id, other.id)}

    count = repo.reindex()
    assert count == 4
    assert {i: revision_table(repo, i) for i in (rec.id, other.id)} == incremental
    # the rewritten commits are the ones git has
    path = repo.path_for(rec.id)
    assert [c for _, c, _, _ in incremental[rec.id]] == git(
        repo, "log", "--reverse", "--format=%H", "main", "--", path
    ).split()


def test_reindex_gives_the_same_revisions(sample_repo: Repository) -> None:
    repo = sample_repo
    ids = sorted(repo.ids())[:5]
    for n, record_id in enumerate(ids):
        rec = Record.get_record(record_id, repo=repo)
        rec["version"] = f"9.{n}"
        rec.commit()
    Record.get_record(ids[0], repo=repo).delete()
    before = {i: revision_table(repo, i) for i in repo.ids(with_deleted=True)}
    pids_before = sorted(repo.index.iter_pids("recid"))
    assert repo.reindex() == 60 + 5 + 1
    assert {i: revision_table(repo, i) for i in repo.ids(with_deleted=True)} == before
    assert sorted(repo.index.iter_pids("recid")) == pids_before
    assert len(before[ids[0]]) == 3


def test_index_file_can_be_thrown_away(repo: Repository) -> None:
    rec = Record.create({"title": "v0"}, repo=repo)
    rec["title"] = "v1"
    rec.commit()
    expected = revision_table(repo, rec.id)
    index_path = Path(repo.index.path)
    repo.close()

    index_path.unlink()
    reopened = Repository(repo.path)
    assert Record.get_record(rec.id, repo=reopened).revision_id == 1
    assert revision_table(reopened, rec.id) == expected
    reopened.close()

    index_path.write_bytes(b"this is not a database\n" * 1000)  # damaged
    reopened = Repository(repo.path)
    assert Record.get_record(rec.id, repo=reopened).revision_id == 1
    assert revision_table(reopened, rec.id) == expected


def test_revisions_follow_first_parent_history_through_merges(repo: Repository, tmp_path: Path) -> None:
    a = Record.create({"title": "a0"}, repo=repo)
    b = Record.create({"title": "b0"}, repo=repo)
    work = clone(repo, tmp_path / "work")
    run(work, "checkout", "-q", "-b", "topic")
    write_record(work, a.id, {"title": "a1 on topic"})
    run(work, "commit", "-q", "-am", "topic: a1")
    write_record(work, a.id, {"title": "a2 on topic"})
    run(work, "commit", "-q", "-am", "topic: a2")
    run(work, "checkout", "-q", "main")
    write_record(work, b.id, {"title": "b1 on main"})
    run(work, "commit", "-q", "-am", "main: b1")
    run(work, "merge", "-q", "--no-ff", "-m", "merge topic", "topic")
    run(work, "push", "-q", "origin", "main")
    merge = run(work, "rev-parse", "HEAD").strip()

    # a changed once in main's first-parent history: at the merge commit
    revs = Record.get_record(a.id, repo=repo).revisions
    assert [r["title"] for r in revs] == ["a0", "a2 on topic"]
    assert revs[-1].commit_id == merge
    # b changed on main, before the merge; the merge does not change b's blob
    revs = Record.get_record(b.id, repo=repo).revisions
    assert [r["title"] for r in revs] == ["b0", "b1 on main"]
    assert revs[-1].commit_id == run(work, "rev-parse", "HEAD^1").strip()
    fsck(repo)


def test_revisions_object_is_a_snapshot(repo: Repository) -> None:
    rec = Record.create({"v": 0}, repo=repo)
    revisions = rec.revisions
    rec["v"] = 1
    rec.commit()
    assert len(revisions) == 1
    assert len(rec.revisions) == 2


def test_the_revision_index_follows_its_writers_without_comparing_trees(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit one past the indexed tip is indexed from the files its writer says it changed
    (no tree comparison), and the index holds what a rebuild from git holds: revisions, states
    and PIDs, through creates, updates, a PID given up and taken, deletes and a bulk edit."""
    from gitrecords import _git
    from gitrecords import index as revision_index

    compared: list[str] = []
    real = _git.changed_blobs

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        compared.append("diff")
        return real(*args, **kwargs)

    monkeypatch.setattr(revision_index._git, "changed_blobs", counting)
    first = Record.create({"title": "one"}, pid_minters=["recid"], repo=repo)
    second = Record.create({"title": "two"}, pid_minters=["recid"], repo=repo)
    first["title"] = "one, again"
    first.commit()
    del first["control_number"]
    first.commit()
    second["control_number"] = "1"
    second.commit()
    Record.get_record(second.id, repo=repo).delete()
    ids = repo.import_records([{"title": f"bulk {n}"} for n in range(30)]).ids
    repo.update_records(ids, [{"op": "add", "path": "/x", "value": 1}])
    assert compared == []
    assert repo.lookup_pid("recid", "1") == second.id
    assert_revision_index_equals_rebuild(repo)


def test_a_commit_of_many_records_is_indexed_in_parts(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records of one commit are indexed a part at a time (one statement of each kind a
    part): across parts, revision ids follow each record's own, PIDs move between records
    (each takes the next one's), and the index holds what a rebuild from git holds."""
    from gitrecords import index as revision_index

    monkeypatch.setattr(revision_index, "_PART", 4)
    ids = repo.import_records([{"title": f"bulk {n}", "control_number": str(100 + n)} for n in range(30)]).ids
    repo.update_records(ids[:10], [{"op": "add", "path": "/x", "value": 1}])

    def next_pid(data: dict) -> dict:
        data["control_number"] = str((int(data["control_number"]) - 100 + 1) % 30 + 100)
        return data

    repo.update_records(ids, next_pid)
    for n, record_id in enumerate(ids):
        record = Record.get_record(record_id, repo=repo)
        assert record.revision_id == (2 if n < 10 else 1)
        assert [r.revision_id for r in record.revisions] == list(range(record.revision_id + 1))
        assert repo.lookup_pid("recid", str((n + 1) % 30 + 100)) == record_id
    assert_revision_index_equals_rebuild(repo)
