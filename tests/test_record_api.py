"""The Record API (ported from invenio-records' test_api.py), checked with the git binary."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta

import jsonpatch
import jsonpointer
import pytest
from helpers import commit_file_by_plumbing, fsck, git

from gitrecords import (
    GitRecordsError,
    InvalidRecordError,
    NoResultFound,
    Record,
    RecordDeletedError,
    RecordExistsError,
    Repository,
    StaleRevisionError,
    ValidationError,
    hookimpl,
    layout,
    plugins,
)


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", repo.branch).strip()


def subjects(repo: Repository) -> list[str]:
    """Commit subjects of the branch, oldest first."""
    return git(repo, "log", "--reverse", "--format=%s", repo.branch).splitlines()


def show(repo: Repository, record_id: uuid.UUID, rev: str = "main") -> str:
    return git(repo, "show", f"{rev}:{repo.path_for(record_id)}")


def canonical(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# -- create / get ----------------------------------------------------------


def test_create_writes_one_commit_with_canonical_json(repo: Repository) -> None:
    before = subjects(repo)
    rec = Record.create({"title": "Über", "b": [2, 1], "a": {"z": None, "y": 1.5}}, repo=repo)

    assert isinstance(rec, dict)
    assert isinstance(rec.id, uuid.UUID)
    assert rec.revision_id == 0
    assert dict(rec) == {"title": "Über", "b": [2, 1], "a": {"z": None, "y": 1.5}}
    assert subjects(repo) == [*before, f"create record {rec.id}"]
    body = git(repo, "log", "-1", "--format=%b", "main")
    assert "Gitrecords-Operation: create" in body
    assert f"Gitrecords-Record: {rec.id}" in body
    shown = show(repo, rec.id)
    assert shown == canonical(dict(rec))
    assert layout.is_canonical(shown.encode())
    assert "Über" in shown  # UTF-8, not \u escapes
    fsck(repo)


def test_create_in_current_repository(repo: Repository) -> None:
    with repo as current:
        assert current is repo
        rec = Record.create({"title": "T"})
        assert Record.get_record(rec.id) == {"title": "T"}
    with pytest.raises(GitRecordsError, match="no current repository"):
        Record.create({"title": "T"})


def test_create_copies_the_input(repo: Repository) -> None:
    data = {"nested": {"list": [1]}}
    rec = Record.create(data, repo=repo)
    data["nested"]["list"].append(2)
    assert rec["nested"]["list"] == [1]


def test_get_record_missing_raises(repo: Repository) -> None:
    with pytest.raises(NoResultFound):
        Record.get_record(uuid.uuid4(), repo=repo)
    with pytest.raises(NoResultFound):
        Record.get_record(uuid.uuid4(), with_deleted=True, repo=repo)


def test_get_record_reads_back_from_a_new_repository_object(repo: Repository) -> None:
    rec = Record.create({"title": "T", "n": [1, {"x": True}]}, repo=repo)
    reopened = Repository(repo.path)
    got = Record.get_record(str(rec.id), repo=reopened)
    assert got == rec
    assert got.id == rec.id
    assert got.revision_id == 0
    assert got.created == rec.created


def test_get_records(repo: Repository) -> None:
    """test_api.py::test_get_records, plus input order and missing ids."""
    recs = [Record.create({"title": f"test {i}"}, repo=repo) for i in range(3)]
    ids = [r.id for r in recs]
    assert [r.id for r in Record.get_records(ids, repo=repo)] == ids
    reordered = [ids[2], uuid.uuid4(), ids[0], ids[1]]
    assert [r.id for r in Record.get_records(reordered, repo=repo)] == [ids[2], ids[0], ids[1]]

    recs[1].delete()
    assert [r.id for r in Record.get_records(ids, repo=repo)] == [ids[0], ids[2]]
    with_deleted = Record.get_records(ids, with_deleted=True, repo=repo)
    assert [r.id for r in with_deleted] == ids
    assert [r.is_deleted for r in with_deleted] == [False, True, False]
    assert dict(with_deleted[1]) == {}


def test_revision_id_created_updated_properties(repo: Repository) -> None:
    """test_api.py::test_revision_id_created_updated_properties."""
    rec = Record.create({"title": "test"}, repo=repo)
    assert rec.revision_id == 0
    created, updated = rec.created, rec.updated
    now = datetime.now(UTC)
    for stamp in (created, updated):
        assert stamp.tzinfo is not None
        assert stamp.utcoffset() == timedelta(0)
        assert abs(stamp - now) < timedelta(seconds=10)

    rec["title"] = "test 2"
    rec.commit()
    assert rec.revision_id == 1
    assert rec.created == created
    assert rec.updated >= updated

    got = Record.get_record(rec.id, repo=repo)
    assert got.revision_id == 1
    assert got.created == created
    assert got.updated == rec.updated


def test_commit_returns_self_and_writes_one_commit_per_write(repo: Repository) -> None:
    rec = Record.create({"title": "v0"}, repo=repo)
    for n in range(1, 4):
        rec["title"] = f"v{n}"
        assert rec.commit() is rec
        assert rec.revision_id == n
    assert subjects(repo)[-4:] == [f"create record {rec.id}"] + [f"update record {rec.id}"] * 3
    assert json.loads(show(repo, rec.id)) == {"title": "v3"}
    assert json.loads(show(repo, rec.id, "main~1")) == {"title": "v2"}
    fsck(repo)


def test_noop_commit_writes_nothing(repo: Repository) -> None:
    rec = Record.create({"title": "same", "k": [1, 2]}, repo=repo)
    before = tip(repo)
    rec.commit()
    assert tip(repo) == before
    assert rec.revision_id == 0
    # the same data in another key order is the same canonical file
    other = Record.get_record(rec.id, repo=repo)
    other.clear()
    other.update({"k": [1, 2], "title": "same"})
    other.commit()
    assert tip(repo) == before
    assert len(rec.revisions) == 1


def test_record_update_mutable(repo: Repository) -> None:
    """test_api.py::test_record_update_mutable."""
    rec = Record.create({"title": "x", "list": ["a"], "obj": {"k": "v"}}, repo=repo)
    rec["list"].append("b")
    rec["obj"]["k2"] = {"deep": [1]}
    rec.commit()
    got = Record.get_record(rec.id, repo=repo)
    assert got["list"] == ["a", "b"]
    assert got["obj"] == {"k": "v", "k2": {"deep": [1]}}
    got["list"] = ["c"]
    got["obj"]["k2"]["deep"].append(2)
    got.commit()
    again = Record.get_record(rec.id, repo=repo)
    assert again == {"title": "x", "list": ["c"], "obj": {"k": "v", "k2": {"deep": [1, 2]}}}
    assert again.revision_id == 2


def test_missing_model(repo: Repository) -> None:
    """test_api.py::test_missing_model: a record that was never written."""
    rec = Record({}, repo=repo)
    assert rec.id is None
    assert rec.revision_id is None
    assert rec.created is None
    assert rec.updated is None
    assert rec.is_deleted is False
    before = tip(repo)
    with pytest.raises(GitRecordsError, match="never written"):
        rec.revisions  # noqa: B018
    with pytest.raises(GitRecordsError, match="never written"):
        rec.commit()
    with pytest.raises(GitRecordsError, match="never written"):
        rec.delete()
    with pytest.raises(GitRecordsError, match="never written"):
        rec.revert(-1)
    assert tip(repo) == before


def test_record_dump(repo: Repository) -> None:
    """test_api.py::test_record_dump: dumps() is a deep copy."""
    rec = Record.create({"foo": {"bar": "Bazz", "spam": "Eggs"}}, repo=repo)
    dump = rec.dumps()
    dump["foo"]["bar"] = "Spam"
    assert rec["foo"]["bar"] == "Bazz"
    assert dump == {"foo": {"bar": "Spam", "spam": "Eggs"}}


def test_clear_none() -> None:
    """test_api.py::test_clear_none and dictutils' clear_none."""
    rec = Record({"a": None})
    rec.clear_none()
    assert rec == {}

    rec = Record({"a": None, "b": {"c": None, "d": [None, {}, 1]}, "e": {"f": None}})
    rec.clear_none()
    assert rec == {"b": {"d": [1]}}

    rec = Record({"a": None, "b": {"c": None, "d": [None, {"x": None}, [], 0, False, ""]}})
    rec.clear_none(key="b")
    assert rec == {"a": None, "b": {"d": [0, False, ""]}}

    rec = Record({"a": {"b": [{"c": None, "d": 1}, None]}, "keep": None})
    rec.clear_none(key="a.b.0")
    assert rec == {"a": {"b": [{"d": 1}, None]}, "keep": None}


# -- ids -------------------------------------------------------------------


def test_create_with_given_id_str_and_uuid(repo: Repository) -> None:
    """OBS 69: a str id_ is accepted; the id is a UUID."""
    given = uuid.uuid4()
    rec = Record.create({"t": 1}, id_=str(given), repo=repo)
    assert rec.id == given
    other = uuid.uuid4()
    assert Record.create({"t": 2}, id_=other, repo=repo).id == other


@pytest.mark.parametrize(
    "form",
    [
        lambda u: str(u).upper(),
        lambda u: "{" + str(u) + "}",
        lambda u: "{" + str(u).upper() + "}",
        lambda u: u.urn,
        lambda u: u.hex,
        lambda u: f"  {u}\n",
    ],
    ids=["upper", "braced", "braced-upper", "urn", "hex", "whitespace"],
)
def test_ids_are_normalized(repo: Repository, form) -> None:
    record_id = uuid.uuid4()
    rec = Record.create({"t": 1}, id_=form(record_id), repo=repo)
    assert rec.id == record_id
    files = git(repo, "ls-tree", "-r", "--name-only", "main", "records").splitlines()
    assert files == [layout.path_for(record_id)]
    assert files[0].endswith(f"/{record_id}.json")
    assert Record.get_record(form(record_id), repo=repo).id == record_id
    with pytest.raises(RecordExistsError):
        Record.create({"t": 2}, id_=str(record_id), repo=repo)


@pytest.mark.parametrize(
    "bad",
    ["../x", "../../etc/passwd", "records/ab/cd/x.json", "", "not-a-uuid", "a" * 200, "\0", 12],
)
def test_bad_ids_are_refused(repo: Repository, bad) -> None:
    before = tip(repo)
    with pytest.raises(InvalidRecordError):
        Record.create({"t": 1}, id_=bad, repo=repo)
    with pytest.raises(InvalidRecordError):
        Record.get_record(bad, repo=repo)
    assert tip(repo) == before


def test_create_with_existing_id_raises(repo: Repository) -> None:
    """OBS 66-68: create(id_=existing) fails and the original is intact."""
    rec = Record.create({"title": "A"}, repo=repo)
    before = tip(repo)
    with pytest.raises(RecordExistsError):
        Record.create({"title": "B"}, id_=rec.id, repo=repo)
    assert tip(repo) == before
    assert Record.get_record(rec.id, repo=repo) == {"title": "A"}


# -- invalid data ------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        ["a", "list"],
        "a string",
        None,
        42,
        {"value": float("nan")},
        {"value": [float("inf")]},
        {"deep": {"x": -float("inf")}},
        {1: "non-string key"},
        {"set": {1, 2}},
        {"bytes": b"x"},
        {"when": datetime.now(UTC)},
        {"$gitrecords": {"deleted": "2020-01-01T00:00:00Z"}},
        {"surrogate": "\ud800"},
        {"huge": 10**5000},
    ],
    ids=lambda d: (
        type(d).__name__
        if not isinstance(d, dict)
        else next(iter(d)).__class__.__name__ + ":" + str(next(iter(d)))
    ),
)
def test_invalid_data_is_refused_without_a_commit(repo: Repository, data) -> None:
    before = tip(repo)
    with pytest.raises(InvalidRecordError):
        Record.create(data, repo=repo)
    assert tip(repo) == before
    assert list(repo.ids(with_deleted=True)) == []


def test_invalid_data_on_commit_writes_nothing(repo: Repository) -> None:
    rec = Record.create({"title": "ok"}, repo=repo)
    before = tip(repo)
    rec["value"] = float("nan")
    with pytest.raises(InvalidRecordError, match="nan at /value"):
        rec.commit()
    assert tip(repo) == before
    assert Record.get_record(rec.id, repo=repo) == {"title": "ok"}
    del rec["value"]
    rec["title"] = "fine"
    rec.commit()
    assert rec.revision_id == 1


def test_record_size_limit(tmp_path) -> None:
    repo = Repository.init(tmp_path / "small.git", config={"max_record_bytes": 100})
    Record.create({"t": "x" * 10}, repo=repo)
    before = tip(repo)
    with pytest.raises(InvalidRecordError, match="larger than the limit of 100 bytes"):
        Record.create({"t": "x" * 200}, repo=repo)
    assert tip(repo) == before


# -- revisions ----------------------------------------------------------------


def test_revisions(repo: Repository) -> None:
    """test_api.py::test_revisions."""
    rec = Record.create({"title": "test 1"}, repo=repo)
    rec["title"] = "test 2"
    rec.commit()
    rec["title"] = "test 3"
    rec.commit()
    assert rec.revisions[0] == {"title": "test 1"}
    assert rec.revisions[1] == {"title": "test 2"}
    assert rec.revisions[2] == rec
    assert rec.revisions[-1] == rec
    assert rec.revisions[-3] == {"title": "test 1"}

    reverted = rec.revert(0)
    assert reverted is not rec
    assert isinstance(reverted, Record)
    assert reverted == {"title": "test 1"}
    assert reverted.revision_id == 3
    assert reverted.created == rec.revisions[0].updated
    assert reverted.created == rec.created
    assert reverted.updated >= rec.revisions[2].updated
    assert Record.get_record(rec.id, repo=repo) == {"title": "test 1"}

    reverted["title"] = "test 5"
    reverted.commit()
    assert reverted.revision_id == 4

    revisions = reverted.revisions
    assert len(revisions) == 5
    assert [r.revision_id for r in revisions] == [0, 1, 2, 3, 4]
    assert [r["title"] for r in revisions] == ["test 1", "test 2", "test 3", "test 1", "test 5"]
    assert [r.revision_id for r in reversed(revisions)] == [4, 3, 2, 1, 0]
    assert 2 in revisions
    assert -5 in revisions
    assert 5 not in revisions
    assert -6 not in revisions
    assert "2" not in revisions
    with pytest.raises(IndexError):
        revisions[5]
    with pytest.raises(IndexError):
        revisions[-6]
    with pytest.raises(TypeError):
        revisions["1"]  # type: ignore[index]


def test_revisions_are_read_only_records_with_identity(repo: Repository) -> None:
    rec = Record.create({"title": "a"}, repo=repo)
    rec["title"] = "b"
    rec.commit()
    first, second = list(rec.revisions)
    assert type(first).__name__ == "RecordRevision"
    assert first.id == rec.id
    assert not hasattr(first, "commit")
    assert not hasattr(first, "revert")
    assert first.is_deleted is False
    assert first.created == second.created == rec.created
    assert second.updated == rec.updated
    # the revision names its commit, and the commit holds that data
    assert json.loads(git(repo, "show", f"{first.commit_id}:{repo.path_for(rec.id)}")) == {"title": "a"}
    info = second.commit_info
    assert info.message.startswith(f"update record {rec.id}\n")
    assert info.time.tzinfo is not None
    # mutating a revision changes nothing stored
    first["title"] = "zzz"
    assert rec.revisions[0] == {"title": "a"}


def test_revision_indices_are_ids_and_positions(repo: Repository) -> None:
    """test_api.py::test_retrieve_proper_revision, adapted: ids never have holes here."""
    rec = Record.create({"title": "v0"}, repo=repo)
    with repo.transaction():
        rec["title"] = "v1"
        rec.commit()
        rec["title"] = "v1b"
        rec.commit()
    rec["title"] = "v2"
    rec.commit()
    revisions = rec.revisions
    assert [r.revision_id for r in revisions] == [0, 1, 2]
    assert revisions[1] == {"title": "v1b"}
    for n in range(3):
        assert revisions[n] == revisions[n - 3]
        assert revisions[n].revision_id == revisions[n - 3].revision_id == n


def test_reversed_works_for_revisions(repo: Repository) -> None:
    """test_api.py::test_reversed_works_for_revisions, with assertions."""
    rec = Record.create({"title": "v0"}, repo=repo)
    for n in range(1, 4):
        rec["title"] = f"v{n}"
        rec.commit()
    assert [r["title"] for r in reversed(rec.revisions)] == ["v3", "v2", "v1", "v0"]
    assert [r["title"] for r in rec.revisions] == ["v0", "v1", "v2", "v3"]


def test_revert_commits_the_old_blob_again(repo: Repository) -> None:
    rec = Record.create({"title": "first", "x": [1, 2, 3]}, repo=repo)
    path = repo.path_for(rec.id)
    blob0 = git(repo, "rev-parse", f"main:{path}").strip()
    rec["title"] = "second"
    rec.commit()
    objects_before = set(git(repo, "rev-list", "--objects", "--all").split())

    new = rec.revert(0)
    assert git(repo, "rev-parse", f"main:{path}").strip() == blob0
    assert new.revision_id == 2
    assert rec.revision_id == 2  # the old object follows the record
    assert subjects(repo)[-1] == f"revert record {rec.id} to revision 0"
    new_objects = set(git(repo, "rev-list", "--objects", "--all").split()) - objects_before
    assert blob0 not in new_objects
    assert new.revisions[2]._blob == new.revisions[0]._blob
    fsck(repo)


def test_revert_missing_revision_raises_index_error(repo: Repository) -> None:
    rec = Record.create({"title": "t"}, repo=repo)
    before = tip(repo)
    with pytest.raises(IndexError):
        rec.revert(99)
    with pytest.raises(IndexError):
        rec.revert(-2)
    assert tip(repo) == before


def test_revert_to_the_current_revision_writes_nothing(repo: Repository) -> None:
    rec = Record.create({"title": "t"}, repo=repo)
    before = tip(repo)
    new = rec.revert(-1)
    assert tip(repo) == before
    assert new.revision_id == 0


# -- patch --------------------------------------------------------------------


def test_patch(repo: Repository) -> None:
    """test_api.py patch semantics (OBS 28-34)."""
    rec = Record.create({"title": "First title"}, repo=repo)
    assert len(rec.revisions) == 1
    before = tip(repo)
    new = rec.patch(
        [
            {"op": "replace", "path": "/title", "value": "Title first record"},
            {"op": "add", "path": "/description", "value": "Record description"},
        ]
    )
    assert new is not rec
    assert type(new) is Record
    assert rec == {"title": "First title"}
    assert new == {"title": "Title first record", "description": "Record description"}
    assert new.id == rec.id
    assert new.revision_id == 0
    assert tip(repo) == before

    new.commit()
    assert new.revision_id == 1
    assert len(rec.revisions) == 2
    assert Record.get_record(rec.id, repo=repo) == new


def test_patch_from_json_text(repo: Repository) -> None:
    rec = Record.create({"a": 1}, repo=repo)
    new = rec.patch('[{"op": "add", "path": "/b", "value": [1]}]')
    assert new == {"a": 1, "b": [1]}


def test_patch_bad_path_raises_jsonpatch_error(repo: Repository) -> None:
    rec = Record.create({"title": "x"}, repo=repo)
    with pytest.raises(jsonpatch.JsonPatchConflict, match="nope"):
        rec.patch([{"op": "remove", "path": "/nope"}])
    with pytest.raises(jsonpointer.JsonPointerException, match="member 'a' not found"):
        rec.patch([{"op": "replace", "path": "/a/b/c", "value": 1}])
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        rec.patch([{"op": "test", "path": "/title", "value": "y"}])
    assert rec == {"title": "x"}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "", "value": {}}],
        [{"op": "remove", "path": ""}],
        [{"op": "add", "path": "", "value": {"x": 1}}],
        [{"op": "move", "from": "/title", "path": ""}],
    ],
)
def test_patch_touching_the_root_is_refused(repo: Repository, ops) -> None:
    rec = Record.create({"title": "x"}, repo=repo)
    with pytest.raises(InvalidRecordError, match="whole record"):
        rec.patch(ops)
    assert rec == {"title": "x"}


@pytest.mark.parametrize("ops", [{"op": "add"}, [{"path": "/a"}], ["x"], '{"op": "add"}', "not json"])
def test_malformed_patch_is_refused(repo: Repository, ops) -> None:
    rec = Record.create({"title": "x"}, repo=repo)
    with pytest.raises(InvalidRecordError):
        rec.patch(ops)


# -- soft delete, undelete ------------------------------------------------------


def test_delete(repo: Repository) -> None:
    """test_api.py::test_delete."""
    rec = Record.create({"title": "test 1"}, repo=repo)
    rec["title"] = "test 2"
    rec.commit()
    assert rec.delete() is rec
    assert rec.is_deleted
    assert rec.revision_id == 2

    tombstone = json.loads(show(repo, rec.id))
    assert list(tombstone) == ["$gitrecords"]
    deleted_at = datetime.strptime(tombstone["$gitrecords"]["deleted"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(deleted_at.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(seconds=10)
    assert subjects(repo)[-1] == f"delete record {rec.id}"

    with pytest.raises(NoResultFound):
        Record.get_record(rec.id, repo=repo)
    got = Record.get_record(rec.id, with_deleted=True, repo=repo)
    assert dict(got) == {}
    assert got.is_deleted is True
    assert got.revision_id == 2
    assert got.id == rec.id
    assert rec.id not in list(repo.ids())
    assert rec.id in list(repo.ids(with_deleted=True))

    revisions = got.revisions
    assert len(revisions) == 3
    assert dict(revisions[-1]) == {}
    assert revisions[-1].is_deleted
    assert revisions[1] == {"title": "test 2"}

    before = tip(repo)
    with pytest.raises(RecordDeletedError):
        got.commit()
    with pytest.raises(RecordDeletedError):
        rec.commit()
    with pytest.raises(RecordDeletedError):
        got.delete()
    assert tip(repo) == before

    restored = got.revert(-2)
    assert restored == {"title": "test 2"}
    assert restored.revision_id == 3
    assert not restored.is_deleted
    assert Record.get_record(rec.id, repo=repo) == {"title": "test 2"}

    restored.delete(force=True)
    with pytest.raises(NoResultFound):
        Record.get_record(rec.id, repo=repo, with_deleted=True)
    fsck(repo)


def test_revert_to_the_tombstone_stays_deleted(repo: Repository) -> None:
    rec = Record.create({"title": "t"}, repo=repo)
    rec.delete()
    restored = rec.revert(0)
    assert restored == {"title": "t"}
    again = restored.revert(1)
    assert again.is_deleted
    assert dict(again) == {}
    with pytest.raises(NoResultFound):
        Record.get_record(rec.id, repo=repo)
    assert Record.get_record(rec.id, repo=repo, with_deleted=True).revision_id == 3


def test_create_with_soft_deleted_id_raises(repo: Repository) -> None:
    """OBS 54: the tombstone keeps the id reserved."""
    rec = Record.create({"title": "A"}, repo=repo)
    rec.delete()
    before = tip(repo)
    with pytest.raises(RecordExistsError):
        Record.create({"title": "B"}, id_=rec.id, repo=repo)
    assert tip(repo) == before


def test_undelete_no_get(repo: Repository) -> None:
    """test_api.py::test_undelete_no_get: delete, undelete, commit on one object."""
    rec = Record.create({"title": "test"}, repo=repo)
    rec.delete()
    assert rec.undelete() is rec
    rec.commit()
    assert Record.get_record(rec.id, repo=repo) == {"title": "test"}
    assert rec.revision_id == 2


def test_undelete_with_get_restores_the_last_live_data(repo: Repository) -> None:
    """test_api.py::test_undelete_with_get, improved: the last live data comes back, not {}."""
    rec = Record.create({"title": "v0"}, repo=repo)
    rec["title"] = "v1"
    rec.commit()
    blob1 = git(repo, "rev-parse", f"main:{repo.path_for(rec.id)}").strip()
    rec.delete()
    got = Record.get_record(rec.id, with_deleted=True, repo=repo)
    got.undelete()
    assert got == {"title": "v1"}
    assert not got.is_deleted
    assert got.revision_id == 3
    assert subjects(repo)[-1] == f"undelete record {rec.id}"
    assert git(repo, "rev-parse", f"main:{repo.path_for(rec.id)}").strip() == blob1
    got.commit()  # nothing changed: no new revision
    assert got.revision_id == 3
    fresh = Record.get_record(rec.id, repo=repo)
    assert fresh == {"title": "v1"}
    assert fresh.revision_id == 3


def test_undelete_a_live_record_is_an_error(repo: Repository) -> None:
    rec = Record.create({"title": "v0"}, repo=repo)
    before = tip(repo)
    with pytest.raises(GitRecordsError, match="not deleted"):
        rec.undelete()
    assert tip(repo) == before


# -- concurrency within one process ----------------------------------------------


def test_stale_record_raises(repo: Repository) -> None:
    rec = Record.create({"title": "v0", "n": 0}, repo=repo)
    a = Record.get_record(rec.id, repo=repo)
    b = Record.get_record(rec.id, repo=repo)
    a["title"] = "from a"
    a.commit()
    before = tip(repo)
    b["n"] = 1
    with pytest.raises(StaleRevisionError):
        b.commit()
    with pytest.raises(StaleRevisionError):
        b.delete()
    with pytest.raises(StaleRevisionError):
        b.revert(0)
    assert tip(repo) == before
    assert Record.get_record(rec.id, repo=repo) == {"title": "from a", "n": 0}
    # reading it again and retrying works
    c = Record.get_record(rec.id, repo=repo)
    c["n"] = 1
    c.commit()
    assert Record.get_record(rec.id, repo=repo) == {"title": "from a", "n": 1}


def test_stale_copy_of_a_deleted_record(repo: Repository) -> None:
    rec = Record.create({"title": "v0"}, repo=repo)
    copy_ = Record.get_record(rec.id, repo=repo)
    rec.delete()
    copy_["title"] = "v1"
    with pytest.raises(StaleRevisionError):
        copy_.commit()


def test_writes_to_other_records_are_not_stale(repo: Repository) -> None:
    a = Record.create({"title": "a"}, repo=repo)
    b = Record.create({"title": "b"}, repo=repo)
    a_copy = Record.get_record(a.id, repo=repo)
    b["title"] = "b2"
    b.commit()
    a_copy["title"] = "a2"
    a_copy.commit()
    assert Record.get_record(a.id, repo=repo) == {"title": "a2"}
    assert Record.get_record(b.id, repo=repo) == {"title": "b2"}


# -- authors and messages -----------------------------------------------------


def test_message_and_author(repo: Repository) -> None:
    rec = Record.create(
        {"t": 1}, repo=repo, message="import from legacy", author="Ada Lovelace <ada@example.org>"
    )
    out = git(repo, "log", "-1", "--format=%an <%ae>%n%cn <%ce>%n%s", "main").splitlines()
    assert out == ["Ada Lovelace <ada@example.org>", "Ada Lovelace <ada@example.org>", "import from legacy"]
    rec["t"] = 2
    rec.commit(message="fix t", author=("Grace", "grace@example.org"))
    assert git(repo, "log", "-1", "--format=%an|%s", "main").strip() == "Grace|fix t"
    rec["t"] = 3
    before = tip(repo)
    with pytest.raises(GitRecordsError, match="Name <email>"):
        rec.commit(author="no email")
    assert tip(repo) == before


def test_default_author_without_git_config(repo: Repository) -> None:
    Record.create({"t": 1}, repo=repo)
    assert git(repo, "log", "-1", "--format=%an <%ae>", "main").strip() == "gitrecords <gitrecords@localhost>"


def test_author_from_git_config(repo: Repository) -> None:
    git(repo, "config", "user.name", "Config User")
    git(repo, "config", "user.email", "config@example.org")
    Record.create({"t": 1}, repo=repo)
    assert git(repo, "log", "-1", "--format=%an <%ae>", "main").strip() == "Config User <config@example.org>"


def test_record_classes_keep_their_type(repo: Repository) -> None:
    class MyRecord(Record):
        pass

    rec = MyRecord.create({"t": 1}, repo=repo)
    assert type(rec) is MyRecord
    assert type(MyRecord.get_record(rec.id, repo=repo)) is MyRecord
    assert type(rec.revert(0)) is MyRecord
    assert type(rec.patch([{"op": "add", "path": "/u", "value": 2}])) is MyRecord
    assert copy.deepcopy(dict(rec)) == {"t": 1}


# -- PIDs -------------------------------------------------------------------------


def test_recid_minter_assigns_consecutive_numbers(repo: Repository) -> None:
    first = Record.create({"title": "one"}, pid_minters=["recid"], repo=repo)
    second = Record.create({"title": "two"}, pid_minters=["recid"], repo=repo)
    assert first["control_number"] == "1"
    assert second["control_number"] == "2"
    assert json.loads(show(repo, second.id))["control_number"] == "2"
    assert subjects(repo)[-1] == f"create record {second.id}"  # minting is part of the same commit
    assert repo.lookup_pid("recid", "2") == second.id
    assert repo.lookup_pid("recid", "1") == first.id
    with pytest.raises(NoResultFound):
        repo.lookup_pid("recid", "3")
    # a fresh Repository object knows them too (the index is on disk, and rebuildable)
    assert Repository(repo.path).lookup_pid("recid", "2") == second.id
    repo.reindex()
    assert repo.lookup_pid("recid", "1") == first.id


def test_unknown_minter_lists_the_known_ones(repo: Repository) -> None:
    from gitrecords.pids import PIDError

    before = tip(repo)
    with pytest.raises(PIDError, match=r"unknown PID minter 'doi'; known minters: .*recid"):
        Record.create({"title": "x"}, pid_minters=["doi"], repo=repo)
    assert tip(repo) == before


def test_recid_minter_refuses_a_record_that_has_one(repo: Repository) -> None:
    from gitrecords.pids import PIDError

    with pytest.raises(PIDError, match="already has a control_number"):
        Record.create({"control_number": "7"}, pid_minters=["recid"], repo=repo)


def test_a_pid_used_by_another_record_is_refused(repo: Repository) -> None:
    from gitrecords.pids import PIDError

    first = Record.create({"title": "one"}, pid_minters=["recid"], repo=repo)
    before = tip(repo)
    with pytest.raises(PIDError, match=f"PID recid:1 is already used by record {first.id}"):
        Record.create({"title": "dup", "control_number": "1"}, repo=repo)
    other = Record.create({"title": "other"}, repo=repo)
    other["control_number"] = "1"
    with pytest.raises(PIDError):
        other.commit()
    assert Record.get_record(other.id, repo=repo) == {"title": "other"}
    # a soft-deleted record keeps its PID reserved
    first.delete()
    with pytest.raises(PIDError):
        Record.create({"title": "dup", "control_number": "1"}, repo=repo)
    assert Record.create({"t": 3}, pid_minters=["recid"], repo=repo)["control_number"] == "2"
    assert subjects(repo).count(f"create record {other.id}") == 1
    assert tip(repo) != before


def test_two_records_with_one_pid_in_a_transaction_are_refused(repo: Repository) -> None:
    from gitrecords.pids import PIDError

    before = tip(repo)
    with pytest.raises(PIDError):
        with repo.transaction():
            Record.create({"control_number": "5"}, repo=repo)
            Record.create({"control_number": "5"}, repo=repo)
    assert tip(repo) == before


def test_minting_in_a_transaction_is_consecutive(repo: Repository) -> None:
    Record.create({"t": 0}, pid_minters=["recid"], repo=repo)
    before = int(git(repo, "rev-list", "--count", "main"))
    with repo.transaction():
        recs = [Record.create({"t": n}, pid_minters=["recid"], repo=repo) for n in range(1, 5)]
    assert [r["control_number"] for r in recs] == ["2", "3", "4", "5"]
    assert int(git(repo, "rev-list", "--count", "main")) == before + 1
    for rec in recs:
        assert repo.lookup_pid("recid", rec["control_number"]) == rec.id
    assert Record.create({"t": 9}, pid_minters=["recid"], repo=repo)["control_number"] == "6"


def test_sample_repo_pids(sample_repo: Repository) -> None:
    numbers = sorted(int(v) for v, _ in sample_repo.index.iter_pids("recid"))
    assert numbers == list(range(1, 61))
    rec = Record.create({"title": "new"}, pid_minters=["recid"], repo=sample_repo)
    assert rec["control_number"] == "61"
    owner = sample_repo.lookup_pid("recid", "6")
    assert Record.get_record(owner, repo=sample_repo)["control_number"] == "6"


class DoiPlugin:
    @hookimpl
    def gitrecords_pid_minters(self) -> dict:
        def doi(repo: Repository, record_id: uuid.UUID, data: dict) -> str:
            data["doi"] = f"10.1234/{record_id.hex[:8]}"
            return data["doi"]

        return {"doi": doi}


def test_minters_from_plugins(repo: Repository) -> None:
    plugin = DoiPlugin()
    plugins.register(plugin)
    try:
        rec = Record.create({"title": "x"}, pid_minters=["recid", "doi"], repo=repo)
    finally:
        plugins.unregister(plugin)
    assert rec["doi"] == f"10.1234/{rec.id.hex[:8]}"
    assert rec["control_number"] == "1"
    assert json.loads(show(repo, rec.id))["doi"] == rec["doi"]


def test_json_patch_slash_is_the_member_with_the_empty_name(repo: Repository) -> None:
    """RFC 6901: "/" names the member "" (json-patch-tests); only "" is the whole document."""
    record = Record.create({"": 0, "title": "x"}, repo=repo)
    assert dict(record.patch([{"op": "replace", "path": "/", "value": 5}])) == {"": 5, "title": "x"}
    assert dict(record.patch([{"op": "remove", "path": "/"}])) == {"title": "x"}
    with pytest.raises(InvalidRecordError, match="may not replace the whole record"):
        record.patch([{"op": "replace", "path": "", "value": {}}])


def test_boolean_schemas_can_be_put(repo: Repository) -> None:
    """true and false are valid JSON Schemas (the same file committed by hand validates)."""
    assert repo.put_schema("yes.json", True) == "schemas/yes.json"
    repo.put_schema("no.json", False)
    Record.create({"$schema": "yes.json", "anything": 1}, repo=repo)
    with pytest.raises(ValidationError):
        Record.create({"$schema": "no.json"}, repo=repo)


def test_the_committer_can_differ_from_the_author(repo: Repository) -> None:
    """The write path's signatures: a repository opened with a committer keeps it for every write,
    whoever the author (what the web server does for each person's writes)."""
    committer = "Curation server <curation@example.org>"
    server = Repository(repo.path, committer=committer)
    Record.create({"title": "a"}, repo=server, author="Ada Lovelace <ada@example.org>")
    Record.create({"title": "b"}, repo=server)
    assert git(repo, "log", "-2", "--format=%an <%ae>|%cn <%ce>", "main").splitlines() == [
        f"gitrecords <gitrecords@localhost>|{'Curation server <curation@example.org>'}",
        f"Ada Lovelace <ada@example.org>|{'Curation server <curation@example.org>'}",
    ]


def test_a_pid_given_up_by_an_update_is_free_again(repo: Repository) -> None:
    """A record's update that drops its PID releases it, though no record of that commit has one,
    and another record may take it."""
    from gitrecords import NoResultFound

    first = Record.create({"title": "one"}, pid_minters=["recid"], repo=repo)
    other = Record.create({"title": "two"}, repo=repo)
    assert repo.lookup_pid("recid", "1") == first.id
    del first["control_number"]
    first.commit()
    with pytest.raises(NoResultFound):
        repo.lookup_pid("recid", "1")
    other["control_number"] = "1"
    other.commit()
    assert repo.lookup_pid("recid", "1") == other.id


def test_a_recid_a_record_gave_up_is_never_minted_again(repo: Repository) -> None:
    """Minting follows the highest number any revision held (as invenio never reuses a PID), not
    only those held now; one taken by hand stays possible (the test above). Imported numbers
    count too, and so does an index built again from the history."""
    first = Record.create({"title": "one"}, pid_minters=["recid"], repo=repo)
    del first["control_number"]
    first.commit()
    assert Record.create({"title": "two"}, pid_minters=["recid"], repo=repo)["control_number"] == "2"
    (imported,) = repo.import_records([{"title": "seven", "control_number": "7"}]).ids
    record = Record.get_record(imported, repo=repo)
    del record["control_number"]
    record.commit()
    assert Record.create({"title": "eight"}, pid_minters=["recid"], repo=repo)["control_number"] == "8"
    repo.close()
    for path in (repo.git_dir / "gitrecords").glob("index-*"):
        path.unlink()  # derived: built again from the history
    again = Repository(repo.path)
    assert Record.create({"title": "nine"}, pid_minters=["recid"], repo=again)["control_number"] == "9"


def test_invenio_call_forms_work(repo: Repository) -> None:
    """Code written for invenio-records 6: ``create(data, id_)`` positionally, a record (or a
    revision) given to ``create`` or ``copy.deepcopy``, ``dumps(dumper=None)``, ``Record.loads``."""
    import copy
    import uuid

    wanted = uuid.uuid4()
    first = Record.create({"title": "a", "list": [1]}, wanted, repo=repo)
    assert first.id == wanted
    twin = copy.deepcopy(first)
    assert twin == first and twin.id == first.id and twin.revision_id == 0 and twin.repo is first.repo
    twin["list"].append(2)
    assert first["list"] == [1]
    again = Record.create(first, repo=repo)
    assert dict(again) == dict(first) and again.id != first.id
    assert dict(Record.create(first.revisions[0], repo=repo)) == dict(first)
    assert first.dumps(dumper=None) == {"title": "a", "list": [1]}

    class Dumper:
        def dump(self, record: Record, data: dict) -> dict:
            data.update({"id": str(record.id), **record})
            return data

        def load(self, data: dict, record_class: type) -> Record:
            return record_class({k: v for k, v in data.items() if k != "id"})

    dumped = first.dumps(dumper=Dumper())
    assert dumped["id"] == str(wanted)
    loaded = Record.loads(dumped, loader=Dumper())
    assert isinstance(loaded, Record) and dict(loaded) == dict(first)
    plain = Record.loads({"title": "x"})
    assert isinstance(plain, Record) and plain.id is None and plain == {"title": "x"}


def test_a_pid_field_must_hold_a_string_or_an_integer(repo: Repository, gr, tmp_path) -> None:
    """A PID field holding 7.0, a list or an object was stored as no PID at all: nothing found
    the record by it, and two records could hold the same one. Every write path refuses it."""
    from gitrecords.errors import BatchValidationError, BulkEditError

    for bad, shown in [(7.0, "7.0"), (["10.1/x"], "an array"), ({"v": 1}, "an object"), ("", None)]:
        with pytest.raises(InvalidRecordError, match="/control_number: the recid PID must") as raised:
            Record.create({"title": "x", "control_number": bad}, repo=repo)
        if shown is not None:
            assert str(raised.value).endswith(f"must be a string or an integer, not {shown}")
    with pytest.raises(BatchValidationError):
        repo.import_records([{"title": "y", "control_number": 7.0}])
    record = Record.create({"title": "z"}, repo=repo)
    with pytest.raises(BulkEditError) as edited:
        repo.update_records([record.id], [{"op": "add", "path": "/control_number", "value": [1]}])
    assert edited.value.report.problems[0][1:] == (
        "/control_number",
        "the recid PID must be a string or an integer, not an array",
    )
    assert Record.create({"title": "ok", "control_number": 12345}, repo=repo)["control_number"] == 12345
    result = gr(repo, "create", input='{"title": "cli", "control_number": 1.5}')
    assert result.exit_code == 1 and "the recid PID must be a string or an integer, not 1.5" in result.stderr
    # committed with git, such a value is a validation problem
    raw = tmp_path / "bad.json"
    raw.write_text(json.dumps({"control_number": [7], "title": "by hand"}, indent=2, sort_keys=True) + "\n")
    blob = git(repo, "hash-object", "-w", str(raw)).strip()
    commit_file_by_plumbing(repo, repo.ref, repo.path_for(uuid.uuid4()), blob, "by hand")
    checked = gr(repo, "validate")
    assert checked.exit_code == 1
    assert (
        "[pid] /control_number: the recid PID must be a string or an integer, not an array" in checked.stdout
    )
