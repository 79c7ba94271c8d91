"""Validation: inline schemas, the schema store, $ref resolution that never leaves the store."""

from __future__ import annotations

import copy
import json
import socket
import urllib.request
from pathlib import Path

import jsonschema
import pytest
from helpers import fsck, git
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.validators import extend

from gitrecords import Record, Repository, ValidationError, layout
from gitrecords.errors import GitRecordsError, RefResolutionError, SchemaError


def _no_required(validator, required, instance, schema):
    return iter(())


#: invenio-records' partial validator: draft 4 without "required"
PartialDraft4Validator = extend(Draft4Validator, {"required": _no_required})

DRAFT4_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {
        "title": {"type": "string", "format": "uppercaseFirstLetter"},
        "year": {"type": "integer"},
    },
    "required": ["title"],
}

COMMON = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.org/schemas/common.json",
    "$defs": {
        "title": {"type": "string", "minLength": 1},
        "year": {"type": "string", "pattern": "^[0-9]{4}$"},
    },
}

RECORD = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.org/schemas/record.json",
    "type": "object",
    "properties": {
        "title": {"$ref": "common.json#/$defs/title"},
        "year": {"$ref": "https://example.org/schemas/common.json#/$defs/year"},
    },
    "required": ["title"],
}


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", "main").strip()


@pytest.fixture
def checker() -> FormatChecker:
    """The format checker of the invenio-records walkthrough."""
    checker = FormatChecker()
    checker.checks("uppercaseFirstLetter")(lambda value: value[:1].isupper())
    return checker


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail the test on any attempt to open a connection or a URL."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args))
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return attempts


@pytest.fixture
def store_repo(repo: Repository) -> Repository:
    repo.put_schema("example/common.json", COMMON)
    repo.put_schema("example/record.json", RECORD)
    return repo


# -- inline $schema (the seed walkthrough) ---------------------------------------


def test_inline_draft4_schema_with_format_checker(repo: Repository, checker: FormatChecker) -> None:
    """OBS 74-81."""
    before = tip(repo)
    with pytest.raises(ValidationError) as info:
        Record.create(
            {"$schema": DRAFT4_SCHEMA, "title": "title of this record"}, repo=repo, format_checker=checker
        )
    assert info.value.message == "'title of this record' is not a 'uppercaseFirstLetter'"
    assert isinstance(info.value, jsonschema.ValidationError)

    with pytest.raises(ValidationError) as info:
        Record.create({"$schema": DRAFT4_SCHEMA}, repo=repo, format_checker=checker)
    assert info.value.message == "'title' is a required property"
    assert tip(repo) == before

    rec = Record.create(
        {"$schema": DRAFT4_SCHEMA, "title": "Title of this record"}, repo=repo, format_checker=checker
    )
    stored = json.loads(git(repo, "show", f"main:{repo.path_for(rec.id)}"))
    assert stored["$schema"] == DRAFT4_SCHEMA  # the inline schema is part of the data

    rec["title"] = "bad lowercase"
    with pytest.raises(ValidationError, match="'bad lowercase' is not a 'uppercaseFirstLetter'"):
        rec.commit(format_checker=checker)
    with pytest.raises(ValidationError, match="'bad lowercase' is not a 'uppercaseFirstLetter'"):
        rec.validate(format_checker=checker)
    assert rec.revision_id == 0


def test_format_is_not_checked_without_a_format_checker(repo: Repository) -> None:
    """OBS 78, 82."""
    assert Record.format_checker is None
    rec = Record.create({"$schema": DRAFT4_SCHEMA, "title": "title of this record"}, repo=repo)
    assert rec.revision_id == 0
    rec["year"] = "not an integer"
    with pytest.raises(ValidationError, match="'not an integer' is not of type 'integer'"):
        rec.commit()


def test_validate_with_format(repo: Repository) -> None:
    """test_api.py::test_validate_with_format."""
    checker = FormatChecker([])
    checker.checks("foo")(lambda value: value == "foo")
    schema = {"type": "object", "properties": {"bar": {"format": "foo"}}}
    rec = Record.create({"$schema": schema, "bar": "foo"}, repo=repo, format_checker=checker)
    rec["bar"] = "bar"
    with pytest.raises(ValidationError) as info:
        rec.commit(format_checker=checker)
    assert info.value.message == "'bar' is not a 'foo'"
    with pytest.raises(ValidationError):
        rec.validate(format_checker=checker)
    with pytest.raises(ValidationError):
        Record.create({"$schema": schema, "bar": "bar"}, repo=repo, format_checker=checker)
    rec.validate()  # without a checker, the format is not asserted


def test_default_format_checker(repo: Repository, checker: FormatChecker) -> None:
    """test_api.py::test_default_format_checker: the class attribute is the default."""

    class CheckedRecord(Record):
        format_checker = checker

    with pytest.raises(ValidationError, match="is not a 'uppercaseFirstLetter'"):
        CheckedRecord.create({"$schema": DRAFT4_SCHEMA, "title": "lower"}, repo=repo)
    rec = CheckedRecord.create({"$schema": DRAFT4_SCHEMA, "title": "Upper"}, repo=repo)
    rec["title"] = "lower"
    with pytest.raises(ValidationError):
        rec.validate()
    with pytest.raises(ValidationError):
        rec.commit()


def test_validate_partial(repo: Repository) -> None:
    """test_api.py::test_validate_partial: a validator class without 'required'."""
    with pytest.raises(ValidationError, match="'title' is a required property"):
        Record.create({"$schema": DRAFT4_SCHEMA}, repo=repo)
    rec = Record.create({"$schema": DRAFT4_SCHEMA}, repo=repo, validator=PartialDraft4Validator)
    assert rec.revision_id == 0
    rec["year"] = "1999"
    with pytest.raises(ValidationError, match="'1999' is not of type 'integer'"):
        rec.commit(validator=PartialDraft4Validator)
    rec["year"] = 1999
    rec.commit(validator=PartialDraft4Validator)
    assert rec.revision_id == 1
    with pytest.raises(ValidationError, match="'title' is a required property"):
        rec.validate()

    class PartialRecord(Record):
        validator = PartialDraft4Validator

    PartialRecord.create({"$schema": DRAFT4_SCHEMA}, repo=repo)


def test_the_draft_is_taken_from_the_schema(repo: Repository) -> None:
    # draft 4: exclusiveMaximum is a boolean modifier of maximum; from draft 6 on it is a number
    body = {"properties": {"n": {"maximum": 5, "exclusiveMaximum": True}}}
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", **body}
    with pytest.raises(ValidationError, match="5 is greater than or equal to the maximum of 5"):
        Record.create({"$schema": draft4, "n": 5}, repo=repo)
    Record.create({"$schema": draft4, "n": 4}, repo=repo)
    draft2020 = {"$schema": "https://json-schema.org/draft/2020-12/schema", **body}
    with pytest.raises(SchemaError, match="True is not of type 'number'"):
        Record.create({"$schema": draft2020, "n": 4}, repo=repo)
    with pytest.raises(SchemaError, match="True is not of type 'number'"):
        Record.create({"$schema": body, "n": 4}, repo=repo)  # no $schema: the latest draft


def test_invalid_inline_schema(repo: Repository) -> None:
    before = tip(repo)
    with pytest.raises(SchemaError, match="not a valid schema"):
        Record.create({"$schema": {"type": 12}, "a": 1}, repo=repo)
    with pytest.raises(SchemaError, match="must be a string or an object"):
        Record.create({"$schema": 12, "a": 1}, repo=repo)
    assert tip(repo) == before


def test_no_schema_no_validation(repo: Repository) -> None:
    rec = Record.create({"anything": [1, {"goes": None}]}, repo=repo)
    rec.validate()


# -- the schema store -----------------------------------------------------------


def test_put_schema_is_one_commit(repo: Repository) -> None:
    before = int(git(repo, "rev-list", "--count", "main"))
    assert repo.put_schema("example/common.json", COMMON) == "schemas/example/common.json"
    assert int(git(repo, "rev-list", "--count", "main")) == before + 1
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "put schema schemas/example/common.json"
    shown = git(repo, "show", "main:schemas/example/common.json")
    assert json.loads(shown) == COMMON
    assert layout.is_canonical(shown.encode())
    # the same schema again changes nothing
    head = tip(repo)
    assert (
        repo.put_schema("schemas/example/common.json", copy.deepcopy(COMMON)) == "schemas/example/common.json"
    )
    assert tip(repo) == head
    # a new version replaces it, as one commit
    changed = copy.deepcopy(COMMON)
    changed["$defs"]["title"]["maxLength"] = 10
    repo.put_schema("/example/common.json", changed, message="limit titles", author="S <s@example.org>")
    assert git(repo, "log", "-1", "--format=%s|%an", "main").strip() == "limit titles|S"
    assert int(git(repo, "rev-list", "--count", "main")) == before + 2
    fsck(repo)


@pytest.mark.parametrize("path", ["../escape.json", "a/../../b.json", "schema.txt", "a\0b.json"])
def test_put_schema_refuses_bad_paths(repo: Repository, path: str) -> None:
    before = tip(repo)
    with pytest.raises(SchemaError):
        repo.put_schema(path, COMMON)
    assert tip(repo) == before


def test_put_schema_refuses_invalid_schemas(repo: Repository) -> None:
    before = tip(repo)
    with pytest.raises(SchemaError, match="not a valid schema"):
        repo.put_schema("bad.json", {"type": "no-such-type"})
    with pytest.raises(SchemaError):
        repo.put_schema("bad.json", ["not", "an", "object"])  # type: ignore[arg-type]
    assert tip(repo) == before


@pytest.mark.parametrize(
    "ref",
    [
        "example/record.json",
        "schemas/example/record.json",
        "https://example.org/schemas/record.json",
        "https://example.org/schemas/record.json#",
    ],
)
def test_schema_by_path_and_by_id(store_repo: Repository, ref: str) -> None:
    repo = store_repo
    rec = Record.create({"$schema": ref, "title": "T", "year": "2024"}, repo=repo)
    assert rec.revision_id == 0
    with pytest.raises(ValidationError, match="'title' is a required property"):
        Record.create({"$schema": ref}, repo=repo)
    # cross-schema $refs: relative to the $id, and by absolute $id
    with pytest.raises(ValidationError, match="'' should be non-empty"):
        Record.create({"$schema": ref, "title": ""}, repo=repo)
    with pytest.raises(ValidationError, match="'24' does not match"):
        Record.create({"$schema": ref, "title": "T", "year": "24"}, repo=repo)


def test_store_schemas_without_id_resolve_relative_refs_by_path(repo: Repository) -> None:
    repo.put_schema("lib/defs.json", {"$defs": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}}})
    repo.put_schema(
        "lib/thing.json", {"type": "object", "properties": {"code": {"$ref": "defs.json#/$defs/code"}}}
    )
    Record.create({"$schema": "lib/thing.json", "code": "ABC"}, repo=repo)
    with pytest.raises(ValidationError, match="'abc' does not match"):
        Record.create({"$schema": "lib/thing.json", "code": "abc"}, repo=repo)


def test_unknown_store_schema(repo: Repository, no_network: list[str]) -> None:
    before = tip(repo)
    for ref in ("missing.json", "https://example.org/schemas/missing.json"):
        with pytest.raises(SchemaError, match="not in the schema store"):
            Record.create({"$schema": ref}, repo=repo)
    assert tip(repo) == before
    assert no_network == []


def test_records_validate_with_the_schema_at_the_tip(store_repo: Repository) -> None:
    repo = store_repo
    rec = Record.create({"$schema": "example/record.json", "title": "A long title"}, repo=repo)
    stricter = copy.deepcopy(COMMON)
    stricter["$defs"]["title"]["maxLength"] = 5
    repo.put_schema("example/common.json", stricter)
    with pytest.raises(ValidationError, match="is too long"):
        rec.validate()
    rec["title"] = "Short"
    rec.commit()


def test_default_schema_from_the_config(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "d.git", config={"default_schema": "example/record.json"})
    repo.put_schema("example/common.json", COMMON)
    repo.put_schema("example/record.json", RECORD)
    with pytest.raises(ValidationError, match="'title' is a required property"):
        Record.create({"other": 1}, repo=repo)
    Record.create({"title": "T"}, repo=repo)


def test_all_errors_can_be_listed(store_repo: Repository) -> None:
    store = store_repo.schema_store()
    errors = list(store.iter_errors({"title": "", "year": "x"}, "example/record.json"))
    assert sorted(e.message for e in errors) == ["'' should be non-empty", "'x' does not match '^[0-9]{4}$'"]


# -- $ref safety ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        "http://example.org/schema.json",
        "https://example.org/schema.json#/$defs/x",
        "file:///etc/passwd",
        "/etc/passwd",
        "../../../../etc/passwd",
    ],
)
def test_refs_outside_the_store_are_refused(repo: Repository, no_network: list[str], ref: str) -> None:
    before = tip(repo)
    schema = {"type": "object", "properties": {"a": {"$ref": ref}}}
    with pytest.raises(RefResolutionError, match="outside the schema store"):
        Record.create({"$schema": schema, "a": 1}, repo=repo)
    # the same $ref in a store schema
    repo.put_schema("leaky.json", schema)
    with pytest.raises(RefResolutionError, match="outside the schema store"):
        Record.create({"$schema": "leaky.json", "a": 1}, repo=repo)
    assert int(git(repo, "rev-list", "--count", f"{before}..main")) == 1  # only the put_schema
    assert no_network == []


def test_remote_refs_are_fetched_only_when_allowed(repo: Repository, no_network: list[str]) -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "https://example.org/schema.json"}}}
    allowing = Repository(repo.path, allow_remote_refs=True)
    with pytest.raises(RefResolutionError, match="cannot fetch"):
        Record.create({"$schema": schema, "a": 1}, repo=allowing)
    assert len(no_network) == 1
    assert "https://example.org/schema.json" in no_network[0]


def test_recursive_schema(repo: Repository) -> None:
    tree = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["name"],
            }
        },
        "$ref": "#/$defs/node",
    }
    repo.put_schema("tree.json", tree)
    data = {"name": "root", "children": [{"name": "a", "children": [{"name": "b", "children": []}]}]}
    Record.create({"$schema": "tree.json", **data}, repo=repo)
    bad = copy.deepcopy(data)
    bad["children"][0]["children"][0]["name"] = 5
    with pytest.raises(ValidationError, match="5 is not of type 'string'") as info:
        Record.create({"$schema": "tree.json", **bad}, repo=repo)
    assert list(info.value.absolute_path) == ["children", 0, "children", 0, "name"]


def test_ref_cycle_is_a_schema_error(repo: Repository) -> None:
    before = tip(repo)
    with pytest.raises(SchemaError, match="cycle"):
        Record.create({"$schema": {"$ref": "#"}, "a": 1}, repo=repo)
    assert tip(repo) == before


# -- the sample repository --------------------------------------------------------


def test_sample_repo_records_all_validate(sample_repo: Repository) -> None:
    ids = list(sample_repo.ids())
    assert len(ids) == 60
    checker = FormatChecker()
    for record_id in ids:
        rec = Record.get_record(record_id, repo=sample_repo)
        assert isinstance(rec["$schema"], str)
        rec.validate()
        rec.validate(format_checker=checker)
    assert sample_repo.schema_store().check_schemas() is not None
    assert list(sample_repo.schema_store().check_schemas()) == []


def test_sample_repo_schema_rejects_bad_data(sample_repo: Repository) -> None:
    record_id = next(iter(sample_repo.ids()))
    rec = Record.get_record(record_id, repo=sample_repo)
    rec["publicationYear"] = "twenty"
    with pytest.raises(ValidationError):
        rec.commit()
    del rec["titles"]
    with pytest.raises(ValidationError, match="'titles' is a required property"):
        rec.validate()


# -- replace_refs -------------------------------------------------------------------


def test_replace_refs_resolves_store_and_local_refs(store_repo: Repository, no_network: list[str]) -> None:
    """test_api.py::test_record_replace_refs, with the schema store as the only loader."""
    rec = Record.create(
        {
            "title_schema": {"$ref": "https://example.org/schemas/common.json#/$defs/title"},
            "by_path": {"$ref": "gitrecords:///example/common.json#/$defs/year"},
            "relative": {"$ref": "example/common.json#/$defs/year/pattern"},
            "local": {"$ref": "#/target/value"},
            "target": {"value": {"nested": {"$ref": "#/leaf"}}},
            "leaf": 42,
        },
        repo=store_repo,
    )
    out = rec.replace_refs()
    assert out["title_schema"] == {"type": "string", "minLength": 1}
    assert out["by_path"] == COMMON["$defs"]["year"]
    assert out["relative"] == "^[0-9]{4}$"
    assert out["local"] == {"nested": 42}
    # the record itself is unchanged
    assert rec["local"] == {"$ref": "#/target/value"}
    # test_replace_refs_deepcopy
    assert copy.deepcopy(out)["local"] == {"nested": 42}
    assert no_network == []


def test_replace_refs_disabled(repo: Repository) -> None:
    class NoRefs(Record):
        enable_jsonref = False

    rec = NoRefs.create({"a": {"$ref": "http://example.org/x"}}, repo=repo)
    assert rec.replace_refs() is rec


@pytest.mark.parametrize(
    "ref", ["http://example.org/x.json", "https://example.org/x.json#/a", "file:///etc/passwd", "#/missing"]
)
def test_replace_refs_refuses_refs_outside_the_store(
    repo: Repository, no_network: list[str], ref: str
) -> None:
    rec = Record.create({"a": {"$ref": ref}}, repo=repo)
    with pytest.raises(RefResolutionError):
        rec.replace_refs()
    assert no_network == []
    assert isinstance(RefResolutionError("x"), GitRecordsError)


def test_local_store_with_cross_schema_ref_and_definitions(repo: Repository, no_network: list[str]) -> None:
    """test_resolver.py::test_invenio_refresolver_with_local_store, with the schema store."""
    repo.put_schema(
        "local/person.json",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "local://schemas/person.json",
            "definitions": {"name": {"type": "string", "pattern": "^[A-Z]"}},
            "type": "object",
            "properties": {"name": {"$ref": "#/definitions/name"}},
            "required": ["name"],
        },
    )
    repo.put_schema(
        "local/team.json",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "local://schemas/team.json",
            "type": "object",
            "properties": {"members": {"type": "array", "items": {"$ref": "person.json"}}},
        },
    )
    Record.create({"$schema": "local://schemas/team.json", "members": [{"name": "Ada"}]}, repo=repo)
    with pytest.raises(ValidationError, match="'ada' does not match '\\^\\[A-Z\\]'"):
        Record.create({"$schema": "local://schemas/team.json", "members": [{"name": "ada"}]}, repo=repo)
    with pytest.raises(ValidationError, match="'name' is a required property"):
        Record.create({"$schema": "local/team.json", "members": [{}]}, repo=repo)
    assert no_network == []


def test_a_draft_4_schema_is_found_by_its_id(repo: Repository) -> None:
    """invenio's schemas are draft 4: they name themselves with "id", not "$id"."""
    uri = "https://example.org/schemas/records/record-v1.0.0.json"
    repo.put_schema(
        "records/record-v1.0.0.json",
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "id": uri,
            "type": "object",
            "properties": {"title": {"type": "string"}},
        },
    )
    Record.create({"$schema": uri, "title": "ok"}, repo=repo)
    with pytest.raises(ValidationError):
        Record.create({"$schema": uri, "title": 1}, repo=repo)
