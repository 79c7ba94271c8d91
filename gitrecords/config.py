"""The repository's own files: its settings (``gitrecords.json``) and its purge log (``purged.txt``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from . import layout
from .errors import InvalidRecordError, RepositoryError

DEFAULT_CONFIG: dict[str, Any] = {
    "branch": "main",
    "default_schema": None,
    "format": layout.FORMAT_VERSION,
    # a record's $schema may be a schema object, not only a name in the store (docs/reliability.md)
    "inline_schemas": True,
    "layout": layout.LAYOUT,
    # the PID minters every entry point (API, CLI, REST, pages) runs for a new record by default
    "mint": [],
    "pids": {"recid": "control_number"},
    "records": layout.RECORDS_DIR,
    "schemas": "schemas",
}
#: the purge log: one line per hard-deleted id, with the PIDs it held (kept reserved)
PURGED_FILE = "purged.txt"
#: seconds a writer waits for the write lock before it gives up (``--wait`` in the CLI; here, not in
#: ``writer``, so that the CLI's group does not import pygit2 to show its default)
DEFAULT_LOCK_WAIT = 120.0


def parse_config(raw: bytes | None) -> dict[str, Any]:
    """The settings in ``gitrecords.json`` (``raw``; None: the defaults), defaults filled in."""
    settings = dict(DEFAULT_CONFIG)
    if raw is None:
        return settings
    try:
        loaded = layout.loads(raw, what=layout.CONFIG_FILE)
    except InvalidRecordError as err:
        raise RepositoryError(str(err)) from None
    if not isinstance(loaded, dict):
        raise RepositoryError(f"{layout.CONFIG_FILE} must hold a JSON object")
    settings.update(loaded)
    for key in ("records", "schemas"):
        folder = settings.get(key)
        if not isinstance(folder, str) or not folder or "/" in folder or folder in (".", ".."):
            raise RepositoryError(
                f"{layout.CONFIG_FILE}: {key!r} must name one folder at the top of the repository,"
                f" like {DEFAULT_CONFIG[key]!r}, not {folder!r}"
            )
    mint = settings.get("mint")
    if not isinstance(mint, list) or not all(isinstance(name, str) and name for name in mint):
        raise RepositoryError(f'{layout.CONFIG_FILE}: "mint" must be a list of PID minter names')
    if settings.get("format") != layout.FORMAT_VERSION:
        raise RepositoryError(
            f"{layout.CONFIG_FILE}: format {settings.get('format')!r} is not supported "
            f"(this gitrecords reads format {layout.FORMAT_VERSION})"
        )
    return settings


def default_minters(settings: dict[str, Any], data: Any) -> list[str]:
    """The PID minters a new record ``data`` gets by default: the settings' ``mint``, but not
    one whose PID field ``data`` holds already (a record brought from elsewhere keeps its PID; its
    uniqueness is still checked)."""
    fields = settings.get("pids") or {}
    return [
        name
        for name in settings.get("mint") or []
        if not (isinstance(data, dict) and fields.get(name) in data)
    ]


@dataclass
class Purged:
    """What ``purged.txt`` lists: hard-deleted ids, and the PIDs they held (never minted again)."""

    ids: set[str] = field(default_factory=set)
    #: (pid type, value) -> the id of the hard-deleted record that held it
    pids: dict[tuple[str, str], str] = field(default_factory=dict)

    def max_integer(self, pid_type: str) -> int:
        values = [int(v) for (t, v), _ in self.pids.items() if t == pid_type and v.isdigit() and v.isascii()]
        return max(values, default=0)


def read_purged(raw: bytes) -> Purged:
    """Parse ``purged.txt``: each line is an id, then ``type:value`` for each PID it held
    (percent-encoded). Words that are neither are ignored, so a hand edit cannot break reads."""
    found = Purged()
    for line in raw.decode("utf-8", "replace").splitlines():
        words = line.split()
        if not words:
            continue
        record_id = words[0]
        found.ids.add(record_id)
        for word in words[1:]:
            pid_type, sep, value = word.partition(":")
            if sep and pid_type and value:
                found.pids[(unquote(pid_type), unquote(value))] = record_id
    return found


def purged_text(purged: Purged, added: dict[uuid.UUID, dict[str, str]]) -> bytes:
    """``purged.txt`` listing ``purged`` and the ids in ``added`` with their PIDs, sorted by id."""
    lines: dict[str, list[str]] = {i: [] for i in purged.ids}
    for (pid_type, value), record_id in purged.pids.items():
        lines.setdefault(record_id, []).append(f"{quote(pid_type, safe='')}:{quote(value, safe='')}")
    for record_id, pids in added.items():
        words = lines.setdefault(str(record_id), [])
        for pid_type, value in pids.items():
            word = f"{quote(pid_type, safe='')}:{quote(value, safe='')}"
            if word not in words:
                words.append(word)
    return "".join(
        " ".join([record_id, *sorted(words)]) + "\n" for record_id, words in sorted(lines.items())
    ).encode()


def read_source_tree(root: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Files of a working tree like sample-repo/, placed where format 1 wants them."""
    if not root.is_dir():
        raise RepositoryError(f"{root}: not a directory")
    settings: dict[str, Any] = {}
    config_file = root / layout.CONFIG_FILE
    if config_file.exists():
        loaded = layout.loads(config_file.read_bytes(), what=str(config_file))
        if not isinstance(loaded, dict):
            raise RepositoryError(f"{config_file} must hold a JSON object")
        settings.update(loaded)
    records_dir = settings.get("records", layout.RECORDS_DIR)
    files: dict[str, bytes] = {}
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root).as_posix()
        if not file.is_file() or rel == layout.CONFIG_FILE or rel.split("/")[0] == ".git":
            continue
        data = file.read_bytes()
        if rel.startswith(records_dir + "/") and layout.is_record_file_name(file.name):
            record_id = uuid.UUID(file.name[:-5])
            try:
                record = layout.loads(data, what=f"{rel}")
            except InvalidRecordError as err:
                raise RepositoryError(str(err)) from None
            if not isinstance(record, dict):
                raise RepositoryError(f"{rel}: a record must be a JSON object")
            path = layout.path_for(record_id, records_dir)
            if path in files:
                raise RepositoryError(f"{rel}: record {record_id} appears twice")
            files[path] = layout.dumps(record)
        else:
            files[rel] = data
    return files, settings
