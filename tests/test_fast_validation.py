"""jsonschema-rs decides validity in bulk imports: it must never accept what jsonschema refuses.

``SchemaStore.fast_check`` is a differential design: a record jsonschema-rs
finds invalid is checked again by jsonschema (which words the problems and
has the last word), so the one thing that must not happen is jsonschema-rs
saying "valid" where jsonschema finds a problem. These tests look for that on
the sample repository's records and schemas, mutated records, the benchmark
schema, and randomly generated schemas and values; and check the cases where
no fast check is made at all.
"""

from __future__ import annotations

import copy
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLE_REPO
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import FormatChecker

from gitrecords import Repository, layout
from gitrecords.errors import BatchValidationError, SchemaError
from gitrecords.schema import CROSS_CHECKS, SchemaStore

MANY = settings(database=None, deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
BENCH_SCHEMA = Path(__file__).resolve().parent.parent / "benchmarks" / "datacite-lite-v1.json"


def sample_store() -> SchemaStore:
    root = SAMPLE_REPO / "schemas"
    return SchemaStore({str(p.relative_to(root)): json.loads(p.read_text()) for p in root.rglob("*.json")})


def sample_records() -> list[dict[str, Any]]:
    return [layout.loads(p.read_bytes()) for p in sorted((SAMPLE_REPO / "records").rglob("*.json"))]


SAMPLE_STORE = sample_store()
SAMPLE_RECORDS = sample_records()


def python_problems(store: SchemaStore, data: Any, schema_ref: Any) -> list[str]:
    return [error.message for error in store.iter_errors(data, schema_ref)]


def assert_never_more_lenient(store: SchemaStore, data: Any, schema_ref: Any) -> bool:
    """jsonschema-rs's answer, checked against jsonschema's."""
    check = store.fast_check(schema_ref)
    assert check is not None
    fast = check(data)
    if fast:
        assert python_problems(store, data, schema_ref) == [], data
    return fast


# -- the sample repository ---------------------------------------------------------------


def test_sample_records_are_valid_both_ways() -> None:
    assert len(SAMPLE_RECORDS) == 60
    for record in SAMPLE_RECORDS:
        assert assert_never_more_lenient(SAMPLE_STORE, record, record["$schema"])
        assert python_problems(SAMPLE_STORE, record, record["$schema"]) == []


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    result = copy.deepcopy(value)
    if not path:
        return new
    target = result
    for step in path[:-1]:
        target = target[step]
    if new is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return result


DELETE = object()
#: values that break patterns or types, including where Python's and Rust's regex dialects differ
TRICKY = [
    DELETE,
    None,
    True,
    0,
    -1,
    1.5,
    10**20,
    "",
    " ",
    "x\x1c",  # \S in Rust, \s in Python
    "\x1c",
    "\u0663\u0664\u0665\u0666",  # Arabic-Indic digits: \d in both
    "2024\n",  # Python's $ matches before a final newline
    "10.1234/abc\n",
    "0000-0001-2345-678X\n",
    "https://ror.org/01ggx4157\n",
    "\U00011f50\U00011f51\U00011f52\U00011f53",  # Kawi digits (Unicode 15)
    "é",
    "A" * 300,
    [],
    {},
    [1, 1],
    {"unexpected": 1},
]


def test_mutated_sample_records_never_pass_only_in_rust() -> None:
    checked = refused = 0
    for record in SAMPLE_RECORDS[:4]:
        for path in list(paths(record))[1:]:
            if path == ("$schema",):
                continue
            for new in TRICKY:
                if new is DELETE and isinstance(path[-1], int):
                    continue
                mutated = replaced(record, path, new)
                checked += 1
                refused += not assert_never_more_lenient(SAMPLE_STORE, mutated, record["$schema"])
    assert checked > 1500 and refused > checked // 2


@MANY
@given(st.data())
def test_random_mutations_of_sample_records(data: st.DataObject) -> None:
    record = data.draw(st.sampled_from(SAMPLE_RECORDS))
    path = data.draw(st.sampled_from(list(paths(record))[1:]))
    new = data.draw(json_values)
    assert_never_more_lenient(SAMPLE_STORE, replaced(record, path, new), record["$schema"])


# -- the benchmark schema ------------------------------------------------------------------


def test_benchmark_records_and_their_mutations() -> None:
    from benchmarks import data

    store = SchemaStore({data.SCHEMA_STORE_PATH: json.loads(BENCH_SCHEMA.read_text())})
    for i in range(10):
        record = data.record(i)
        assert assert_never_more_lenient(store, record, data.SCHEMA_ID)
        for path in list(paths(record))[1:]:
            for new in TRICKY[:16]:
                if new is DELETE and isinstance(path[-1], int):
                    continue
                assert_never_more_lenient(store, replaced(record, path, new), data.SCHEMA_ID)


# -- random schemas and values ---------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
    | st.sampled_from(["x\x1c", "12\n", "\u0663", "A", "ab", "2024", "-1", "é"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from("abcd"), children, max_size=4)
    ),
    max_leaves=12,
)
patterns = st.sampled_from(
    [
        "^\\S+$",
        "\\S",
        "^[0-9]+$",
        "^\\d+$",
        "^\\w+$",
        "\\s",
        "^[a-z]{2}(-[A-Z]{2})?$",
        "^A",
        "b$",
        "[^a]",
        "^.$",
    ]
)
numbers = st.integers(min_value=-5, max_value=5) | st.sampled_from([0.5, 0.1, 1.5, 2.0, 1e-3])
leaf_schemas = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "integer", "number", "boolean", "null", "array", "object"])}
    ),
    st.fixed_dictionaries({"pattern": patterns}),
    st.fixed_dictionaries({"minLength": st.integers(0, 3)}),
    st.fixed_dictionaries({"maxLength": st.integers(0, 3)}),
    st.fixed_dictionaries({"minimum": numbers}),
    st.fixed_dictionaries({"exclusiveMaximum": numbers}),
    st.fixed_dictionaries({"multipleOf": st.sampled_from([1, 2, 0.5, 0.1, 0.01, 3, 1e-3])}),
    st.fixed_dictionaries({"enum": st.lists(scalars, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"const": scalars}),
    st.fixed_dictionaries({"uniqueItems": st.booleans()}),
    st.fixed_dictionaries({"minItems": st.integers(0, 2), "maxItems": st.integers(0, 3)}),
    st.fixed_dictionaries({"required": st.lists(st.sampled_from("abcd"), max_size=2, unique=True)}),
    st.fixed_dictionaries({"minProperties": st.integers(0, 2)}),
)
schemas = st.recursive(
    leaf_schemas | st.booleans(),
    lambda children: st.one_of(
        st.fixed_dictionaries({"properties": st.dictionaries(st.sampled_from("abcd"), children, max_size=3)}),
        st.fixed_dictionaries(
            {
                "properties": st.dictionaries(st.sampled_from("ab"), children, max_size=2),
                "additionalProperties": children,
            }
        ),
        st.fixed_dictionaries({"items": children}),
        st.fixed_dictionaries({"prefixItems": st.lists(children, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"contains": children}),
        st.fixed_dictionaries({"propertyNames": children}),
        st.fixed_dictionaries({"anyOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"oneOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"allOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"not": children}),
        st.fixed_dictionaries({"if": children, "then": children, "else": children}),
        st.fixed_dictionaries({"dependentRequired": st.dictionaries(st.sampled_from("ab"), st.just(["c"]))}),
        st.fixed_dictionaries(
            {"$defs": st.fixed_dictionaries({"d": children}), "$ref": st.just("#/$defs/d")}
        ),
        st.fixed_dictionaries({"unevaluatedProperties": children, "properties": st.just({"a": True})}),
    ),
    max_leaves=8,
)


@MANY
@given(schemas, st.lists(json_values, min_size=1, max_size=6))
@example({"pattern": "^\\S+$"}, ["x\x1c"])
@example({"pattern": "^[0-9]+$"}, ["12\n"])
@example({"multipleOf": 0.1}, [0.3, 0.7, 1e308])
@example({"uniqueItems": True}, [[1, 1.0], [True, 1], [{"a": 1}, {"a": 1.0}]])
@example({"const": 1}, [True, 1.0])
@example({"enum": [False]}, [0, 0.0])
@example({"type": "integer"}, [1.0, 2**70, 1.5])
def test_random_schemas_never_pass_only_in_rust(schema: Any, values: list[Any]) -> None:
    store = SchemaStore({"s.json": schema if isinstance(schema, dict) else {"allOf": [schema]}})
    try:
        check = store.fast_check("s.json")
    except SchemaError:  # not a valid schema: neither validates with it
        return
    if check is None:
        return
    for value in values:
        if check(value):
            try:
                found = python_problems(store, value, "s.json")
            except SchemaError:
                # a $ref cycle that never reaches a value (nested $defs "d"): jsonschema cannot
                # validate with it at all; the import's cross-checks catch it (see below)
                continue
            assert found == [], (schema, value)


# -- where no fast check is made ------------------------------------------------------------


def test_no_fast_check_with_a_format_checker_or_remote_refs() -> None:
    store = SchemaStore({"s.json": {"type": "string", "format": "email"}})
    assert store.fast_check("s.json") is not None
    assert store.fast_check("s.json", format_checker=FormatChecker()) is None
    remote = SchemaStore({"s.json": {"type": "string"}}, allow_remote_refs=True)
    assert remote.fast_check("s.json") is None


@pytest.mark.parametrize(
    "schema",
    [
        {"patternProperties": {"^\\S+$": {"type": "string"}}},
        {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "additionalProperties": {"type": "string"},
            "unevaluatedProperties": False,
        },
        {"if": {"dependencies": {"doi": ["publisher"]}}, "then": {"required": ["title"]}},
        {"$schema": "https://json-schema.org/draft/2019-09/schema", "items": {"$recursiveRef": "#"}},
        {"$schema": "http://json-schema.org/draft-03/schema#", "type": "string"},
        {"properties": {"a": {"$ref": "https://example.org/elsewhere.json"}}},
        {"properties": {"a": {"$ref": "other.json"}}},
    ],
)
def test_no_fast_check_where_the_two_could_disagree(schema: dict[str, Any]) -> None:
    assert SchemaStore({"s.json": schema}).fast_check("s.json") is None


@pytest.mark.parametrize(
    ("schema", "bad"),
    [
        (
            {
                "$schema": "https://json-schema.org/draft/2019-09/schema",
                "properties": {"$schema": {"type": "string"}, "title": {"type": "string"}},
                "additionalProperties": {"type": "string"},
                "unevaluatedProperties": False,
            },
            {"title": "t", "note": "extra"},
        ),
        (
            {
                "properties": {"$schema": {"type": "string"}},
                "if": {"dependencies": {"doi": ["publisher"]}},
                "then": {"required": ["title"]},
            },
            {"doi": "10.1/x"},
        ),
    ],
)
def test_a_record_jsonschema_refuses_is_refused_after_the_cross_checks(
    tmp_path: Path, schema: dict[str, Any], bad: dict[str, Any]
) -> None:
    """Where jsonschema-rs reads a keyword otherwise, a record jsonschema refuses was written
    once CROSS_CHECKS valid records had switched the schema to jsonschema-rs alone (and refused
    by a fresh process, and reported by validate): jsonschema decides such schemas."""
    from jsonschema import ValidationError, validators

    from gitrecords import Record
    from gitrecords import schema as schema_module

    assert not validators.validator_for(schema, default=validators.Draft202012Validator)(schema).is_valid(bad)
    repo = Repository.init(tmp_path / "r.git")
    repo.put_schema("s.json", schema)
    for n in range(schema_module.CROSS_CHECKS + 1):
        Record.create({"$schema": "s.json", "title": f"valid {n}"}, repo=repo)
    with pytest.raises(ValidationError):
        Record.create({"$schema": "s.json", **bad}, repo=repo)


def test_store_refs_resolve_in_rust_too() -> None:
    store = SchemaStore(
        {
            "a/record.json": {"properties": {"year": {"$ref": "defs.json#/$defs/year"}}},
            "a/defs.json": {"$defs": {"year": {"type": "string", "pattern": "^[0-9]{4}$"}}},
        }
    )
    check = store.fast_check("a/record.json")
    assert check is not None
    assert check({"year": "2024"}) and not check({"year": "24"}) and not check({"year": "x\x1c"})


@pytest.fixture
def counting_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on the loopback interface that counts the requests it gets."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = json.dumps({"type": "string"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_jsonschema_rs_never_fetches_a_ref(counting_server: tuple[str, list[str]]) -> None:
    base, requests = counting_server
    store = SchemaStore({"s.json": {"properties": {"a": {"$ref": f"{base}/remote.json"}}}})
    assert store.fast_check("s.json") is None
    assert requests == []


@pytest.mark.parametrize("many", [False, True])
def test_a_bulk_import_resolves_remote_refs_where_the_repository_allows_them(
    tmp_path: Path, counting_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, many: bool
) -> None:
    """A repository opened with allow_remote_refs=True resolves an http $ref of a store schema
    in a bulk import (in this process and in its workers) as its single writes do: the import
    refused the record the single create accepted."""
    from gitrecords import Record, bulk

    base, requests = counting_server
    if many:
        monkeypatch.setattr(bulk, "PARALLEL_THRESHOLD", 1)
    repo = Repository.init(tmp_path / "r.git")
    repo.put_schema("s.json", {"properties": {"title": {"$ref": f"{base}/title.json"}}})
    allowing = Repository(repo.path, allow_remote_refs=True)
    Record.create({"$schema": "s.json", "title": "one"}, repo=allowing)
    assert len(allowing.import_records([{"$schema": "s.json", "title": "two"}]).ids) == 1
    with pytest.raises(BatchValidationError) as refused:
        allowing.import_records([{"$schema": "s.json", "title": 3}])
    assert "3 is not of type 'string'" in str(refused.value.problems)
    assert requests


# -- in the import ---------------------------------------------------------------------------


DOI_SCHEMA = {
    "type": "object",
    "properties": {"doi": {"type": "string", "pattern": "^10\\.[0-9]{4,9}/\\S+$"}},
}


@pytest.fixture
def doi_repo(tmp_path: Path) -> Repository:
    repo = Repository.init(tmp_path / "doi.git", config={"default_schema": "doi.json"})
    repo.put_schema("doi.json", DOI_SCHEMA)
    return repo


def test_a_record_only_rust_would_accept_is_refused_with_jsonschemas_words(doi_repo: Repository) -> None:
    items = [{"doi": f"10.1234/{i}"} for i in range(50)] + [{"doi": "10.1234/\x1c"}]
    with pytest.raises(BatchValidationError) as info:
        doi_repo.import_records(items)
    assert [(p[0], p[2], p[3]) for p in info.value.problems] == [
        (50, "/doi", "'10.1234/\\x1c' does not match '^10\\\\.[0-9]{4,9}/\\\\S+$'")
    ]


def test_a_fast_check_that_disagrees_is_dropped(
    doi_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first valid records are checked both ways; after a disagreement jsonschema checks alone."""
    monkeypatch.setattr(SchemaStore, "fast_check", lambda self, ref, format_checker=None: lambda data: True)
    items = [{"doi": f"10.1234/{i}"} for i in range(100)]
    items[3] = {"doi": "not a doi"}  # caught by the cross-check
    items[90] = {"doi": "nor this"}  # caught because the fast check was dropped
    with pytest.raises(BatchValidationError) as info:
        doi_repo.import_records(items, workers=1)
    assert [p[0] for p in info.value.problems] == [3, 90]


def test_cross_checks_stop_after_a_while(doi_repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SchemaStore, "fast_check", lambda self, ref, format_checker=None: lambda data: True)
    items = [{"doi": f"10.1234/{i}"} for i in range(CROSS_CHECKS + 10)]
    items[-1] = {"doi": "not a doi"}  # a lying fast check is believed once the cross-checks are done
    assert len(doi_repo.import_records(items, workers=1).ids) == len(items)


def test_inline_schemas_are_checked_too(repo: Repository) -> None:
    schema = {"type": "object", "required": ["title"], "properties": {"title": {"pattern": "^\\S+$"}}}
    items = [{"$schema": schema, "title": f"t{i}"} for i in range(CROSS_CHECKS + 5)]
    items += [{"$schema": schema, "title": "x\x1c"}, {"$schema": schema}]
    with pytest.raises(BatchValidationError) as info:
        repo.import_records(items, workers=1)
    assert [(p[0], p[2]) for p in info.value.problems] == [(len(items) - 2, "/title"), (len(items) - 1, "/")]


def test_a_ref_cycle_jsonschema_rs_does_not_mind_is_reported_for_every_record(repo: Repository) -> None:
    """jsonschema cannot validate with a $ref cycle that never reaches a value; jsonschema-rs
    accepts the records, so the first cross-check drops it and every record gets the schema error."""
    repo.put_schema(
        "cycle.json",
        {"properties": {"a": {"$defs": {"d": {"$ref": "#/properties/a"}}, "$ref": "#/properties/a/$defs/d"}}},
    )
    items = [{"$schema": "cycle.json", "a": i} for i in range(CROSS_CHECKS + 10)]
    with pytest.raises(BatchValidationError) as info:
        repo.import_records(items, workers=1)
    assert [p[0] for p in info.value.problems] == list(range(len(items)))
    assert {p[2:] for p in info.value.problems} == {
        ("/$schema", "schema has a $ref cycle that never reaches a value")
    }


def test_a_ref_cycle_met_inside_rust_is_the_same_one_line_error(tmp_path: Path) -> None:
    """With some cycles the RecursionError is raised inside rpds (referencing's Rust maps) and
    comes out as pyo3's PanicException, a BaseException: the CLI died with a traceback. It is
    the same schema error (Rust still prints its panic's lines on stderr before it)."""
    import os
    import subprocess
    import sys

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/$defs/x",
        "$defs": {
            "x": {"if": {"type": "object", "allOf": [True, {"$ref": "#/$defs/x"}], "$ref": "#/$defs/x"}}
        },
    }
    repo = Repository.init(tmp_path / "r.git")
    repo.put_schema("cycle.json", schema)
    env = {**os.environ, "GITRECORDS_REPO": str(repo.path), "RUST_BACKTRACE": "0"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "gitrecords"), "create"],  # as a person runs it
        input='{"$schema": "cycle.json", "a": 1}',
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "Error: stdin: new record: /$schema: schema has a $ref cycle that never reaches a value"
    )
    assert "Traceback" not in proc.stderr and "PanicException" not in proc.stderr


def test_single_writes_are_decided_by_jsonschema_rs_after_the_cross_checks(
    doi_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record.create and commit validate through the same differential check as bulk imports:
    jsonschema checks the first CROSS_CHECKS records jsonschema-rs finds valid, then only what
    jsonschema-rs refuses (to word the problem)."""
    from jsonschema import ValidationError

    from gitrecords import Record, schema

    checked: list[Any] = []
    real = SchemaStore.iter_errors

    def iter_errors(self: SchemaStore, data: Any, *args: Any, **kwargs: Any) -> Any:
        checked.append(data)
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(SchemaStore, "iter_errors", iter_errors)
    records = [Record.create({"doi": f"10.1234/{i}"}, repo=doi_repo) for i in range(schema.CROSS_CHECKS + 5)]
    assert len(checked) == schema.CROSS_CHECKS
    records[0]["doi"] = "10.1234/changed"
    records[0].commit()
    assert len(checked) == schema.CROSS_CHECKS  # an update is believed too
    with pytest.raises(ValidationError, match="does not match"):
        Record.create({"doi": "10.1234/\x1c"}, repo=doi_repo)  # only Rust's regex dialect accepts it
    assert len(checked) == schema.CROSS_CHECKS + 1


def test_a_fast_check_that_disagrees_on_a_single_write_is_dropped(
    doi_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jsonschema import ValidationError

    from gitrecords import Record

    monkeypatch.setattr(SchemaStore, "_compile_fast", lambda self, validator, key: lambda data: True)
    Record.create({"doi": "10.1234/1"}, repo=doi_repo)
    with pytest.raises(ValidationError):
        Record.create({"doi": "not a doi"}, repo=doi_repo)  # the cross-check catches the lie
    store = doi_repo.schema_store()
    for fast in store._fast_checks.values():
        fast.cross_checks = 0  # would believe a fast check now
    with pytest.raises(ValidationError):
        Record.create({"doi": "nor this"}, repo=doi_repo)  # but the lying one was dropped
    assert doi_repo.search("").total == 1
