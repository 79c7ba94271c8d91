"""Bulk edits (repo.update_records, gitrecords edit) and undo (repo.undo, gitrecords undo)."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from helpers import SAMPLE_REPO, fsck, git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gitrecords.bulk
import gitrecords.edit
from gitrecords import Record, Repository, hookimpl, plugins
from gitrecords.edit import SetFields, _Patch
from gitrecords.errors import (
    BulkEditError,
    GitRecordsError,
    InvalidRecordError,
    NoResultFound,
    SchemaError,
    UndoConflictError,
)

TITLE_SCHEMA = {
    "type": "object",
    "required": ["title"],
    "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
}


@pytest.fixture
def titled(tmp_path: Path) -> Repository:
    """20 records {title, year}, year 2000..2004, under a default schema."""
    repo = Repository.init(
        tmp_path / "titled.git", config={"default_schema": "title.json", "pids": {"recid": "control_number"}}
    )
    repo.put_schema("title.json", TITLE_SCHEMA)
    repo.import_records(
        {"title": f"Record {i}", "year": 2000 + i % 5, "control_number": str(i + 1)} for i in range(20)
    )
    return repo


def tree(repo: Repository) -> str:
    return git(repo, "rev-parse", "main^{tree}").strip()


def commits(repo: Repository) -> int:
    return int(git(repo, "rev-list", "--count", "main"))


def data_by_number(repo: Repository) -> dict[str, dict]:
    return {r["control_number"]: dict(r) for r in (Record.get_record(i, repo=repo) for i in repo.ids())}


# -- update_records ---------------------------------------------------------------------------


def test_patch_by_query_is_one_commit_with_trailers(titled: Repository) -> None:
    before = commits(titled)
    patch = [{"op": "add", "path": "/publisher", "value": "ACME"}]
    report = titled.update_records("year:2001", patch, message="Add the publisher")
    assert (report.matched, report.changed, report.unchanged, report.invalid) == (4, 4, 0, 0)
    assert report.problems == [] and len(report.commits) == 1 and report.commit == report.commits[0]
    assert commits(titled) == before + 1
    assert git(titled, "rev-parse", "main").strip() == report.commit
    body = git(titled, "log", "-1", "--format=%B")
    assert body.startswith("Add the publisher\n\n")
    trailers = git(titled, "log", "-1", "--format=%(trailers:only,unfold)").splitlines()
    assert trailers[:3] == [
        "Gitrecords-Operation: update",
        "Gitrecords-Query: year:2001",
        'Gitrecords-Change: patch [{"op":"add","path":"/publisher","value":"ACME"}]',
    ]
    assert sum(1 for t in trailers if t.startswith("Gitrecords-Record: ")) == 4
    fsck(titled)
    assert "refs/gitrecords/" not in git(titled, "for-each-ref")
    changed = {n: d for n, d in data_by_number(titled).items() if d.get("publisher") == "ACME"}
    assert sorted(changed, key=int) == ["2", "7", "12", "17"]
    record = Record.get_record(titled.lookup_pid("recid", "2"), repo=titled)
    assert record.revision_id == 1
    assert titled.search("publisher:acme").total == 4
    assert report.diffs[0][1] == [{"op": "add", "path": "/publisher", "value": "ACME"}]


def test_default_message_names_the_query_and_the_change(titled: Repository) -> None:
    titled.update_records("year:2003", [{"op": "replace", "path": "/year", "value": 2013}])
    subject = git(titled, "log", "-1", "--format=%s").strip()
    assert (
        subject == 'edit 4 records matching year:2003: patch [{"op":"replace","path":"/year","value":2013}]'
    )


def test_a_function_changes_records_and_none_means_unchanged(titled: Repository) -> None:
    def shout(data: dict) -> dict | None:
        if data["year"] != 2000:
            return None
        data["title"] = data["title"].upper()
        return data

    report = titled.update_records("", shout)
    assert (report.matched, report.changed, report.unchanged) == (20, 4, 16)
    assert data_by_number(titled)["6"]["title"] == "RECORD 5"
    trailers = git(titled, "log", "-1", "--format=%(trailers:only,unfold)")
    assert "Gitrecords-Selection: every live record" in trailers
    assert "Gitrecords-Change: python test_edit:test_a_function_changes_records" in trailers


def test_ids_select_records_and_missing_or_deleted_ones_are_problems(titled: Repository) -> None:
    ids = list(titled.ids())
    Record.get_record(ids[1], repo=titled).delete()
    missing = uuid.UUID("00000000-0000-4000-8000-000000000000")
    tip = titled.tip()
    with pytest.raises(BulkEditError) as caught:
        titled.update_records([ids[0], ids[1], missing], SetFields(set=[("/flag", True)]))
    assert titled.tip() == tip
    assert str(caught.value) == "2 problems in 2 of 3 records; nothing was written"
    assert sorted(caught.value.report.problems) == sorted(
        [(str(ids[1]), "/", "the record is deleted"), (str(missing), "/", "the record does not exist")]
    )
    report = titled.update_records([str(ids[0]), ids[0]], SetFields(set=[("/flag", True)]))
    assert (report.matched, report.changed) == (1, 1)
    assert "Gitrecords-Selection: 1 record id" in git(titled, "log", "-1", "--format=%B")


def test_dry_run_writes_nothing_and_reports_would_be_problems(titled: Repository) -> None:
    tip, objects = titled.tip(), git(titled, "count-objects", "-v")
    report = titled.update_records("", [{"op": "replace", "path": "/year", "value": "2000"}], dry_run=True)
    assert report.dry_run and report.commits == [] and report.commit is None
    assert (report.matched, report.changed, report.invalid) == (20, 0, 20)
    assert report.problems[0][1:] == ("/year", "'2000' is not of type 'integer'")
    report = titled.update_records("year:2002", SetFields(set=[("/note", "x")]), dry_run=True, diffs=None)
    assert (report.changed, len(report.diffs)) == (4, 4)
    assert titled.tip() == tip
    assert git(titled, "count-objects", "-v") == objects  # not even a blob


def test_invalid_records_stop_the_whole_edit_and_every_problem_is_listed(titled: Repository) -> None:
    tip = titled.tip()

    def break_some(data: dict) -> dict:
        if data["year"] == 2004:
            del data["title"]
        if data["year"] == 2003:
            raise ValueError("no 2003 please")
        data["year"] = str(data["year"]) if data["year"] == 2002 else data["year"] + 1
        return data

    with pytest.raises(BulkEditError) as caught:
        titled.update_records("", break_some)
    report = caught.value.report
    assert (report.matched, report.invalid, report.commits) == (20, 12, [])
    messages = {(p[1], p[2]) for p in report.problems}
    assert messages == {
        ("/", "'title' is a required property"),
        (
            "/",
            "test_edit:test_invalid_records_stop_the_whole_edit_and_every_problem_is_listed.<locals>."
            "break_some raised ValueError: no 2003 please",
        ),
        ("/year", "'2002' is not of type 'integer'"),
    }
    assert titled.tip() == tip
    assert "dangling" not in git(titled, "fsck", "--no-progress")  # nothing was staged on disk
    assert not list((titled.git_dir / "objects" / "pack").glob("tmp_*"))


def test_a_patch_that_does_not_apply_names_the_record_and_the_operation(titled: Repository) -> None:
    one = titled.lookup_pid("recid", "3")
    Record.get_record(one, repo=titled).patch([{"op": "add", "path": "/extra", "value": 1}]).commit()
    patch = [{"op": "add", "path": "/n", "value": 1}, {"op": "remove", "path": "/extra"}]
    with pytest.raises(BulkEditError) as caught:
        titled.update_records("", patch)
    problems = caught.value.report.problems
    assert len(problems) == 19 and str(one) not in {p[0] for p in problems}
    assert problems[0][1:] == (
        "/extra",
        "JSON Patch operation 1 (remove /extra): can't remove a non-existent object 'extra'",
    )
    with pytest.raises(GitRecordsError, match="JSON Patch operation 0 needs 'op' and 'path'"):
        titled.update_records("", [{"path": "/x"}])


def test_set_and_unset_are_idempotent(titled: Repository) -> None:
    with pytest.raises(BulkEditError) as caught:
        titled.update_records("", SetFields(set=[("/title/first", "x")]))
    assert caught.value.report.problems[0][1:] == (
        "/",
        "/title/first: the parent is a string, not an object or array",
    )
    change = SetFields(set=[("/publisher/name", "ACME"), ("/tags", ["a"])], unset=["/year", "/nothing"])
    first = titled.update_records("", change)
    assert first.changed == 20
    data = data_by_number(titled)["1"]
    assert data == {"control_number": "1", "publisher": {"name": "ACME"}, "tags": ["a"], "title": "Record 0"}
    again = titled.update_records("", change)
    assert (again.changed, again.unchanged, again.commits) == (0, 20, [])
    assert 'Gitrecords-Change: set /publisher/name="ACME"; set /tags=["a"]; unset /year; unset /nothing' in (
        git(titled, "log", "-1", "--format=%B")
    )
    # at a list's "-" the value is added once: a second run (a resumed chunked one) adds nothing
    tag = SetFields(set=[("/tags/-", "reviewed")])
    assert titled.update_records("", tag).changed == 20
    assert data_by_number(titled)["1"]["tags"] == ["a", "reviewed"]
    again = titled.update_records("", tag)
    assert (again.changed, again.unchanged) == (0, 20)
    assert SetFields(set=[("/tags/2", "c")])({"tags": ["a", "b"]}) == {"tags": ["a", "b", "c"]}


def test_set_at_a_dash_makes_a_missing_array(titled: Repository) -> None:
    """``-`` is past the end of an array (RFC 6901): ``/tags/-`` on a record without tags makes
    ``tags`` a one-element array, not an object with the member ``-``; a second run adds nothing."""
    add = SetFields(set=[("/tags/-", "x"), ("/a/b/-", {"k": 1})])
    assert add({"title": "t"}) == {"title": "t", "tags": ["x"], "a": {"b": [{"k": 1}]}}
    assert add({"tags": ["x"], "a": {"b": [{"k": 1}]}}) == {"tags": ["x"], "a": {"b": [{"k": 1}]}}
    assert SetFields(set=[("/m/-", 1)])({"m": {}}) == {"m": {"-": 1}}  # in an object, "-" is a name
    assert SetFields(set=[("/m/0", 1)])({}) == {"m": {"0": 1}}  # a number may be a member's name
    report = titled.update_records("year:2001", SetFields(set=[("/tags/-", "x")]))
    assert report.changed == 4
    assert {tuple(d.get("tags", ())) for d in data_by_number(titled).values()} == {("x",), ()}


def test_chunks_land_one_after_another_and_a_rerun_continues(titled: Repository) -> None:
    before = commits(titled)
    change = SetFields(set=[("/checked", True)])
    report = titled.update_records("", change, chunk=6)
    assert report.changed == 20 and len(report.commits) == 4
    assert commits(titled) == before + 4
    log = git(titled, "log", "-4", "--reverse", "--format=%s|%(trailers:key=Gitrecords-Chunk,valueonly)")
    assert [line.split("|")[1] for line in log.split("\n\n") if line.strip()] == [
        "1 of 4",
        "2 of 4",
        "3 of 4",
        "4 of 4",
    ]
    assert git(titled, "log", "-1", "--format=%s").startswith("edit 2 records: set /checked=true (4 of 4)")
    fsck(titled)
    # a run interrupted after two chunks, run again: the records already changed are unchanged
    git(titled, "update-ref", "refs/heads/main", report.commits[1])
    titled.index.catch_up(titled.tip())
    again = titled.update_records("", change, chunk=6)
    assert (again.changed, again.unchanged, len(again.commits)) == (8, 12, 2)
    assert all(d.get("checked") for d in data_by_number(titled).values())


def test_schema_moves_records_and_validates_against_the_new_schema(titled: Repository) -> None:
    v2 = {
        "$id": "https://example.org/title-v2.json",
        "type": "object",
        "required": ["title", "language"],
        "properties": {"title": {"type": "string"}, "language": {"type": "string"}},
    }
    titled.put_schema("title-v2.json", v2)
    with pytest.raises(BulkEditError) as caught:
        titled.update_records("", None, schema="title-v2.json")
    assert caught.value.report.problems[0][1:] == ("/", "'language' is a required property")
    report = titled.update_records("", SetFields(set=[("/language", "en")]), schema="title-v2.json")
    assert report.changed == 20
    assert {d["$schema"] for d in data_by_number(titled).values()} == {"https://example.org/title-v2.json"}
    assert "Gitrecords-Change: schema https://example.org/title-v2.json" in git(
        titled, "log", "-1", "--format=%B"
    )
    with pytest.raises(SchemaError, match="not in the schema store"):
        titled.update_records("", None, schema="nope.json")
    with pytest.raises(GitRecordsError, match="nothing to change"):
        titled.update_records("", None)


def test_signals_fire_for_each_record_unless_turned_off(titled: Repository) -> None:
    seen: list[tuple[str, str]] = []

    class Stamp:
        @hookimpl
        def before_record_update(self, repo, record):
            seen.append(("before", record["title"]))
            record["stamped"] = True

        @hookimpl
        def after_record_update(self, repo, record):
            seen.append(("after", str(record.revision_id)))

    stamp = Stamp()
    plugins.register(stamp)
    try:
        titled.update_records("year:2001", SetFields(set=[("/x", 1)]))
        assert sorted(seen) == sorted(
            [("before", f"Record {i}") for i in (1, 6, 11, 16)] + [("after", "1")] * 4
        )
        assert all(d.get("stamped") for d in data_by_number(titled).values() if d["year"] == 2001)
        seen.clear()
        titled.update_records("year:2001", SetFields(set=[("/x", 2)]), signals=False)
        assert seen == []
    finally:
        plugins.unregister(stamp)


# -- undo ---------------------------------------------------------------------------------


def test_undo_restores_the_tree_as_one_commit(titled: Repository) -> None:
    before = tree(titled)
    report = titled.update_records("", SetFields(set=[("/x", 1)], unset=["/year"]))
    undone = titled.undo(report.commit)
    assert len(undone.restored) == 20 and undone.conflicts == []
    assert tree(titled) == before
    assert git(titled, "rev-parse", "main").strip() == undone.commit
    body = git(titled, "log", "-1", "--format=%B")
    assert body.startswith(f"undo {report.commit[:12]}: edit 20 records: set /x=1; unset /year\n")
    assert f"Gitrecords-Undo: {report.commit}" in body and "Gitrecords-Operation: undo" in body
    fsck(titled)
    record = Record.get_record(titled.lookup_pid("recid", "1"), repo=titled)
    assert record.revision_id == 2 and "x" not in record
    # undone twice: nothing left to do
    again = titled.undo(report.commit)
    assert again.commit is None and again.already == 20


def test_undo_conflicts_write_nothing_unless_skipped(titled: Repository) -> None:
    report = titled.update_records("year:2001", SetFields(set=[("/x", 1)]))
    ids = sorted(titled.search("year:2001").ids)
    Record.get_record(ids[0], repo=titled).patch([{"op": "replace", "path": "/x", "value": 2}]).commit()
    Record.get_record(ids[1], repo=titled).delete()
    tip = titled.tip()
    with pytest.raises(UndoConflictError) as caught:
        titled.undo(report.commit[:10])
    assert sorted(caught.value.report.conflicts) == sorted(
        [(str(ids[0]), "changed since"), (str(ids[1]), "deleted since")]
    )
    assert titled.tip() == tip
    assert caught.value.report.restored == []  # nothing was written, nothing restored
    undone = titled.undo(report.commit, skip_conflicts=True)
    assert sorted(undone.restored) == [str(i) for i in ids[2:]]
    assert Record.get_record(ids[0], repo=titled)["x"] == 2
    assert "x" not in Record.get_record(ids[2], repo=titled)


def test_undo_of_a_commit_a_hard_delete_rewrote_away(tmp_path: Path) -> None:
    """The handle that ran the hard delete still knows the old commit's id (libgit2's cache):
    undo refuses it with gitrecords' error, not a GitError; another handle finds no commit."""
    repo = Repository.init(tmp_path / "data.git")
    keep = Record.create({"title": "keep"}, repo=repo)
    secret = Record.create({"title": "secret"}, repo=repo)
    report = repo.update_records([keep.id], SetFields(set=[("/x", 1)]))
    repo.hard_delete([secret.id])
    with pytest.raises(GitRecordsError, match="is not on branch main"):
        repo.undo(report.commit)
    with pytest.raises(NoResultFound):
        Repository(repo.path).undo(report.commit)


def test_undo_of_a_plain_git_removal_brings_the_file_back(titled: Repository, tmp_path: Path) -> None:
    """A record file removed with plain ``git rm`` (gitrecords itself leaves a tombstone): undo
    of that commit restores the file as it was."""
    record_id = titled.search("year:2003").ids[0]
    path = titled.path_for(record_id)
    old_blob = git(titled, "rev-parse", f"main:{path}").strip()
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(titled.path), str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "rm", "-q", path], check=True)
    who = ["-c", "user.name=Ed Itor", "-c", "user.email=ed@example.org"]
    subprocess.run(["git", "-C", str(work), *who, "commit", "-qm", "removed by mistake"], check=True)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "main"], check=True)
    removed = git(titled, "rev-parse", "main").strip()
    report = titled.undo(removed)
    assert report.restored == [str(record_id)]
    assert git(titled, "rev-parse", f"main:{path}").strip() == old_blob
    assert Record.get_record(record_id, repo=titled)["year"] == 2003
    fsck(titled)


def test_undo_of_a_create_soft_deletes_the_record(titled: Repository, curator_identity: None) -> None:
    record = Record.create({"title": "new"}, repo=titled)
    created = titled.tip()
    undone = titled.undo(str(created))
    assert undone.restored == [str(record.id)]
    again = Record.get_record(record.id, repo=titled, with_deleted=True)
    assert again.is_deleted and again.revision_id == 1
    with pytest.raises(GitRecordsError, match="is not on branch main"):
        titled.undo(git(titled, "commit-tree", "-m", "x", "main^{tree}").strip())
    with pytest.raises(GitRecordsError, match="no commit nope"):
        titled.undo("nope")


def test_sample_migration_to_a_v2_schema(tmp_path: Path) -> None:
    """The DataCite sample: v2 renames ``language`` to ``languageCode`` and requires ``rightsList``."""
    repo = Repository.init(tmp_path / "sample.git", from_dir=SAMPLE_REPO)
    before = tree(repo)
    v1 = json.loads((SAMPLE_REPO / "schemas/datacite/datacite-v4.5-subset.json").read_text())
    v2 = json.loads(json.dumps(v1))
    v2["$id"] = "https://schemas.gitrecords.org/datacite/datacite-v2.json"
    v2["properties"]["languageCode"] = v2["properties"].pop("language")
    v2["required"] = sorted({*v2.get("required", []), "rightsList"})
    repo.put_schema("datacite/datacite-v2.json", v2)

    def migrate(data: dict) -> dict:
        if "language" in data:
            data["languageCode"] = data.pop("language")
        data.setdefault("rightsList", [{"rights": "Unknown"}])
        return data

    preview = repo.update_records("", migrate, schema="datacite/datacite-v2.json", dry_run=True)
    assert preview.matched == 60 and preview.invalid == 0 and preview.changed == 60
    report = repo.update_records("", migrate, schema="datacite/datacite-v2.json", signals=False)
    assert report.changed == 60 and len(report.commits) == 1
    records = [Record.get_record(i, repo=repo) for i in repo.ids()]
    assert all("language" not in r and r["$schema"].endswith("datacite-v2.json") for r in records)
    for r in records:
        r.validate()
    undone = repo.undo(report.commit)
    assert len(undone.restored) == 60
    assert git(repo, "diff", "--stat", before, "main^{tree}", "--", "records").strip() == ""
    fsck(repo)


# -- the CLI ------------------------------------------------------------------------------


def test_cli_edit_preview_then_write_then_undo(titled: Repository, gr) -> None:
    tip = titled.tip()
    result = gr(titled, "edit", "year:2001", "--set", '/publisher="ACME"', "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Matched: 4\nWould change: 4\nUnchanged: 0\nWould be invalid: 0\n")
    assert '  add /publisher "ACME"' in result.stdout
    assert titled.tip() == tip
    result = gr(titled, "edit", "year:2001", "--set", '/publisher="ACME"', "--dry-run", "--json")
    report = json.loads(result.stdout)
    assert (report["matched"], report["changed"], report["dry_run"], len(report["diffs"])) == (4, 4, True, 4)
    result = gr(titled, "edit", "year:2001", "--set", '/publisher="ACME"', "-m", "Publisher")
    assert result.exit_code == 0 and result.stdout == ""
    commit = git(titled, "rev-parse", "main").strip()
    assert result.stderr == f"Changed 4 records (commit {commit[:7]})\n"
    assert "Gitrecords-Query: year:2001" in git(titled, "log", "-1", "--format=%B")
    result = gr(titled, "edit", "year:2001", "--set", '/publisher="ACME"')
    assert result.stderr == "No changes: the 4 records already had that data\n"
    result = gr(titled, "undo", commit[:8], "--json")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["restored"]) == 4
    assert titled.search("publisher:acme").total == 0
    fsck(titled)


def test_cli_edit_problems_exit_1_and_write_nothing(titled: Repository, gr) -> None:
    tip = titled.tip()
    result = gr(titled, "edit", "year:2001", "--set", '/year="x"')
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 5 and lines[-1] == "Error: 4 problems in 4 of 4 records; nothing was written"
    assert lines[0].endswith(": /year: 'x' is not of type 'integer'")
    assert titled.tip() == tip
    patch = json.dumps([{"op": "remove", "path": "/nope"}])
    result = gr(titled, "edit", "--patch", "-", "--json", input=patch)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["invalid"] == 20
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Error: nothing to change: give --patch, --set/--unset, --python, --python-file or --schema"),
        (("--set", "/a=1", "--python", "m:f"), "Error: --set/--unset and --python cannot be combined"),
        (("--set", "/title=New"), "Error: --set /title=New: 'New' is not JSON; for a string, quote it:"),
        (("--set", "title=1"), "Error: --set title=1: give POINTER=JSON"),
        (("--python", "no_such_module_here:f"), "Error: --python no_such_module_here:f: No module named"),
        (
            ("--schema", "nope.json"),
            "Error: --schema nope.json: schema 'nope.json' is not in the schema store",
        ),
        (("title:(", "--set", "/a=1"), "Error: "),
    ],
)
def test_cli_edit_usage_errors_exit_2(titled: Repository, gr, args: tuple[str, ...], message: str) -> None:
    result = gr(titled, "edit", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1


def test_cli_edit_python_file_and_module(titled: Repository, gr, tmp_path: Path, monkeypatch) -> None:
    script = tmp_path / "bump.py"
    script.write_text("def change(record):\n    record['year'] += 10\n    return record\n")
    result = gr(titled, "edit", "year:2004", "--python-file", str(script), "--chunk", "3")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("Changed 4 records in 2 commits (last ")
    assert "Gitrecords-Change: python-file bump.py:change" in git(titled, "log", "-1", "--format=%B")
    assert titled.search("year:2014").total == 4
    (tmp_path / "mymigrations.py").write_text("def keep(record):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    result = gr(titled, "edit", "--python", "mymigrations:keep")
    assert result.exit_code == 0 and result.stderr == "No changes: the 20 records already had that data\n"


def test_cli_undo_conflicts(titled: Repository, gr) -> None:
    report = titled.update_records("year:2001", SetFields(set=[("/x", 1)]))
    changed = sorted(titled.search("year:2001").ids)[0]
    Record.get_record(changed, repo=titled).patch([{"op": "add", "path": "/x", "value": 2}]).commit()
    result = gr(titled, "undo", report.commit)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"record {changed}: changed since",
        f"Error: 1 record changed since commit {report.commit[:12]}: nothing was written "
        "(use skip_conflicts=True, --skip-conflicts in the CLI, to undo the others)",
    ]
    result = gr(titled, "undo", report.commit, "--skip-conflicts")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0] == f"Skipped record {changed}: changed since"
    assert result.stderr.splitlines()[1].startswith(f"Undid {report.commit[:7]}: restored 3 records (commit ")


def test_cli_undo_says_why_nothing_was_undone(titled: Repository, gr) -> None:
    """When undo writes nothing it says why, truly: every record skipped as changed since, the
    records already back as they were, or a commit that changed no records (it said 'the
    records are as they were before it' for all three)."""
    report = titled.update_records("year:2001", SetFields(set=[("/x", 1)]))
    for record_id in titled.search("year:2001").ids:
        Record.get_record(record_id, repo=titled).patch([{"op": "add", "path": "/x", "value": 2}]).commit()
    result = gr(titled, "undo", report.commit, "--skip-conflicts")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-1] == (
        f"Nothing undone: the 4 records {report.commit[:7]} changed that are not as it left them were skipped"
    )
    again = titled.update_records("year:2002", SetFields(set=[("/y", 1)]))
    titled.undo(again.commit)
    result = gr(titled, "undo", again.commit)
    assert result.exit_code == 0
    assert (
        result.stderr
        == f"Nothing to undo: the records {again.commit[:7]} changed are as they were before it\n"
    )
    titled.put_schema("other.json", {"type": "object"})
    schema_commit = str(titled.tip())
    result = gr(titled, "undo", schema_commit)
    assert result.exit_code == 0
    assert result.stderr == f"Nothing to undo: {schema_commit[:7]} changed no records\n"


def test_a_ctrl_c_after_commits_landed_says_which(titled: Repository, gr, monkeypatch) -> None:
    """A Ctrl-C once some of an edit's commits are on the branch (here while the second chunk's
    indexes catch up, after its branch moved) said only 'Aborted!', exit 1: it now names the
    commits that landed and what to do. Before any landed, it is an interruption as before."""
    from gitrecords.errors import EditInterruptedError
    from gitrecords.writer import WritePath

    real = WritePath.write
    calls: list[int] = []

    def write(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        commit = real(self, *args, **kwargs)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return commit

    monkeypatch.setattr(WritePath, "write", write)
    with pytest.raises(EditInterruptedError) as raised:
        titled.update_records("year:2001", SetFields(set=[("/x", 1)]), chunk=2)
    assert len(raised.value.commits) == 2 and raised.value.parts == 2
    assert raised.value.commits[-1] == str(titled.tip())
    assert "run the same command again to finish it" in str(raised.value)
    calls.clear()
    result = gr(titled, "edit", "year:2002", "--set", "/y=1", "--chunk", "2")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: interrupted, but all 2 of the edit's commits landed (")
    calls[:] = [1]  # the first write is interrupted: nothing landed
    monkeypatch.setattr(WritePath, "write", lambda self, *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    before = titled.tip()
    with pytest.raises(KeyboardInterrupt):
        titled.update_records("year:2003", SetFields(set=[("/z", 1)]))
    assert titled.tip() == before


def test_a_ctrl_c_while_fast_import_finishes_leaves_nothing(titled: Repository, monkeypatch) -> None:
    """The first commit's changes are made while git fast-import writes the pack: a Ctrl-C then
    waits for fast-import before it stops, so fast-import does not write its temporary ref
    after the edit removed it. Nothing lands, no ref is left, and the next edit works."""
    real = gitrecords.edit._Changes.changes
    interrupted: list[int] = []

    def changes(self, start, stop):  # type: ignore[no-untyped-def]
        if not interrupted:
            interrupted.append(1)
            raise KeyboardInterrupt
        return real(self, start, stop)

    monkeypatch.setattr(gitrecords.edit._Changes, "changes", changes)
    before = titled.tip()
    with pytest.raises(KeyboardInterrupt):
        titled.update_records("year:2001", SetFields(set=[("/x", 1)]))
    assert interrupted and titled.tip() == before
    assert git(titled, "for-each-ref", "refs/gitrecords/") == ""
    assert titled.update_records("year:2001", SetFields(set=[("/x", 1)])).changed == 4
    fsck(titled)


# -- the worker processes ------------------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Worker processes from the first record on, in chunks of 3 (2,000 and 256 otherwise); the
    list counts the pools started."""
    monkeypatch.setattr(gitrecords.bulk, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(gitrecords.bulk, "CHUNK", 3)
    monkeypatch.setattr(gitrecords.edit, "CHUNK", 3)
    pools = []
    ordered_map = gitrecords.bulk.ordered_map

    def counted(*args, **kwargs):
        pools.append(1)
        return ordered_map(*args, **kwargs)

    monkeypatch.setattr(gitrecords.bulk, "ordered_map", counted)
    return pools


def twin_repositories(folder: Path, count: int = 40) -> tuple[Repository, Repository, list[uuid.UUID]]:
    """Two repositories with the same records (ids included), schemas and deleted records."""
    twins = []
    ids: list[uuid.UUID] = []
    for name in ("one", "workers"):
        repo = Repository.init(
            folder / f"{name}.git",
            config={"default_schema": "title.json", "pids": {"recid": "control_number"}},
        )
        repo.put_schema("title.json", TITLE_SCHEMA)
        repo.put_schema("title-v2.json", {**TITLE_SCHEMA, "required": ["title", "year"]})
        items = [{"title": f"Record {i}", "control_number": str(i + 1)} for i in range(count)]
        for i, item in enumerate(items):
            if i % 3:
                item["year"] = 2000 + i % 5
        ids = repo.import_records(list(zip(ids, items, strict=True)) if ids else items).ids
        # the tombstones say when: the same second in both (a loaded machine crossed one)
        with mock.patch("gitrecords.record.datetime", wraps=datetime) as clock:
            clock.now.return_value = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
            for record_id in ids[5:8]:
                Record.get_record(record_id, repo=repo).delete()
        twins.append(repo)
    assert tree(twins[0]) == tree(twins[1])
    return twins[0], twins[1], ids


def same_outcome(pools: list[int], one: Repository, workers: Repository, *args, **kwargs) -> dict:
    """update_records in this process and in two worker processes (``pools`` counts them): the
    same report (the commit ids aside) and the same trees, or the same BulkEditError."""
    outcomes = []
    started = len(pools)
    for repo, count in ((one, 1), (workers, 2)):
        try:
            report = repo.update_records(*args, workers=count, **kwargs)
        except BulkEditError as err:
            outcomes.append(("error", str(err), {**err.report.as_dict(), "commits": None}, tree(repo)))
        else:
            outcomes.append(("ok", len(report.commits), {**report.as_dict(), "commits": None}, tree(repo)))
    assert outcomes[0] == outcomes[1]
    assert len(pools) == started + (1 if outcomes[0][2]["matched"] else 0)  # for workers=2
    return outcomes[0][2]


def test_worker_processes_write_the_same_trees_and_reports(tmp_path: Path, small_chunks: list[int]) -> None:
    one, workers, ids = twin_repositories(tmp_path)
    found = same_outcome(
        small_chunks, one, workers, "", SetFields(set=[("/checked", True)], unset=["/year"]), diffs=None
    )
    assert (found["matched"], found["changed"], len(found["diffs"])) == (37, 37, 37)
    found = same_outcome(
        small_chunks, one, workers, "year:2001", [{"op": "add", "path": "/publisher", "value": "ACME"}]
    )
    assert found["matched"] == 0  # /year was unset: the search index followed
    found = same_outcome(small_chunks, one, workers, "", SetFields(set=[("/year", 1999)]), chunk=10)
    assert found["changed"] == 37 and len(found["diffs"]) == 10
    # some records have no /title: every problem, in the same order, and nothing written
    found = same_outcome(small_chunks, one, workers, "", [{"op": "remove", "path": "/title"}])
    assert found["invalid"] == 37 and found["changed"] == 0
    found = same_outcome(
        small_chunks, one, workers, "", [{"op": "replace", "path": "/nothere", "value": 1}], dry_run=True
    )
    assert found["invalid"] == 37
    # ids: missing and deleted ones are problems, in path order with the others
    chosen = [*ids[:10], uuid.UUID(int=7), uuid.UUID(int=8)]
    found = same_outcome(small_chunks, one, workers, chosen, SetFields(set=[("/title", 5)]), dry_run=True)
    assert found["invalid"] == 12 and found["matched"] == 12
    found = same_outcome(small_chunks, one, workers, "", None, schema="title-v2.json", chunk=7)
    assert found["changed"] == 37 and found["invalid"] == 0
    found = same_outcome(small_chunks, one, workers, "", None, schema="title-v2.json")
    assert found["unchanged"] == 37
    fsck(one)
    fsck(workers)


def test_signals_with_worker_processes(titled: Repository, small_chunks: list[int]) -> None:
    """before_record_update receivers run in this process (the edit then has no workers, and
    what they do stays here); after_record_update alone leaves the workers on, and is sent for
    each changed record, in this process. signals=False: workers, no signal."""
    seen: list[tuple[str, str]] = []

    class After:
        @hookimpl
        def after_record_update(self, repo, record):
            seen.append(("after", record["title"]))

    class Before:
        @hookimpl
        def before_record_update(self, repo, record):
            seen.append(("before", record["title"]))
            record["stamped"] = True

    after, before = After(), Before()
    registered = [after]
    plugins.register(after)
    try:
        titled.update_records("", SetFields(set=[("/x", 1)]), workers=2)
        assert len(small_chunks) == 1
        assert sorted(seen) == sorted(("after", f"Record {i}") for i in range(20))
        seen.clear()
        registered.append(before)
        plugins.register(before)
        titled.update_records("", SetFields(set=[("/x", 2)]), workers=2)
        assert len(small_chunks) == 1  # no workers
        assert sorted(seen) == sorted((w, f"Record {i}") for i in range(20) for w in ("before", "after"))
        assert all(d.get("stamped") for d in data_by_number(titled).values())
        seen.clear()
        titled.update_records("", SetFields(set=[("/x", 3)]), workers=2, signals=False)
        assert seen == [] and len(small_chunks) == 2
    finally:
        for plugin in registered:
            plugins.unregister(plugin)


def test_the_write_path_s_hints_are_the_facts_of_each_change() -> None:
    """WritePath.write tells the indexes (record id, blob) -> (state, PIDs) of every file it wrote
    through the paths it changed (writer._Hints), not a second dict of every change: the same
    mapping as that dict."""
    from gitrecords import _git, layout
    from gitrecords.index import LIVE, TOMBSTONE
    from gitrecords.writer import Change, _Hints

    changes = []
    for number in range(30):
        record_id = uuid.UUID(int=number + 1)
        folder = "records" if number % 4 else "other"
        blob = None if number % 7 == 3 else _git.oid_from_hex(f"{number + 1:040x}")
        facts = [(LIVE, {}), (LIVE, {"doi": f"10.1/{number}"}), (TOMBSTONE, {})][number % 3]
        changes.append(Change(record_id, layout.path_for(record_id, folder), blob, "update", facts=facts))
    effective = {c.path: c.blob for c in changes}
    expected = {(str(c.record_id), str(c.blob)): c.facts for c in changes if c.blob is not None}
    hints = _Hints(changes, effective)
    assert dict(hints) == expected and len(hints) == len(expected) and bool(hints)
    assert hints.get((str(uuid.UUID(int=1)), "0" * 40)) is None  # another blob of a changed record
    assert hints.get((str(uuid.UUID(int=99)), f"{99:040x}")) is None
    assert hints.get(("not an id", "0" * 40)) is None
    assert not _Hints([], {})


# -- properties (hypothesis) --------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("xy", max_size=2),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(KEYS, inner, max_size=2),
    max_leaves=4,
)
RECORDS = st.dictionaries(KEYS, VALUES, max_size=3)
PATHS = st.sampled_from(["/a", "/b", "/c", "/a/a", "/a/0", "/b/-"])
OPERATIONS = st.one_of(
    st.builds(lambda p, v: {"op": "add", "path": p, "value": v}, PATHS, VALUES),
    st.builds(lambda p, v: {"op": "replace", "path": p, "value": v}, PATHS, VALUES),
    st.builds(lambda p: {"op": "remove", "path": p}, PATHS),
    st.builds(lambda p, f: {"op": "copy", "path": p, "from": f}, PATHS, PATHS),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(RECORDS, min_size=1, max_size=4),
    st.lists(OPERATIONS, min_size=1, max_size=3),
    st.sampled_from([1, 2]),
)
def test_update_records_equals_patching_record_by_record(
    tmp_path_factory, small_chunks, records, patch, workers
) -> None:
    """update_records gives the tree Record.patch(...).commit() gives record by record (or, when the
    patch does not apply to some records, writes nothing and names exactly those), in this process
    or in worker processes, and undo gives back the tree it started from."""
    folder = tmp_path_factory.mktemp("prop")
    bulk = Repository.init(folder / "bulk.git")
    ids = bulk.import_records(records).ids
    one = Repository.init(folder / "one.git")
    one.import_records(list(zip(ids, records, strict=True)))
    start = tree(bulk)
    assert tree(one) == start
    failing = set()
    for record_id in ids:
        record = Record.get_record(record_id, repo=one)
        try:
            record.patch(patch).commit()
        except Exception:
            failing.add(str(record_id))
    try:
        report = bulk.update_records("", patch, workers=workers)
    except BulkEditError as err:
        assert {p[0] for p in err.report.problems} == failing
        assert tree(bulk) == start
        return
    assert not failing
    assert tree(bulk) == tree(one)
    if report.commit is not None:
        bulk.undo(report.commit)
    assert tree(bulk) == start


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: "key"}, {"nested": [float("-inf")]}])
def test_values_json_cannot_hold_are_refused_before_any_record_is_read(value) -> None:
    """--set/SetFields and patch values are checked once, up front (records changed by them are
    then serialised without walking every value again)."""
    with pytest.raises(InvalidRecordError):
        SetFields(set=[("/x", value)])
    with pytest.raises(InvalidRecordError):
        _Patch([{"op": "add", "path": "/x", "value": value}])


def _nested(depth: int) -> dict:
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value  # type: ignore[return-value]


def test_values_nested_too_deep_where_set_are_refused(titled: Repository, gr, tmp_path: Path) -> None:
    """A value that is shallow enough on its own but lands deeper than MAX_DEPTH in the record
    is refused (the record would be unreadable), naming the record and where; nothing is written."""
    tip = titled.tip()
    deep = _nested(96)  # 97 levels on its own, 103 at /a/b/c/d/e/f
    SetFields(set=[("/a", deep)])  # fits at /a
    with pytest.raises(InvalidRecordError, match=r"^/a/b/c/d/e/f: record is nested deeper than 100 levels"):
        SetFields(set=[("/a/b/c/d/e/f", deep)])
    patch = [
        {"op": "add", "path": "/b", "value": {"c": {"d": {"e": {"f": {}}}}}},
        {"op": "add", "path": "/b/c/d/e/f/g", "value": deep},
    ]
    one = titled.lookup_pid("recid", "1")
    with pytest.raises(BulkEditError) as caught:
        titled.update_records([one], patch)
    ((record_id, _pointer, text),) = caught.value.report.problems
    assert record_id == str(one)
    assert text.startswith("record is nested deeper than 100 levels at /b/c/d/e/f/g/x/x/")
    assert titled.tip() == tip
    # in the CLI: a usage error for --set, a problem naming the record for --patch (exit 1)
    result = gr(titled, "edit", "--set", f"/a/b/c/d/e/f={json.dumps(deep)}")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: /a/b/c/d/e/f: record is nested deeper than 100 levels at /a/b/")
    assert len(result.stderr.splitlines()) == 1 and len(result.stderr) < 500
    result = gr(titled, "edit", "--set", f"/a={json.dumps(_nested(101))}")  # not "is not JSON"
    assert result.exit_code == 2
    assert result.stderr == "Error: the value of --set /a is nested deeper than 100 levels\n"
    (tmp_path / "p.json").write_text(json.dumps(patch))
    result = gr(titled, "edit", "-i", str(one), "--patch", str(tmp_path / "p.json"))
    assert result.exit_code == 1
    assert f"record {one}: record is nested deeper than 100 levels at /b/c/d/e/f/g/x/" in result.stderr
    assert titled.tip() == tip


def test_pids_are_checked_across_chunks_before_the_first_is_written(titled: Repository, gr) -> None:
    """A PID two changed records take, or one a record the edit leaves holds, is a problem of
    the whole edit, found before any chunk is written (and by the dry run), naming the field."""
    tip = titled.tip()

    def fold(data: dict) -> dict:  # 20 records onto 10 numbers: the clashes come chunk after chunk
        data["control_number"] = str(int(data["control_number"]) % 10 + 100)
        return data

    preview = titled.update_records("", fold, chunk=2, dry_run=True)
    assert (preview.changed, preview.invalid) == (10, 10)
    assert {p[1] for p in preview.problems} == {"/control_number"}
    assert all(re.fullmatch(r"PID recid:1\d\d is already used by record \S+", p[2]) for p in preview.problems)
    with pytest.raises(BulkEditError) as caught:
        titled.update_records("", fold, chunk=2)
    assert caught.value.report.problems == preview.problems and not caught.value.report.commits
    assert titled.tip() == tip
    # against a record the edit does not select: named as its owner
    first = titled.lookup_pid("recid", "1")
    with pytest.raises(BulkEditError) as caught:
        titled.update_records("year:2001", SetFields(set=[("/control_number", "1")]), chunk=1)
    problems = caught.value.report.problems
    assert len(problems) == 4 and problems[0][1:] == (
        "/control_number",
        f"PID recid:1 is already used by record {first}",
    )
    assert titled.tip() == tip
    # the CLI: exit 1, one line a problem, nothing written
    result = gr(titled, "edit", "year:2001", "--set", '/control_number="1"', "--chunk", "1", "--dry-run")
    assert result.exit_code == 1 and "Would be invalid: 4" in result.stdout
    result = gr(titled, "edit", "year:2001", "--set", '/control_number="1"', "--chunk", "1")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert f": /control_number: PID recid:1 is already used by record {first}\n" in result.stderr
    assert result.stderr.endswith("Error: 4 problems in 4 of 4 records; nothing was written\n")
    assert titled.tip() == tip


def test_pids_that_move_between_records_of_one_edit(titled: Repository) -> None:
    """Records that swap PIDs in one commit may; across chunks the first would take a PID the
    other still holds, which is a problem before anything is written."""
    one, two = titled.lookup_pid("recid", "1"), titled.lookup_pid("recid", "2")
    swap = {"1": "2", "2": "1"}

    def swapped(data: dict) -> dict:
        data["control_number"] = swap[data["control_number"]]
        return data

    tip = titled.tip()
    with pytest.raises(BulkEditError) as caught:
        titled.update_records([one, two], swapped, chunk=1)
    ((_record, pointer, text),) = caught.value.report.problems
    assert pointer == "/control_number" and "until a later chunk is written" in text
    assert titled.tip() == tip
    report = titled.update_records([one, two], swapped)
    assert report.changed == 2 and len(report.commits) == 1
    assert (titled.lookup_pid("recid", "1"), titled.lookup_pid("recid", "2")) == (two, one)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def change(r) return r\n", "SyntaxError: "),
        ("undefined_name\n", "NameError: name 'undefined_name' is not defined"),
        ("raise RuntimeError('no config')\n", "RuntimeError: no config"),
    ],
)
def test_cli_edit_python_module_that_fails_to_import_is_a_usage_error(
    titled: Repository, gr, tmp_path: Path, monkeypatch, source: str, message: str
) -> None:
    """As --python-file says for the same file: exit 2, one line naming --python."""
    name = f"broken_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    tip = titled.tip()
    result = gr(titled, "edit", "--python", f"{name}:change")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: --python {name}:change: {message}")
    assert len(result.stderr.splitlines()) == 1
    assert titled.tip() == tip


@pytest.mark.parametrize(
    ("op", "pointer", "text"),
    [
        ({"op": "add", "path": "/year/x", "value": 1}, "/year/x", "/year is a number"),
        ({"op": "remove", "path": "/title/0"}, "/title/0", "/title is a string"),
        ({"op": "replace", "path": "/o/k/deeper", "value": 1}, "/o/k/deeper", "/o/k is null"),
        ({"op": "add", "path": "/l/0/z", "value": 1}, "/l/0/z", "/l/0 is a boolean"),
        ({"op": "move", "from": "/year/x", "path": "/y"}, "/y", "/year is a number"),
    ],
)
def test_a_patch_through_a_value_that_is_no_container_says_which(
    titled: Repository, op: dict, pointer: str, text: str
) -> None:
    """As --set says it ("the parent is a number, not an object or array"), not jsonpointer's
    "Document '<class 'int'>' does not support indexing"."""
    one = titled.lookup_pid("recid", "1")
    setup = SetFields(set=[("/o", {"k": None}), ("/l", [True])])
    titled.update_records([one], setup)
    with pytest.raises(BulkEditError) as caught:
        titled.update_records([one], [op])
    ((record_id, where, message),) = caught.value.report.problems
    described = f"{op['op']} {op['path']}" + (f" from {op['from']}" if "from" in op else "")
    assert (record_id, where) == (str(one), pointer)
    assert message == f"JSON Patch operation 0 ({described}): {text}, not an object or array"
    with pytest.raises(Exception, match=f"^record {one}: JSON Patch operation 0 .*: {text}, not an object"):
        Record.get_record(one, repo=titled).patch([op])
