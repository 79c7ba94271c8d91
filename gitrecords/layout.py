"""Format version 1: record id <-> path, canonical JSON bytes, tombstones.

>>> path_for("deadbeef-9fe4-43d3-a08f-38c2b309afba")
'records/74/a4/deadbeef-9fe4-43d3-a08f-38c2b309afba.json'
>>> dumps({"b": [1, 2], "a": "é"}).decode()
'{\\n  "a": "é",\\n  "b": [\\n    1,\\n    2\\n  ]\\n}\\n'
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from .errors import InvalidRecordError

FORMAT_VERSION = 1
LAYOUT = "sha256-2x2"
RECORDS_DIR = "records"
CONFIG_FILE = "gitrecords.json"
TOMBSTONE_KEY = "$gitrecords"
#: default limit on the size of one record file, in bytes (see docs/format.md)
MAX_RECORD_BYTES = 10 * 1024 * 1024
#: how deep a record's values may nest: far past any metadata (Elasticsearch's default mapping
#: depth is 20), and shallow enough for the code that walks a record by recursion (a copy,
#: the search index's rows, validation) under any caller's stack (500 levels overflowed it)
MAX_DEPTH = 100

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_FILE_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json$")


def normalize_id(id_: uuid.UUID | str) -> uuid.UUID:
    """Return ``id_`` as a UUID; accept any form :class:`uuid.UUID` accepts.

    Upper-case, braced and ``urn:uuid:`` forms are normalised to the same id;
    anything else (paths, NUL bytes, short strings) is refused.

    >>> normalize_id("{DEADBEEF-9FE4-43D3-A08F-38C2B309AFBA}")
    UUID('deadbeef-9fe4-43d3-a08f-38c2b309afba')
    """
    if isinstance(id_, uuid.UUID):
        return id_
    if not isinstance(id_, str):
        raise InvalidRecordError(f"record id must be a UUID, not {type(id_).__name__}")
    text = id_.strip()
    try:
        value = uuid.UUID(text)
    except ValueError:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise InvalidRecordError(f"{shown!r} is not a valid record id (a UUID)") from None
    return value


def path_for(id_: uuid.UUID | str, records_dir: str = RECORDS_DIR) -> str:
    """Path of a record's file in the tree: ``records/<h0h1>/<h2h3>/<uuid>.json``.

    ``h`` is the SHA-256 of the canonical id, so the fan-out is even whatever
    UUID version the ids use (time-ordered UUIDv1/v7 prefixes would not be).
    """
    # an id in its canonical form already (the indexes' keys) is not parsed again
    name = id_ if id_.__class__ is str and _UUID_RE.fullmatch(id_) else str(normalize_id(id_))
    digest = hashlib.sha256(name.encode("ascii")).hexdigest()
    return f"{records_dir}/{digest[:2]}/{digest[2:4]}/{name}.json"


_Value = TypeVar("_Value")


def records_among(
    files: Iterable[tuple[str, _Value]], records_dir: str = RECORDS_DIR
) -> Iterator[tuple[uuid.UUID, _Value]]:
    """(record id, value) of the record files among ``files``, (path, value) pairs such as a
    commit's changed files (path -> blob) or a tree's blobs; other paths are left out."""
    for path, value in files:
        if (record_id := id_from_path(path, records_dir)) is not None:
            yield record_id, value


def id_from_path(path: str, records_dir: str = RECORDS_DIR) -> uuid.UUID | None:
    """The record id of a path in the layout, or None when it is not a record path."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != records_dir or not _FILE_RE.match(parts[3]):
        return None
    name = parts[3][:-5]  # canonical (the pattern says so): the folders are its hash's, or it is no record
    digest = hashlib.sha256(name.encode("ascii")).hexdigest()
    if parts[1] != digest[:2] or parts[2] != digest[2:4]:
        return None
    return uuid.UUID(name)


def is_record_file_name(name: str) -> bool:
    return bool(_FILE_RE.match(name))


def _reject_constant(value: str) -> Any:
    raise InvalidRecordError(f"{value} is not a JSON number (use null or a string)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidRecordError(f"{text} is too large for a JSON number that can be stored")
    if abs(value) < sys.float_info.min and Decimal(text) != Decimal(repr(value)):
        # below the smallest normal double: 1e-400 would become 0.0, 1.234567e-320 1.2347e-320
        raise InvalidRecordError(
            f"the number {text} is too small to be stored as written (it would become {value!r}): "
            "store it as a string"
        )
    if len(text) > 17 and Decimal(text) != Decimal(repr(value)):
        # more significant digits than a double keeps: storing it would change the number
        raise InvalidRecordError(
            f"the number {text} has more significant digits than can be stored (it would become "
            f"{value!r}): store it as a string"
        )
    return value


def _parse_int(text: str) -> int:
    if text == "-0":
        raise InvalidRecordError(
            "the number -0 cannot be stored as written (it would become 0): use 0 or -0.0"
        )
    return int(text)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidRecordError(f"duplicate key {key!r} in JSON object")
        result[key] = value
    return result


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_reject_constant,
    parse_float=_parse_float,
    parse_int=_parse_int,
)
_PLAIN_DECODER = json.JSONDecoder()


def loads(data: bytes | str, *, what: str = "record", checked: bool = False) -> Any:
    """Parse JSON strictly: UTF-8, no NaN/Infinity, no duplicate keys, bounded depth.

    ``checked=True`` is for bytes that passed this strict parse before (a git blob read
    again: a blob id always names the same bytes). The checks that cannot fail twice are
    skipped: duplicate keys (a Python call for every object, a third of the parse), NaN
    and Infinity, unpaired surrogates. The value is the same.
    """
    if isinstance(data, bytes) and not checked:
        value = _canonical_value(data)
        if value is not _NOT_CANONICAL:
            return value
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidRecordError(f"{what} is not valid UTF-8 (byte {err.start})") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = (_PLAIN_DECODER if checked else _DECODER).decode(text)
    except json.JSONDecodeError as err:
        raise InvalidRecordError(
            f"{what} is not valid JSON: {err.msg} (line {err.lineno} column {err.colno})"
        ) from None
    except InvalidRecordError as err:  # the decoder's own checks (a duplicate key, NaN): named too
        where = _refusal_place(text)
        raise InvalidRecordError(f"{what} is not valid JSON: {err}{where}") from None
    except ValueError as err:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise InvalidRecordError(f"{what} is not valid JSON: {err}") from None
    except RecursionError:
        raise InvalidRecordError(f"{what} is nested too deeply") from None
    # a value nested N deep has N opening brackets at least: most files need no walk
    if not checked and text.count("{") + text.count("[") > MAX_DEPTH and _deeper_than_allowed(value):
        raise InvalidRecordError(f"{what} is nested deeper than {MAX_DEPTH} levels")
    if not checked and "\\u" in text and _SURROGATE_ESCAPE.search(text):  # `in` first: much faster
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRecordError(f"{what} is not valid JSON: an unpaired surrogate escape") from None
        except RecursionError:
            raise InvalidRecordError(f"{what} is nested too deeply") from None
    return value


def pointer_token(name: Any) -> str:
    """A member name as a JSON pointer token (RFC 6901: ``~`` is written ``~0``, ``/`` ``~1``)."""
    return str(name).replace("~", "~0").replace("/", "~1")


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _refusal_place(text: str) -> str:
    """`` (line L, at POINTER)``: where in ``text`` (which the strict decoder refused for a value
    or a duplicate key, not for its syntax) the refused member is, found by decoding the members
    one by one down to it; the decoder's hooks are not told where they are. '' when it is the
    whole text."""
    found = _refused_member(text, _WHITESPACE.match(text, 0).end(), "")
    if found is None:
        return ""
    pointer, offset = found
    if not pointer:
        return ""
    line = text.count("\n", 0, offset) + 1
    return f" (line {line}, at {pointer})"


def _refused_member(text: str, start: int, pointer: str) -> tuple[str, int] | None:
    """(JSON pointer, offset) of the innermost value from ``start`` that the strict decoder
    refuses; None when it refuses none."""
    try:
        _DECODER.raw_decode(text, start)
        return None
    except (InvalidRecordError, ValueError, RecursionError):
        pass
    opening = text[start : start + 1]
    if opening not in ("[", "{"):
        return pointer, start
    position = _WHITESPACE.match(text, start + 1).end()
    seen: set[str] = set()
    number = 0
    try:
        while text[position : position + 1] not in ("]", "}", ""):
            if opening == "{":
                key, after = _PLAIN_DECODER.raw_decode(text, position)
                here = f"{pointer}/{pointer_token(key)}"
                if key in seen:
                    return here, position
                seen.add(key)
                position = _WHITESPACE.match(text, _WHITESPACE.match(text, after).end() + 1).end()
            else:
                here = f"{pointer}/{number}"
            inner = _refused_member(text, position, here)
            if inner is not None:
                return inner
            _value, after = _PLAIN_DECODER.raw_decode(text, position)
            position = _WHITESPACE.match(text, after).end()
            if text[position : position + 1] == ",":
                position = _WHITESPACE.match(text, position + 1).end()
            number += 1
    except (ValueError, RecursionError):  # not where the refusal is: say nothing rather than guess
        return None
    return pointer, start


def _deeper_than_allowed(value: Any) -> bool:
    """Whether some value in ``value`` sits deeper than MAX_DEPTH (as :func:`check_value` counts
    depth), walked without recursion."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((member, depth + 1) for member in item.values())
        elif isinstance(item, list):
            stack.extend((element, depth + 1) for element in item)
    return False


_NOT_CANONICAL: Any = object()
#: a line of a canonical file indented this deep holds a value nested deeper than MAX_DEPTH
_TOO_DEEP = b"\n" + b" " * (2 * MAX_DEPTH + 2)


def _canonical_value(raw: bytes) -> Any:
    """The value of a file in canonical form, parsed and checked in C; else ``_NOT_CANONICAL``.

    A file gitrecords wrote is canonical: parsed by orjson and written again, it gives back the
    same bytes. Those bytes cannot hold a duplicate key (the value has one member fewer, so
    writing it again gives other bytes), NaN or Infinity (orjson refuses them), an unpaired
    surrogate (orjson refuses to write one) or a value nested deeper than ``MAX_DEPTH`` (looked
    for by indentation): what the strict parse checks in Python, it need not check here, and the
    value is the one it would return. Anything else (hand-edited files, compact JSON, floats that
    orjson writes in another form) takes the strict parse.
    """
    if not (raw.startswith(b"{\n") and raw.endswith(b"}\n")) or _TOO_DEEP in raw:
        return _NOT_CANONICAL
    try:
        value = orjson.loads(raw)
        again = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _NOT_CANONICAL
    if len(again) + 1 != len(raw) or not raw.startswith(again):
        return _NOT_CANONICAL
    return value


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages ("a number", "an array", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_value(value: Any, pointer: str = "", depth: int = 0) -> None:
    """Refuse what JSON cannot hold: NaN/Infinity, non-string keys, other types."""
    if depth > MAX_DEPTH:
        raise InvalidRecordError(f"record is nested deeper than {MAX_DEPTH} levels at {pointer or '/'}")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRecordError(f"object key {key!r} at {pointer or '/'} is not a string")
            check_value(item, f"{pointer}/{pointer_token(key)}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_value(item, f"{pointer}/{index}", depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRecordError(f"{value} at {pointer or '/'} is not valid JSON")
    elif value is None or isinstance(value, (str, int, bool)):
        return
    else:
        raise InvalidRecordError(f"value at {pointer or '/'} of type {type(value).__name__} is not JSON")


def dumps(data: Any) -> bytes:
    """Canonical JSON bytes: 2-space indent, keys sorted by code point, UTF-8, final newline."""
    check_value(data)
    return _encode(data)


def dumps_parsed(data: Any) -> bytes:
    """:func:`dumps` of a value that :func:`loads` returned, without checking it again.

    What :func:`loads` returns holds only JSON types, string keys and finite
    floats, so the walk of :func:`check_value` can be skipped; only the depth
    limit is left, and values that deep take the checked path below.
    """
    return _encode(data)


#: orjson writes what json.dumps(indent=2, sort_keys=True, ensure_ascii=False) writes, byte for
#: byte, for every value without floats (tests/test_layout.py checks it): floats are formatted
#: differently (``1e-05`` against ``0.00001``), so a value holding one takes the json path.
_ORJSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
#: a number with a fraction or an exponent, as the whole value, a member's value (after ``:``) or an
#: array's element (at the start of a line) once the spaces are taken out: a float. Outside strings
#: orjson writes spaces only as indentation and after ``:``; inside strings the patterns may match
#: too (``"a: 1.5"``), which only costs the slower path. Patterns with a literal first character
#: are many times faster than one with alternatives.
_FLOAT = re.compile(rb"-?[0-9]+[.eE]")
_FLOAT_MEMBER = re.compile(rb":-?[0-9]+[.eE]")
_FLOAT_ELEMENT = re.compile(rb"\n-?[0-9]+[.eE]")


def _has_float(raw: bytes) -> bool:
    squeezed = raw.translate(None, b" ")
    return (
        _FLOAT_MEMBER.search(squeezed) is not None
        or _FLOAT_ELEMENT.search(squeezed) is not None
        or _FLOAT.match(squeezed) is not None
    )


def _encode(data: Any) -> bytes:
    try:
        raw = orjson.dumps(data, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        pass  # integers beyond 64 bits, unpaired surrogates, nesting deeper than orjson goes
    else:
        # a line indented past MAX_DEPTH: too deep, and check_value below says where
        if not _has_float(raw) and _TOO_DEEP not in raw:
            return raw + b"\n"
    return _encode_with_json(data)


def _encode_with_json(data: Any) -> bytes:
    check_value(data)
    try:
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError as err:
        char = err.object[err.start]
        raise InvalidRecordError(f"record has an unpaired surrogate {char!r}: not valid UTF-8") from None
    except ValueError as err:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise InvalidRecordError(f"record cannot be written as JSON: {err}") from None


def is_canonical(raw: bytes) -> bool:
    try:
        return dumps(loads(raw)) == raw
    except InvalidRecordError:
        return False


def tombstone(deleted_at: datetime) -> dict[str, Any]:
    """The content of a soft-deleted record's file."""
    stamp = deleted_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {TOMBSTONE_KEY: {"deleted": stamp}}


def is_tombstone(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and len(data) == 1
        and isinstance(data.get(TOMBSTONE_KEY), dict)
        and "deleted" in data[TOMBSTONE_KEY]
    )
