"""Fuzzing the write paths: random JSON and random bytes through create, commit, patch, validate,
bulk import and the CLI's create.

Each example either succeeds, and then git holds exactly ``layout.dumps(data)`` in one new
commit, or fails with one of the errors gitrecords promises (``GitRecordsError``, jsonschema's
``ValidationError``, jsonpatch's errors), and then the branch did not move. Any other
exception fails the test (the CLI runs with GITRECORDS_DEBUG=1, so it would propagate).
The number of examples is bounded so that the module runs in a few seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer
import pytest
from helpers import git
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gitrecords import GitRecordsError, Record, Repository, ValidationError, layout
from gitrecords.bulk import BatchValidationError

#: GITRECORDS_FUZZ_EXAMPLES=2000 fuzzes longer (the default keeps the module at a few seconds)
EXAMPLES = int(os.environ.get("GITRECORDS_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    database=None,
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: what a failed write may raise; anything else is a bug
PROMISED = (GitRecordsError, ValidationError, jsonpatch.JsonPatchException, jsonpointer.JsonPointerException)

# text including lone surrogates, NUL and the characters JSON must escape
text = st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(
    ["", "\x00", "\ud800", "\u2028", '"', "\\", "$gitrecords", "é"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN and infinities included: they must be refused
    | text
)
keys = text | st.sampled_from(["$schema", "$gitrecords", "title", "control_number", "a"])
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25,
)
#: schema-like values: JSON Schema keywords with random values, or a random value
schema_keywords = st.sampled_from(
    [
        "type",
        "$ref",
        "$id",
        "$schema",
        "properties",
        "items",
        "pattern",
        "minimum",
        "enum",
        "required",
        "$defs",
        "allOf",
        "additionalProperties",
        "format",
        "const",
    ]
)
schemas = st.recursive(
    st.booleans() | st.sampled_from(["object", "string", "#", "#/$defs/a", "http://example.org/s.json"]),
    lambda children: st.dictionaries(schema_keywords | keys, children | json_values, max_size=4),
    max_leaves=12,
)
records = st.dictionaries(keys, json_values, max_size=5) | json_values
records_with_schema = st.builds(
    lambda data, schema: {**data, "$schema": schema}, st.dictionaries(keys, json_values, max_size=3), schemas
)
pointers = st.sampled_from(["", "/", "/a", "/a/0", "/a/-", "/b", "/title", "a", "/~2", "/a/x/y", "/0"]) | text
operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]), "path": pointers},
    optional={"value": json_values, "from": pointers},
)
patches = st.lists(operations, max_size=4) | json_values


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", "main").strip()


def assert_written(repo: Repository, before: str, record_id: Any, data: Any) -> None:
    """One new commit on the branch, holding exactly the canonical bytes of ``data``."""
    after = tip(repo)
    assert git(repo, "rev-parse", "main^").strip() == before
    shown = git(repo, "show", f"main:{repo.path_for(record_id)}")
    assert shown.encode() == layout.dumps(data)
    assert after != before


def attempt(repo: Repository, write: Callable[[], Any]) -> Any:
    """Run ``write``; a promised error must leave the branch where it was (returns None then)."""
    before = tip(repo)
    try:
        return write()
    except PROMISED:
        assert tip(repo) == before, "a failed write moved the branch"
        return None


@pytest.fixture
def seeded(repo: Repository) -> Record:
    return Record.create({"title": "seed", "a": [1, {"x": 2}], "b": {"c": None}}, repo=repo)


@FUZZ
@given(data=records)
@example(data={"x": float("nan")})
@example(data={"$gitrecords": {"deleted": "now"}})
@example(data={"a": "\ud800"})
@example(data=[{"a": 1}])
def test_create(repo: Repository, data: Any) -> None:
    before = tip(repo)
    record = attempt(repo, lambda: Record.create(data, repo=repo))
    if record is not None:
        assert_written(repo, before, record.id, data)
        assert Record.get_record(record.id, repo=repo) == data


@FUZZ
@given(data=records)
def test_commit(repo: Repository, seeded: Record, data: Any) -> None:
    record = Record.get_record(seeded.id, repo=repo)
    before = tip(repo)
    if not isinstance(data, dict):
        data = {"value": data}

    def write() -> Record:
        record.clear()
        record.update(data)
        return record.commit()

    written = attempt(repo, write)
    if written is not None and tip(repo) != before:
        assert_written(repo, before, seeded.id, data)
    elif written is not None:  # the same data: nothing to write
        assert layout.dumps(data) == git(repo, "show", f"main:{repo.path_for(seeded.id)}").encode()


@FUZZ
@given(patch=patches)
@example(patch=[{"op": "copy", "from": "/b", "path": ""}])
@example(patch=[{"op": "add", "path": "/n", "value": float("inf")}])
@example(patch='[{"op": "add", "path": "/n", "value": NaN}]')
def test_patch(repo: Repository, seeded: Record, patch: Any) -> None:
    record = Record.get_record(seeded.id, repo=repo)
    original = dict(record)
    before = tip(repo)
    patched = attempt(repo, lambda: record.patch(patch))
    assert dict(record) == original, "patch() changed the record it was called on"
    if patched is None:
        return
    assert isinstance(dict(patched), dict)
    written = attempt(repo, patched.commit)
    if written is not None and tip(repo) != before:
        assert_written(repo, before, seeded.id, dict(patched))


@FUZZ
@given(data=records_with_schema | records)
@example(data={"$schema": {"$ref": "#"}})
@example(data={"$schema": {"$id": 5}})
@example(data={"$schema": {"$schema": True}})
@example(data={"$schema": {"$schema": {}}})
@example(data={"$schema": {"pattern": "("}, "a": "x"})
@example(data={"$schema": {"$ref": "file:///etc/passwd"}})
def test_validate_and_create_with_random_schemas(repo: Repository, data: Any) -> None:
    if isinstance(data, dict):
        try:
            Record(data, repo=repo).validate()
        except PROMISED:
            pass
    before = tip(repo)
    record = attempt(repo, lambda: Record.create(data, repo=repo))
    if record is not None:
        assert_written(repo, before, record.id, data)


def _encoded(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return b"{}"


raw_inputs = (
    st.binary(max_size=64)
    | json_values.map(_encoded)
    | st.builds(lambda value, cut: _encoded(value)[:cut], json_values, st.integers(0, 40))
    | st.sampled_from([b"", b"\xef\xbb\xbf{}", b"[]", b"[{}, 1]", b'{"a": 1}\n{"b": 2}', b"\x00", b"{" * 600])
)


@FUZZ
@given(raw=raw_inputs)
def test_cli_create_with_random_bytes(gr: Callable[..., Any], repo: Repository, raw: bytes) -> None:
    before = tip(repo)
    result = gr(repo, "create", input=raw)
    if result.exit_code != 0:
        assert result.exit_code in (1, 2), result.exit_code
        assert "Traceback" not in result.stderr
        assert [line for line in result.stderr.splitlines() if line.startswith("Error: ")], result.stderr
        assert tip(repo) == before
        return
    ids = result.stdout.split()
    value = layout.loads(raw)
    items = value if isinstance(value, list) else [value]
    assert len(ids) == len(items)
    if ids:
        assert git(repo, "rev-parse", "main^").strip() == before
    for record_id, data in zip(ids, items, strict=True):
        assert git(repo, "show", f"main:{repo.path_for(record_id)}").encode() == layout.dumps(data)


@settings(FUZZ, max_examples=max(EXAMPLES // 2, 10))
@given(items=st.lists(raw_inputs | records, min_size=1, max_size=4))
def test_import_records_with_random_items(repo: Repository, items: list[Any]) -> None:
    before = tip(repo)
    try:
        result = repo.import_records(items, workers=1)
    except BatchValidationError as err:
        assert err.problems
        assert tip(repo) == before
        assert not list(repo.git_dir.glob("fast_import_crash_*"))
        return
    assert git(repo, "rev-parse", "main^").strip() == before
    for record_id, item in zip(result.ids, items, strict=True):
        data = layout.loads(item) if isinstance(item, (bytes, str)) else item
        assert git(repo, "show", f"main:{repo.path_for(record_id)}").encode() == layout.dumps(data)
    assert "refs/gitrecords/" not in git(repo, "for-each-ref")
