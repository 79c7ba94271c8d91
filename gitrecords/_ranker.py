"""Ranked pages of full-text queries at scale: a tantivy index beside the search index.

FTS5 ranks by scoring every match: a common word at a million records is 147,000
``bm25()`` calls and as many lookups of a document's length, 125 ms a page. tantivy
(a Rust search library) keeps the best matches as it goes and skips the blocks of a
posting list that cannot make the page (block-max WAND): the same page in about a
millisecond. It is used for one thing only: the page and count of a query that is one
full-text match (words and phrases, in any field, joined by AND and OR), ranked best
first, once the branch has :data:`MIN_RECORDS` live records. Everything else (values,
ranges, facets, ``NOT``, prefixes, other orders) stays with SQLite.

It holds what the search index's full-text table holds, the same words in the same
places (``body`` and ``scoped``: the index's own tokens, split at spaces, so the two
cannot tokenize differently), keyed by record id. It follows the search index, not
git: :meth:`Ranker.current` compares the search index's tip and generation (a new
one at every rebuild or hard delete) with its own, written to ``state.json`` after
each tantivy commit, and re-adds the records that changed between the two tips. A
crash between the commit and the state leaves the old state: the same records are
re-added (a delete by record id and an add: the same result twice). A hard delete
removes the whole folder, under the same lock as a catch-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

#: below this many live records FTS5 ranks a page in a few milliseconds: no second index
#: (``GITRECORDS_RANKER_MIN_RECORDS``: 0 always ranks with tantivy, a huge number never does)
MIN_RECORDS = int(os.environ.get("GITRECORDS_RANKER_MIN_RECORDS") or 20_000)
#: a catch-up of more records than one in this many of those indexed builds the index again
REBUILD_RATIO = 5
#: tokens longer than this (bytes) are not indexed by tantivy (its limit is 65,530); a query
#: with one goes to FTS5
MAX_TOKEN_BYTES = 16_000
#: the writer's memory for a build, and for a small catch-up (tantivy's least: 15 MB a thread)
BUILD_HEAP = 128_000_000
SMALL_HEAP = 15_000_000
#: records re-added with one small writer at most (more: the build's writer)
SMALL_CATCH_UP = 2_000
#: after a failure a process leaves the ranker alone for this long (FTS5 ranks meanwhile)
RETRY_SECONDS = 60.0
FORMAT = 1
_STATE = "state.json"
_TOKENIZER = "gitrecords-words"
_MASK = (1 << 64) - 1


class Mismatch(Exception):
    """The ranker answered what the search index does not hold (a damaged file)."""


@dataclass(frozen=True)
class Words:
    """A word, or a phrase of several, in one full-text column (``body`` or ``scoped``)."""

    column: str
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class AllOf:
    items: tuple[TextQuery, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[TextQuery, ...]


TextQuery = Words | AllOf | AnyOf


def supported(query: TextQuery | None) -> bool:
    """Whether the ranker answers ``query`` exactly as FTS5 does (no token past its limit)."""
    if query is None:
        return False
    if isinstance(query, Words):
        return bool(query.tokens) and all(len(t.encode()) <= MAX_TOKEN_BYTES for t in query.tokens)
    return bool(query.items) and all(supported(item) for item in query.items)


def has_phrase(query: TextQuery) -> bool:
    if isinstance(query, Words):
        return len(query.tokens) > 1
    return any(has_phrase(item) for item in query.items)


def available() -> bool:
    try:
        import tantivy  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency; without it FTS5 ranks every page
        return False
    return True


class Source(Protocol):
    """What the ranker reads from the search index (one read snapshot of it)."""

    generation: str | None
    tip: str | None
    live: int

    def rows(self, records: list[str] | None) -> Iterator[tuple[str, str, str]]:
        """(record id, body, scoped) of the live ``records`` (None: of every live record)."""
        ...

    def changed(self, old_tip: str, new_tip: str, limit: int) -> list[str] | None:
        """The ids of the records whose files differ between two tips; None when more than
        ``limit`` do, or it cannot tell."""
        ...


class Ranker:
    """The tantivy index in ``folder`` (see the module docstring). Not shared between threads
    without the caller's lock (the search index holds one)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._index: Any = None
        self._searcher: Any = None
        self._state: dict[str, Any] | None = None
        #: after a failure, FTS5 ranks every page in this process until then (time.monotonic)
        self._retry_at = 0.0
        #: the state the last :meth:`current` asked for
        self._wanted: dict[str, Any] | None = None

    # -- keeping up ------------------------------------------------------------

    def usable(self) -> bool:
        """False for :data:`RETRY_SECONDS` after a failure in this process, and for good when
        tantivy cannot be imported."""
        return time.monotonic() >= self._retry_at and available()

    def current(self, source: Source) -> bool:
        """Bring the index to ``source``'s tip; False when it cannot be used (then FTS5 ranks)."""
        want = {"format": FORMAT, "generation": source.generation, "tip": source.tip}
        self._wanted = want
        if self._state == want and self._searcher is not None:
            return True
        # without the lock: the state must name what was opened, before and after (a writer
        # marks the folder busy before it changes the index, and names the new state after)
        if _read_state(self.folder) == want and self._open() and _read_state(self.folder) == want:
            self._state = want
            return True
        with _locked(self.folder):
            state = _read_state(self.folder)
            if state != want or not os.path.exists(os.path.join(self.folder, "meta.json")):
                self._close()
                self._update(source, state, want)
            if not self._open():
                return False
            self._state = want
            return True

    def _update(self, source: Source, state: dict[str, Any] | None, want: dict[str, Any]) -> None:
        """Bring the folder to ``want`` (under the lock): readers that open it meanwhile see a
        busy state, and take the lock to wait."""
        if os.path.isdir(self.folder):
            _write_state(self.folder, {"format": FORMAT, "busy": os.getpid()})
        limit = max(SMALL_CATCH_UP, source.live // REBUILD_RATIO)
        records = None
        if (
            state is not None
            and state.get("format") == FORMAT
            and state.get("generation") == source.generation
            and state.get("tip") is not None
            and source.tip is not None
            and os.path.exists(os.path.join(self.folder, "meta.json"))
        ):
            records = source.changed(state["tip"], source.tip, limit)
        if records is None:
            shutil.rmtree(self.folder, ignore_errors=True)
            os.makedirs(self.folder)
            index = _new_index(self.folder)
            _add(index, source.rows(None), BUILD_HEAP, threads=2)
        else:
            index = _open_index(self.folder)
            heap = SMALL_HEAP if len(records) <= SMALL_CATCH_UP else BUILD_HEAP
            _add(index, source.rows(records), heap, threads=1, gone=records)
        _write_state(self.folder, want)

    def _open(self) -> bool:
        if self._searcher is not None:
            self._index.reload()
            self._searcher = self._index.searcher()
            return True
        if not os.path.exists(os.path.join(self.folder, "meta.json")):
            return False
        self._index = _open_index(self.folder)
        self._searcher = self._index.searcher()
        return True

    def _close(self) -> None:
        self._index = self._searcher = None
        self._state = None

    def failed(self, error: BaseException) -> None:
        """tantivy refused (a damaged folder, a full disk), or answered what the search index
        does not hold: the next search in any process builds it again (unless another process
        has moved it on meanwhile), and this one leaves it for :data:`RETRY_SECONDS`."""
        tried = (self._state, self._wanted)
        self._close()
        self._retry_at = time.monotonic() + RETRY_SECONDS
        with contextlib.suppress(OSError), _locked(self.folder):
            # not over a state another process has written since (a build it has just finished)
            if (state := _read_state(self.folder)) is not None and state in tried:
                _write_state(self.folder, {"format": FORMAT, "failed": str(error)[:200]})

    # -- asking --------------------------------------------------------------

    def top(self, query: TextQuery, limit: int) -> tuple[int, list[float], list[Any]]:
        """(how many records match, the scores of the best ``limit`` of them, best first, and
        their addresses for :meth:`records`)."""
        result = self._searcher.search(_query(self._index.schema, query), limit, count=True)
        hits = result.hits
        return result.count, [score for score, _address in hits], [address for _score, address in hits]

    def records(self, addresses: list[Any]) -> list[str]:
        """The record ids of hits of the last :meth:`top`."""
        searcher = self._searcher
        highs = searcher.fast_field_values("hi", addresses)
        lows = searcher.fast_field_values("lo", addresses)
        return [_record_id(high, low) for high, low in zip(highs, lows, strict=True)]


def is_failure(error: BaseException) -> bool:
    """Whether ``error`` is the ranker failing rather than the process being stopped: any
    exception (it is derived and optional: FTS5 answers instead), and tantivy's panics on
    some damaged files, which Python sees as a ``PanicException`` (a BaseException)."""
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"


def remove(folder: str) -> None:
    """Delete the ranker in ``folder`` (a hard delete: its files may hold purged words), waiting
    for a catch-up under way."""
    if not os.path.isdir(folder):
        return
    with _locked(folder):
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _locked(folder: str) -> Iterator[None]:
    fd = os.open(folder + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_state(folder: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(folder, _STATE), encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(folder: str, state: dict[str, Any]) -> None:
    path = os.path.join(folder, _STATE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("record", tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("hi", fast=True)
    builder.add_integer_field("lo", fast=True)
    builder.add_text_field("body", tokenizer_name=_TOKENIZER)
    builder.add_text_field("scoped", tokenizer_name=_TOKENIZER)
    return builder.build()


def _with_tokenizer(index: Any) -> Any:
    import tantivy

    words = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
    index.register_tokenizer(_TOKENIZER, words.filter(tantivy.Filter.remove_long(MAX_TOKEN_BYTES)).build())
    return index


def _new_index(folder: str) -> Any:
    import tantivy

    return _with_tokenizer(tantivy.Index(_schema(), path=folder))


def _open_index(folder: str) -> Any:
    import tantivy

    return _with_tokenizer(tantivy.Index.open(folder))


def _record_id(high: int, low: int) -> str:
    """The id (its text) of a record from its two halves (5x faster than ``uuid.UUID``)."""
    digits = f"{high & _MASK:016x}{low & _MASK:016x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _add(
    index: Any,
    rows: Iterable[tuple[str, str, str]],
    heap: int,
    *,
    threads: int,
    gone: list[str] | None = None,
) -> None:
    import tantivy

    writer = index.writer(heap_size=heap, num_threads=threads)
    try:
        for record in gone or ():
            writer.delete_documents_by_term("record", record)
        document = tantivy.Document
        for record, body, scoped in rows:
            number = uuid.UUID(record).int
            writer.add_document(
                document(
                    record=record,
                    hi=_signed(number >> 64),
                    lo=_signed(number & _MASK),
                    body=body,
                    scoped=scoped,
                )
            )
        writer.commit()
    except BaseException:
        writer.rollback()
        raise
    writer.wait_merging_threads()


def _query(schema: Any, query: TextQuery) -> Any:
    from tantivy import Occur, Query

    if isinstance(query, Words):
        if len(query.tokens) == 1:
            return Query.term_query(schema, query.column, query.tokens[0])
        return Query.phrase_query(schema, query.column, list(query.tokens))
    occur = Occur.Must if isinstance(query, AllOf) else Occur.Should
    return Query.boolean_query([(occur, _query(schema, item)) for item in query.items])
