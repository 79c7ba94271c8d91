"""Format 1 layout: canonical JSON bytes, record id <-> path, strict parsing (property tests)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gitrecords import Repository, layout
from gitrecords.errors import InvalidRecordError, RepositoryError

FAST = settings(database=None, deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=40,
)
json_objects = st.dictionaries(st.text(), scalars | st.lists(scalars, max_size=3), max_size=8)

PATH_RE = re.compile(r"^records/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f-]{36})\.json$")


# -- canonical JSON -------------------------------------------------------------------


@FAST
@given(json_values)
@example({"b": [1, 2], "a": "é", "": None, "Z": {"y": 1.5, "x": -0.0}})
@example('\U0001f600 \u2028 \x00 \\ "')
def test_canonical_round_trip(value) -> None:
    raw = layout.dumps(value)
    assert raw.endswith(b"\n")
    assert not raw.endswith(b"\n\n")
    assert b"\r" not in raw
    raw.decode("utf-8")  # valid UTF-8
    assert layout.loads(raw) == value
    assert layout.dumps(layout.loads(raw)) == raw
    assert layout.is_canonical(raw)
    # the standard library reads it too, and finds the same value
    assert json.loads(raw) == value
    # a file read again (checked=True) gives the same value, in the same key order
    again = layout.loads(b"\xef\xbb\xbf" + raw, checked=True)
    assert again == value and json.dumps(again) == json.dumps(layout.loads(raw))


@FAST
@given(json_values)
def test_any_formatting_has_one_canonical_form(value) -> None:
    canonical = layout.dumps(value)
    for text in (
        json.dumps(value),  # ASCII escapes, incl. surrogate pairs for non-BMP characters
        json.dumps(value, separators=(",", ":"), ensure_ascii=False),
        json.dumps(value, indent=4, ensure_ascii=False) + "\n\n",
        "\ufeff" + json.dumps(value),
    ):
        assert layout.dumps(layout.loads(text.encode("utf-8"))) == canonical
        assert layout.is_canonical(text.encode("utf-8")) == (text.encode("utf-8") == canonical)


@FAST
@given(json_objects)
def test_key_order_does_not_matter(value) -> None:
    reordered = dict(reversed(list(value.items())))
    assert layout.dumps(reordered) == layout.dumps(value)
    keys = list(json.loads(layout.dumps(value)))
    assert keys == sorted(keys)  # sorted by code point


def test_canonical_bytes_are_exactly_specified() -> None:
    raw = layout.dumps({"b": [1, 2], "a": "é", "c": {}, "d": [], "e": 1.0, "f": 10**20})
    assert (
        raw
        == (
            '{\n  "a": "é",\n  "b": [\n    1,\n    2\n  ],\n  "c": {},\n  "d": [],\n'
            '  "e": 1.0,\n  "f": 100000000000000000000\n}\n'
        ).encode()
    )
    # code point order, not locale or case-folded order
    assert list(json.loads(layout.dumps({"b": 1, "B": 2, "é": 3, "a": 4, "\U0001f600": 5, "\uffff": 6}))) == [
        "B",
        "a",
        "b",
        "é",
        "\uffff",
        "\U0001f600",
    ]


@FAST
@given(st.text(alphabet=st.characters(codec="utf-8")), st.text(alphabet=st.characters(codec="utf-8")))
def test_is_canonical_is_false_for_other_formatting(key, value) -> None:
    data = {key: value}
    assert not layout.is_canonical(json.dumps(data, separators=(",", ":")).encode())
    assert not layout.is_canonical(layout.dumps(data).rstrip(b"\n"))
    assert not layout.is_canonical(layout.dumps(data) + b"\n")


# -- strict parsing ----------------------------------------------------------------------


@FAST
@given(st.binary(max_size=200))
@example(b"\xff")
@example(b'{"a": "\xc3"}')
@example(b"\xed\xa0\x80")  # a UTF-8-encoded surrogate
@example(b'"\xf4\x90\x80\x80"')  # above U+10FFFF
def test_any_bytes_parse_or_raise_invalid_record_error(raw: bytes) -> None:
    try:
        value = layout.loads(raw)
    except InvalidRecordError:
        return
    # whatever is accepted can be written back canonically and reads back the same
    again = layout.loads(layout.dumps(value))
    assert again == value


@FAST
@given(json_values, st.data())
def test_mutated_json_parses_or_raises_invalid_record_error(value, data) -> None:
    raw = bytearray(layout.dumps(value))
    position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[position] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        parsed = layout.loads(bytes(raw))
    except InvalidRecordError:
        return
    assert layout.loads(layout.dumps(parsed)) == parsed


#: byte sequences that are invalid UTF-8 whatever comes before or after them
NEVER_UTF8 = [b"\xff", b"\xfe", b"\xf5\x80\x80\x80", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]


@FAST
@given(st.binary(max_size=30), st.sampled_from(NEVER_UTF8), st.binary(max_size=30))
def test_invalid_utf8_is_refused(before: bytes, bad: bytes, after: bytes) -> None:
    raw = b'{"a": "' + before + bad + after + b'"}'
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    with pytest.raises(InvalidRecordError, match="not valid UTF-8"):
        layout.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [b"NaN", b"Infinity", b"-Infinity", b'{"a": NaN}', b"[1, Infinity]", b"1e400", b'{"x": [-1e999]}'],
)
def test_nan_and_infinity_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRecordError):
        layout.loads(raw)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), {"a": [float("nan")]}])
def test_nan_and_infinity_cannot_be_written(value) -> None:
    with pytest.raises(InvalidRecordError, match="not valid JSON"):
        layout.dumps(value)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 1}',
        b'{"a": {"b": 1, "b": 2}}',
        b'[{"k": 1}, {"k": 1, "k": 2}]',
        b'{"a": 1, "\\u0061": 2}',
    ],
)
def test_duplicate_keys_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRecordError, match="duplicate key"):
        layout.loads(raw)


@FAST
@given(st.text(min_size=1), json_values, json_values)
def test_duplicate_keys_anywhere(key, first, second) -> None:
    raw = "[" + json.dumps({"x": 1}) + ", {" + json.dumps(key) + ": " + json.dumps(first)
    raw += ", " + json.dumps(key) + ": " + json.dumps(second) + "}]"
    with pytest.raises(InvalidRecordError, match="duplicate key"):
        layout.loads(raw.encode())


@FAST
@given(st.dictionaries(st.text(), json_values, max_size=6))
@example({"x": 1.5, "y": [1e-05, -0.0, 1e16]})
@example({"big": 2**70, "s": "\u2028\x00\\"})
def test_canonical_files_parse_as_the_strict_parse_does(value) -> None:
    """Canonical bytes take the C path (orjson); the value is the strict parse's, type for type."""
    raw = layout.dumps(value)
    fast, strict = layout.loads(raw), layout.loads(raw.decode())  # str input: the strict parse
    assert fast == strict
    assert json.dumps(fast, sort_keys=True) == json.dumps(strict, sort_keys=True)  # 1 vs 1.0, -0.0


def test_files_gitrecords_writes_take_the_c_path() -> None:
    value = {"titles": [{"title": 'Straße \u2028 "q"'}], "n": 2**60, "ok": True, "none": None, "e": {}}
    raw = layout.dumps(value)
    assert layout._canonical_value(raw) == value
    assert layout._canonical_value(raw.replace(b"\n", b"\r\n")) is layout._NOT_CANONICAL


@FAST
@given(st.text(), json_values, json_values)
def test_duplicate_keys_in_canonical_layout_are_refused(key, first, second) -> None:
    member = lambda v: json.dumps(key, ensure_ascii=False) + ": " + json.dumps(v, ensure_ascii=False)  # noqa: E731
    raw = ("{\n  " + member(first) + ",\n  " + member(second) + "\n}\n").encode()
    with pytest.raises(InvalidRecordError, match="duplicate key"):
        layout.loads(raw)


@pytest.mark.parametrize("depth", [layout.MAX_DEPTH, layout.MAX_DEPTH + 5, 1_100])
def test_deep_canonical_files_are_parsed_as_the_strict_parse_does(depth: int) -> None:
    """``{"a": {"a": ... 1}}`` in canonical layout, written line by line (json.dumps would recurse)."""
    lines = [("  " * i) + ('"a": ' if i else "") + "{" for i in range(depth)]
    lines += ["  " * depth + '"a": 1'] + ["  " * i + "}" for i in reversed(range(depth))]
    raw = ("\n".join(lines) + "\n").encode()

    def outcome(data: bytes | str) -> object:
        try:
            return layout.loads(data)
        except InvalidRecordError as err:
            return str(err)

    assert outcome(raw) == outcome(raw.decode())


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deep_nesting_is_refused_on_read(depth: int) -> None:
    with pytest.raises(InvalidRecordError, match="nested too deeply"):
        layout.loads(b"[" * depth + b"]" * depth)
    with pytest.raises(InvalidRecordError, match="nested too deeply"):
        layout.loads(b'{"a":' * depth + b"1" + b"}" * depth)


def test_deep_nesting_is_refused_on_write() -> None:
    def nest(depth: int) -> list:
        value: list = []
        for _ in range(depth):
            value = [value]
        return value

    layout.dumps(nest(layout.MAX_DEPTH))
    with pytest.raises(InvalidRecordError, match=f"nested deeper than {layout.MAX_DEPTH} levels"):
        layout.dumps(nest(layout.MAX_DEPTH + 1))
    with pytest.raises(InvalidRecordError):
        layout.dumps(nest(sys.getrecursionlimit() * 2))


@pytest.mark.parametrize(("leaf", "inner"), [(1, 0), ("s", 0), ([], 0), ({}, 0), ([1], 1), ({"k": None}, 1)])
def test_dumps_parsed_refuses_what_dumps_refuses_for_depth(leaf: object, inner: int) -> None:
    """A parsed record changed by values checked on their own (an edit's --set or JSON Patch)
    is written by dumps_parsed: the values may sit deeper in the record than they were checked."""

    def nest(depth: int) -> dict:  # the deepest value at depth ``depth``
        value: object = leaf
        for number in range(depth - 1 - inner):
            value = {"a": value} if number % 2 else [value]
        return {"r": value}

    fits = nest(layout.MAX_DEPTH)
    assert layout.dumps_parsed(fits) == layout.dumps(fits)
    with pytest.raises(InvalidRecordError, match=f"nested deeper than {layout.MAX_DEPTH} levels at /r/"):
        layout.dumps_parsed(nest(layout.MAX_DEPTH + 1))


@pytest.mark.parametrize("raw", [b'"\\ud800"', b'{"k": ["\\udfff"]}', b'{"\\udc00": 1}', b'"\\ud83d x"'])
def test_unpaired_surrogate_escapes_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRecordError, match="surrogate"):
        layout.loads(raw)


def test_surrogate_pairs_are_fine() -> None:
    assert layout.loads(b'"\\ud83d\\ude00"') == "\U0001f600"
    assert layout.loads(b'"\\\\ud800"') == "\\ud800"  # an escaped backslash, not an escape


@pytest.mark.parametrize("value", ["\ud800", {"\udc00": 1}, ["ok", {"k": "x\udfffy"}]])
def test_unpaired_surrogates_cannot_be_written(value) -> None:
    with pytest.raises(InvalidRecordError, match="surrogate"):
        layout.dumps(value)


def test_integers_beyond_the_conversion_limit() -> None:
    digits = sys.get_int_max_str_digits() + 1
    with pytest.raises(InvalidRecordError):
        layout.loads(b"1" * digits)
    with pytest.raises(InvalidRecordError):
        layout.dumps({"n": 10**digits})
    big = 10 ** (sys.get_int_max_str_digits() - 1)
    assert layout.loads(layout.dumps({"n": big})) == {"n": big}


@pytest.mark.parametrize(
    "raw", [b"", b" ", b"{", b'{"a": 1} {"b": 2}', b"{'a': 1}", b"[1,]", b'{"a" 1}', b"\x00", b"01"]
)
def test_malformed_json_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRecordError, match="not valid JSON"):
        layout.loads(raw, what="thing")


def test_error_messages_name_the_thing_and_position() -> None:
    with pytest.raises(InvalidRecordError) as info:
        layout.loads(b'{\n  "a": 1,\n  "b": }\n', what="record 1234")
    assert str(info.value) == "record 1234 is not valid JSON: Expecting value (line 3 column 8)"
    with pytest.raises(InvalidRecordError) as info:
        layout.loads(b'{"a": "\xff"}', what="record 1234")
    assert str(info.value) == "record 1234 is not valid UTF-8 (byte 7)"


@pytest.mark.parametrize(
    "value", [{1: "a"}, {"a": {1, 2}}, {"a": b"x"}, {"a": object()}, {"a": 1j}, {"a": {(1, 2): 3}}]
)
def test_values_that_are_not_json_cannot_be_written(value) -> None:
    with pytest.raises(InvalidRecordError):
        layout.dumps(value)


# -- tombstones ----------------------------------------------------------------------------


def test_tombstones() -> None:
    from datetime import datetime, timedelta, timezone

    when = datetime(2024, 2, 29, 13, 14, 15, 999, tzinfo=timezone(timedelta(hours=2)))
    stone = layout.tombstone(when)
    assert stone == {"$gitrecords": {"deleted": "2024-02-29T11:14:15Z"}}
    assert layout.is_tombstone(stone)
    assert layout.is_tombstone(layout.loads(layout.dumps(stone)))
    assert not layout.is_tombstone({"$gitrecords": {"deleted": "x"}, "title": "a record"})
    assert not layout.is_tombstone({"$gitrecords": "deleted"})
    assert not layout.is_tombstone([stone])


# -- record id <-> path -----------------------------------------------------------------------


@FAST
@given(st.uuids(), st.sampled_from(["records", "data", "r"]))
def test_id_path_round_trip(record_id: uuid.UUID, records_dir: str) -> None:
    path = layout.path_for(record_id, records_dir)
    assert layout.id_from_path(path, records_dir) == record_id
    head, fan1, fan2, name = path.split("/")
    assert head == records_dir
    digest = hashlib.sha256(str(record_id).encode()).hexdigest()
    assert (fan1, fan2) == (digest[:2], digest[2:4])
    assert name == f"{record_id}.json"
    assert layout.is_record_file_name(name)
    assert layout.id_from_path(path, "other") is None


@FAST
@given(st.uuids())
def test_every_spelling_of_an_id_has_one_path(record_id: uuid.UUID) -> None:
    path = layout.path_for(record_id)
    assert PATH_RE.match(path)
    for spelling in (
        str(record_id),
        str(record_id).upper(),
        "{" + str(record_id) + "}",
        "{" + str(record_id).upper() + "}",
        record_id.urn,
        record_id.hex,
        f" {record_id}\n",
    ):
        assert layout.normalize_id(spelling) == record_id
        assert layout.path_for(spelling) == path


@FAST
@given(st.uuids(), st.integers(min_value=0, max_value=0xFFFF))
def test_paths_outside_the_layout_are_not_records(record_id: uuid.UUID, fan: int) -> None:
    path = layout.path_for(record_id)
    _, fan1, fan2, name = path.split("/")
    wrong = f"{fan:04x}"
    assume(wrong != fan1 + fan2)
    assert layout.id_from_path(f"records/{wrong[:2]}/{wrong[2:]}/{name}") is None
    assert layout.id_from_path(f"records/{fan1}/{fan2}/{name.upper()}") is None
    assert layout.id_from_path(f"records/{fan1}/{name}") is None
    assert layout.id_from_path(f"records/{fan1}/{fan2}/x/{name}") is None
    assert layout.id_from_path(f"records/{fan1}/{fan2}/{record_id}.json.bak") is None
    assert layout.id_from_path(f"records/{fan1}/{fan2}/{record_id.hex}.json") is None
    assert layout.id_from_path(f"./records/{fan1}/{fan2}/{name}") is None
    assert layout.id_from_path(f"/{path}") is None


@FAST
@given(st.text(max_size=60))
@example("../x")
@example("../../etc/passwd")
@example("00000000-0000-0000-0000-000000000000/../../x")
@example("\x00")
@example("+" + "0" * 31)
def test_normalize_id_accepts_only_uuids(text: str) -> None:
    try:
        record_id = layout.normalize_id(text)
    except InvalidRecordError:
        return
    assert isinstance(record_id, uuid.UUID)
    assert PATH_RE.match(layout.path_for(record_id))
    for bad in "/\\.\0":
        assert bad not in text


@pytest.mark.parametrize("bad", [None, 12, 1.5, b"00000000000000000000000000000000", ["x"]])
def test_normalize_id_refuses_other_types(bad) -> None:
    with pytest.raises(InvalidRecordError, match="must be a UUID"):
        layout.normalize_id(bad)


def test_the_documented_example() -> None:
    assert layout.path_for("deadbeef-9fe4-43d3-a08f-38c2b309afba") == (
        "records/74/a4/deadbeef-9fe4-43d3-a08f-38c2b309afba.json"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.00000000000000000001", "has more significant digits than can be stored (it would become 1.0)"),
        ("3.14159265358979323846264", "has more significant digits than can be stored"),
        ("-0", "the number -0 cannot be stored as written"),
        ("1e-400", "the number 1e-400 is too small to be stored as written (it would become 0.0)"),
        ("-1.234567e-320", "the number -1.234567e-320 is too small to be stored as written (it would become"),
    ],
)
def test_numbers_that_would_change_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidRecordError, match=re.escape(message)):
        layout.loads(f'{{"n": {text}}}')


@pytest.mark.parametrize(
    "text",
    [
        "0.30000000000000004",
        "-0.0",
        "1e300",
        "12345678901234567890123",
        "0.1",
        "0e-400",
        "5e-324",
        "2.2e-308",
    ],
)
def test_numbers_that_round_trip_are_kept_exactly(text: str) -> None:
    value = layout.loads(f'{{"n": {text}}}')
    assert layout.loads(layout.dumps(value)) == value
    assert json.loads(layout.dumps(value))["n"] == json.loads(text)


def test_the_cli_refuses_a_number_it_would_round(gr, title_repo) -> None:
    before = title_repo.tip()
    result = gr(title_repo, "create", input='{"title": "pi", "pi": 3.14159265358979323846264}')
    assert result.exit_code == 1
    assert "3.14159265358979323846264 has more significant digits than can be stored" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert title_repo.tip() == before


@pytest.mark.parametrize("folder", ["data/records", "", ".", "..", "/abs"])
def test_a_records_or_schemas_folder_below_the_top_is_refused(tmp_path: Path, folder: str) -> None:
    """Record and schema paths are read at the top of the tree only: a nested folder was accepted
    by init and then held no records at all."""
    for key in ("records", "schemas"):
        with pytest.raises(RepositoryError, match=f"'{key}' must name one folder at the top"):
            Repository.init(tmp_path / f"{key}-{len(folder)}.git", config={key: folder})


def test_the_decoders_own_refusals_name_what_was_read() -> None:
    """A duplicate key, NaN or a number too large for a float: the message names the input
    (a file and line in an import, a side in a merge), as every other parse error does."""
    for text in ('{"a": 1, "a": 2}', '{"a": NaN}', '{"a": 1e999}'):
        with pytest.raises(InvalidRecordError, match=r"^records\.jsonl line 3 is not valid JSON: "):
            layout.loads(text, what="records.jsonl line 3")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"a": -0}', "use 0 or -0.0 (line 1, at /a)"),
        ("-0", "use 0 or -0.0"),  # the whole text: no place
        (
            '{\n  "a": {"b": [1, 2, NaN]}\n}',
            "NaN is not a JSON number (use null or a string) (line 2, at /a/b/2)",
        ),
        (
            '[{"x": 1},\n {"y": {"z": 1e-400}}]',
            "(it would become 0.0): store it as a string (line 2, at /1/y/z)",
        ),
        ('[\n{"t": 1},\n{"t": 1,\n "t": 2}]', "duplicate key 't' in JSON object (line 4, at /1/t)"),
        ('{"a~/b": [1],\n "a~/b": 2}', "duplicate key 'a~/b' in JSON object (line 2, at /a~0~1b)"),
    ],
)
def test_a_refused_value_is_placed_by_line_and_pointer(text: str, said: str) -> None:
    """The decoder's hooks are not told where they are: a refused value of a file of many records
    is found again, so the message names its line and JSON pointer, as a syntax error's does."""
    with pytest.raises(InvalidRecordError) as raised:
        layout.loads(text)
    assert str(raised.value).endswith(said)
