"""Repository.import_records: many new records as one commit through git fast-import."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from helpers import SAMPLE_REPO, fsck, git

from gitrecords import Record, Repository, hookimpl, plugins
from gitrecords.bulk import PARALLEL_THRESHOLD
from gitrecords.errors import BatchValidationError

TITLE_SCHEMA = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}


def refs(repo: Repository) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


@pytest.fixture
def titled(tmp_path) -> Repository:
    repo = Repository.init(tmp_path / "titled.git", config={"default_schema": "title.json"})
    repo.put_schema("title.json", TITLE_SCHEMA)
    return repo


def test_import_is_one_commit_with_indexed_revisions_and_pids(titled: Repository) -> None:
    count = PARALLEL_THRESHOLD + 300  # large enough for the worker processes
    items = [{"title": f"Record {i}", "control_number": str(i + 1)} for i in range(count)]
    before = int(git(titled, "rev-list", "--count", "main"))
    result = titled.import_records(items, source="test.jsonl")
    assert len(result.ids) == count
    assert int(git(titled, "rev-list", "--count", "main")) == before + 1
    assert git(titled, "log", "-1", "--format=%s").strip() == f"import {count} records from test.jsonl"
    assert f"Gitrecords-Records: {count}" in git(titled, "log", "-1", "--format=%b")
    fsck(titled)
    sample = result.ids[1234]
    shown = git(titled, "show", f"main:{titled.path_for(sample)}")
    assert shown == '{\n  "control_number": "1235",\n  "title": "Record 1234"\n}\n'
    record = Record.get_record(sample, repo=titled)
    assert record.revision_id == 0 and len(record.revisions) == 1
    assert titled.lookup_pid("recid", "1235") == sample
    assert titled.next_integer_pid("recid") == count + 1
    assert "refs/gitrecords/" not in refs(titled)
    # the index written by the import equals one rebuilt from git
    rows = titled.index.revisions(sample)
    titled.reindex()
    assert titled.index.revisions(sample) == rows


def test_import_accepts_json_text_and_given_ids(titled: Repository) -> None:
    given = uuid.UUID("deadbeef-9fe4-43d3-a08f-38c2b309afba")
    result = titled.import_records(['{"title": "from text"}', (str(given).upper(), {"title": "given id"})])
    assert result.ids[1] == given
    assert Record.get_record(result.ids[0], repo=titled)["title"] == "from text"


@pytest.mark.parametrize("workers", [1, 2])
def test_every_problem_is_reported_and_nothing_is_written(titled: Repository, workers: int) -> None:
    existing = Record.create({"title": "exists", "control_number": "7"}, repo=titled)
    filler = [{"title": f"ok {i}"} for i in range(PARALLEL_THRESHOLD if workers > 1 else 3)]
    dup = str(uuid.uuid4())
    items = [
        *filler,
        {"title": 5},  # schema violation
        "{not json",  # invalid JSON text
        [1, 2],  # not an object
        (dup, {"title": "twice"}),
        (dup, {"title": "again"}),  # id repeated in the input
        (str(existing.id), {"title": "exists already"}),
        {"title": "pid taken", "control_number": "7"},
        ("../etc/passwd", {"title": "bad id"}),
        {"title": "NaN", "value": float("nan")},
    ]
    before = refs(titled)
    with pytest.raises(BatchValidationError) as info:
        titled.import_records(items, workers=workers)
    problems = info.value.problems
    n = len(filler)
    by_index = {p[0]: p for p in problems}
    assert sorted(by_index) == [n, n + 1, n + 2, n + 4, n + 5, n + 6, n + 7, n + 8]
    assert by_index[n][2:] == ("/title", "5 is not of type 'string'")
    assert "not valid JSON" in by_index[n + 1][3]
    assert "must be a JSON object" in by_index[n + 2][3]
    assert "appears twice" in by_index[n + 4][3]
    assert by_index[n + 5][3] == f"record {existing.id} already exists"
    assert "PID recid:7 is already used" in by_index[n + 6][3]
    assert by_index[n + 7][2] == "/id"
    assert "is not valid JSON" in by_index[n + 8][3] or "nan" in by_index[n + 8][3].lower()
    assert str(info.value).startswith("8 problems in 8 of")
    assert refs(titled) == before
    fsck(titled)


def test_before_insert_hook_changes_are_stored(titled: Repository) -> None:
    class Stamp:
        @hookimpl
        def before_record_insert(self, record):
            record["source"] = "bulk"

    stamp = Stamp()
    plugins.register(stamp)
    try:
        result = titled.import_records([{"title": "a"}, '{"title": "b"}'])
    finally:
        plugins.unregister(stamp)
    assert [Record.get_record(i, repo=titled)["source"] for i in result.ids] == ["bulk", "bulk"]


def test_import_into_a_working_clone_updates_files_and_index(tmp_path) -> None:
    repo = Repository.init(tmp_path / "clone", bare=False)
    result = repo.import_records([{"title": "on disk"}])
    path = tmp_path / "clone" / repo.path_for(result.ids[0])
    assert json.loads(path.read_text()) == {"title": "on disk"}
    assert (
        git(tmp_path / "clone" / ".git", "--work-tree", str(tmp_path / "clone"), "status", "--porcelain")
        == ""
    )


def test_sample_records_round_trip_through_import(sample_repo: Repository, tmp_path) -> None:
    target = Repository.init(tmp_path / "copy.git")
    for schema in (SAMPLE_REPO / "schemas").rglob("*.json"):
        target.put_schema(str(schema.relative_to(SAMPLE_REPO / "schemas")), json.loads(schema.read_text()))
    ids = list(sample_repo.ids())
    target.import_records([(i, dict(Record.get_record(i, repo=sample_repo))) for i in ids])
    for record_id in ids[:10]:
        path = sample_repo.path_for(record_id)
        assert git(target, "show", f"main:{path}") == git(sample_repo, "show", f"main:{path}")


def test_an_aborted_staging_leaves_no_temporary_pack(tmp_path: Path) -> None:
    """A bulk edit that stops (invalid records, Ctrl-C) kills its git fast-import: the pack it
    had begun stayed behind as objects/pack/tmp_pack_* until a later import found it old
    enough (other temporary packs may be a fetch's). The one it had open goes with it."""
    import time

    from gitrecords.bulk import StagedTrees

    repo = Repository.init(tmp_path / "r.git")
    repo.import_records([{"title": "one"}])
    pack_dir = repo.git_dir / "objects" / "pack"
    with StagedTrees(repo, repo.tip()) as staged:
        staged.open_tree()
        staged.file("records/aa/bb/x.json", b'{"title": "staged"}\n' * 1000)
        deadline = time.monotonic() + 10
        while not list(pack_dir.glob("tmp_*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(pack_dir.glob("tmp_*"))  # fast-import has begun its pack
        staged.abort()
    assert not list(pack_dir.glob("tmp_*"))
