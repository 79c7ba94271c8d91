"""Before a migration: validate --schema NEW (edit.validate_schema) and schema diff OLD NEW."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import SAMPLE_REPO, git

from gitrecords import Repository
from gitrecords.edit import SetFields, validate_schema
from gitrecords.errors import QueryError, SchemaError
from gitrecords.schema_diff import diff

TITLE_SCHEMA = {
    "type": "object",
    "required": ["title"],
    "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
}
TITLE_V2 = {
    "$id": "https://example.org/title-v2.json",
    "type": "object",
    "required": ["title", "language"],
    "properties": {"title": {"type": "string"}, "language": {"type": "string"}, "year": {"type": "integer"}},
}


@pytest.fixture
def titled(tmp_path: Path) -> Repository:
    """20 records {title, year}, year 2000..2004, under a default schema, and a v2 schema that
    requires ``language``."""
    repo = Repository.init(tmp_path / "titled.git", config={"default_schema": "title.json"})
    repo.put_schema("title.json", TITLE_SCHEMA)
    repo.put_schema("title-v2.json", TITLE_V2)
    repo.import_records({"title": f"Record {i}", "year": 2000 + i % 5} for i in range(20))
    return repo


def sample_with_v2(tmp_path: Path) -> Repository:
    """The DataCite sample with a v2 schema that renames ``language`` and requires ``rightsList``."""
    repo = Repository.init(tmp_path / "sample.git", from_dir=SAMPLE_REPO)
    v1 = json.loads((SAMPLE_REPO / "schemas/datacite/datacite-v4.5-subset.json").read_text())
    v2 = json.loads(json.dumps(v1))
    v2["$id"] = "https://schemas.gitrecords.org/datacite/datacite-v2.json"
    v2["properties"]["languageCode"] = v2["properties"].pop("language")
    v2["required"] = [*v1["required"], "rightsList"]
    repo.put_schema("datacite/datacite-v2.json", v2)
    return repo


# -- validate --schema ---------------------------------------------------------------------


def test_validate_schema_reports_every_record_that_would_fail(titled: Repository) -> None:
    tip = titled.tip()
    report = validate_schema(titled, "title-v2.json")
    assert (report.ok, report.checked, report.invalid_records, report.total_problems) == (False, 20, 20, 20)
    assert report.schema == "https://example.org/title-v2.json"
    first = report.problems[0]
    assert (first.check, first.pointer, first.message) == ("schema", "/", "'language' is a required property")
    assert first.path == titled.path_for(first.record_id) and first.line == 1
    assert report.summary() == "20 problems in 20 of 20 records"
    assert titled.tip() == tip  # nothing written
    # the same answer as the migration's own check
    assert titled.update_records("", None, schema="title-v2.json", dry_run=True).invalid == 20


def test_validate_schema_of_a_query_or_ids(titled: Repository) -> None:
    titled.update_records("year:2001", SetFields(set=[("/language", "en")]))
    report = validate_schema(titled, "title-v2.json", "year:2001")
    assert (report.ok, report.checked, report.full) == (True, 4, False)
    assert report.summary() == "4 records valid"
    report = validate_schema(titled, "https://example.org/title-v2.json", "year:<2002")
    assert (report.checked, report.invalid_records) == (8, 4)
    ids = titled.search("year:2002").ids[:2]
    report = validate_schema(titled, "title-v2.json", [*ids, "00000000-0000-4000-8000-000000000000"])
    assert (report.checked, report.total_problems) == (2, 3)
    assert [p.check for p in report.problems].count("record") == 1
    with pytest.raises(SchemaError, match="not in the schema store"):
        validate_schema(titled, "nope.json")
    with pytest.raises(QueryError):
        validate_schema(titled, "title-v2.json", "year:(")


def test_validate_schema_names_the_line_and_skips_deleted_records(titled: Repository) -> None:
    from gitrecords import Record

    record_id = titled.search("year:2003").ids[0]
    record = Record.get_record(record_id, repo=titled)
    record["year"] = "soon"
    record["language"] = "en"
    titled.put_schema("loose.json", {"type": "object"})
    record["$schema"] = "loose.json"
    record.commit()
    deleted = titled.search("year:2004").ids[0]
    Record.get_record(deleted, repo=titled).delete()
    report = validate_schema(titled, "title-v2.json", "")
    assert report.checked == 19
    # named by its id, a deleted record is a problem (as edit -i says), not a silent skip
    named = validate_schema(titled, "title-v2.json", [deleted])
    assert [(p.record_id, p.message) for p in named.problems] == [(str(deleted), "the record is deleted")]
    mine = [p for p in report.problems if p.record_id == str(record_id)]
    assert [(p.pointer, p.message) for p in mine] == [("/year", "'soon' is not of type 'integer'")]
    text = git(titled, "show", f"main:{titled.path_for(record_id)}")
    assert text.splitlines()[mine[0].line - 1].strip() == '"year": "soon"'


def test_cli_validate_schema_text_and_json(tmp_path: Path, gr) -> None:
    repo = sample_with_v2(tmp_path)
    tip = repo.tip()
    result = gr(repo, "validate", "--schema", "datacite/datacite-v2.json")
    assert result.exit_code == 1
    assert result.stderr == "Error: under datacite/datacite-v2.json: 41 problems in 41 of 60 records\n"
    lines = result.stdout.splitlines()
    assert len(lines) == 41
    unexpected = "Additional properties are not allowed ('language' was unexpected)"
    assert lines[0].endswith(f":1: [schema] /: {unexpected}")
    result = gr(repo, "validate", "--schema", "datacite/datacite-v2.json", "title:corpus", "--json")
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert (found["valid"], found["checked"], found["invalid"]) == (False, 3, 3)
    assert found["schema"] == "https://schemas.gitrecords.org/datacite/datacite-v2.json"
    assert {p["check"] for p in found["problems"]} == {"schema"}
    assert {p["id"] for p in found["problems"]} == set(map(str, repo.search("title:corpus").ids))
    result = gr(repo, "validate", "--schema", "datacite/datacite-v4.5-subset.json")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == "under datacite/datacite-v4.5-subset.json: 60 records valid\n"
    record_id = str(repo.search("title:corpus").ids[0])
    result = gr(repo, "validate", "--schema", "datacite/datacite-v2.json", record_id, "--format", "github")
    assert result.exit_code == 1 and result.stdout.startswith("::error file=records/")
    assert repo.tip() == tip


def test_cli_schema_diff_of_a_schema_not_in_the_store_exits_2(titled: Repository, gr) -> None:
    result = gr(titled, "schema", "diff", "nosuch.json", "title-v2.json")
    assert result.exit_code == 2 and "'nosuch.json' is not in the schema store" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--schema", "nope.json"), "Error: --schema nope.json: schema 'nope.json' is not in the"),
        (("--schema", "title-v2.json", "year:("), "Error: "),
        (("--schema", "title-v2.json", "--since", "HEAD~1"), "Error: --schema checks the records of the"),
    ],
)
def test_cli_validate_schema_usage_errors(
    titled: Repository, gr, args: tuple[str, ...], message: str
) -> None:
    result = gr(titled, "validate", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1


# -- schema diff ---------------------------------------------------------------------------


def kinds(changes) -> list[tuple[str, str]]:
    return [(c.pointer, c.kind) for c in changes]


def test_diff_of_small_schemas_lists_each_kind_of_change() -> None:
    old = {
        "type": "object",
        "required": ["title", "year"],
        "properties": {
            "title": {"type": "string", "minLength": 1},
            "year": {"type": "integer", "minimum": 1900},
            "status": {"enum": ["draft", "published"]},
            "note": {"type": "string"},
            "size": {"type": "number"},
            "creators": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "orcid": {"type": "string", "pattern": "^0"}},
                },
            },
        },
    }
    new = json.loads(json.dumps(old))
    props = new["properties"]
    props["title"]["maxLength"] = 200
    props["year"] = {"type": ["integer", "string"], "minimum": 1800}
    props["status"]["enum"] = ["draft", "published", "retracted"]
    props["remark"] = props.pop("note")
    del props["size"]
    props["id"] = {"type": "string", "format": "uri"}
    props["creators"]["items"]["properties"]["orcid"]["pattern"] = "^[0-9]"
    props["creators"]["items"]["required"] = ["name"]
    props["creators"]["items"]["additionalProperties"] = False
    new["required"] = ["title"]
    changes = diff(old, new)
    assert [str(c) for c in changes] == [
        "/creators/*: additionalProperties (none) -> false",
        "/creators/*/name: now required",
        '/creators/*/orcid: pattern "^0" -> "^[0-9]"',
        "/id: added (string)",
        "/remark: renamed from /note (string)",
        "/size: removed (number)",
        '/status: enum values added: "retracted"',
        "/title: maxLength (none) -> 200",
        "/year: type integer -> integer|string",
        "/year: minimum 1900 -> 1800",
        "/year: no longer required",
    ]
    assert diff(old, json.loads(json.dumps(old))) == []
    renamed = next(c for c in changes if c.kind == "renamed")
    assert renamed.as_dict() == {
        "pointer": "/remark",
        "kind": "renamed",
        "old": "/note",
        "new": ["string"],
        "schema_pointer": "/properties/remark",
    }


def test_diff_renames_only_when_unambiguous_and_reports_enum_removals() -> None:
    old = {"properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"enum": [1, 2, 3]}}}
    new = {"properties": {"x": {"type": "string"}, "y": {"type": "string"}, "c": {"enum": [1, 3]}}}
    assert kinds(diff(old, new)) == [
        ("/a", "removed"),
        ("/b", "removed"),
        ("/c", "enum-removed"),
        ("/x", "added"),
        ("/y", "added"),
    ]
    # the same subschema pairs them even among several of one type
    new = {"properties": {"x": {"type": "string"}, "y": {"type": "string", "minLength": 1}}}
    old = {"properties": {"a": {"type": "string"}, "b": {"type": "string", "minLength": 1}}}
    assert [str(c) for c in diff(old, new)] == [
        "/x: renamed from /a (string)",
        "/y: renamed from /b (string)",
    ]


def test_diff_follows_refs_in_the_store_only_and_stops_on_recursion(repo: Repository) -> None:
    from gitrecords.schema_diff import diff_schemas

    repo.put_schema(
        "defs.json", {"$id": "https://example.org/defs.json", "$defs": {"year": {"type": "integer"}}}
    )
    repo.put_schema(
        "defs2.json", {"$id": "https://example.org/defs2.json", "$defs": {"year": {"type": "string"}}}
    )
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
        "type": "object",
        "properties": {
            "year": {"$ref": "https://example.org/defs.json#/$defs/year"},
            "remote": {"$ref": "https://elsewhere.example.org/schema.json"},
            "root": {"$ref": "#/$defs/node"},
        },
    }
    repo.put_schema("v1.json", tree)
    v2 = json.loads(json.dumps(tree))
    v2["properties"]["year"]["$ref"] = "https://example.org/defs2.json#/$defs/year"
    v2["properties"]["remote"]["$ref"] = "https://elsewhere.example.org/other.json"
    v2["$defs"]["node"]["properties"]["label"] = {"type": "string"}
    repo.put_schema("v2.json", v2)
    found = diff_schemas(repo.schema_store(), "v1.json", "schemas/v2.json")
    assert [str(c) for c in found.changes] == [
        '/remote: ref "https://elsewhere.example.org/schema.json" -> "https://elsewhere.example.org/other.json"',
        "/root/children/*/label: added (string)",
        "/root/label: added (string)",
        "/year: type integer -> string",
    ]
    assert found.summary() == "v1.json -> schemas/v2.json: 4 changes"
    with pytest.raises(SchemaError, match="not in the schema store"):
        diff_schemas(repo.schema_store(), "v1.json", "nope.json")


def test_cli_schema_diff_of_the_sample_datacite_schema_and_a_v2(tmp_path: Path, gr) -> None:
    repo = sample_with_v2(tmp_path)
    v1 = json.loads((SAMPLE_REPO / "schemas/datacite/datacite-v4.5-subset.json").read_text())
    v3 = json.loads(json.dumps(v1))
    v3["$id"] = "https://schemas.gitrecords.org/datacite/datacite-v3.json"
    creator = v3["$defs"]["creator"]["properties"]
    creator["nameType"]["enum"] = ["Personal", "Organizational", "Unknown"]
    creator["name"]["minLength"] = 2
    del v3["properties"]["language"]
    repo.put_schema("datacite/datacite-v3.json", v3)
    tip = repo.tip()
    result = gr(repo, "schema", "diff", "datacite/datacite-v4.5-subset.json", "datacite/datacite-v2.json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "/languageCode: renamed from /language (string)\n/rightsList: now required\n"
    assert result.stderr == "datacite/datacite-v4.5-subset.json -> datacite/datacite-v2.json: 2 changes\n"
    result = gr(
        repo,
        "schema",
        "diff",
        "https://schemas.gitrecords.org/datacite/datacite-v4.5-subset.json",
        "datacite/datacite-v3.json",
        "--json",
    )
    found = json.loads(result.stdout)
    assert [(c["pointer"], c["kind"], c["old"], c["new"]) for c in found["changes"]] == [
        ("/creators/*/name", "minLength", 1, 2),
        ("/creators/*/nameType", "enum-added", None, ["Unknown"]),
        ("/language", "removed", ["string"], None),
    ]
    result = gr(repo, "schema", "diff", "datacite/datacite-v2.json", "datacite/datacite-v2.json")
    assert result.stdout == "" and result.stderr.endswith(": no changes\n")
    result = gr(repo, "schema", "diff", "datacite/datacite-v2.json", "nope.json")
    assert result.exit_code == 2 and "not in the schema store" in result.stderr
    assert repo.tip() == tip


def test_diff_of_what_validates_differently_is_never_no_changes(repo: Repository) -> None:
    """Four ways the diff said something false: keywords beside a $ref replaced the target's
    instead of adding to them (a rename that never happened), an allOf member from another file
    had its $refs looked up in the wrong document ("no changes"), additionalProperties as a
    schema was skipped, and changes under anyOf, dependentRequired and the like were not seen."""
    from gitrecords.schema_diff import diff_schemas

    base = {"properties": {"title": {"type": "string"}}, "required": ["title"]}
    with_ref = {"$defs": {"base": base}, "$ref": "#/$defs/base"}
    extra = {**with_ref, "properties": {"extra": {"type": "string"}}}
    assert [str(c) for c in diff(with_ref, extra)] == ["/extra: added (string)"]
    required = {**with_ref, "required": ["extra"]}
    assert [str(c) for c in diff(with_ref, required)] == ["/extra: now required"]

    for n, pattern in ((1, "^10\\\\."), (2, "^10\\\\.[0-9]+/")):
        parts = {
            "$defs": {"doi": {"type": "string", "pattern": pattern}},
            "properties": {"doi": {"$ref": "#/$defs/doi"}},
        }
        repo.put_schema(f"parts-{n}.json", parts)
        repo.put_schema(f"rec-{n}.json", {"allOf": [{"$ref": f"parts-{n}.json"}]})
    store = repo.schema_store()
    assert [c.kind for c in diff_schemas(store, "rec-1.json", "rec-2.json").changes] == ["pattern"]

    meta = lambda extra: {"properties": {"meta": {"type": "object", "additionalProperties": extra}}}  # noqa: E731
    assert [str(c) for c in diff(meta({"type": "string"}), meta({"type": "integer"}))] == [
        "/meta/(other properties): type string -> integer"
    ]
    assert [c.kind for c in diff(meta(False), meta({"type": "string"}))] == ["additionalProperties"]

    either = lambda p: {"properties": {"id": {"anyOf": [{"pattern": p}, {"type": "integer"}]}}}  # noqa: E731
    assert [str(c) for c in diff(either("^a"), either("^b"))] == [
        "/id: anyOf changed (compared as written, not field by field)"
    ]
    assert [
        c.kind for c in diff({"dependentRequired": {"a": ["b"]}}, {"dependentRequired": {"a": ["b", "c"]}})
    ] == ["dependentRequired"]
    assert diff(either("^a"), either("^a")) == []
