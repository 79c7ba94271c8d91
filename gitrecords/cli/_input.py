"""Reading records from FILE arguments or stdin: a JSON object, a list, or JSON Lines."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import layout
from ..errors import InvalidRecordError
from ._common import DataError, ProblemsError, UsageFailure
from ._output import stdin_is_tty


@dataclass
class Item:
    """One input record: where it came from (``stdin[2]``, ``a.jsonl line 3``) and its data."""

    where: str
    data: Any
    id: uuid.UUID | None = None


def read_bytes(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as file:
        return file.read()


def label_for(name: str) -> str:
    return "stdin" if name == "-" else name


def default_files(files: Sequence[str]) -> Sequence[str]:
    """The FILE arguments, or stdin when there are none (refused when stdin is a terminal)."""
    if files:
        return files
    if stdin_is_tty():
        raise UsageFailure("no input: give a FILE, or pipe JSON into the command ('-' means stdin)")
    return ("-",)


def read_items(files: Sequence[str], nl: bool = False) -> list[Item]:
    """Records from every FILE (``-`` is stdin), in input order."""
    items: list[Item] = []
    for name in default_files(files):
        raw = read_bytes(name)
        label = label_for(name)
        items.extend(parse_lines(raw, label) if nl else parse_document(raw, label))
    return items


def read_document(files: Sequence[str], what: str) -> tuple[str, Any]:
    """One JSON document (e.g. a JSON Patch) from FILE or stdin."""
    names = default_files(files)
    if len(names) > 1:
        raise UsageFailure(f"give one {what} FILE, not {len(names)}")
    raw = read_bytes(names[0])
    label = label_for(names[0])
    if not raw.strip():
        raise DataError(f"{label} is empty: expected a {what}")
    try:
        return label, layout.loads(raw, what=label)
    except InvalidRecordError as err:
        raise DataError(str(err)) from None


def parse_document(raw: bytes, label: str) -> list[Item]:
    """A JSON object (one record) or a JSON list (one record per element)."""
    if not raw.strip():
        raise DataError(f"{label} is empty: expected a JSON object or a list of objects")
    try:
        value = layout.loads(raw, what=label)
    except InvalidRecordError as err:
        hint = "; it looks like JSON Lines: use --nl" if looks_like_json_lines(raw) else ""
        raise DataError(f"{err}{hint}") from None
    if isinstance(value, dict):
        return [Item(label, value)]
    if isinstance(value, list):
        return [Item(f"{label}[{index}]", element) for index, element in enumerate(value)]
    raise DataError(f"{label}: expected a JSON object or a list of objects, not {layout.json_type(value)}")


#: what ``parse_lines`` advises when the whole input is one JSON document (create --nl's hint)
LEAVE_OUT_NL = "leave out --nl"


def parse_lines(raw: bytes, label: str, whole: str = LEAVE_OUT_NL) -> list[Item]:
    """JSON Lines: one record per non-blank line. ``whole`` is the advice when the lines do not
    parse but the input as a whole does (one pretty-printed document)."""
    items: list[Item] = []
    errors: list[str] = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        where = f"{label} line {number}"
        try:
            items.append(Item(where, layout.loads(line, what=where)))
        except InvalidRecordError as err:
            errors.append(str(err))
    if errors:
        hint = ""
        if _parses_whole(raw):
            hint = f"; {label} holds one JSON document: {whole}"
        if len(errors) == 1:
            raise DataError(errors[0] + hint)
        raise ProblemsError(errors, f"{len(errors)} lines of {label} are not valid JSON{hint}")
    return items


def looks_like_json_lines(raw: bytes) -> bool:
    """Two or more lines that each parse as JSON on their own."""
    lines = [line for line in raw.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        for line in lines[:2]:
            json.loads(line)
    except ValueError:
        return False
    return True


def _parses_whole(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True
