"""The search gitrecords had before the search index: a linear scan over every record.

:func:`search` is ``gitrecords/web/records.py`` ``search`` as of 008e47d (the
version issue 17 measured: 5-8 s per query at 100,000 records), copied here so
that the benchmark keeps measuring it after the web layer moved to the index:
it reads every record's file at the tip, skips those whose text lacks a
needle, parses the rest and tests every term (a case-insensitive substring
test), then reads the records of the page. Only the HTTP errors became plain
exceptions, and ``repo._git`` is now ``repo.git``.

It knew no ranges, sorting or facets. :func:`search_range`, :func:`search_sorted`
and :func:`search_facets` answer those queries the same way (every record read
and parsed, most recently updated first unless sorted), so the index rows have
a "before" to compare with.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gitrecords import Record, Repository, _git, layout
from gitrecords.errors import InvalidRecordError

# -- 008e47d:gitrecords/web/records.py, unchanged but for the errors ---------------------

_ESCAPED = re.compile(r'["\\\x00-\x1f]')
_TERM = re.compile(r'(?:(?P<field>[^\s:"]+):)?(?:"(?P<quoted>[^"]*)"|(?P<word>\S+))')


@dataclass(frozen=True)
class Term:
    field: str | None
    value: str


def parse_query(q: str) -> list[Term]:
    """``title:foo creators.name:"Smith, J" bar``: every term must match (AND)."""
    terms = []
    for match in _TERM.finditer(q):
        value = match.group("quoted") if match.group("quoted") is not None else match.group("word")
        terms.append(Term(match.group("field"), value.casefold()))
    return terms


def _at(data: Any, path: list[str]) -> Iterator[Any]:
    """Values at ``path`` below ``data``, looking through lists."""
    if isinstance(data, list):
        for item in data:
            yield from _at(item, path)
        return
    if not path:
        yield data
        return
    if isinstance(data, dict) and path[0] in data:
        yield from _at(data[path[0]], path[1:])


def _values(data: Any, path: list[str]) -> Iterator[Any]:
    """Values at ``path`` starting at ``data`` or at any object nested in it."""
    yield from _at(data, path)
    children = data.values() if isinstance(data, dict) else data if isinstance(data, list) else ()
    for child in children:
        if isinstance(child, dict | list):
            yield from _values(child, path)


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif isinstance(value, str):
        yield value
    elif value is not None:
        yield json.dumps(value)


def matches(record_id: uuid.UUID, data: Any, terms: list[Term]) -> bool:
    for term in terms:
        if term.field == "id":
            if term.value not in str(record_id):
                return False
            continue
        found = _values(data, term.field.split(".")) if term.field else iter([data])
        if not any(term.value in text.casefold() for value in found for text in _scalars(value)):
            return False
    return True


@dataclass(frozen=True)
class Unreadable:
    id: uuid.UUID
    error: str


def load(repo: Repository, record_id: uuid.UUID) -> Record:
    return Record.get_record(record_id, with_deleted=True, repo=repo)


def listed(repo: Repository, record_id: uuid.UUID) -> Record | Unreadable:
    try:
        return load(repo, record_id)
    except InvalidRecordError as err:
        return Unreadable(record_id, str(err))


@dataclass
class Page:
    records: list[Record | Unreadable]
    total: int
    page: int
    size: int
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def search(repo: Repository, q: str, page: int, size: int, with_deleted: bool = False) -> Page:
    """Live records, most recently updated first, filtered by ``q``, one page of them."""
    terms = parse_query(q)
    start = (page - 1) * size
    if not terms:
        total = repo.count_records(with_deleted=with_deleted)
        ids = repo.latest_ids(with_deleted=with_deleted, limit=size, offset=start)
        return Page([listed(repo, i) for i in ids], total, page, size)
    matched: list[uuid.UUID] = []
    needles = [t.value for t in terms if t.field != "id" and not _ESCAPED.search(t.value)]
    for record_id in repo.latest_ids(with_deleted=with_deleted):
        blob = repo.record_blob(record_id)
        raw = _git.read_blob(repo.git, blob) if blob is not None else b"{}"
        # canonical files hold strings unescaped (but for quotes, backslashes and control
        # characters) and numbers as json.dumps writes them: a value absent from the file's
        # text cannot match, and most records are skipped without parsing them
        if needles:
            text = raw.decode("utf-8", "replace").casefold()
            if not all(needle in text for needle in needles):
                continue
        try:
            data = layout.loads(raw)
        except InvalidRecordError:
            if not all(t.field == "id" and t.value in str(record_id) for t in terms):
                continue  # a broken file matches an id search only; its page says what is wrong
            data = {}
        if layout.is_tombstone(data):
            data = {}
        if matches(record_id, data, terms):
            matched.append(record_id)
    found = [listed(repo, i) for i in matched[start : start + size]]
    total = len(matched)
    return Page(found, total, page, size)


# -- what the scan did not know, answered the same way ------------------------------------


def _each(repo: Repository) -> Iterator[tuple[uuid.UUID, Any]]:
    """(id, data) of every live record, most recently updated first: each file read and parsed."""
    for record_id in repo.latest_ids():
        blob = repo.record_blob(record_id)
        if blob is None:
            continue
        try:
            data = layout.loads(_git.read_blob(repo.git, blob))
        except InvalidRecordError:
            continue
        if not layout.is_tombstone(data):
            yield record_id, data


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def search_range(repo: Repository, path: str, low: float, high: float, page: int, size: int) -> Page:
    """Records with a value at ``path`` (any depth) between ``low`` and ``high``, bounds included."""
    parts = path.split(".")
    matched = [
        record_id
        for record_id, data in _each(repo)
        if any(
            (n := _number(v)) is not None and low <= n <= high
            for value in _values(data, parts)
            for v in _scalars(value)
        )
    ]
    start = (page - 1) * size
    return Page([listed(repo, i) for i in matched[start : start + size]], len(matched), page, size)


def search_sorted(repo: Repository, path: str, page: int, size: int) -> Page:
    """Every record sorted by the value at ``path`` (numbers as numbers; ``-path`` descending),
    ties and records without the value by id, as the index sorts them."""
    descending = path.startswith("-")
    parts = path.lstrip("-").split(".")
    keyed = []
    for record_id, data in _each(repo):
        found = [v for value in _values(data, parts) for v in _scalars(value)]
        numbers = [n for v in found if (n := _number(v)) is not None]
        key = (max if descending else min)(numbers) if numbers else None
        keyed.append((key is None, -key if descending and key is not None else key or 0, str(record_id)))
    keyed.sort()
    start = (page - 1) * size
    ids = [uuid.UUID(k[2]) for k in keyed[start : start + size]]
    return Page([listed(repo, i) for i in ids], len(keyed), page, size)


def search_facets(repo: Repository, facets: dict[str, str], page: int, size: int) -> Page:
    """The first page of everything (most recently updated first) and the facet counts: records
    per value of each facet's field, the 50 most frequent."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in facets}
    paths = {name: path.split(".") for name, path in facets.items()}
    total = 0
    for _record_id, data in _each(repo):
        total += 1
        for name, parts in paths.items():
            counts[name].update({v for value in _at(data, parts) for v in _scalars(value)})
    start = (page - 1) * size
    ids = repo.latest_ids(limit=size, offset=start)
    return Page(
        [listed(repo, i) for i in ids],
        total,
        page,
        size,
        {name: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:50] for name, c in counts.items()},
    )
