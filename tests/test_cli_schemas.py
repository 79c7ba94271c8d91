"""gitrecords schema add/list/show and gitrecords path (issue 18, 13 and 14)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import commit_file_by_plumbing, git

from gitrecords import Record, Repository, layout

RECORD = "6796d85a-8a58-419c-a937-84aef33e9d18"


def test_schema_add_list_show(gr, repo: Repository, tmp_path: Path) -> None:
    schema = {"$id": "https://example.org/record.json", "type": "object", "required": ["title"]}
    (tmp_path / "record.json").write_text(json.dumps(schema))
    added = gr(repo, "schema", "add", str(tmp_path / "record.json"), "--path", "records/v1.json", "-m", "v1")
    assert (added.exit_code, added.stdout) == (0, "schemas/records/v1.json\n")
    assert git(repo, "log", "-1", "--format=%s").strip() == "v1"
    listed = json.loads(gr(repo, "schema", "list", "--json").stdout)
    assert listed == [{"path": "schemas/records/v1.json", "id": "https://example.org/record.json"}]
    for ref in ("records/v1.json", "https://example.org/record.json", "schemas/records/v1.json"):
        shown = gr(repo, "schema", "show", ref)
        assert json.loads(shown.stdout) == schema, ref
    Record.create({"$schema": "records/v1.json", "title": "valid"}, repo=repo)
    boolean = gr(repo, "schema", "add", "-", "--path", "anything.json", input="true")
    assert boolean.exit_code == 0 and gr(repo, "schema", "show", "anything.json").stdout == "true\n"


def test_schema_errors_are_one_line(gr, repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"type": 5}')
    bad = gr(repo, "schema", "add", str(tmp_path / "bad.json"))
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: schema bad.json: not a valid schema")
    missing = gr(repo, "schema", "show", "nope.json")
    assert missing.exit_code == 1
    assert "add it with 'gitrecords schema add FILE'" in missing.stderr
    nameless = gr(repo, "schema", "add", "-", input="{}")
    assert (nameless.exit_code, nameless.stderr) == (
        2,
        "Error: reading stdin: name the schema with --path P\n",
    )


def test_path_prints_the_file_of_a_record(gr, repo: Repository) -> None:
    result = gr(repo, "path", RECORD, RECORD.upper())
    assert result.stdout.splitlines() == [layout.path_for(RECORD)] * 2


def test_a_schema_path_that_is_a_file_or_a_folder_of_another_is_refused(gr, repo: Repository) -> None:
    """git keeps a name as a file or a folder: adding one over the other deleted the other."""
    assert gr(repo, "schema", "add", "-", "--path", "a.json", input="{}").exit_code == 0
    assert gr(repo, "schema", "add", "-", "--path", "x.json/y.json", input="{}").exit_code == 0
    for path in ("a.json/b.json", "x.json", "./c.json", "d//e.json", ".git/f.json"):
        refused = gr(repo, "schema", "add", "-", "--path", path, input="{}")
        assert refused.exit_code == 1, path
        assert refused.stderr.startswith("Error: schema path") and refused.stderr.count("\n") == 1, path
    listed = [s["path"] for s in json.loads(gr(repo, "schema", "list", "--json").stdout)]
    assert listed == ["schemas/a.json", "schemas/x.json/y.json"]


def test_two_schemas_by_one_id_are_refused_and_reported(gr, repo: Repository, tmp_path: Path) -> None:
    """A copy of v1 as v2 that kept v1's $id took over v1's records (the last one read won)."""
    v1 = {"$id": "https://example.org/rec.json", "type": "object", "required": ["title"]}
    v2 = {**v1, "required": ["title", "year"]}
    assert gr(repo, "schema", "add", "-", "--path", "rec/v1.json", input=json.dumps(v1)).exit_code == 0
    Record.create({"$schema": "https://example.org/rec.json", "title": "valid under v1"}, repo=repo)
    refused = gr(repo, "schema", "add", "-", "--path", "rec/v2.json", input=json.dumps(v2))
    assert refused.exit_code == 1
    assert "its $id 'https://example.org/rec.json' already names schemas/rec/v1.json" in refused.stderr
    # a schema whose $id is another schema's path would take that schema's records
    shadow = gr(repo, "schema", "add", "-", "--path", "other.json", input=json.dumps({"$id": "rec/v1.json"}))
    assert shadow.exit_code == 1 and "already names schemas/rec/v1.json" in shadow.stderr
    # written with git, the same collision is a validation problem
    (tmp_path / "v2.json").write_text(json.dumps(v2))
    blob = git(repo, "hash-object", "-w", str(tmp_path / "v2.json")).strip()
    listing = git(repo, "ls-tree", "-r", repo.ref)
    commit_file_by_plumbing(repo, repo.ref, "schemas/rec/v2.json", blob, "v2")
    assert "schemas/rec/v1.json" in listing
    checked = gr(repo, "validate")
    assert checked.exit_code == 1
    assert (
        "schemas/rec/v2.json: [schema-store] its $id 'https://example.org/rec.json' already names"
        in checked.stdout + checked.stderr
    )
    # and the record is still checked by v1 (first by path), not by the copy
    assert Record.get_record(repo.ids().__iter__().__next__(), repo=repo).validate() is None


def test_a_schema_naming_an_unknown_draft_is_refused_and_reported(
    gr, repo: Repository, tmp_path: Path
) -> None:
    """``$schema`` with a typo (draft-7, an https draft-07) was read as 2020-12 without a word:
    a schema written for draft-07 then validated records by other rules."""
    typo = {"$schema": "http://json-schema.org/draft-7/schema#", "type": "object"}
    refused = gr(repo, "schema", "add", "-", "--path", "typo.json", input=json.dumps(typo))
    assert refused.exit_code == 1
    assert "$schema 'http://json-schema.org/draft-7/schema#' is not a JSON Schema draft's meta-schema" in (
        refused.stderr
    )
    assert len(refused.stderr.strip().splitlines()) == 1
    for known in ("http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft/2020-12/schema"):
        added = gr(repo, "schema", "add", "-", "--path", "ok.json", input=json.dumps({"$schema": known}))
        assert added.exit_code == 0, added.stderr
    # written with git, the same schema is a validation problem
    (tmp_path / "typo.json").write_text(json.dumps(typo))
    blob = git(repo, "hash-object", "-w", str(tmp_path / "typo.json")).strip()
    commit_file_by_plumbing(repo, repo.ref, "schemas/typo.json", blob, "typo")
    checked = gr(repo, "validate")
    assert checked.exit_code == 1
    assert (
        "schemas/typo.json:1: [schema-store] /$schema: $schema 'http://json-schema.org/draft-7"
        in checked.stdout
    )
