"""The three-way JSON merge of one record: rules by example, then properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitrecords import layout
from gitrecords.errors import GitRecordsError, InvalidRecordError
from gitrecords.merge import (
    ABSENT,
    BOTH_CHANGED,
    EDIT_DELETE,
    TYPE_CHANGE,
    Conflict,
    merge_files,
    merge_json,
    merge_record,
    same,
)

TOMB_1 = layout.tombstone(datetime(2026, 1, 1, tzinfo=UTC))
TOMB_2 = {"$gitrecords": {"deleted": "2026-02-01T00:00:00Z"}}


def spots(conflicts: list[Conflict]) -> list[tuple[str, str, Any, Any, Any]]:
    return [(c.kind, c.pointer, c.base, c.ours, c.theirs) for c in conflicts]


# -- rules, by example ----------------------------------------------------------------------------


def test_different_keys_merge() -> None:
    base = {"title": "T", "year": 2020, "meta": {"a": 1, "b": 2}}
    ours = {"title": "T2", "year": 2020, "meta": {"a": 10, "b": 2}}
    theirs = {"title": "T", "year": 2021, "meta": {"a": 1, "b": 2, "c": 3}, "new": True}
    result = merge_json(base, ours, theirs)
    assert result.clean and result.conflicts == []
    assert result.value == {"title": "T2", "year": 2021, "meta": {"a": 10, "b": 2, "c": 3}, "new": True}


def test_same_field_changed_differently_is_a_conflict_with_its_pointer() -> None:
    base = {"titles": [{"title": "A"}], "meta": {"x/y": 1, "a~b": 1}}
    ours = {"titles": [{"title": "A"}], "meta": {"x/y": 2, "a~b": 5}}
    theirs = {"titles": [{"title": "A"}], "meta": {"x/y": 3, "a~b": 5}}
    result = merge_json(base, ours, theirs)
    assert spots(result.conflicts) == [(BOTH_CHANGED, "/meta/x~1y", 1, 2, 3)]
    assert not result.clean
    assert merge_json(base, ours, theirs, strategy="ours").value["meta"] == {"x/y": 2, "a~b": 5}
    assert merge_json(base, ours, theirs, strategy="theirs").value["meta"] == {"x/y": 3, "a~b": 5}
    assert merge_json(base, ours, theirs, strategy="theirs").clean


def test_arrays_are_atomic() -> None:
    base = {"tags": ["a", "b"]}
    # one side changed the array: take it
    assert merge_json(base, {"tags": ["a", "b", "c"]}, base).value == {"tags": ["a", "b", "c"]}
    assert merge_json(base, base, {"tags": ["b"]}).value == {"tags": ["b"]}
    # the same change on both sides: fine
    assert merge_json(base, {"tags": ["c"]}, {"tags": ["c"]}).clean
    # different changes, even to different items: a conflict on the whole array
    result = merge_json(base, {"tags": ["A", "b"]}, {"tags": ["a", "B"]})
    assert spots(result.conflicts) == [(BOTH_CHANGED, "/tags", ["a", "b"], ["A", "b"], ["a", "B"])]
    # objects inside arrays do not merge either
    base2 = {"creators": [{"name": "X", "orcid": None}]}
    result = merge_json(
        base2, {"creators": [{"name": "Y", "orcid": None}]}, {"creators": [{"name": "X", "orcid": "0"}]}
    )
    assert [c.pointer for c in result.conflicts] == ["/creators"]


def test_type_changes_conflict() -> None:
    base = {"a": {"x": 1}}
    result = merge_json(base, {"a": {"x": 2}}, {"a": [1]})
    assert spots(result.conflicts) == [(TYPE_CHANGE, "/a", {"x": 1}, {"x": 2}, [1])]
    # a type change on one side only is simply taken
    assert merge_json(base, {"a": "text"}, base).value == {"a": "text"}
    # 1, 1.0 and true are different JSON values
    result = merge_json({"n": 0}, {"n": 1}, {"n": 1.0})
    assert [c.kind for c in result.conflicts] == [BOTH_CHANGED]
    assert [c.kind for c in merge_json({"n": 0}, {"n": 1}, {"n": True}).conflicts] == [TYPE_CHANGE]


def test_removed_on_one_side_changed_on_the_other() -> None:
    base = {"a": 1, "b": 2}
    result = merge_json(base, {"b": 2}, {"a": 5, "b": 2})
    assert spots(result.conflicts) == [(EDIT_DELETE, "/a", 1, ABSENT, 5)]
    assert "removed on ours, changed on theirs" in result.conflicts[0].describe()
    assert merge_json(base, {"b": 2}, {"a": 5, "b": 2}, strategy="ours").value == {"b": 2}
    assert merge_json(base, {"b": 2}, {"a": 5, "b": 2}, strategy="theirs").value == {"a": 5, "b": 2}
    # removed on both sides, or removed on one and unchanged on the other: removed
    assert merge_json(base, {"b": 2}, {"b": 2}).value == {"b": 2}
    assert merge_json(base, {"b": 2}, {"a": 1, "b": 3}).value == {"b": 3}


def test_keys_added_on_both_sides() -> None:
    base: dict[str, Any] = {}
    assert merge_json(base, {"a": 1}, {"b": 2}).value == {"a": 1, "b": 2}
    assert merge_json(base, {"a": 1}, {"a": 1}).value == {"a": 1}
    assert spots(merge_json(base, {"a": 1}, {"a": 2}).conflicts) == [(BOTH_CHANGED, "/a", ABSENT, 1, 2)]
    # two new objects merge key by key
    result = merge_json(base, {"o": {"x": 1}}, {"o": {"y": 2}})
    assert result.value == {"o": {"x": 1, "y": 2}}


def test_record_deleted_on_one_side_and_changed_on_the_other() -> None:
    base = {"title": "T"}
    for ours, theirs in ((TOMB_1, {"title": "U"}), ({"title": "U"}, TOMB_1), (ABSENT, {"title": "U"})):
        result = merge_record(base, ours, theirs)
        assert spots(result.conflicts) == [(EDIT_DELETE, "", base, ours, theirs)]
        assert merge_record(base, ours, theirs, strategy="ours").value == ours
        assert merge_record(base, ours, theirs, strategy="theirs").value == theirs
    text = merge_record(base, TOMB_1, {"title": "U"}).conflicts[0].describe()
    assert text == (
        'record: deleted on ours, changed on theirs: base {"title": "T"}, '
        'ours (deleted), theirs {"title": "U"}'
    )


def test_record_deleted_on_both_sides_keeps_the_earlier_tombstone() -> None:
    base = {"title": "T"}
    assert merge_record(base, TOMB_2, TOMB_1).value == TOMB_1
    assert merge_record(base, TOMB_1, TOMB_2).value == TOMB_1
    assert merge_record(base, ABSENT, TOMB_2).value == TOMB_2
    assert merge_record(base, ABSENT, ABSENT).value is ABSENT
    # deleted on one side, unchanged on the other: deleted
    assert merge_record(base, TOMB_1, base).value == TOMB_1
    # undeleted on one side
    assert merge_record(TOMB_1, TOMB_1, {"title": "back"}).value == {"title": "back"}


def test_record_undeleted_on_both_sides_merges_fields() -> None:
    result = merge_record(TOMB_1, {"a": 1, "b": 2}, {"a": 1, "c": 3})
    assert result.value == {"a": 1, "b": 2, "c": 3}
    assert result.clean


def test_merge_files_reads_and_writes_canonical_json() -> None:
    base = b'{"a": 1, "b": 1}'
    data, result = merge_files(base, b'{"b":1,"a":2}', b'{"a": 1, "b": 3}', path="records/aa/bb/x.json")
    assert result.clean
    assert data == layout.dumps({"a": 2, "b": 3})
    # an empty base file is how git says the file is new on both sides
    data, result = merge_files(b"", b'{"a": 1}', b'{"b": 2}')
    assert data == layout.dumps({"a": 1, "b": 2})
    with pytest.raises(InvalidRecordError, match=r"x\.json \(theirs\) is not valid JSON"):
        merge_files(base, base, b"<<<<<<< HEAD", path="x.json")
    with pytest.raises(InvalidRecordError, match="duplicate key"):
        merge_files(base, base, b'{"a": 1, "a": 2}')
    data, result = merge_files(base, b'{"a": 2, "b": 1}', b'{"a": 3, "b": 1}')
    assert data is None and [c.pointer for c in result.unresolved] == ["/a"]


def test_conflict_json_leaves_out_absent_sides() -> None:
    conflict = merge_json({"a": 1}, {}, {"a": 2}).conflicts[0]
    as_json = conflict.to_json()
    assert as_json["kind"] == EDIT_DELETE and as_json["pointer"] == "/a"
    assert as_json["base"] == 1 and as_json["theirs"] == 2 and "ours" not in as_json
    assert as_json["resolved"] is False


def test_unknown_strategy() -> None:
    with pytest.raises(GitRecordsError, match="unknown merge strategy 'mine'"):
        merge_json({}, {}, {}, strategy="mine")


def test_same_is_strict_json_equality() -> None:
    assert same({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})
    assert not same(1, 1.0)
    assert not same(1, True)
    assert not same(0.0, -0.0)
    assert not same([1], [1, 2])
    assert not same({"a": 1}, {"b": 1})
    assert same(ABSENT, ABSENT) and not same(ABSENT, None)


# -- properties -----------------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d/e", "f~g"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False, width=16)
    | st.text(max_size=3)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=5)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def canonical(value: Any) -> bytes:
    return layout.dumps(value)


@SETTINGS
@given(OBJECTS, OBJECTS)
def test_a_change_against_an_unchanged_side_is_taken(base: dict[str, Any], x: dict[str, Any]) -> None:
    for result in (merge_json(base, x, base), merge_json(base, base, x)):
        assert result.conflicts == []
        assert canonical(result.value) == canonical(x)


@SETTINGS
@given(OBJECTS, OBJECTS)
def test_the_same_change_on_both_sides_is_taken(base: dict[str, Any], x: dict[str, Any]) -> None:
    result = merge_json(base, x, x)
    assert result.conflicts == []
    assert canonical(result.value) == canonical(x)


@SETTINGS
@given(OBJECTS, OBJECTS, OBJECTS)
def test_merge_is_symmetric_up_to_conflict_sides(
    base: dict[str, Any], x: dict[str, Any], y: dict[str, Any]
) -> None:
    one = merge_json(base, x, y)
    two = merge_json(base, y, x)
    assert [c.swapped() for c in one.conflicts] == two.conflicts
    if not one.conflicts:
        assert canonical(one.value) == canonical(two.value)
    # choosing our side is choosing their side of the mirrored merge
    assert canonical(merge_json(base, x, y, strategy="ours").value) == canonical(
        merge_json(base, y, x, strategy="theirs").value
    )


@SETTINGS
@given(OBJECTS, OBJECTS, OBJECTS, st.sampled_from(["ours", "theirs"]))
def test_results_are_canonical_json_and_strategies_leave_nothing_open(
    base: dict[str, Any], x: dict[str, Any], y: dict[str, Any], strategy: str
) -> None:
    result = merge_json(base, x, y, strategy=strategy)
    assert result.clean
    assert all(c.resolved for c in result.conflicts)
    data = canonical(result.value)  # the merge never makes a value JSON cannot hold
    assert layout.is_canonical(data)
    assert [c.pointer for c in result.conflicts] == [c.pointer for c in merge_json(base, x, y).conflicts]
    # at every conflicting spot, the chosen side's value (or its absence) is what was written
    side = x if strategy == "ours" else y
    for conflict in result.conflicts:
        assert same(_at(result.value, conflict.pointer), _at(side, conflict.pointer))


def _at(value: Any, pointer: str) -> Any:
    for part in pointer.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(value, dict) or key not in value:
            return ABSENT
        value = value[key]
    return value


@st.composite
def disjoint_edits(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A base object and two sides that edit (change, add or remove) different top-level keys."""
    base = draw(OBJECTS)
    keys = ["a", "b", "c", "d/e", "f~g"]
    mine = set(draw(st.lists(st.sampled_from(keys), unique=True)))
    rest = [k for k in keys if k not in mine]
    theirs_keys = set(draw(st.lists(st.sampled_from(rest), unique=True))) if rest else set()

    def edit(chosen: set[str]) -> dict[str, Any]:
        side = dict(base)
        for key in chosen:
            if draw(st.booleans()):
                side.pop(key, None)
            else:
                side[key] = draw(VALUES)
        return side

    return base, edit(mine), edit(theirs_keys)


@SETTINGS
@given(disjoint_edits())
def test_edits_of_different_fields_never_conflict(
    case: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
) -> None:
    base, x, y = case
    result = merge_json(base, x, y)
    assert result.conflicts == []
    for key in base.keys() | x.keys() | y.keys():
        expected = (
            x.get(key, ABSENT) if not same(x.get(key, ABSENT), base.get(key, ABSENT)) else y.get(key, ABSENT)
        )
        assert same(result.value.get(key, ABSENT), expected), key


@SETTINGS
@given(OBJECTS, OBJECTS, OBJECTS)
def test_record_merge_agrees_with_the_json_merge_for_live_records(
    base: dict[str, Any], x: dict[str, Any], y: dict[str, Any]
) -> None:
    record = merge_record(base, x, y)
    plain = merge_json(base, x, y)
    assert spots(record.conflicts) == spots(plain.conflicts)
    if plain.clean:
        assert canonical(record.value) == canonical(plain.value)
