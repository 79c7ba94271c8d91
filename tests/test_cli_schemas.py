"""gitrecords schema add/list/show and gitrecords path (issue 18, 13 and 14)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import git

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
