"""The work of checking record files, in worker processes or in this one.

Split from :mod:`gitrecords.checks`, which orchestrates: mapping JSON pointers
to lines, checking one record file, reading PIDs without parsing, and reading
many blobs quickly through ``git cat-file --batch``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import unicodedata
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from jsonschema.exceptions import best_match

from . import _git, layout
from ._workers import can_fork, ordered_map
from .errors import GitRecordsError, InvalidRecordError, RepositoryError, SchemaError
from .index import facts_from_data, pid_type_problems
from .schema import SchemaStore
from .schema import pointer as error_pointer

#: below this many record files (and unless ``workers`` is given), checks run in this process
PARALLEL_THRESHOLD = 1000
#: from this many blobs on, they are read through ``git cat-file --batch``
CAT_FILE_THRESHOLD = 500
#: git's cache of delta bases while reading many blobs (its default, 96 MiB, is too small to read
#: a large tree in path order: each blob's delta chain is unpacked again)
DELTA_BASE_CACHE = "512m"

LIVE, TOMBSTONE, BROKEN = 0, 1, 2

# -- mapping JSON pointers to lines -----------------------------------------------

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")
#: where a file's JSON went wrong, as layout.loads says it: ``(line L column C)`` for its syntax,
#: ``(line L, at POINTER)`` for a value or a duplicate key it refuses (always at the end)
_JSON_PLACE = re.compile(r"\(line (\d+)(?: column \d+|, at (/.*))\)$")


def json_place(message: str) -> tuple[int | None, str | None]:
    """(line, JSON pointer) of a refusal of :func:`gitrecords.layout.loads`; None where it says
    none."""
    match = _JSON_PLACE.search(message)
    if match is None:
        return None, None
    return int(match[1]), match[2]


def _skip(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def _locate(text: str, pointer: str) -> int | None:
    """Offset in ``text`` where the value at ``pointer`` starts (``/`` is the whole document)."""
    parts = [] if pointer in ("", "/") else pointer.split("/")[1:]
    pos = _skip(text, 1 if text.startswith("\ufeff") else 0)
    try:
        for raw_part in parts:
            part = raw_part.replace("~1", "/").replace("~0", "~")
            opener = text[pos]
            if opener not in "{[":
                return None
            closer = "}" if opener == "{" else "]"
            pos = _skip(text, pos + 1)
            index = 0
            while text[pos] != closer:
                if opener == "{":
                    if text[pos] != '"':
                        return None
                    key, pos = json.decoder.scanstring(text, pos + 1)
                    pos = _skip(text, pos)
                    if text[pos] != ":":
                        return None
                    pos = _skip(text, pos + 1)
                    if key == part:
                        break
                elif str(index) == part:
                    break
                _, pos = _DECODER.raw_decode(text, pos)
                pos = _skip(text, pos)
                if text[pos] == ",":
                    pos = _skip(text, pos + 1)
                index += 1
            else:
                return None
    except (ValueError, IndexError):
        return None
    return pos


def line_of(text: str, pointer: str) -> int | None:
    """The line (from 1) where the value at JSON ``pointer`` starts in the JSON ``text``.

    Canonical JSON puts every value on a line of its own, so this is the line
    a person edits; for other JSON it is the line where the value begins.
    """
    pos = _locate(text, pointer)
    return None if pos is None else text.count("\n", 0, pos) + 1


# -- checking one record file (in a worker process, or in this one) ----------------

_worker: dict[str, Any] = {}

#: (check, pointer, line, message)
Finding = tuple[str, str | None, int | None, str]
#: (path, record id, state, pids, findings)
FileResult = tuple[str, str, int, dict[str, str], list[Finding]]


def init_worker(
    schemas: dict[str, Any],
    schemas_dir: str,
    default_schema: Any,
    pid_fields: dict[str, str],
    max_bytes: int,
    format_checker: Any,
    validator_cls: Any,
    inline_schemas: bool = True,
) -> None:
    _worker.clear()
    _worker.update(
        inline_schemas=inline_schemas,
        schemas=schemas,
        schemas_dir=schemas_dir,
        store=None,
        default_schema=default_schema,
        pid_fields=pid_fields,
        max_bytes=max_bytes,
        format_checker=format_checker,
        validator_cls=validator_cls,
    )


def _store() -> SchemaStore:
    store = _worker["store"]
    if store is None:
        store = _worker["store"] = SchemaStore(
            _worker["schemas"], _worker["schemas_dir"], inline_schemas=_worker["inline_schemas"]
        )
    return store


def check_chunk(chunk: list[tuple[str, str, bytes]]) -> list[FileResult]:
    return [_check_file(path, record_id, raw) for path, record_id, raw in chunk]


def _check_file(path: str, record_id: str, raw: bytes) -> FileResult:
    findings: list[Finding] = []
    max_bytes = _worker["max_bytes"]
    if len(raw) > max_bytes:
        message = f"{len(raw)} bytes is larger than the limit of {max_bytes} bytes (max_record_bytes)"
        return path, record_id, BROKEN, {}, [("record", None, None, message)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        return path, record_id, BROKEN, {}, [("json", None, line, f"not valid UTF-8 (byte {err.start})")]
    try:
        data = layout.loads(text, what="the file")
    except InvalidRecordError as err:
        message = str(err)
        line, pointer = json_place(message)
        return path, record_id, BROKEN, {}, [("json", pointer, line, message)]
    try:
        # the strict parser let JSON values only through: serialise as layout.dumps does,
        # without its check of every value (a tenth of the time of a whole check)
        canonical = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    except (ValueError, RecursionError) as err:
        return path, record_id, BROKEN, {}, [("json", None, None, f"cannot be written as JSON: {err}")]
    if canonical != text:
        findings.append(("canonical", None, _first_difference(text, canonical), _canonical_message(text)))
    if layout.is_tombstone(data):
        marker = data[layout.TOMBSTONE_KEY]
        extra = sorted(set(marker) - {"deleted"})
        if extra or not isinstance(marker["deleted"], str):
            # a tombstone is the time of the delete and nothing else: no data rides along in it
            what = f"the keys {', '.join(map(repr, extra))}" if extra else "a time that is not a string"
            message = f"a tombstone holds only its deleted time (an ISO string), not {what}"
            findings.append(("record", "/" + layout.TOMBSTONE_KEY, None, message))
        return path, record_id, TOMBSTONE, {}, findings
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(data), "a number"
        )
        findings.append(("record", "/", 1, f"a record must be a JSON object, not {kind}"))
        return path, record_id, BROKEN, {}, findings
    if layout.TOMBSTONE_KEY in data:
        pointer = "/" + layout.TOMBSTONE_KEY
        findings.append(
            ("record", pointer, line_of(text, pointer), "this top-level key is reserved for tombstones")
        )
    findings.extend(_schema_findings(text, data))
    if not text.isascii():  # ASCII keys have one normal form: most files skip the walk
        findings.extend(_unicode_key_findings(text, data))
    for pointer, message in pid_type_problems(data, _worker["pid_fields"]):
        findings.append(("pid", pointer, line_of(text, pointer), message))
    _state, pids = facts_from_data(data, _worker["pid_fields"])
    return path, record_id, LIVE, pids, findings


def _unicode_key_findings(text: str, data: Any, path: str = "") -> list[Finding]:
    """Keys of one object that differ only in Unicode normalization (``café`` written with a
    precomposed ``é`` and with ``e`` and a combining accent): JSON keeps them apart, a person
    reading the record cannot."""
    found: list[Finding] = []
    if isinstance(data, dict):
        seen: dict[str, str] = {}
        for key, value in data.items():
            pointer = f"{path}/{layout.pointer_token(key)}"
            normal = unicodedata.normalize("NFC", key)
            if normal in seen:
                found.append(
                    (
                        "unicode-keys",
                        pointer,
                        line_of(text, pointer),
                        f"the key {key!r} differs from the key {seen[normal]!r} only in Unicode "
                        "normalization: the two are separate keys; keep one spelling (NFC)",
                    )
                )
            else:
                seen[normal] = key
            found.extend(_unicode_key_findings(text, value, pointer))
    elif isinstance(data, list):
        for number, item in enumerate(data):
            found.extend(_unicode_key_findings(text, item, f"{path}/{number}"))
    return found


def _schema_findings(text: str, data: dict[str, Any]) -> list[Finding]:
    schema_ref = data.get("$schema")
    if schema_ref is None:
        schema_ref = _worker["default_schema"]
    if schema_ref is None:
        return []
    pointer = "/$schema" if "$schema" in data else "/"
    try:
        errors = list(
            _store().iter_errors(
                data,
                schema_ref,
                format_checker=_worker["format_checker"],
                validator_cls=_worker["validator_cls"],
            )
        )
    except SchemaError as err:
        return [("schema", pointer, line_of(text, pointer), str(err))]
    except Exception as err:  # e.g. a "pattern" that is not a valid regular expression
        message = f"cannot validate with schema {schema_ref!r}: {type(err).__name__}: {err}"
        return [("schema", pointer, line_of(text, pointer), message)]
    found: list[Finding] = []
    for error in errors:
        deepest = best_match([error]) or error
        pointer = error_pointer(deepest)
        found.append(("schema", pointer, line_of(text, pointer), deepest.message))
    return found


def _first_difference(text: str, canonical: str) -> int:
    """The first line of ``text`` that differs from the canonical form (lines end at \\n only)."""
    last = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    pairs = itertools.zip_longest(text.split("\n"), canonical.split("\n"))
    for number, (got, wanted) in enumerate(pairs, start=1):
        if got != wanted:
            return min(number, last)
    return last


def _canonical_message(text: str) -> str:
    hints = []
    if text.startswith("\ufeff"):
        hints.append("a byte order mark")
    if "\r" in text:
        hints.append("CRLF line endings")
    if not text.endswith("\n"):
        hints.append("no final newline")
    shown = f" ({', '.join(hints)})" if hints else ""
    return (
        f"not in canonical JSON form{shown}: keys sorted, 2-space indent, one value per line; "
        "run 'gitrecords fmt' to rewrite it"
    )


# -- worker processes -----------------------------------------------------------------


def results(
    chunks: Iterator[list[tuple[str, str, bytes]]],
    init_args: tuple[Any, ...],
    workers: int | None,
    total: int,
) -> Iterator[list[FileResult]]:
    """Checked chunks in input order, from worker processes when there are enough files."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or (workers is None and total < PARALLEL_THRESHOLD):
        init_worker(*init_args)
        for chunk in chunks:
            yield check_chunk(chunk)
        return
    # fork: workers need no re-import and inherit the format checker and validator class
    yield from ordered_map(
        check_chunk,
        chunks,
        workers=count,
        initializer=init_worker,
        initargs=init_args,
        window=4,
        start="fork" if can_fork() else "spawn",
    )


_TOP_LEVEL_VALUE = re.compile(rb'("(?:[^"\\\n]|\\.)*"|-?(?:0|[1-9][0-9]*))(?:,\n|\n})')


def pids_of(raw: bytes, pid_fields: dict[str, str]) -> dict[str, str]:
    """The PIDs a record file holds, reading canonical files without parsing them."""
    if raw.startswith(b'{\n  "'):
        # canonical JSON: every top-level key is on a line of its own, indented by 2 spaces
        pids: dict[str, str] = {}
        for pid_type, name in pid_fields.items():
            key = b'\n  "' + json.dumps(name, ensure_ascii=False).encode("utf-8")[1:-1] + b'": '
            start = raw.find(key)
            if start < 0:
                continue
            match = _TOP_LEVEL_VALUE.match(raw, start + len(key))
            if match is None:
                return _parsed_pids(raw, pid_fields)
            token = match[1]
            pids[pid_type] = json.loads(token) if token.startswith(b'"') else token.decode("ascii")
        return pids
    return _parsed_pids(raw, pid_fields)


def _parsed_pids(raw: bytes, pid_fields: dict[str, str]) -> dict[str, str]:
    try:
        data = layout.loads(raw)
    except GitRecordsError:
        return {}
    return facts_from_data(data, pid_fields)[1]


class BlobReader:
    """Reads blobs in chunks: through pygit2 for a few, through one ``git cat-file --batch``
    (with a large delta base cache) for many, which is several times faster on a packed
    repository. It runs git with this process's environment, so in a pre-receive hook it
    sees the quarantined objects too."""

    def __init__(self, repo: Any, count: int) -> None:
        self.repo = repo
        self.proc: subprocess.Popen[bytes] | None = None
        if count >= CAT_FILE_THRESHOLD:
            command = [
                "git",
                "--git-dir",
                str(repo.git_dir),
                "-c",
                f"core.deltaBaseCacheLimit={DELTA_BASE_CACHE}",
            ]
            try:
                self.proc = subprocess.Popen(
                    [*command, "cat-file", "--batch"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            except OSError:
                self.proc = None  # no git binary: read through pygit2

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def read(self, blobs: list[Any]) -> list[bytes]:
        """The content of each blob (keep chunks to a few hundred: they go through a pipe)."""
        proc = self.proc
        if proc is None:
            return [_git.read_blob(self.repo.git, blob) for blob in blobs]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("".join(f"{blob}\n" for blob in blobs).encode("ascii"))
        proc.stdin.flush()
        out = []
        for blob in blobs:
            header = proc.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                raise RepositoryError(f"git cat-file cannot read blob {blob}: {b' '.join(header).decode()}")
            size = int(header[2])
            out.append(proc.stdout.read(size))
            proc.stdout.read(1)  # the newline after each object
        return out

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a forked process still holds its stdin open
            proc.kill()
            proc.wait()
