"""The fast canonical encoder (orjson) writes exactly format 1's bytes, or steps aside (property tests).

Format 1's canonical form is defined by the standard library's
``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\\n"``;
:func:`layout.dumps` writes it with orjson where orjson writes the same bytes
(no floats, integers within 64 bits) and with json.dumps otherwise.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import uuid

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gitrecords import layout
from gitrecords.errors import InvalidRecordError

MANY = settings(database=None, deadline=None, max_examples=600, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(exclude_categories=("Cs",)))  # an unpaired surrogate cannot be written
integers = (
    st.integers() | st.integers(min_value=-(2**64), max_value=2**65) | st.sampled_from([2**63, 2**64 - 1])
)
floats = st.floats(allow_nan=False, allow_infinity=False)
no_floats = st.none() | st.booleans() | integers | text
json_values = st.recursive(
    no_floats | floats,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=40,
)
float_free_values = st.recursive(
    no_floats,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=40,
)


def reference(value: object) -> bytes:
    """Format 1, as docs/format.md defines it."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(has_float(v) for v in value)
    return False


@MANY
@given(json_values)
@example({"b": [1, 2], "a": "é", "": None, "Z": {"y": 1.5, "x": -0.0, "w": 1e-05, "v": 1e16}})
@example({"a: 1.5": "b: 2e3", "\n": ["x\n  1.0"]})
@example({"n": 2**64, "m": -(2**63) - 1, "k": 10**30})
@example({"\x00\x1f\x7f\u2028\u2029\ufeff\U0010ffff": '\\ " / \b\f\n\r\t'})
def test_dumps_writes_format_1_bytes(value) -> None:
    assert layout.dumps(value) == reference(value)
    assert layout.dumps_parsed(layout.loads(reference(value))) == reference(value)


@MANY
@given(float_free_values)
def test_orjson_matches_format_1_without_floats(value) -> None:
    """The domain where orjson is used: it must write the same bytes (or refuse, e.g. beyond 64 bits)."""
    try:
        raw = orjson.dumps(value, option=layout._ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return
    assert raw + b"\n" == reference(value)
    assert not layout._has_float(raw) or ": " in str(value)


@MANY
@given(json_values)
@example([1e-05])
@example({"a": [[-0.0]]})
def test_every_float_sends_the_value_to_json_dumps(value) -> None:
    """No false negatives: a value with a float is never written by orjson."""
    try:
        raw = orjson.dumps(value, option=layout._ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return
    if has_float(value):
        assert layout._has_float(raw)


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        {"when": datetime.datetime(2024, 1, 2, 3, 4, 5)},
        {"day": datetime.date(2024, 1, 2)},
        {"id": uuid.UUID(int=1)},
        {"colour": Colour.RED},
        {"point": Point(1)},
        {"nan": float("nan")},
        {"inf": [float("inf")]},
        {1: "non-string key"},
    ],
)
def test_what_orjson_would_write_but_json_cannot_is_refused(value) -> None:
    with pytest.raises(InvalidRecordError):
        layout.dumps(value)


def test_deep_values_from_loads_take_the_checked_path() -> None:
    depth = layout.MAX_DEPTH + 2  # lists, the outermost at depth 0
    with pytest.raises(InvalidRecordError, match="nested deeper"):
        layout.dumps_parsed(layout.loads(b"[" * depth + b"]" * depth))
    fine = layout.loads(b"[" * layout.MAX_DEPTH + b"]" * layout.MAX_DEPTH)
    assert layout.dumps_parsed(fine) == reference(fine)
