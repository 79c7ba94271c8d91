"""``repo.search(q)``: finding records through the derived search index.

One contract for the Python API, the CLI (``gitrecords search``, ``list -q``),
REST (``GET /api/records?q=``) and the administration pages. The query language
is described in docs/search.md and parsed by :mod:`gitrecords.query`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRecordError, NoResultFound, QueryError
from .query import parse
from .record import Record
from .storage import Storage

__all__ = ["SearchResult", "matching_ids", "search"]

#: the largest page a search returns
MAX_SIZE = 10_000


@dataclass
class SearchResult:
    """What :func:`search` found: ``total`` matches, this page's ``ids`` in order, the page's
    ``records`` (read from git when first asked for) and ``facets`` (name -> ``(value, count)``,
    most frequent first)."""

    repo: Any
    total: int
    ids: list[uuid.UUID]
    page: int
    size: int
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    with_deleted: bool = False
    _records: list[Record] | None = None

    @property
    def records(self) -> list[Record]:
        """The records of this page, in order (a record that cannot be read is left out)."""
        if self._records is None:
            found = []
            for record_id in self.ids:
                try:
                    found.append(Record.get_record(record_id, with_deleted=True, repo=self.repo))
                except (NoResultFound, InvalidRecordError):
                    continue
            self._records = found
        return self._records

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def facets_of(repo: Storage) -> dict[str, str]:
    """The facets the repository declares (``"facets"`` in gitrecords.json): name -> field path."""
    declared = repo.config.get("facets") or {}
    return {str(k): str(v) for k, v in declared.items()} if isinstance(declared, dict) else {}


def search(
    repo: Storage,
    q: str = "",
    *,
    sort: str | None = None,
    page: int = 1,
    size: int = 25,
    facets: bool = False,
    with_deleted: bool = False,
    offset: int | None = None,
) -> SearchResult:
    """Records matching ``q``; see :meth:`gitrecords.Repository.search`."""
    if page < 1:
        raise QueryError("page starts at 1", 0)
    if not 0 < size <= MAX_SIZE:
        raise QueryError(f"size must be between 1 and {MAX_SIZE}", 0)
    node = parse(q or "")
    index = repo.search_index
    snap = repo.snapshot()
    index.catch_up(snap.tip)
    declared = facets_of(repo)
    start = offset if offset is not None else (page - 1) * size
    hits = index.search(
        node,
        sort=sort,
        offset=start,
        limit=size,
        facets=declared if facets else None,
        with_deleted=with_deleted,
        aliases=declared,
        pid_fields=snap.config.get("pids") or {},
    )
    return SearchResult(repo, hits.total, hits.ids, page, size, hits.facets, with_deleted)


def matching_ids(repo: Storage, q: str, tip: Any) -> list[uuid.UUID]:
    """Every live record matching ``q`` as of the commit ``tip`` (the index catches up to it
    first), in no particular order: what a bulk edit selects."""
    node = parse(q or "")
    index = repo.search_index
    index.catch_up(tip)
    declared = facets_of(repo)
    hits = index.search(
        node, sort="created", limit=None, aliases=declared, pid_fields=repo.config.get("pids") or {}
    )
    return hits.ids
