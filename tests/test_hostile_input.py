"""Hostile and malformed input: a clear one-line error, a non-zero exit, and nothing written.

Every case runs one bad input through the Python API, the CLI in-process (click's runner,
with GITRECORDS_DEBUG=1 so that an unexpected exception fails the test with its traceback)
or the real ``gitrecords`` executable. The harness then checks:

* the outcome is the declared one (an error class, or an exit code) and its message is one
  line that contains the declared text;
* the refs are exactly as before (``git for-each-ref``), the git directory holds no new file,
  and ``git fsck --strict`` is clean;
* no network connection was attempted (socket and urllib are replaced for the whole module).

A few inputs are accepted on purpose (upper-case and braced ids are normalised, a recursive
schema that terminates is fine); those cases say so and check the result instead.

``CASES`` is also the source of the input table in docs/reliability.md (tests/reliability_table.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from helpers import fsck, git

from gitrecords import InvalidRecordError, Record, Repository, ValidationError, layout
from gitrecords.record import RevisionsIterator

SEED = "deadbeef-9fe4-43d3-a08f-38c2b309afba"
LIMIT = 2000  # max_record_bytes of the test repository: large records stay cheap
DEEP = 10_000


@dataclass
class Env:
    """What a case runs against: a repository holding the record SEED, and ways to call it."""

    repo: Repository
    tmp: Path
    gr: Callable[..., Any]  # the CLI in-process (click's CliRunner)
    exe: str  # the real executable


@dataclass(frozen=True)
class Outcome:
    result: str  # an error class name, "exit N", or "accepted"
    message: str


@dataclass(frozen=True)
class Hostile:
    id: str
    topic: str  # the kind of input, for the table
    input: str  # the input, for people
    via: str  # "API", "CLI" (in-process) or "gitrecords" (the executable)
    result: str
    message: str  # text the one-line message must contain
    run: Callable[[Env], Outcome] = field(compare=False, repr=False)
    setup: Callable[[Env], None] | None = field(default=None, compare=False, repr=False)


CASES: list[Hostile] = []
TOPICS = [
    "malformed JSON",
    "not an object",
    "NaN and Infinity",
    "duplicate keys",
    "invalid UTF-8",
    "deep nesting",
    "large records",
    "record ids",
    "JSON Patch",
    "invalid $schema",
    "$ref outside the store",
    "recursive $ref",
    "files edited by hand",
]


def case(
    topic: str,
    input: str,
    via: str,
    result: str,
    message: str,
    setup: Callable[[Env], None] | None = None,
) -> Callable[[Callable[[Env], Outcome]], Callable[[Env], Outcome]]:
    def register(run: Callable[[Env], Outcome]) -> Callable[[Env], Outcome]:
        CASES.append(Hostile(run.__name__, topic, input, via, result, message, run, setup))
        return run

    return register


# -- calling gitrecords three ways ----------------------------------------------------------------


def api(action: Callable[[], Any]) -> Outcome:
    """Run a Python API call that must raise; the outcome is the error's class and message."""
    try:
        action()
    except ValidationError as err:  # its str() adds the schema and the instance, on many lines
        return Outcome(type(err).__name__, err.message)
    except Exception as err:  # the class is compared with the declared one
        return Outcome(type(err).__name__, str(err))
    raise AssertionError("the call did not fail")


def error_line(stderr: str) -> str:
    """The one ``Error:`` line of a failed command (click's usage lines may come before it)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, stderr
    problem_lines = [line for line in stderr.splitlines() if line and not line.startswith(("Usage:", "Try "))]
    assert problem_lines == lines, stderr
    return lines[0]


def cli(env: Env, *args: str, input: str | bytes | None = None) -> Outcome:
    result = env.gr(env.repo, *args, input=input)
    assert result.exit_code != 0, result.stdout
    return Outcome(f"exit {result.exit_code}", error_line(result.stderr))


def exe(env: Env, *args: str, input: str | bytes | None = None) -> Outcome:
    proc = run_exe(env, *args, input=input)
    assert proc.returncode != 0, proc.stdout
    return Outcome(f"exit {proc.returncode}", error_line(proc.stderr.decode()))


def exe_going_on(env: Env, *args: str) -> Outcome:
    """A command that reports each unreadable record file on a line of its own, goes on with the
    rest, and ends with one ``Error:`` line (issue 18, item 22): the outcome is the first report."""
    proc = run_exe(env, *args)
    assert proc.returncode != 0, proc.stdout
    stderr = proc.stderr.decode()
    assert "Traceback" not in stderr, stderr
    *reports, last = stderr.splitlines()
    assert reports and last.startswith("Error: ") and last.endswith("could not be read"), stderr
    return Outcome(f"exit {proc.returncode}", reports[0])


def run_exe(env: Env, *args: str, input: str | bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    variables = {k: v for k, v in os.environ.items() if k not in ("GITRECORDS_DEBUG", "GITRECORDS_REPO")}
    return subprocess.run(
        [env.exe, "--repo", str(env.repo.path), *args],
        input=input.encode() if isinstance(input, str) else input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        env=variables,
        timeout=120,
    )


def seed(env: Env) -> Record:
    return Record.get_record(SEED, repo=env.repo)


def nested_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_text(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


# -- malformed JSON -------------------------------------------------------------------------------


@case(
    "malformed JSON",
    '`{"title": ` on stdin',
    "gitrecords",
    "exit 1",
    "Error: stdin is not valid JSON: Expecting",
)
def malformed_stdin(env: Env) -> Outcome:
    return exe(env, "create", input='{"title": ')


@case(
    "malformed JSON", "two JSON documents in one file", "CLI", "exit 1", "it looks like JSON Lines: use --nl"
)
def two_documents(env: Env) -> Outcome:
    return cli(env, "create", input='{"title": "a"}\n{"title": "b"}\n')


@case("malformed JSON", "a bad line in a JSON Lines import", "CLI", "exit 1", "line 2 is not valid JSON")
def bad_import_line(env: Env) -> Outcome:
    source = env.tmp / "in.jsonl"
    source.write_text('{"title": "fine"}\n{"title": \n')
    return cli(env, "import", str(source))


@case(
    "malformed JSON",
    "JSON text given to import_records",
    "API",
    "BatchValidationError",
    "nothing was written",
)
def import_text(env: Env) -> Outcome:
    return api(lambda: env.repo.import_records(['{"title": "ok"}', '{"title": '], workers=1))


@case(
    "malformed JSON",
    "a JSON Patch that is not JSON",
    "API",
    "InvalidRecordError",
    "JSON Patch is not valid JSON",
)
def patch_text(env: Env) -> Outcome:
    return api(lambda: seed(env).patch('[{"op": '))


# -- not an object --------------------------------------------------------------------------------


@case(
    "not an object",
    "`42` on stdin",
    "gitrecords",
    "exit 1",
    "expected a JSON object or a list of objects, not a number",
)
def number_stdin(env: Env) -> Outcome:
    return exe(env, "create", input="42")


@case(
    "not an object",
    "a list holding a string",
    "CLI",
    "exit 1",
    "stdin[1]: new record: /: a record must be a JSON object",
)
def list_with_string(env: Env) -> Outcome:
    return cli(env, "create", input='[{"title": "ok"}, "not a record"]')


@case(
    "not an object",
    "`Record.create([1, 2])`",
    "API",
    "InvalidRecordError",
    "a record must be a JSON object, not an array",
)
def create_list(env: Env) -> Outcome:
    return api(lambda: Record.create([1, 2], repo=env.repo))  # type: ignore[arg-type]


@case(
    "not an object",
    "a Python set in a record",
    "API",
    "InvalidRecordError",
    "value at /tags of type set is not JSON",
)
def create_set(env: Env) -> Outcome:
    return api(lambda: Record.create({"tags": {"a"}}, repo=env.repo))


# -- NaN and Infinity -------------------------------------------------------------------------------


@case(
    "NaN and Infinity",
    '`{"x": NaN}` on stdin',
    "gitrecords",
    "exit 1",
    "NaN is not a JSON number (use null or a string)",
)
def nan_stdin(env: Env) -> Outcome:
    return exe(env, "create", input='{"x": NaN}')


@case("NaN and Infinity", '`{"x": -Infinity}` on stdin', "CLI", "exit 1", "-Infinity is not a JSON number")
def infinity_stdin(env: Env) -> Outcome:
    return cli(env, "create", input='{"x": -Infinity}')


@case(
    "NaN and Infinity",
    "`1e999` (a float that overflows)",
    "CLI",
    "exit 1",
    "1e999 is too large for a JSON number",
)
def overflow_stdin(env: Env) -> Outcome:
    return cli(env, "create", input='{"x": 1e999}')


@case(
    "NaN and Infinity",
    "`float('nan')` in a record",
    "API",
    "InvalidRecordError",
    "nan at /x is not valid JSON",
)
def nan_create(env: Env) -> Outcome:
    return api(lambda: Record.create({"x": float("nan")}, repo=env.repo))


@case(
    "NaN and Infinity",
    "`float('inf')` set before commit()",
    "API",
    "InvalidRecordError",
    "inf at /a/x is not valid JSON",
)
def inf_commit(env: Env) -> Outcome:
    record = seed(env)
    record["a"]["x"] = float("inf")
    return api(record.commit)


# -- duplicate keys ---------------------------------------------------------------------------------


@case(
    "duplicate keys",
    '`{"a": 1, "a": 2}` on stdin (rejected, not last-wins)',
    "gitrecords",
    "exit 1",
    "duplicate key 'a' in JSON object",
)
def duplicate_stdin(env: Env) -> Outcome:
    return exe(env, "create", input='{"a": 1, "a": 2}')


@case(
    "duplicate keys", "a duplicate key deep inside a JSON Lines import", "CLI", "exit 1", "duplicate key 'k'"
)
def duplicate_import(env: Env) -> Outcome:
    source = env.tmp / "in.jsonl"
    source.write_text('{"title": "x", "n": [{"k": 1, "k": 1}]}\n')
    return cli(env, "import", str(source))


@case("duplicate keys", "a duplicate key in a JSON Patch", "API", "InvalidRecordError", "duplicate key 'op'")
def duplicate_patch(env: Env) -> Outcome:
    return api(lambda: seed(env).patch('[{"op": "add", "op": "remove", "path": "/a"}]'))


# -- invalid UTF-8 ----------------------------------------------------------------------------------


@case(
    "invalid UTF-8",
    "byte `0xff` in a string on stdin",
    "gitrecords",
    "exit 1",
    "stdin is not valid UTF-8 (byte 7)",
)
def utf8_stdin(env: Env) -> Outcome:
    return exe(env, "create", input=b'{"a": "\xff"}')


@case("invalid UTF-8", "a truncated UTF-8 sequence in an import file", "CLI", "exit 1", "is not valid UTF-8")
def utf8_import(env: Env) -> Outcome:
    source = env.tmp / "in.jsonl"
    source.write_bytes(b'{"title": "caf\xc3"}\n')
    return cli(env, "import", str(source))


@case(
    "invalid UTF-8", "an unpaired surrogate `\\ud800` escape", "CLI", "exit 1", "an unpaired surrogate escape"
)
def surrogate_escape(env: Env) -> Outcome:
    return cli(env, "create", input='{"a": "\\ud800"}')


@case(
    "invalid UTF-8",
    "an unpaired surrogate in a Python str",
    "API",
    "InvalidRecordError",
    "unpaired surrogate",
)
def surrogate_str(env: Env) -> Outcome:
    return api(lambda: Record.create({"a": "\ud800"}, repo=env.repo))


# -- deep nesting -----------------------------------------------------------------------------------


@case(
    "deep nesting", f"{DEEP:,} nested arrays on stdin", "gitrecords", "exit 1", "stdin is nested too deeply"
)
def deep_stdin(env: Env) -> Outcome:
    return exe(env, "create", input="[" * DEEP + "]" * DEEP)


@case(
    "deep nesting",
    f"{DEEP:,} nested objects in a dict",
    "API",
    "InvalidRecordError",
    "record is nested deeper than 100 levels",
)
def deep_create(env: Env) -> Outcome:
    return api(lambda: Record.create(nested_dict(DEEP), repo=env.repo))


@case(
    "deep nesting",
    f"a JSON Patch adding {DEEP:,} nested objects",
    "API",
    "InvalidRecordError",
    "JSON Patch: record is nested deeper than 100 levels",
)
def deep_patch(env: Env) -> Outcome:
    return api(lambda: seed(env).patch([{"op": "add", "path": "/deep", "value": nested_dict(DEEP)}]))


@case(
    "deep nesting",
    f"{DEEP:,} nested objects given to import_records",
    "API",
    "BatchValidationError",
    "nothing was written",
)
def deep_import(env: Env) -> Outcome:
    return api(lambda: env.repo.import_records([nested_text(DEEP), nested_dict(DEEP)], workers=1))


# -- large records ------------------------------------------------------------------------------------


@case(
    "large records",
    f"a record over max_record_bytes ({LIMIT} here; 10 MiB by default)",
    "API",
    "RecordTooLargeError",
    f"bytes is larger than the limit of {LIMIT} bytes",
)
def large_create(env: Env) -> Outcome:
    return api(lambda: Record.create({"text": "x" * LIMIT}, repo=env.repo))


@case(
    "large records",
    "a large record on stdin",
    "gitrecords",
    "exit 1",
    f"is larger than the limit of {LIMIT} bytes",
)
def large_stdin(env: Env) -> Outcome:
    return exe(env, "create", input=json.dumps({"text": "x" * LIMIT}))


@case(
    "large records",
    "a JSON Patch that makes a record too large",
    "CLI",
    "exit 1",
    f"is larger than the limit of {LIMIT} bytes",
)
def large_patch(env: Env) -> Outcome:
    return cli(
        env, "patch", "-i", SEED, input=json.dumps([{"op": "add", "path": "/t", "value": "x" * LIMIT}])
    )


@case(
    "large records", "a large record in a bulk import", "API", "BatchValidationError", "nothing was written"
)
def large_import(env: Env) -> Outcome:
    return api(lambda: env.repo.import_records([{"title": "ok"}, {"text": "x" * LIMIT}], workers=1))


# -- record ids ---------------------------------------------------------------------------------------


@case(
    "record ids",
    "`not-a-uuid`",
    "API",
    "InvalidRecordError",
    "'not-a-uuid' is not a valid record id (a UUID)",
)
def id_not_uuid(env: Env) -> Outcome:
    return api(lambda: Record.create({"title": "x"}, id_="not-a-uuid", repo=env.repo))


@case("record ids", "`../x` (a path)", "gitrecords", "exit 2", "'../x' is not a valid record id (a UUID)")
def id_dotdot(env: Env) -> Outcome:
    return exe(env, "get", "../x")


@case(
    "record ids",
    "`/etc/passwd` (an absolute path)",
    "gitrecords",
    "exit 2",
    "'/etc/passwd' is not a valid record id",
)
def id_absolute(env: Env) -> Outcome:
    return exe(env, "create", "-i", "/etc/passwd", input='{"title": "x"}')


@case(
    "record ids",
    "a UUID followed by `/../../x`",
    "API",
    "InvalidRecordError",
    "is not a valid record id (a UUID)",
)
def id_uuid_then_path(env: Env) -> Outcome:
    return api(lambda: Record.get_record(f"{SEED}/../../x", repo=env.repo))


@case("record ids", "a NUL byte in an id", "CLI", "exit 2", "is not a valid record id (a UUID)")
def id_nul(env: Env) -> Outcome:
    return cli(env, "create", "-i", SEED[:8] + "\0" + SEED[9:], input='{"title": "x"}')


@case(
    "record ids",
    '`"id": "../x"` in an import file',
    "CLI",
    "exit 1",
    "'../x' is not a valid record id (a UUID)",
)
def id_in_import(env: Env) -> Outcome:
    source = env.tmp / "in.jsonl"
    source.write_text('{"id": "../x", "data": {"title": "x"}}\n')
    return cli(env, "import", str(source))


@case(
    "record ids",
    "an id that is not a string (`12`)",
    "API",
    "InvalidRecordError",
    "record id must be a UUID, not int",
)
def id_int(env: Env) -> Outcome:
    return api(lambda: Record.get_record(12, repo=env.repo))  # type: ignore[arg-type]


FORMS = [SEED.upper(), "{" + SEED.upper() + "}", "urn:uuid:" + SEED, SEED.replace("-", "")]


@case(
    "record ids",
    "upper-case, braced, `urn:uuid:` and hyphen-less forms of an id",
    "API",
    "accepted",
    "normalised to the lower-case hyphenated id: the same record and file",
)
def id_forms(env: Env) -> Outcome:
    for form in FORMS:
        assert Record.get_record(form, repo=env.repo).id == layout.normalize_id(SEED)
        assert env.repo.path_for(form) == env.repo.path_for(SEED)
    new = Record.create(
        {"title": "braced"},
        id_="{" + str(layout.normalize_id(SEED)).replace("d", "c").upper() + "}",
        repo=env.repo,
    )
    listed = git(env.repo, "ls-tree", "-r", "--name-only", "main").split()
    assert env.repo.path_for(new.id) in listed
    assert str(new.id) == str(new.id).lower()
    return Outcome("accepted", "normalised to the lower-case hyphenated id: the same record and file")


# -- JSON Patch ---------------------------------------------------------------------------------------


@case(
    "JSON Patch",
    "a JSON object instead of a list",
    "CLI",
    "exit 1",
    "a JSON Patch must be a list of operations",
)
def patch_object(env: Env) -> Outcome:
    return cli(env, "patch", "-i", SEED, input='{"op": "add", "path": "/x", "value": 1}')


@case(
    "JSON Patch",
    "an operation without `path`",
    "API",
    "InvalidRecordError",
    "JSON Patch operation 0 needs 'op' and 'path'",
)
def patch_no_path(env: Env) -> Outcome:
    return api(lambda: seed(env).patch([{"op": "add", "value": 1}]))


@case(
    "JSON Patch",
    "an unknown operation",
    "API",
    "InvalidJsonPatch",
    "JSON Patch operation 0 (frobnicate /a): Unknown operation 'frobnicate'",
)
def patch_unknown_op(env: Env) -> Outcome:
    return api(lambda: seed(env).patch([{"op": "frobnicate", "path": "/a"}]))


@case(
    "JSON Patch",
    "a pointer without a leading `/`",
    "CLI",
    "exit 1",
    "JSON Patch operation 0 (add a): Location must start with /",
)
def patch_bad_pointer(env: Env) -> Outcome:
    return cli(env, "patch", "-i", SEED, input='[{"op": "add", "path": "a", "value": 1}]')


@case(
    "JSON Patch",
    "`copy` from a path that does not exist",
    "CLI",
    "exit 1",
    "JSON Patch operation 1 (copy /c from /zz)",
)
def patch_missing_from(env: Env) -> Outcome:
    ops = [{"op": "add", "path": "/b", "value": 1}, {"op": "copy", "from": "/zz", "path": "/c"}]
    return cli(env, "patch", "-i", SEED, input=json.dumps(ops))


@case(
    "JSON Patch",
    '`replace` at `""` (the whole record)',
    "gitrecords",
    "exit 1",
    "may not replace the whole record ('')",
)
def patch_replace_root(env: Env) -> Outcome:
    return exe(env, "patch", "-i", SEED, input='[{"op": "replace", "path": "", "value": {}}]')


@case(
    "JSON Patch",
    '`remove` at `/` (the member named "", RFC 6901) of a record without one',
    "API",
    "JsonPatchPathNotFound",
    "JSON Patch operation 0 (remove /)",
)
def patch_remove_slash(env: Env) -> Outcome:
    return api(lambda: seed(env).patch([{"op": "remove", "path": "/"}]))


@case(
    "JSON Patch",
    '`copy` and `move` onto `""`',
    "API",
    "InvalidRecordError",
    "may not replace the whole record ('')",
)
def patch_copy_root(env: Env) -> Outcome:
    outcome = api(lambda: seed(env).patch([{"op": "move", "from": "/a", "path": ""}]))
    assert outcome.message.endswith("may not replace the whole record ('')")
    return api(lambda: seed(env).patch([{"op": "copy", "from": "/a", "path": ""}]))


@case(
    "JSON Patch",
    "a failing `test` operation",
    "API",
    "JsonPatchTestFailed",
    'JSON Patch operation 0 (test /title): the value at /title is not "other"',
)
def patch_test_fails(env: Env) -> Outcome:
    return api(lambda: seed(env).patch([{"op": "test", "path": "/title", "value": "other"}]))


@case(
    "JSON Patch",
    "a patch adding the reserved `$gitrecords` key",
    "API",
    "InvalidRecordError",
    "top-level key '$gitrecords' is reserved for tombstones",
)
def patch_reserved(env: Env) -> Outcome:
    return api(
        lambda: seed(env).patch([{"op": "add", "path": "/$gitrecords", "value": {"deleted": "x"}}]).commit()
    )


# -- invalid $schema ----------------------------------------------------------------------------------


@case(
    "invalid $schema",
    'an inline `$schema` that is not a schema (`{"type": 12}`)',
    "API",
    "SchemaError",
    "is not a valid schema: 12 is not valid under any of the given schemas at /type",
)
def schema_inline_invalid(env: Env) -> Outcome:
    return api(lambda: Record.create({"$schema": {"type": 12}}, repo=env.repo))


@case("invalid $schema", "the same on stdin", "gitrecords", "exit 1", "/$schema: schema inline:")
def schema_inline_invalid_exe(env: Env) -> Outcome:
    return exe(env, "create", input='{"$schema": {"type": 12}}')


@case(
    "invalid $schema",
    "an inline schema whose own `$schema` is not a string",
    "API",
    "SchemaError",
    "is not a valid schema: its $schema must be a URI string, not bool",
)
def schema_meta_not_string(env: Env) -> Outcome:
    return api(lambda: Record.create({"$schema": {"$schema": True}}, repo=env.repo))


@case(
    "invalid $schema",
    "`$schema` that is a number",
    "API",
    "SchemaError",
    "$schema must be a string or an object, not int",
)
def schema_number(env: Env) -> Outcome:
    return api(lambda: Record.create({"$schema": 5}, repo=env.repo))


@case(
    "invalid $schema",
    "`$schema` naming a schema missing from the store",
    "CLI",
    "exit 1",
    "schema 'nope.json' is not in the schema store (schemas/)",
)
def schema_missing(env: Env) -> Outcome:
    return cli(env, "create", input='{"$schema": "nope.json"}')


@case(
    "invalid $schema",
    "`put_schema` of an invalid schema",
    "API",
    "SchemaError",
    "schema bad.json: not a valid schema",
)
def schema_put_invalid(env: Env) -> Outcome:
    return api(lambda: env.repo.put_schema("bad.json", {"type": "nothing"}))


@case(
    "invalid $schema",
    "`put_schema` at `../x.json`",
    "API",
    "SchemaError",
    "must be a relative path ending in .json",
)
def schema_put_path(env: Env) -> Outcome:
    return api(lambda: env.repo.put_schema("../x.json", {"type": "object"}))


# -- $ref outside the store -----------------------------------------------------------------------------

REMOTE = "is outside the schema store (schemas/) and remote references are not allowed"


@case(
    "$ref outside the store",
    "`$ref` to `http://`",
    "API",
    "RefResolutionError",
    f"$ref 'http://example.org/s.json' {REMOTE}",
)
def ref_http(env: Env) -> Outcome:
    return api(lambda: Record.create({"$schema": {"$ref": "http://example.org/s.json"}}, repo=env.repo))


@case(
    "$ref outside the store",
    "`$ref` to `https://` in a schema of the store",
    "API",
    "RefResolutionError",
    f"$ref 'https://example.org/s.json' {REMOTE}",
    setup=lambda env: env.repo.put_schema(
        "remote.json", {"type": "object", "properties": {"a": {"$ref": "https://example.org/s.json"}}}
    ),
)
def ref_https_store(env: Env) -> Outcome:
    return api(lambda: Record.create({"$schema": "remote.json", "a": 1}, repo=env.repo))


@case(
    "$ref outside the store",
    "`$ref` to `file:///etc/passwd`",
    "gitrecords",
    "exit 1",
    f"$ref 'file:///etc/passwd' {REMOTE}",
)
def ref_file(env: Env) -> Outcome:
    return exe(env, "create", input='{"$schema": {"$ref": "file:///etc/passwd"}}')


@case(
    "$ref outside the store",
    "`$ref` to `../outside.json` from a store schema",
    "API",
    "RefResolutionError",
    "gitrecords:///outside.json",
    setup=lambda env: env.repo.put_schema(
        "sub/s.json", {"type": "object", "properties": {"a": {"$ref": "../../outside.json"}}}
    ),
)
def ref_dotdot(env: Env) -> Outcome:
    return api(lambda: Record.create({"$schema": "sub/s.json", "a": 1}, repo=env.repo))


@case(
    "$ref outside the store",
    "`$schema` that is an `https://` URL",
    "CLI",
    "exit 1",
    "schema 'https://example.org/s.json' is not in the schema store",
)
def schema_url(env: Env) -> Outcome:
    return cli(env, "create", input='{"$schema": "https://example.org/s.json"}')


@case(
    "$ref outside the store",
    "`$ref` to `http://` in a record, replace_refs()",
    "API",
    "RefResolutionError",
    f"$ref 'http://example.org/x.json' {REMOTE}",
)
def replace_refs_http(env: Env) -> Outcome:
    return api(lambda: Record({"a": {"$ref": "http://example.org/x.json"}}, repo=env.repo).replace_refs())


# -- recursive $ref -------------------------------------------------------------------------------------


@case(
    "recursive $ref",
    '`{"$ref": "#"}`',
    "API",
    "SchemaError",
    "schema has a $ref cycle that never reaches a value",
)
def ref_self(env: Env) -> Outcome:
    return api(lambda: Record.create({"$schema": {"$ref": "#"}}, repo=env.repo))


@case(
    "recursive $ref",
    "two store schemas that `$ref` each other",
    "CLI",
    "exit 1",
    "schema has a $ref cycle",
    setup=lambda env: (
        env.repo.put_schema("a.json", {"$ref": "b.json"}),
        env.repo.put_schema("b.json", {"$ref": "a.json"}),
    ),
)
def ref_mutual(env: Env) -> Outcome:
    return cli(env, "create", input='{"$schema": "a.json"}')


TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        }
    },
    "$ref": "#/$defs/node",
}


@case(
    "recursive $ref",
    "a recursive schema that terminates (a tree)",
    "API",
    "accepted",
    "validates like any schema",
)
def ref_tree(env: Env) -> Outcome:
    record = Record.create({"$schema": TREE, "children": [{"children": [{}]}]}, repo=env.repo)
    bad = {"$schema": TREE, "children": [{"children": [5]}]}
    outcome = api(lambda: Record.create(bad, repo=env.repo))
    assert outcome == Outcome("ValidationError", "5 is not of type 'object'")
    assert Record.get_record(record.id, repo=env.repo)["children"] == [{"children": [{}]}]
    return Outcome("accepted", "validates like any schema")


# -- files edited by hand in a clone ------------------------------------------------------------------------


def push_edit(content: bytes) -> Callable[[Env], None]:
    """Clone the repository, overwrite SEED's file with ``content``, commit and push."""

    def setup(env: Env) -> None:
        clone = env.tmp / "clone"
        subprocess.run(["git", "clone", "-q", str(env.repo.path), str(clone)], check=True, timeout=120)
        (clone / env.repo.path_for(SEED)).write_bytes(content)
        person = ["-c", "user.name=Hand Editor", "-c", "user.email=hand@example.org"]
        subprocess.run(["git", "-C", str(clone), *person, "commit", "-qam", "edit by hand"], check=True)
        subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", "main"], check=True, timeout=120)

    return setup


def named(outcome: Outcome) -> Outcome:
    """The error names the record's file and the commit that wrote it."""
    assert FILE_AND_COMMIT in outcome.message, outcome.message
    return outcome


BROKEN = push_edit(b'{"title": "seed",\n  "a": {"x": 1\n')
FILE_AND_COMMIT = f"record {SEED} ({layout.path_for(SEED)} in commit"


@case(
    "files edited by hand",
    "invalid JSON pushed from a clone: `Record.get_record`",
    "API",
    "InvalidRecordError",
    FILE_AND_COMMIT,
    setup=BROKEN,
)
def broken_get(env: Env) -> Outcome:
    outcome = api(lambda: Record.get_record(SEED, repo=env.repo))
    commit = git(env.repo, "rev-parse", "--short=12", "main").strip()
    assert f"in commit {commit}, blob " in outcome.message
    assert outcome.message.endswith("is not valid JSON: Expecting ',' delimiter (line 3 column 1)")
    return outcome


@case(
    "files edited by hand",
    "the same: `gitrecords list` (reports it on its own line, goes on, exit 1 at the end)",
    "gitrecords",
    "exit 1",
    FILE_AND_COMMIT,
    setup=BROKEN,
)
def broken_list(env: Env) -> Outcome:
    return exe_going_on(env, "list")


@case(
    "files edited by hand",
    "the same: `gitrecords export` (reports it on its own line, goes on, exit 1 at the end)",
    "gitrecords",
    "exit 1",
    FILE_AND_COMMIT,
    setup=BROKEN,
)
def broken_export(env: Env) -> Outcome:
    return exe_going_on(env, "export")


@case(
    "files edited by hand",
    "the same: `gitrecords validate` (reports it, goes on)",
    "gitrecords",
    "exit 1",
    "Error: 1 problem",
    setup=lambda env: (BROKEN(env), Record.create({"title": "a good record"}, repo=env.repo)),
)
def broken_validate(env: Env) -> Outcome:
    proc = run_exe(env, "validate")
    assert proc.returncode == 1
    out = proc.stdout.decode()
    assert out.count("\n") == 1 and layout.path_for(SEED) in out and "not valid JSON" in out, out
    return Outcome(f"exit {proc.returncode}", error_line(proc.stderr.decode()))


@case(
    "files edited by hand",
    "the same: `gitrecords history`",
    "CLI",
    "exit 1",
    FILE_AND_COMMIT,
    setup=BROKEN,
)
def broken_history(env: Env) -> Outcome:
    return cli(env, "history", SEED)


@case(
    "files edited by hand",
    "the same: the revisions before the edit, through the API",
    "API",
    "accepted",
    "readable; the edited revision raises InvalidRecordError",
    setup=BROKEN,
)
def broken_revisions(env: Env) -> Outcome:
    revisions = RevisionsIterator(env.repo, layout.normalize_id(SEED))
    assert len(revisions) == 2
    assert revisions[0] == {"title": "seed", "a": {"x": 1}}
    with pytest.raises(InvalidRecordError, match="in commit"):
        revisions[1]
    return Outcome("accepted", "readable; the edited revision raises InvalidRecordError")


@case(
    "files edited by hand",
    "a JSON array pushed as a record file",
    "CLI",
    "exit 1",
    "does not hold a JSON object",
    setup=push_edit(b"[1, 2]\n"),
)
def pushed_array(env: Env) -> Outcome:
    return named(cli(env, "get", SEED))


@case(
    "files edited by hand",
    "NaN pushed in a record file",
    "API",
    "InvalidRecordError",
    "not valid JSON: NaN is not a JSON number",
    setup=push_edit(b'{"x": NaN}\n'),
)
def pushed_nan(env: Env) -> Outcome:
    return named(api(lambda: Record.get_record(SEED, repo=env.repo)))


@case(
    "files edited by hand",
    "a record file over max_record_bytes pushed",
    "API",
    "InvalidRecordError",
    f"file is larger than {LIMIT} bytes",
    setup=push_edit(json.dumps({"t": "x" * LIMIT}).encode()),
)
def pushed_large(env: Env) -> Outcome:
    return named(api(lambda: Record.get_record(SEED, repo=env.repo)))


# -- the harness --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any attempt to open a connection or a URL is recorded and refused."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args))
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return attempts


@pytest.fixture
def env(tmp_path: Path, gr: Callable[..., Any]) -> Env:
    repo = Repository.init(tmp_path / "data.git", config={"max_record_bytes": LIMIT})
    Record.create({"title": "seed", "a": {"x": 1}}, id_=SEED, repo=repo)
    beside = Path(sys.executable).parent / "gitrecords"
    found = str(beside) if beside.exists() else shutil.which("gitrecords")
    assert found is not None, "the gitrecords executable is not installed: pip install -e '.[test]'"
    return Env(repo, tmp_path, gr, found)


def snapshot(repo: Repository) -> tuple[str, list[str]]:
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    files = sorted(p.name for p in repo.git_dir.iterdir())
    return refs, files


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Hostile, env: Env, no_network: list[str]) -> None:
    if case.setup is not None:
        case.setup(env)
    before = snapshot(env.repo)
    outcome = case.run(env)
    assert outcome.result == case.result, outcome
    assert case.message in outcome.message, outcome.message
    assert "\n" not in outcome.message
    if case.result != "accepted":
        assert snapshot(env.repo) == before, "the repository changed"
    assert not no_network, no_network
    fsck(env.repo)


def test_every_topic_has_cases_through_the_executable() -> None:
    assert [t for t in TOPICS if t not in {c.topic for c in CASES}] == []
    assert {c.topic for c in CASES} <= set(TOPICS)
    assert len({c.id for c in CASES}) == len(CASES)
    executable = {c.topic for c in CASES if c.via == "gitrecords"}
    assert executable >= set(TOPICS) - {"recursive $ref"}, set(TOPICS) - executable


def test_a_refused_bulk_import_leaves_no_crash_report(env: Env) -> None:
    """git fast-import writes fast_import_crash_<pid> when its input ends without "done": an import
    refused for invalid records must not leave that file behind."""
    before = snapshot(env.repo)
    with pytest.raises(Exception, match="nothing was written"):
        env.repo.import_records([{"title": "ok"}] * 3 + [42], workers=1)  # type: ignore[list-item]
    assert snapshot(env.repo) == before
    assert not list(env.repo.git_dir.glob("fast_import_crash_*"))


def test_jsonpatch_errors_keep_their_classes(env: Env) -> None:
    """Callers catch jsonpatch's own errors; the message gains the record and the operation."""
    with pytest.raises(
        jsonpatch.JsonPatchConflict, match=f"record {SEED}: JSON Patch operation 0 \\(remove /nope\\)"
    ):
        seed(env).patch([{"op": "remove", "path": "/nope"}])
