"""The derived search index: SQLite FTS5 and typed field values, beside the revision index.

Like the revision index it is never the source of truth: it is built from the
records at the branch tip, follows every commit through the write path (a
:class:`~gitrecords.writer.DerivedIndex`; the cost of a commit is the records it
changed), catches up by itself with commits it did not see (pushes, pulls,
plain git), and is rebuilt by ``gitrecords reindex``. A hard delete removes the
purged records from it in the same step, and rewrites the full-text index so
that no page of the file keeps their words (``secure_delete``, FTS5 ``optimize``).

What it keeps, per record at the tip (``docs``): its state, creation and update
times; the words of every string and number (``fts.body``, case- and
accent-insensitive) and the same words scoped by the field they are in
(``fts.scoped``: ``titles.title:lovelace``); and every scalar value with its
field (``vals``: the text, and a number when it is one) for exact, range, sort
and facet queries. Queries come from :mod:`gitrecords.query` and reach SQLite
only as parameters.

The interface a search backend needs is small (:meth:`SearchIndex.catch_up`,
:meth:`SearchIndex.rewritten`, :meth:`SearchIndex.rebuild`,
:meth:`SearchIndex.search`): a fleet could put a search cluster behind the same
queries (docs/search.md says how).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import math
import operator
import os
import re
import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import _git, _ranker, _written, layout
from ._objects import GitDir
from ._pack import BLOB, object_id
from ._sqlite import chunks, open_derived, remove_database, zero_free_pages
from ._workers import can_fork, ordered_map
from .config import parse_config
from .errors import GitRecordsError
from .index import RevisionIndex
from .query import WORD, And, Node, Not, Or, QueryError, Term, normalize, words

FORMAT = "11"
log = logging.getLogger("gitrecords")
#: values longer than this are kept in ``vals`` cut to this length (their words are all indexed);
#: an exact value, a range or a sort compares the query's value cut the same way (docs/search.md)
MAX_VALUE_CHARS = 200
#: facet values returned per facet
FACET_VALUES = 50
#: a page sorted by update time walks the time index when at least one record in this many is a hit
WALK_RATIO = 50
#: a ranked page of one full-text match is ordered from its best matches: the page's end and one
#: in this many of all matches more (at least RANK_WINDOW_MIN), unless the page's last score is
#: still tied at the end of them (then every match is). Records of similar length tie: the
#: benchmark's words and phrases tie 48 to 117 records at the 25th score, of 14,700 matches at
#: 100,000 records and of 147,000 at a million (one word 952 there). FTS5 keeps the window in a
#: sorter: 2,000 cost 3 ms more than 25 at 100,000 records, and one in 50 of the matches 2.6 ms
#: more than one in 1,000 for a family name at a million (51.0 against 48.4 ms a page)
RANK_WINDOW_RATIO = 1_000
RANK_WINDOW_MIN = 200
#: the ranker's window past a page's end (records tied at its last score must all be seen)
RANK_WINDOW_TIES = 4_000
#: records tied at a page's last number are found by walking all records in id order when at
#: least one record in this many holds that number
TIE_WALK_RATIO = 200
#: page cache of the index's connection (KiB; taken only as pages are used): single-record
#: commits touch pages all over the value indexes (p50 0.93 ms with 64 MB, 0.98 ms with 32 MB)
CACHE_KIB = 64 * 1024
#: the page cache during a large catch-up or a build: 64 MB built 100,000 records no faster than
#: 32 MB (21.6 and 24.1 s against 27.0 and 20.9 s, alternated) and held 65 MB more
BULK_CACHE_KIB = 32 * 1024
#: a catch-up that (re)indexes more records than this drops the secondary indexes first and
#: builds them again at the end (one sort instead of random inserts)
BULK = 5_000
#: the value rows of records a small catch-up adds wait in ``vals_pending`` (no secondary index:
#: its rows go to the end of its one B-tree) until a search reads values, a catch-up changes
#: one of those records, or this many records wait: then they move to ``vals`` together, sorted
#: as its value index is. A record's 26 values were 26 pages of that index to write each commit
#: (0.45 of a single create's 1.24 ms catch-up, measured by dropping the index)
PENDING_RECORDS = 100
#: a catch-up makes the rows of its records past this many in worker processes (10,000 kept
#: the second core idle for the first 1.5 s of a 100,000-record bulk edit's catch-up: 27.7 s
#: against 26.2 s with 1,000, the mean of four each, alternated; forking costs some 50 ms)
PARALLEL = 2_000
MAX_WORKERS = 2
_SECONDARY = {
    "docs_by_update": "CREATE INDEX IF NOT EXISTS docs_by_update"
    " ON docs (deleted, updated DESC, revision DESC, record)",
    # the same order over deleted records too (the administration list shows them)
    "docs_by_update_all": "CREATE INDEX IF NOT EXISTS docs_by_update_all"
    " ON docs (updated DESC, revision DESC, record)",
    "vals_by_num": "CREATE INDEX IF NOT EXISTS vals_by_num ON vals (path, num) WHERE num IS NOT NULL",
    "vals_by_str": "CREATE INDEX IF NOT EXISTS vals_by_str ON vals (path, str)",
}
#: the indexes of ``docs`` by update time, dropped and built again by a bulk edit of most records
_DOC_ORDERS = {name: _SECONDARY[name] for name in ("docs_by_update", "docs_by_update_all")}
#: a bulk edit of at least this share of the index's records makes its full-text table again
#: (:func:`_rewrite_fts`) instead of updating their rows one by one
REWRITE_NUMERATOR, REWRITE_DENOMINATOR = 2, 3
_MATCH = "SELECT rowid FROM fts WHERE fts MATCH ?"
_COUNT_ONE = "INSERT INTO facet_counts VALUES (?, ?, 1) ON CONFLICT (path, str) DO UPDATE SET docs = docs + 1"
_EVERYTHING = "SELECT d.doc FROM docs d WHERE 1"
#: the token between two values' words in ``fts`` (a token character, never part of a word)
VALUE_END = "."
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_INTEGER = re.compile(r"^-?\d+$")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_NUMBER_START = frozenset("-0123456789")
#: joins a record's values for one normalisation (a control character no text normally has)
_SEPARATOR = "\x1f"
_SCALARS = frozenset((str, int, float, bool))
_ANY_TIP: Any = object()

#: the columns of ``vals`` and of ``vals_pending``, whose rows move to it as they are
_VALUE_COLUMNS = """
    doc INTEGER NOT NULL,
    path INTEGER NOT NULL,
    n INTEGER NOT NULL,
    str TEXT,
    -- NUMERIC, not REAL: an integer stays one (REAL made 2**53 + 1 equal to 2**53)
    num NUMERIC,
    PRIMARY KEY (doc, path, n)
"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docs (
    doc INTEGER PRIMARY KEY,
    record TEXT NOT NULL UNIQUE,
    deleted INTEGER NOT NULL,
    created INTEGER,
    updated INTEGER,
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS docs_by_update ON docs (deleted, updated DESC, revision DESC, record);
CREATE INDEX IF NOT EXISTS docs_by_update_all ON docs (updated DESC, revision DESC, record);
-- multi: some record has had several values there (then a count of values is not of records)
CREATE TABLE IF NOT EXISTS paths (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    multi INTEGER NOT NULL DEFAULT 0
);
-- n: the value's place among the record's values at that path (0 unless a list holds several)
CREATE TABLE IF NOT EXISTS vals ({_VALUE_COLUMNS}) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vals_by_num ON vals (path, num) WHERE num IS NOT NULL;
CREATE INDEX IF NOT EXISTS vals_by_str ON vals (path, str);
-- value rows of records added by small catch-ups, not yet in vals (see PENDING_RECORDS): what
-- reads values by record or by path reads them here too, or moves them to vals first
CREATE TABLE IF NOT EXISTS vals_pending ({_VALUE_COLUMNS}) WITHOUT ROWID;
-- how many live records hold each value of the declared facets' fields (meta 'counted' lists
-- those fields): facet counts of everything are read here, not counted over every record
CREATE TABLE IF NOT EXISTS facet_counts (
    path TEXT NOT NULL,
    str TEXT NOT NULL,
    docs INTEGER NOT NULL,
    PRIMARY KEY (path, str)
) WITHOUT ROWID;
-- the words are made in Python (query.words, after normalize()), joined by spaces: the ascii
-- tokenizer splits only there (it takes every non-ASCII character as part of a word), so the
-- words are the same whatever Unicode tables the SQLite library has (unicode61's split some
-- word characters, New Tai Lue vowels, differently from Python) and the same as the ranker's
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    body, scoped, tokenize = "ascii tokenchars '.:_'"
);
"""
#: the full-text table, made again from scratch by a rebuild (dropping it is much cheaper than
#: deleting its rows, which FTS5 tokenizes again one by one)
_FTS_TABLE = _SCHEMA[_SCHEMA.index("CREATE VIRTUAL TABLE") :]
#: the full-text table a bulk edit of most records writes (see :func:`_rewrite_fts`)
_FTS_NEXT = _FTS_TABLE.replace("IF NOT EXISTS fts USING", "fts_next USING")


def leaves(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every scalar in ``data``; lists are transparent (``titles.title``)."""
    found: list[tuple[str, Any]] = []
    _flatten(data, prefix or None, found)
    return iter(found)


def scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def scalar_number(value: Any) -> int | float | None:
    """The number ``value`` is or reads as (``"2019"``), None for anything else. An integer
    SQLite holds as one (64 bits) stays an integer, so that it compares exactly: as a float,
    9007199254740993 was 9007199254740992."""
    kind = value.__class__
    if kind is str:
        # most text does not start like a number: no regular expression for it
        if len(value) >= 40 or value[:1] not in _NUMBER_START or not _NUMBER.match(value):
            return None
        return query_number(value)
    if kind is bool or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return value
    try:
        number = float(value)
    except OverflowError:  # an integer past a float's range
        return None
    return number if math.isfinite(number) else None


def query_number(text: str) -> int | float | None:
    """The number of a text that reads as one (``_NUMBER``): an integer within 64 bits as an
    integer, any other as a float; None for infinite ones."""
    # past 19 digits no integer fits 64 bits (and past 4,300 int() refuses the text): a float
    if _INTEGER.match(text) and len(text.lstrip("-")) <= 19:
        exact = int(text)
        if _INT64_MIN <= exact <= _INT64_MAX:
            return exact
    try:
        number = float(text)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _flatten(data: Any, prefix: str | None, out: list[tuple[str, Any]]) -> None:
    """Append what :func:`leaves` yields to ``out``: a scalar under a path (``prefix`` None at the
    root, where a scalar has none; a top-level key "" is the path "", and its members' paths
    start with "."). The index's hot path: no generators, and the class of most values is looked
    up once."""
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten_value(value, str(key) if prefix is None else f"{prefix}.{key}", out)
    elif isinstance(data, list):
        for item in data:
            _flatten_value(item, prefix, out)
    elif data is not None and prefix is not None:
        out.append((prefix, data))


def _flatten_value(value: Any, path: str | None, out: list[tuple[str, Any]]) -> None:
    if value.__class__ in _SCALARS:
        if path is not None:
            out.append((path, value))
    elif value is not None:
        _flatten(value, path, out)


#: the prefix of a field path's scoped words, and what joins them (``12:`` and `` 12:``), by path id
_PREFIXES: dict[int, tuple[str, str]] = {}


def _prefix(path_id: int) -> tuple[str, str]:
    prefix = f"{path_id}:"
    found = prefix, " " + prefix
    if len(_PREFIXES) < 65536:  # (most repositories have some hundreds of field paths)
        _PREFIXES[path_id] = found
    return found


def _new_generation(conn: sqlite3.Connection) -> None:
    """Mark the index as built again, or purged: the ranker is built again from it."""
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (uuid.uuid4().hex,))


def _settle(conn: sqlite3.Connection) -> None:
    """Move the rows waiting in ``vals_pending`` to ``vals`` (in a write transaction), in the
    order of its value index: each of its leaves is written once for all of them."""
    if conn.execute("SELECT 1 FROM vals_pending LIMIT 1").fetchone() is None:
        return
    conn.execute("INSERT INTO vals SELECT * FROM vals_pending ORDER BY path, str")
    conn.execute("DELETE FROM vals_pending")


def forget_elsewhere(folder: str, own: str | None, purged: list[uuid.UUID]) -> None:
    """After a hard delete: the search indexes of the other branches (``search-*.sqlite`` in
    ``folder`` but ``own``) lose the purged records too, words and field names, and are rebuilt on
    their next search (their indexed tip was rewritten)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        if not (name.startswith("search-") and name.endswith(".sqlite")) or path == own:
            continue
        conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        try:
            conn.execute("PRAGMA secure_delete=ON")
            if conn.execute("SELECT value FROM meta WHERE key='format'").fetchone() != (FORMAT,):
                raise sqlite3.DatabaseError("another format")
            conn.execute("BEGIN IMMEDIATE")
            try:
                _settle(conn)
                for record_id in purged:
                    row = conn.execute("SELECT doc FROM docs WHERE record=?", (str(record_id),)).fetchone()
                    if row is not None:
                        for table, column in (("fts", "rowid"), ("vals", "doc"), ("docs", "doc")):
                            conn.execute(f"DELETE FROM {table} WHERE {column}=?", (row[0],))
                conn.execute("DELETE FROM paths WHERE id NOT IN (SELECT DISTINCT path FROM vals)")
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('paths', ?)", (uuid.uuid4().hex,))
                conn.execute("DELETE FROM meta WHERE key='tip'")
                conn.execute("DELETE FROM meta WHERE key='counted'")
                conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
                _wipe_free_pages(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            # damaged, another format, or busy for a minute: it is derived; removed, it is rebuilt
            # on its branch's next search
            conn.close()
            remove_database(path)
        finally:
            conn.close()
        _ranker.remove(ranker_folder(path))


def ranker_folder(path: str) -> str:
    """The folder of the ranker beside the search index in ``path`` (see :mod:`._ranker`)."""
    return path.removesuffix(".sqlite") + ".ranker"


@dataclass
class SearchHits:
    """One page of hits: ``total`` matching records, their ``ids`` in order, and ``facets``."""

    total: int
    ids: list[uuid.UUID]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class SearchIndex:
    """The search index of one branch (see the module docstring)."""

    #: a bulk edit's catch-up compares each record's new file with its old one: a bulk writer
    #: keeps both for it (:class:`gitrecords._written.WrittenFiles`)
    compares_files = True

    def __init__(self, git: Any, ref: str, path: str | None, revisions: RevisionIndex) -> None:
        self._git = git
        self._ref = ref
        self._revisions = revisions
        self._lock = threading.RLock()
        self.path = path
        self._paths: dict[str, int] = {}
        #: the value of meta 'paths' when ``_paths`` was filled (it changes when ids are deleted)
        self._paths_generation: str | None = None
        #: the records folder and the facets' fields of each configuration blob
        self._settings: dict[_git.Oid | None, tuple[str, tuple[str, ...]]] = {}
        #: the fields whose facet counts the catch-up under way keeps up to date
        self._counting: frozenset[str] = frozenset()
        self._built = False
        #: the doc number the next new record gets in a catch-up (None: not looked up yet)
        self._next_doc: int | None = 1
        #: in a catch-up of one commit: (created, revision) of the records of the parts numbered
        #: and not written yet, from their docs rows
        self._old_times: dict[str, tuple[Any, int]] | None = None
        self._conn = self._connect(path)
        #: the tantivy index that ranks pages of full-text queries (None: FTS5 ranks them all)
        self._ranker = _ranker.Ranker(ranker_folder(self.path)) if self.path else None

    def __repr__(self) -> str:
        return f"<SearchIndex {self._ref} {self.path or ':memory:'}>"

    # -- opening -----------------------------------------------------------

    def _connect(self, path: str | None) -> sqlite3.Connection:
        conn, self.path = open_derived(
            path,
            _SCHEMA,
            FORMAT,
            pragmas=(
                # deleted rows are overwritten with zeros: a purged record's words leave the file
                "secure_delete=ON",
                # the value indexes take random inserts: SQLite's default 2 MB page cache thrashes
                f"cache_size=-{CACHE_KIB}",
            ),
            keep=("fts_",),  # the full-text table's shadow tables go with it
        )
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- catching up ---------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed when the block ends, undone when it raises. The cached
        path ids stay valid unless some process deleted path ids since they were cached (``meta``
        'paths' counts those deletions); after a rollback, those it cached may not exist."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT value FROM meta WHERE key='paths'").fetchone()
        generation = row[0] if row else None
        if generation != self._paths_generation:
            self._paths.clear()
            self._paths_generation = generation
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._paths.clear()
            self._paths_generation = None
            raise

    def _paths_deleted(self) -> None:
        """Path ids were deleted in this transaction: every process's cache of them is stale."""
        self._paths.clear()
        self._paths_generation = uuid.uuid4().hex
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('paths', ?)", (self._paths_generation,))

    def _prune_paths(self, path_ids: set[int]) -> None:
        """Forget the field paths of ``path_ids`` that no record has any more (a purged record's
        field names leave the file; searches see the same paths as after a rebuild)."""
        conn = self._conn
        deleted = False
        for path_id in path_ids:
            # a walk of the few pending rows when the path is in no settled one
            held = "SELECT 1 FROM vals WHERE path=?1 UNION ALL SELECT 1 FROM vals_pending WHERE path=?1"
            if conn.execute(f"{held} LIMIT 1", (path_id,)).fetchone() is None:
                conn.execute("DELETE FROM paths WHERE id=?", (path_id,))
                deleted = True
        if deleted:
            self._paths_deleted()
            # the ranker's field-scoped words name path ids: a field that comes back gets a new
            # id, which records whose files end as they were would never get there
            _new_generation(conn)

    def _drop_doc(self, doc: int, stale_paths: set[int]) -> None:
        self._drop_docs([doc], stale_paths)

    def indexed_tip(self) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key='tip'").fetchone()
        return row[0] if row else None

    def catch_up(
        self,
        tip: _git.Oid | None = None,
        hints: Any = None,
        since: tuple[_git.Oid | None, Mapping[str, _git.Oid | None]] | None = None,
    ) -> None:
        """Bring the index up to ``tip`` (default: the branch tip); never backwards.

        ``since`` is ``(base, changes)`` from the writer that moved the branch from ``base`` to
        ``tip``: every file that differs between the two (path -> blob, None when removed). When
        the index is at ``base`` and ``base`` is ``tip``'s first parent, those are the records to
        index, and no tree is compared."""
        git = self._git
        if tip is None:
            tip = _git.tip(git, self._ref)
        tip_text = str(tip) if tip is not None else None
        if self.indexed_tip() == tip_text:
            return
        with self._lock:
            with self._writing() as conn:
                if since is None or not self._follow(tip, *since, written=getattr(hints, "written", None)):
                    self._catch_up(tip)
                # two lookups at the ends of the table (MIN and MAX in one SELECT walk all of it)
                low, high = conn.execute(
                    "SELECT (SELECT MIN(doc) FROM vals_pending), (SELECT MAX(doc) FROM vals_pending)"
                ).fetchone()
                if low is not None and high - low + 1 >= PENDING_RECORDS:
                    _settle(conn)
            if self._built:
                self._scrub()

    sync = catch_up

    def _follow(
        self,
        tip: _git.Oid | None,
        base: _git.Oid | None,
        changes: Mapping[str, _git.Oid | None],
        written: _written.WrittenFiles | None = None,
    ) -> bool:
        """Index one commit's ``changes`` as its writer reported them (see :meth:`catch_up`);
        False when they are not enough to tell (then the trees are compared). ``written``: the
        old and new files of records the writer kept, the old ones those at ``base``."""
        if tip is None or base is None or layout.CONFIG_FILE in changes:
            return False
        if self.indexed_tip() != str(base) or _git.first_parent(self._git, tip) != base:
            return False
        records = _RecordChanges(changes, self._records_dir(_git.tree_of(self._git, tip)))
        many = len(records) > BULK
        # the writer kept the old files of live records (a bulk edit's): no need to count them
        live = len(written) if written is not None else 0
        diff = many and (live * 2 >= len(records) or self._count_live(records) * 2 >= len(records))
        if many and not diff and len(records) * 2 > self._docs():
            self._build(tip)  # mostly new records, more than the index has (an import): not listed
            return True
        self._index(tip, records, diff=diff, before=base, one_commit=True, written=written)
        return True

    def _catch_up(self, tip: _git.Oid | None) -> None:
        git = self._git
        indexed = self.indexed_tip()
        if indexed == (str(tip) if tip is not None else None):
            return
        if indexed is not None and tip is not None:
            old = _git.Oid(hex=indexed)
            # a commit on the indexed tip (one comparison), or further along (a walk); the old tip
            # may be gone though a handle's cache still knows it (a realigned replica's gc)
            if old in git and (old in _git.commit_parents(git, tip) or _git.is_ancestor(git, old, tip)):
                self._apply_range(old, tip)
                return
            if old in git and _git.is_ancestor(git, tip, old):
                branch_tip = _git.tip(git, self._ref)
                if branch_tip != tip:
                    # an older snapshot: the index has passed it already (follow the branch on)
                    if branch_tip is not None and str(branch_tip) != indexed:
                        self._catch_up(branch_tip)
                    return
                # the branch itself went back (a reset, a forced fetch): so does the index
                self._apply_range(old, tip)
                return
            branch_tip = _git.tip(git, self._ref)
            if branch_tip is not None and branch_tip != tip:
                self._catch_up(branch_tip)  # a snapshot of a rewritten history: follow the branch
                return
        self._build(tip)

    def _records_dir(self, tree: Any) -> str:
        return self._settings_of(tree)[0]

    def _settings_of(self, tree: Any) -> tuple[str, tuple[str, ...]]:
        """(records folder, the declared facets' fields) of the configuration in ``tree``."""
        blob = _git.entry_id(tree, layout.CONFIG_FILE)
        known = self._settings.get(blob)
        if known is not None:
            return known
        try:
            settings = parse_config(_git.read_blob(self._git, blob) if blob is not None else None)
            records_dir = str(settings["records"])
            declared = settings.get("facets") or {}
            names = {str(k): str(v) for k, v in declared.items()} if isinstance(declared, dict) else {}
        except GitRecordsError:
            records_dir, names = layout.RECORDS_DIR, {}
        # a facet's field as a search resolves it (a field may be named by another facet's name)
        fields = tuple(sorted({names.get(path, path) for path in names.values()}))
        if len(self._settings) > 64:
            self._settings.clear()
        self._settings[blob] = (records_dir, fields)
        return records_dir, fields

    def _apply_range(self, old: _git.Oid, new: _git.Oid) -> None:
        git = self._git
        old_tree, new_tree = _git.tree_of(git, old), _git.tree_of(git, new)
        records_dir = self._records_dir(new_tree)
        if records_dir != self._records_dir(old_tree):
            self._build(new)
            return
        docs = -1  # how many records the index has: counted once the changes pass BULK
        changes: list[tuple[uuid.UUID, _git.Oid | None]] = []
        for path, _before, blob in _git.changed_blobs(
            git,
            _git.subtree(git, old_tree, records_dir),
            _git.subtree(git, new_tree, records_dir),
            records_dir + "/",
        ):
            if (record_id := layout.id_from_path(path, records_dir)) is None:
                continue
            changes.append((record_id, blob))
            if len(changes) <= BULK:
                continue
            if docs < 0:
                docs = self._docs()  # a count of every record: not for the few changes of most catch-ups
            if len(changes) == max(BULK + 1, docs // 2 + 1) and self._count_live(changes) * 2 < len(changes):
                # mostly new records, more than the index has (an import, a push of many): built
                # again from the tree, without holding a list of every change (a million of
                # them held 223 MB, through the build and in its forked workers)
                del changes
                self._build(new)
                return
        self._index(new, changes, before=old)
        done = {record_id for record_id, _ in changes}
        if _git.is_ancestor(git, new, old):
            # the branch went back (a reset): the records the dropped commits changed take their
            # times as of the commit it went back to, though their files may be the same there
            self._redate(new, old, records_dir, done, as_of=new)
        elif (chain := _git.first_parent_chain(git, new, old)) is None or len(chain) > 1:
            # the branch took another first-parent line (a pull whose merge has the remote's tip
            # first), or moved several commits on (a fetch, a push): the revision index dates what
            # each of those commits changed, so the records they changed take their times again,
            # though their files may be the same at both ends (a record taken A -> B -> A)
            self._redate(old, new, records_dir, done)

    def _redate(
        self,
        stop: _git.Oid,
        start: _git.Oid,
        records_dir: str,
        done: set[uuid.UUID],
        as_of: _git.Oid | None = None,
    ) -> None:
        """Date again, as of ``as_of`` (default ``start``), the records but ``done`` that the
        first-parent commits from ``start`` back to ``stop`` (or one of its ancestors) changed."""
        git = self._git
        changed: set[uuid.UUID] = set()
        for commit in _git.walk_first_parents(git, start):
            if commit == stop or _git.is_ancestor(git, commit, stop):
                break  # the line has reached the history the index had
            parent = _git.first_parent(git, commit)
            for path, _before, _after in _git.changed_blobs(
                git,
                _git.subtree(git, _git.tree_of(git, parent), records_dir),
                _git.subtree(git, _git.tree_of(git, commit), records_dir),
                records_dir + "/",
            ):
                record_id = layout.id_from_path(path, records_dir)
                if record_id is not None and record_id not in done:
                    changed.add(record_id)
        when = as_of if as_of is not None else start
        for key, (created, updated, revision) in self._times(when, sorted(changed, key=str)).items():
            self._conn.execute(
                "UPDATE docs SET created=?, updated=?, revision=? WHERE record=?",
                (created, updated, revision, key),
            )

    def _build(self, tip: _git.Oid | None) -> None:
        conn = self._conn
        for table in ("docs", "vals", "vals_pending", "paths", "facet_counts"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DROP TABLE fts")
        conn.execute(_FTS_TABLE)
        # pages a bulk edit freed without zeros may hold words of records gone since (a hard
        # delete whose own step here failed): a build leaves none
        _wipe_free_pages(conn)
        conn.execute("DELETE FROM meta WHERE key='counted'")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('live', 0)")
        _new_generation(conn)
        self._paths_deleted()
        if tip is None:
            conn.execute("DELETE FROM meta WHERE key='tip'")
            return
        git = self._git
        tree = _git.tree_of(git, tip)
        records_dir = self._records_dir(tree)
        sub = _git.subtree(git, tree, records_dir)
        files = _git.walk_blobs(git, sub, records_dir + "/") if sub is not None else iter(())
        self._index(tip, layout.records_among(files, records_dir), fresh=True)
        # one segment: the words of the rows deleted above leave the file (a history rewritten
        # behind the index's back, a purge it did not see, is rebuilt here)
        conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
        self._built = True

    def _index(
        self,
        tip: _git.Oid,
        changes: Iterable[tuple[uuid.UUID, _git.Oid | None]],
        fresh: bool = False,
        diff: bool | None = None,
        before: _git.Oid | None = None,
        one_commit: bool = False,
        written: _written.WrittenFiles | None = None,
    ) -> None:
        """Index ``changes`` (a sized collection, or any iterable when ``fresh``: a build, whose
        records are not held all at once). ``diff``: whether most of a large list of changes are new files
        of records the index has live (None: count them), whose rows are then compared with the
        old ones and only what differs is written (a bulk edit). ``before``: the commit the
        index is at, whose files are the old ones; ``one_commit``: ``tip`` is one commit past
        it (each changed record has one revision more, of ``tip``); then ``written`` may hold
        the old (at ``before``) and new files of changed records, read there, not in the packs."""
        conn = self._conn
        bulk = fresh or len(changes) > BULK  # type: ignore[arg-type]
        if fresh:
            diff = False
        elif not bulk:
            # a few records: an update that changes one field rewrites that field's value rows,
            # not every row of the record (each value is a page of the value index to write)
            diff = True
        elif diff is None:
            diff = self._count_live(changes) * 2 >= len(changes)  # type: ignore[arg-type]
        if bulk and not fresh:
            if not diff and len(changes) * 2 > self._docs():  # type: ignore[arg-type]
                # mostly new records, more than the index has (an import): building the index
                # again inserts every row into tables without their secondary indexes
                self._build(tip)
                return
        fields = self._settings_of(_git.tree_of(self._git, tip))[1]
        row = conn.execute("SELECT value FROM meta WHERE key='counted'").fetchone()
        # the facet counts follow each record, unless they are counted again at the end anyway
        recount = bulk or row is None or json.loads(row[0]) != list(fields)
        self._counting = frozenset() if recount else frozenset(fields)
        rebuilt = bulk and not diff  # few rows change in a diff: the value indexes stay
        # a bulk edit of most records: their full-text rows and times change, not their values
        rewrite = bulk and diff and len(changes) * REWRITE_DENOMINATOR >= self._docs() * REWRITE_NUMERATOR  # type: ignore[arg-type]
        dropped = _SECONDARY if rebuilt else _DOC_ORDERS if rewrite else {}
        if bulk:
            conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        for name in dropped:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        if rewrite:
            _stage_fts(conn)
        try:
            self._index_changes(
                tip, changes, fresh, diff, before, one_commit, stage_fts=rewrite, written=written
            )
            if rewrite:
                _rewrite_fts(conn)
        finally:
            self._counting = frozenset()
            for sql in dropped.values():
                conn.execute(sql)
            if bulk:
                conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        if recount:
            _settle(self._conn)
            self._recount(fields)

    def _count_live(self, changes: Iterable[tuple[uuid.UUID, _git.Oid | None]]) -> int:
        """How many of ``changes`` are new files of records the index has live."""
        count = 0
        for part in chunks((str(record_id) for record_id, blob in changes if blob is not None), 500):
            # led by the list: one lookup in the record index each (not a walk of the live records)
            count += self._conn.execute(
                "SELECT COUNT(*) FROM json_each(?) j CROSS JOIN docs d ON d.record = j.value"
                " WHERE d.deleted = 0",
                (json.dumps(part),),
            ).fetchone()[0]
        return count

    def _docs(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def _recount(self, fields: tuple[str, ...]) -> None:
        """Count the values of ``fields`` over every live record again."""
        conn = self._conn
        conn.execute("DELETE FROM facet_counts")
        if fields:
            marks = ",".join("?" * len(fields))
            conn.execute(
                "INSERT INTO facet_counts SELECT p.path, v.str, COUNT(DISTINCT v.doc) FROM paths p"
                f" JOIN vals v ON v.path = p.id WHERE p.path IN ({marks}) AND v.str IS NOT NULL"
                " GROUP BY p.path, v.str",
                fields,
            )
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('counted', ?)", (json.dumps(list(fields)),))

    def _uncount(self, doc: int) -> None:
        """Take ``doc``'s values out of the facet counts (before its rows are deleted)."""
        fields = sorted(self._counting)
        marks = ",".join("?" * len(fields))
        # led by the record's own rows (CROSS JOIN keeps that order): led by the field paths,
        # SQLite walked every value of each facet's field in the value index (2.5 ms an update
        # at 10,000 records, growing with them)
        pairs = self._conn.execute(
            f"SELECT DISTINCT p.path, v.str FROM vals v CROSS JOIN paths p ON p.id = v.path"
            f" WHERE v.doc = ? AND p.path IN ({marks}) AND v.str IS NOT NULL",
            [doc, *fields],
        ).fetchall()
        if not pairs:
            return
        self._conn.executemany("UPDATE facet_counts SET docs = docs - 1 WHERE path = ? AND str = ?", pairs)
        self._conn.executemany("DELETE FROM facet_counts WHERE path = ? AND str = ? AND docs <= 0", pairs)

    def _index_changes(
        self,
        tip: _git.Oid,
        changes: Iterable[tuple[uuid.UUID, _git.Oid | None]],
        fresh: bool,
        diff: bool = False,
        before: _git.Oid | None = None,
        one_commit: bool = False,
        stage_fts: bool = False,
        written: _written.WrittenFiles | None = None,
    ) -> None:
        """Index ``changes``, in parts of :data:`_Batch.SIZE` records; ``fresh``: the tables are
        empty (a build), so no record has rows yet; ``diff``: a record that stays live keeps its
        rows, and only those that differ from its new ones are written. Past the first
        :data:`PARALLEL` records, worker processes make the rows of the rest while this one
        writes them.

        In a large ``diff`` (a bulk edit), a record's old rows are made again from its file at
        ``before``, beside its new ones and in the same worker, and only what differs comes
        back: the old rows are not read back from the index (fetching and comparing 26 value
        rows a record was a third of an edit's catch-up), and a full-text row that is the same
        is not rewritten. The index at ``before`` holds exactly the rows that file makes."""
        conn = self._conn
        when = _git.commit_time(self._git, tip)
        # a large catch-up forgets the field paths no record has any more in one pass at the end
        many = fresh or len(changes) > BULK  # type: ignore[arg-type]
        stale_paths: set[int] | None = None if many else set()
        self._next_doc = 1 if fresh else None  # looked up when a record needs one
        self._old_times = {} if one_commit and not fresh else None
        batch = _Batch(conn)
        batch.stage_fts = stage_fts
        if many:
            _settle(conn)  # every value row is in vals through a large catch-up
        else:
            batch.defer = True
        old_tree = None
        narrow: Any = contextlib.nullcontext()
        if diff and many and before is not None and not self._counting:
            old_tree = _git.tree_of(self._git, before)
            # the old files are read in the new tree's order, all over the packs: at 100,000
            # records both packs stayed mapped (70 MB more than the edit's peak before)
            narrow = _git.narrow_pack_windows()
        with narrow:
            try:
                given = written if one_commit and old_tree is not None else None
                self._write_parts(tip, when, changes, fresh, diff, old_tree, stale_paths, batch, given)
            finally:
                self._old_times = None
        if stale_paths is None:
            if conn.execute("DELETE FROM paths WHERE id NOT IN (SELECT DISTINCT path FROM vals)").rowcount:
                self._paths_deleted()
        else:
            self._prune_paths(stale_paths)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?)", (str(tip),))

    def _write_parts(
        self,
        tip: _git.Oid,
        when: int,
        changes: Iterable[tuple[uuid.UUID, _git.Oid | None]],
        fresh: bool,
        diff: bool,
        old_tree: Any,
        stale_paths: set[int] | None,
        batch: _Batch,
        written: _written.WrittenFiles | None = None,
    ) -> None:
        """Write the rows of ``changes``, part after part (see :meth:`_index_changes`)."""
        for part, rows in self._parts_with_rows(changes, fresh, stale_paths, diff, old_tree, written):
            times = self._new_times(tip, when, [key for _doc, key, blob, _live in part if blob is not None])
            compared: set[int] = set()  # live records whose old rows stay, to be compared
            for n, (doc, key, blob, was_live) in enumerate(part):
                batch.live -= was_live
                if blob is None:
                    if doc is not None:
                        batch.removed.append((doc,))
                    continue
                state = rows.states[n]
                created, updated, revision = times.get(key, (when, when, 0))
                batch.docs.append((doc, key, int(state == _TOMBSTONE), created, updated, revision))
                batch.live += state != _TOMBSTONE
                kept = diff and was_live
                if kept and state != _LIVE and state != _COMPARED:
                    self._drop_docs([doc], stale_paths)  # its old rows go; new ones are made here
                if state == _DEFERRED:  # a field path the worker did not know: its rows are made here
                    self._record_rows(doc, blob, batch)
                elif kept and state == _LIVE:
                    compared.add(doc)
            if compared:
                self._compare(compared, rows, batch, stale_paths)
            else:
                batch.vals.extend(rows.vals)
                batch.fts.extend(rows.fts)
            if rows.gone or rows.changed or rows.fts_gone:  # what differs in records compared in _make_rows
                batch.vals_changed.extend(rows.changed)
                batch.vals_gone.extend(rows.gone)
                batch.fts_gone.extend((doc,) for doc in rows.fts_gone)
                if stale_paths is not None:
                    stale_paths.update(path for _doc, path, _n in rows.gone)
            batch.multi.update(rows.multi)
            batch.counted.update(rows.counted)
            batch.flush()

    def _parts_with_rows(
        self,
        changes: Iterable[tuple[uuid.UUID, _git.Oid | None]],
        fresh: bool,
        stale_paths: set[int] | None,
        diff: bool = False,
        old_tree: Any = None,
        written: _written.WrittenFiles | None = None,
    ) -> Iterator[tuple[list[tuple[int | None, str, _git.Oid | None, bool]], _Rows]]:
        """``changes`` in parts of (doc, record id, blob, was live), each with its rows: the doc
        of a record that had none is numbered, and the old rows of a record that had some are
        deleted (with ``diff``, not those of a live record's new file), before its new rows come.
        With ``old_tree``, a live record's new file is compared with its file there, or with
        the old file its writer kept in ``written`` (both files are then read there)."""
        parts = (self._numbered(part, fresh, stale_paths, diff) for part in chunks(changes, _Batch.SIZE))
        records_dir = self._records_dir(old_tree) if old_tree is not None else ""
        written_fd = written.ready() if written is not None and len(written) else None

        def old_file(key: str, blob: _git.Oid | None, was_live: bool) -> _git.Oid | None:
            if old_tree is None or blob is None or not was_live:
                return None
            return _git.entry_id(old_tree, layout.path_for(key, records_dir))

        def kept(key: str, blob: _git.Oid | None, was_live: bool) -> int | None:
            """Where ``written`` has the record's old and new file, if it has them."""
            if written_fd is None or blob is None or not was_live:
                return None
            return written.location(key)  # type: ignore[union-attr]

        def here(doc: int | None, key: str, blob: _git.Oid | None, was_live: bool) -> tuple[Any, Any, Any]:
            """(doc, file, old file) for :meth:`_make_rows` in this process."""
            location = kept(key, blob, was_live)
            if location is not None:
                try:
                    old, new = _written.read(written_fd, location)  # type: ignore[arg-type]
                except OSError:  # (a read error: the packs have them too)
                    pass
                else:
                    if object_id(BLOB, new) == blob.raw:  # type: ignore[union-attr]
                        return doc, new, old
            return doc, blob, old_file(key, blob, was_live)

        made = 0
        workers = 0  # how many processes could make rows: asked only once PARALLEL is reached
        for part in parts:
            yield part, self._make_rows([here(*entry) for entry in part], learn=True)
            made += len(part)
            if made >= PARALLEL and not workers:
                workers = min(MAX_WORKERS, os.cpu_count() or 1) if can_fork() else 1
                if workers > 1:
                    break
        else:
            return
        global _WORKER_INDEX
        _WORKER_INDEX = self
        # the workers read the files themselves, without libgit2, from a plain repository and
        # when this process runs no other thread (a fork copies the locks of other threads, a
        # web server's, in any state): else they are read here and sent
        git_dir = self._git.path
        try:
            by_id = threading.active_count() == 1 and GitDir.open(git_dir) is not None
        except OSError:  # a file of the repository this process may not read: libgit2's to say
            by_id = False
        try:
            pending: deque[list[tuple[int | None, str, _git.Oid | None, bool]]] = deque()

            def read(blob: _git.Oid | None) -> bytes | None:
                if blob is None:
                    return None
                return blob.raw if by_id else _git.read_blob(self._git, blob)

            def task(doc: int | None, key: str, blob: _git.Oid | None, live: bool) -> tuple[Any, Any, Any]:
                location = kept(key, blob, live)
                if location is not None:  # the worker reads both files in ``written``
                    return doc, location, blob.raw  # type: ignore[union-attr]
                return doc, read(blob), read(old_file(key, blob, live))

            def tasks() -> Iterator[list[tuple[Any, Any, Any]]]:
                for part in parts:
                    pending.append(part)
                    yield [task(*entry) for entry in part]

            results = ordered_map(
                _worker_rows,
                tasks(),
                workers=workers,
                initializer=_start_rows_worker,
                initargs=(git_dir if by_id else None, written_fd),
            )
            for rows in results:
                part = pending.popleft()
                if rows.unread:  # a file the worker could not read: the part is made here
                    rows = self._make_rows([here(*entry) for entry in part], learn=True)
                yield part, rows
        finally:
            _WORKER_INDEX = None

    def _numbered(
        self,
        part: list[tuple[uuid.UUID, _git.Oid | None]],
        fresh: bool,
        stale_paths: set[int] | None,
        diff: bool = False,
    ) -> list[tuple[int | None, str, _git.Oid | None, bool]]:
        existing: dict[str, tuple[int, bool]] = {}
        if not fresh:
            keys = json.dumps([str(record_id) for record_id, _blob in part])
            found = self._conn.execute(
                "SELECT record, doc, deleted, created, revision FROM docs"
                " WHERE record IN (SELECT value FROM json_each(?))",
                (keys,),
            ).fetchall()
            existing = {record: (doc, not deleted) for record, doc, deleted, _created, _revision in found}
            blobs = {str(record_id): blob for record_id, blob in part}
            if self._old_times is not None:  # of the records that stay, to be written with this part
                self._old_times.update(
                    (record, (created, revision))
                    for record, _d, _x, created, revision in found
                    if blobs[record] is not None
                )
            self._drop_docs(
                [
                    doc
                    for record, (doc, live) in existing.items()
                    if not (diff and live and blobs[record] is not None)
                ],
                stale_paths,
            )
        numbered: list[tuple[int | None, str, _git.Oid | None, bool]] = []
        for record_id, blob in part:
            key = str(record_id)
            doc, was_live = existing.get(key, (None, False))
            if doc is None and blob is not None:
                if self._next_doc is None:
                    self._next_doc = (self._conn.execute("SELECT MAX(doc) FROM docs").fetchone()[0] or 0) + 1
                doc, self._next_doc = self._next_doc, self._next_doc + 1
            numbered.append((doc, key, blob, was_live))
        return numbered

    def _compare(self, docs: set[int], rows: _Rows, batch: _Batch, stale_paths: set[int] | None) -> None:
        """Write the rows of ``docs`` (live records that had rows) that differ from their old
        ones (compared as sets of whole rows, in C); the other records' rows are new. The field
        paths of rows that go are added to ``stale_paths`` (None: not collected)."""
        self._settle_for(docs)
        if self._counting:
            for doc in docs:
                self._uncount(doc)  # the record's new values are counted when the batch is written
        old = self._conn.execute(
            "SELECT doc, path, n, str, num FROM vals WHERE doc IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(docs)),),
        ).fetchall()
        # also every row of a record that had none: an insert
        changed, gone = _row_changes(old, rows.vals)
        batch.vals_changed.extend(changed)
        batch.vals_gone.extend(gone)
        if stale_paths is not None:
            stale_paths.update(path for _doc, path, _n in gone)
        # every compared record's full-text row goes (a file that is no JSON object has no new one)
        batch.fts_gone.extend((doc,) for doc in docs)
        batch.fts.extend(rows.fts)

    def _make_rows(self, part: list[tuple[int | None, Any, Any]], learn: bool) -> _Rows:
        """The rows of a part's records: (doc, blob, old blob) each, no blob for a removed record.
        A blob is its id or, in a worker, the file's bytes. With ``learn``, a field path met for
        the first time gets its id; without (in a worker), the record is left to the parent
        (:data:`_DEFERRED`). A record with an old blob is compared with it: field by field
        (:meth:`_by_field`) or whole (:meth:`_differ`)."""
        rows = _Rows()
        for doc, blob, old in part:
            if blob is None:
                rows.states.append(None)
                continue
            data = _parsed(blob if blob.__class__ is bytes else _git.read_blob(self._git, blob))
            if layout.is_tombstone(data):
                rows.states.append(_TOMBSTONE)
                continue
            old_data = None
            if old is not None:
                old_data = _parsed(old if old.__class__ is bytes else _git.read_blob(self._git, old))
                if layout.is_tombstone(old_data):
                    old_data = None
            mark, fts_mark = len(rows.vals), len(rows.fts)
            try:
                if old_data is not None and self._by_field(doc, old_data, data, rows):
                    rows.states.append(_COMPARED)
                    continue
                if isinstance(data, dict):
                    self._rows(doc, data, rows)
            except _NewPath:
                del rows.vals[mark:]
                rows.counted = {entry for entry in rows.counted if entry[0] != doc}
                rows.states.append(_DEFERRED)
                continue
            if old_data is not None and self._differ(doc, old_data, rows, mark, fts_mark):
                rows.states.append(_COMPARED)
                continue
            rows.states.append(_LIVE)
        return rows

    def _by_field(self, doc: int, old: Any, new: Any, rows: _Rows) -> bool:
        """Add to ``rows`` what differs between the rows of a record's ``old`` and ``new`` data,
        made only from the top-level fields whose values differ (a top-level field's rows are
        its own: their paths start with its name), as changed and gone rows; and the record's new
        full-text row only if its words changed (made without its value rows). False, nothing
        added, when the record is not compared so: not two objects, not counting facets, a
        top-level name with a dot or an empty one (its paths may meet another field's), or a
        field path of the old data that this process does not know (a worker's)."""
        if self._counting or not (
            isinstance(old, dict) and isinstance(new, dict) and _own_paths(old) and _own_paths(new)
        ):
            return False
        dumps = orjson.dumps  # type-strict: 1, 1.0 and true make different rows
        differ = {
            key
            for key in old.keys() | new.keys()
            if key not in old or key not in new or dumps(old[key]) != dumps(new[key])
        }
        before, after = _Rows(), _Rows()
        try:
            self._rows(doc, {key: value for key, value in old.items() if key in differ}, before)
        except _NewPath:
            return False
        self._rows(doc, {key: value for key, value in new.items() if key in differ}, after)
        # the other fields' words are the same, and in the same places if the fields are
        if before.fts != after.fts or list(old) != list(new):
            self._rows(doc, new, rows, values=False)
            rows.fts_gone.append(doc)
        changed, gone = _row_changes(before.vals, after.vals)
        rows.changed.extend(changed)
        rows.gone.extend(gone)
        rows.multi.update(after.multi)
        return True

    def _differ(self, doc: int, old: Any, rows: _Rows, mark: int, fts_mark: int) -> bool:
        """Keep, of a record's new rows (``rows`` past ``mark`` and ``fts_mark``), only what
        differs from the rows of its ``old`` data, as changed and gone rows, and its full-text
        row only if its words changed. False (the rows left whole) when the old data makes no
        rows here (a field path a worker does not know)."""
        before = _Rows()
        try:
            if isinstance(old, dict):
                self._rows(doc, old, before)
        except _NewPath:
            return False
        changed, gone = _row_changes(before.vals, rows.vals[mark:])
        del rows.vals[mark:]
        rows.changed.extend(changed)
        rows.gone.extend(gone)
        if before.fts == rows.fts[fts_mark:]:
            del rows.fts[fts_mark:]  # the full-text row stays
        elif isinstance(old, dict):  # an object has a full-text row (maybe of no words)
            rows.fts_gone.append(doc)
        return True

    def _settle_for(self, docs: list[int] | set[int]) -> None:
        """Move the pending value rows to ``vals`` if some of them are of ``docs`` (whose rows
        are then read, compared or deleted there)."""
        if not docs:
            return
        found = self._conn.execute(
            "SELECT 1 FROM vals_pending WHERE doc IN (SELECT value FROM json_each(?)) LIMIT 1",
            (json.dumps(sorted(docs)),),
        ).fetchone()
        if found is not None:
            _settle(self._conn)

    def _record_rows(self, doc: int, blob: _git.Oid, batch: _Batch) -> None:
        data = _parsed(_git.read_blob(self._git, blob))
        if isinstance(data, dict):
            self._rows(doc, data, batch)

    def _drop_docs(self, docs: list[int], stale_paths: set[int] | None) -> None:
        """Delete the words and values of ``docs`` (their ``docs`` rows stay); the field paths
        they had go into ``stale_paths`` (None: not collected)."""
        if not docs:
            return
        conn = self._conn
        self._settle_for(docs)
        for doc in docs:
            if self._counting:
                self._uncount(doc)
            if stale_paths is not None:
                stale_paths.update(
                    p for (p,) in conn.execute("SELECT DISTINCT path FROM vals WHERE doc=?", (doc,))
                )
        conn.executemany("DELETE FROM fts WHERE rowid=?", [(doc,) for doc in docs])
        conn.executemany("DELETE FROM vals WHERE doc=?", [(doc,) for doc in docs])

    def _rows(self, doc: int, data: dict[str, Any], batch: _Rows | _Batch, values: bool = True) -> None:
        """Add the value rows, the full-text row and the facet counts of one live record; without
        ``values``, only its full-text row."""
        counting = self._counting
        pairs: list[tuple[str, Any]] = []
        _flatten(data, None, pairs)
        texts = [value if value.__class__ is str else scalar_text(value) for _path, value in pairs]
        # one normalisation of the record's text, not one per value (a value holding the
        # separator itself is rare: then each value is normalised alone)
        pieces = normalize(_SEPARATOR.join(texts)).split(_SEPARATOR)
        if len(pieces) != len(texts):
            pieces = [normalize(text) for text in texts]
        body: list[str] = []
        scoped: list[str] = []
        known = self._paths
        findall = WORD.findall
        last_path = None
        vals = batch.vals
        # a value's key is its place among the record's values at the same path: a value added
        # or removed elsewhere in the record leaves the other rows as they were
        ordinals: dict[int, int] = {}
        for n, (path, value) in enumerate(pairs):
            found = findall(pieces[n])
            if not (found or values):
                continue  # the full-text row alone (a bulk edit's): a value without words adds nothing
            path_id = known.get(path) or self._path_id(path)
            if found:
                # a token no query has (words are \w+) between two values: no phrase runs on
                # from one value into the next (scoped words differ by field, so only two
                # values of one field, in a list, need it there)
                if body:
                    body.append(VALUE_END)
                body.extend(found)
                if path_id == last_path:
                    scoped.append(VALUE_END)
                prefix, joiner = _PREFIXES.get(path_id) or _prefix(path_id)
                scoped.append(prefix + joiner.join(found))
                last_path = path_id
            if not values:
                continue
            text = texts[n]
            ordinal = ordinals.get(path_id, 0)
            ordinals[path_id] = ordinal + 1
            if ordinal:
                batch.multi.add(path_id)
            if value.__class__ is str and (len(text) >= 40 or text[:1] not in _NUMBER_START):
                number = None  # most text does not start like a number
            else:
                number = scalar_number(value)
            vals.append((doc, path_id, ordinal, text[:MAX_VALUE_CHARS], number))
            if path in counting:
                batch.counted.add((doc, path, text[:MAX_VALUE_CHARS]))
        batch.fts.append((doc, " ".join(body), " ".join(scoped)))

    def _new_times(self, tip: _git.Oid, when: int, keys: list[str]) -> dict[str, tuple[int, int, int]]:
        """(created, updated, revision) of records ``tip`` changed. One commit past the index's
        tip (``_old_times`` set), a record the index has gets one revision more, made at
        ``when``, and keeps its creation time; the others are asked of the revision index."""
        old_times = self._old_times
        if old_times is None:
            return self._times(tip, keys)
        times: dict[str, tuple[int, int, int]] = {}
        unknown: list[str] = []
        for key in keys:
            old = old_times.pop(key, None)
            if old is None or old[0] is None:
                unknown.append(key)  # new here (or its file was removed once): its history decides
            else:
                times[key] = (old[0], when, old[1] + 1)
        if unknown:
            times.update(self._times(tip, unknown))
        return times

    def _times(self, tip: _git.Oid, record_ids: list[Any]) -> dict[str, tuple[int, int, int]]:
        """(created, updated, latest revision id) of records, from the revision index (as of
        ``tip``)."""
        if not record_ids:
            return {}
        try:
            return self._revisions.times(record_ids, tip)
        except (sqlite3.Error, GitRecordsError):
            return {}  # the revision index is busy: the commit's time stands in

    def _path_id(self, path: str) -> int:
        found = self._paths.get(path)
        if found is not None:
            return found
        row = self._conn.execute("SELECT id FROM paths WHERE path=?", (path,)).fetchone()
        if row is None:
            row = (self._conn.execute("INSERT INTO paths (path) VALUES (?)", (path,)).lastrowid,)
        self._paths[path] = row[0]
        return int(row[0])

    def rewritten(
        self, old_tip: _git.Oid | None, commit_map: Mapping[Any, Any], purged: list[uuid.UUID]
    ) -> None:
        """After a hard delete: the purged records leave the index at once, and the full-text index
        is rewritten so that their words are gone from the file, not only unreachable."""
        with self._lock, self._writing() as conn:
            stale_paths: set[int] = set()
            row = conn.execute("SELECT value FROM meta WHERE key='counted'").fetchone()
            self._counting = frozenset(json.loads(row[0])) if row else frozenset()
            try:
                for record_id in purged:
                    row = conn.execute("SELECT doc FROM docs WHERE record=?", (str(record_id),)).fetchone()
                    if row is not None:
                        self._drop_doc(row[0], stale_paths)
                        conn.execute("DELETE FROM docs WHERE doc=?", (row[0],))
            finally:
                self._counting = frozenset()
            self._prune_paths(stale_paths)
            conn.execute(
                "UPDATE meta SET value = (SELECT COUNT(*) FROM docs WHERE deleted = 0) WHERE key = 'live'"
            )
            new_tip = commit_map.get(old_tip, old_tip) if old_tip is not None else None
            if new_tip is not None and self.indexed_tip() == str(old_tip):
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?)", (str(new_tip),))
            else:
                conn.execute("DELETE FROM meta WHERE key='tip'")  # rebuilt on the next catch-up
            conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
            _wipe_free_pages(conn)
            _new_generation(conn)
        if self._ranker is not None:
            _ranker.remove(self._ranker.folder)  # its files may hold the purged records' words
        self.catch_up()
        self._scrub()

    def _scrub(self) -> None:
        """Empty the WAL: the page images it still holds may have the words of deleted rows."""
        with self._lock:
            self._built = False
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rebuild(self) -> int:
        """Build the index again from the branch tip, and the ranker after it when the branch is
        large enough to have one (else the first ranked search builds it); returns the records
        indexed."""
        with self._lock:
            with self._writing() as conn:
                self._build(_git.tip(self._git, self._ref))
            self._scrub()
            self._build_ranker()
            return conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def _build_ranker(self) -> None:
        ranker = self._ranker
        if ranker is None or not ranker.usable():
            return
        self._with_ranker(
            lambda source: source.live >= _ranker.MIN_RECORDS and ranker.current(source),
            "the next ranked search builds it",
        )

    def _with_ranker(self, work: Callable[[_RankerSource], Any], meanwhile: str) -> Any:
        """``work`` on one read snapshot of the index (which the ranker follows, and whose records
        it must name); None when the ranker fails in it. The ranker is derived and optional: a
        failure is logged (``meanwhile`` says what happens instead) and marks it to be built
        again."""
        assert self._ranker is not None
        conn = self._conn
        try:
            conn.execute("BEGIN")
            try:
                return work(_RankerSource(self))
            finally:
                conn.execute("COMMIT")
        except BaseException as error:
            if not _ranker.is_failure(error):
                raise
            log.warning("the search ranker failed (%s); %s", error, meanwhile)
            self._ranker.failed(error)
            return None

    # -- searching -------------------------------------------------------------

    def known_paths(self) -> list[str]:
        return [row[0] for row in self._conn.execute("SELECT path FROM paths ORDER BY path")]

    def path_ids(self) -> dict[str, int]:
        """Every field path some record has, with its id."""
        return dict(self._conn.execute("SELECT path, id FROM paths"))

    def search(
        self,
        node: Node | None,
        *,
        sort: str | None = None,
        offset: int = 0,
        limit: int | None = 25,
        facets: Mapping[str, str] | None = None,
        with_deleted: bool = False,
        aliases: Mapping[str, str] | None = None,
        pid_fields: Mapping[str, str] | None = None,
    ) -> SearchHits:
        """The records matching ``node`` (None: all), sorted, one page; with facet counts.

        ``sort`` is ``relevance``, ``updated``, ``created`` or a field path, ``-`` first for
        descending (default: relevance when the query has words, else ``-updated``). ``facets``
        maps facet names to field paths. ``aliases`` maps field names a query may use to paths
        (the facet names); ``pid_fields`` maps PID types to their field (``recid:12``).
        """
        try:
            return self._search(node, sort, offset, limit, facets, with_deleted, aliases, pid_fields)
        except sqlite3.OperationalError as err:
            if _TOO_COMPLEX.search(str(err)) is None:
                raise
            raise QueryError(f"the query is too complex to run ({err})", 0) from None

    def _search(
        self,
        node: Node | None,
        sort: str | None,
        offset: int,
        limit: int | None,
        facets: Mapping[str, str] | None,
        with_deleted: bool,
        aliases: Mapping[str, str] | None,
        pid_fields: Mapping[str, str] | None,
    ) -> SearchHits:
        compiler = _Compiler(self, aliases or {}, pid_fields or {})
        with self._lock:
            conn = self._conn
            if conn.execute("SELECT 1 FROM vals_pending LIMIT 1").fetchone() is not None:
                with self._writing():  # the values of records written since the last search are read
                    _settle(conn)
            where, params = compiler.filter(node)
            # vals and fts hold live records only (a tombstone has no words and no values): only
            # "everything" and terms read from docs (id:, NOT) need the state checked
            state = "" if with_deleted or (where and not compiler.uses_docs) else " AND d.deleted = 0"
            match = compiler.single_match(where)
            #: a condition on ``d`` (docs) that is true for the hits, when cheaper than a list of them
            probe: tuple[str, list[Any]] | None = None
            #: (total, the page's ids) when the ranker answered
            ranked: tuple[int, list[str]] | None = None
            if not where:
                hits, hits_params = f"{_EVERYTHING}{state}", []
                live = (
                    None
                    if with_deleted
                    else conn.execute("SELECT value FROM meta WHERE key='live'").fetchone()
                )
                total = (
                    int(live[0])
                    if live is not None  # kept as records change: no walk over every record
                    else conn.execute(f"SELECT COUNT(*) FROM ({hits})").fetchone()[0]
                )
            elif match is not None:
                hits, hits_params = where, params  # counting FTS5 matches walks its doclists only
                ranked = self._ranked_page(compiler.single_text(where), compiler, sort, offset, limit)
                if ranked is not None:
                    total, ids = ranked
                else:
                    total = conn.execute(f"SELECT COUNT(*) FROM ({hits})", hits_params).fetchone()[0]
            elif (ranged := self._one_value_range(compiler, where)) is not None:
                # one range on a field no record has two values at: counting its entries in the
                # value index counts records, and a page walks the time index probing each record
                hits, hits_params = where, params
                path_id, condition, condition_params = ranged
                total = conn.execute(
                    f"SELECT COUNT(*) FROM vals WHERE path = ? AND {condition}", [path_id, *condition_params]
                ).fetchone()[0]
                # unary + keeps SQLite from probing by value (vals_by_num) instead of by record
                by_record = re.sub(r"\b(num|str)\b", r"+\1", condition)
                probe = (
                    f"EXISTS (SELECT 1 FROM vals v WHERE v.doc = d.doc AND v.path = ? AND {by_record})",
                    [path_id, *condition_params],
                )
            else:
                # the hits once, in a temporary table keyed by doc: counted, then probed by the
                # page and the facets without evaluating the filter again
                if state:
                    where = (
                        f"WITH h(doc) AS ({where}) SELECT d.doc FROM h JOIN docs d ON d.doc = h.doc"
                        f" WHERE 1{state}"
                    )
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS hits (doc INTEGER PRIMARY KEY)")
                conn.execute("DELETE FROM temp.hits")
                conn.execute(f"INSERT OR IGNORE INTO temp.hits {where}", params)
                hits, hits_params = "SELECT doc FROM temp.hits", []
                total = conn.execute("SELECT COUNT(*) FROM temp.hits").fetchone()[0]
            page = f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(offset)}"
            if ranked is None:
                ids = self._page(
                    compiler,
                    sort,
                    hits,
                    hits_params,
                    match,
                    state,
                    page,
                    offset,
                    limit,
                    total,
                    with_deleted,
                    probe,
                )
            counts: dict[str, list[tuple[str, int]]] = {}
            counted: list[str] = []
            if facets and not where:  # deleted records hold no values: the same counts either way
                row = conn.execute("SELECT value FROM meta WHERE key='counted'").fetchone()
                counted = json.loads(row[0]) if row else []
            for name, path in (facets or {}).items():
                field_path = (aliases or {}).get(path, path)
                if field_path in counted:  # every live record's values, counted as they changed
                    counts[name] = conn.execute(
                        "SELECT str, docs FROM facet_counts WHERE path = ?"
                        f" ORDER BY docs DESC, str LIMIT {FACET_VALUES}",
                        (field_path,),
                    ).fetchall()
                    continue
                pids = compiler.paths_for(path, exact_path=True)
                if not pids:
                    counts[name] = []
                    continue
                marks = ",".join("?" * len(pids))
                # every record's values when nothing is filtered: no list of hits to probe
                inside = f" AND v.doc IN ({hits})" if where else ""
                counts[name] = [
                    (value, count)
                    for value, count in conn.execute(
                        f"SELECT v.str, COUNT(DISTINCT v.doc) AS c FROM vals v WHERE v.path IN ({marks})"
                        f"{inside} GROUP BY v.str ORDER BY c DESC, v.str LIMIT {FACET_VALUES}",
                        [*pids, *(hits_params if inside else [])],
                    )
                ]
        return SearchHits(total, [uuid.UUID(r) for r in ids], counts)

    def _ranked_page(
        self,
        text: _ranker.TextQuery | None,
        compiler: _Compiler,
        sort: str | None,
        offset: int,
        limit: int | None,
    ) -> tuple[int, list[str]] | None:
        """(total, the page's record ids) of a full-text match ranked best first, by the ranker;
        None when it does not answer (see :mod:`._ranker`). Records tied at the page's last score
        are ordered as :meth:`_page` orders them (most recently updated first)."""
        ranker = self._ranker
        if ranker is None or limit is None or limit <= 0 or not _ranker.supported(text):
            return None
        if compiler.sort_key(sort) != ("relevance", False) or not ranker.usable():
            return None
        assert text is not None
        conn = self._conn
        end = offset + limit
        # with a phrase, wide at once: a wider window costs tantivy little, asking again costs
        # the whole phrase query again (13 ms for one of 147,000 matches at a million records)
        window = end + (RANK_WINDOW_TIES if _ranker.has_phrase(text) else RANK_WINDOW_MIN)

        def page(source: _RankerSource) -> tuple[int, list[Any], dict[str, float]] | None:
            nonlocal window
            if source.live < _ranker.MIN_RECORDS or not ranker.current(source):
                return None
            total, scores, addresses = ranker.top(text, window)
            while len(scores) == window and scores[-1] == scores[end - 1]:
                # records tied with the page's last score run past the window: a wider one (the
                # benchmark's records tie up to 1,800 at a million)
                window = max(window * 4, end + RANK_WINDOW_TIES)
                total, scores, addresses = ranker.top(text, window)
            if len(scores) > end:
                last = scores[end - 1]
                keep = end + sum(1 for _ in itertools.takewhile(lambda score: score == last, scores[end:]))
                scores, addresses = scores[:keep], addresses[:keep]
            records = ranker.records(addresses)
            score_of = dict(zip(records, scores, strict=True))
            # led by the list: one lookup in the record index each (SQLite would rather walk
            # every live record in docs_by_update for "deleted = 0": 13 ms at 100,000 records)
            found = conn.execute(
                "SELECT d.record, d.updated, d.revision FROM json_each(?) j CROSS JOIN docs d"
                " ON d.record = j.value WHERE +d.deleted = 0",
                (json.dumps(records),),
            ).fetchall()
            if not len(found) == len(score_of) == len(records) or not len(found) <= total <= source.live:
                raise _ranker.Mismatch(f"it named {len(records) - len(found)} records the index has not")
            return total, found, score_of

        answered = self._with_ranker(page, "the index ranks this page")
        if answered is None:
            return None
        total, found, score_of = answered
        found.sort(
            key=lambda row: (-score_of[row[0]], -row[1] if row[1] is not None else math.inf, -row[2], row[0])
        )
        return total, [row[0] for row in found[offset:end]]

    def _one_value_range(self, compiler: _Compiler, where: str) -> tuple[int, str, list[Any]] | None:
        """(path id, condition on ``vals`` columns, its parameters) when the whole filter is one
        range term on one field path at which no record has more than one value."""
        ranged = compiler.single_range(where)
        if ranged is None or len(ranged[0]) != 1:
            return None
        row = self._conn.execute("SELECT multi FROM paths WHERE id = ?", (ranged[0][0],)).fetchone()
        if row is None or row[0]:
            return None
        return ranged[0][0], ranged[1], ranged[2]

    def _page(
        self,
        compiler: _Compiler,
        sort: str | None,
        hits: str,
        params: list[Any],
        match: str | None,
        state: str,
        page: str,
        offset: int,
        limit: int | None,
        total: int,
        with_deleted: bool,
        probe: tuple[str, list[Any]] | None = None,
    ) -> list[str]:
        """The record ids of one page, in order (see :meth:`_Compiler.sort_key`)."""
        conn = self._conn
        key, descending = compiler.sort_key(sort)
        if key == "relevance":
            direction = "DESC" if descending else "ASC"  # bm25: lower is better
            if match is not None:
                found = self._ranked_window(match, descending, offset, limit, total)
                if found is not None:
                    return found
                # the hits are the matches: ranked in the same FTS5 scan (bm25, as before)
                sql = (
                    "SELECT d.record FROM fts JOIN docs d ON d.doc = fts.rowid WHERE fts MATCH ?"
                    f" ORDER BY fts.rank {direction}, d.updated DESC, d.revision DESC, d.record{page}"
                )
                return [r[0] for r in conn.execute(sql, [match])]
            # materialized, the scores get an (automatic) index: one lookup per hit, not a scan
            sql = (
                f"WITH hits(doc) AS MATERIALIZED ({hits}),"
                " r(doc, score) AS MATERIALIZED (SELECT rowid, rank FROM fts WHERE fts MATCH ?)"
                " SELECT d.record FROM hits h JOIN docs d ON d.doc = h.doc LEFT JOIN r ON r.doc = h.doc"
                f" ORDER BY r.score IS NULL, r.score {direction}, d.updated DESC, d.revision DESC,"
                f" d.record{page}"
            )
            expression = " OR ".join(f"({t})" for t in compiler.rank_terms)
            return [r[0] for r in conn.execute(sql, [*params, expression])]
        direction = "DESC" if descending else "ASC"
        if key in ("updated", "created"):
            # within a second, more revisions count as more recent (as RevisionIndex.latest)
            order = f"d.{key} {direction}, d.revision {direction}, d.record"
            if key == "updated" and descending and with_deleted and hits.startswith(_EVERYTHING):
                # every record, deleted ones too: docs_by_update_all holds this order
                sql = f"SELECT d.record FROM docs d ORDER BY {order}{page}"
                return [r[0] for r in conn.execute(sql)]
            if key == "updated" and descending and not with_deleted:
                # docs_by_update holds this order: walk it and stop at the page's last hit (when
                # at least one record in WALK_RATIO is a hit; fewer hits are sorted instead)
                if hits.startswith(_EVERYTHING):
                    sql = f"SELECT d.record FROM docs d WHERE d.deleted = 0 ORDER BY {order}{page}"
                    return [r[0] for r in conn.execute(sql)]
                docs = conn.execute("SELECT MAX(doc) FROM docs").fetchone()[0] or 0
                if total * WALK_RATIO >= docs:
                    condition, condition_params = probe or (f"d.doc IN ({hits})", params)
                    sql = f"SELECT d.record FROM docs d WHERE d.deleted = 0 AND {condition}"
                    sql += f" ORDER BY {order}{page}"
                    return [r[0] for r in conn.execute(sql, condition_params)]
            # few hits (or another order): sort them
            sql = f"SELECT d.record FROM docs d WHERE d.doc IN ({hits}) ORDER BY {order}{page}"
            return [r[0] for r in conn.execute(sql, params)]
        pids = compiler.paths_for(key)
        if not pids:
            raise QueryError(f"cannot sort by {key!r}: no record has that field", 0)
        found = self._top_by_number(pids, descending, hits, params, offset, limit)
        if found is not None:
            return found
        marks = ",".join(str(int(i)) for i in pids)  # integers of our own table, not user text
        pick = "MAX" if descending else "MIN"
        sql = (
            f"WITH hits(doc) AS MATERIALIZED ({hits})"
            f" SELECT d.record FROM docs d LEFT JOIN (SELECT doc, {pick}(num) AS kn, {pick}(str) AS ks"
            f" FROM vals WHERE path IN ({marks}) AND doc IN (SELECT doc FROM hits) GROUP BY doc) s"
            f" ON s.doc = d.doc WHERE d.doc IN (SELECT doc FROM hits)"
            # numbers by number; texts (of records with no number there) by text; ties by record
            f" ORDER BY s.kn IS NULL, s.kn {direction}, s.kn IS NOT NULL OR s.ks IS NULL,"
            f" CASE WHEN s.kn IS NULL THEN s.ks END {direction}, d.record{page}"
        )
        return [r[0] for r in conn.execute(sql, params)]

    def _ranked_window(
        self, match: str, descending: bool, offset: int, limit: int | None, total: int
    ) -> list[str] | None:
        """The page of a query that is one full-text match (``total`` matches), by relevance:
        FTS5 scores every match in its scan but keeps only the best (see
        :data:`RANK_WINDOW_RATIO`), and only those that matter (the page and every record tied
        with its last score) are looked up and ordered with their ties (most recently updated
        first, as :meth:`_page`). None when the window ends inside that tie: then every match
        is ordered."""
        if limit is None:
            return None
        end = offset + limit
        window = end + max(RANK_WINDOW_MIN, total // RANK_WINDOW_RATIO)
        order = "DESC" if descending else "ASC"  # bm25: lower is better
        conn = self._conn
        best = conn.execute(
            f"SELECT rowid, bm25(fts) AS score FROM fts WHERE fts MATCH ? ORDER BY score {order} LIMIT ?",
            (match, window),
        ).fetchall()
        if len(best) == window:
            last = best[end - 1][1]
            if best[-1][1] == last:
                return None  # records tied with the page's last score lie past the window
            best = best[:end] + list(itertools.takewhile(lambda row: row[1] == last, best[end:]))
        scores = dict(best)
        found = conn.execute(
            "SELECT doc, updated, revision, record FROM docs WHERE doc IN (SELECT value FROM json_each(?))",
            (json.dumps(list(scores)),),
        ).fetchall()
        sign = -1 if descending else 1
        # the scores are compared as the floats FTS5 gave, in Python (no text round trip)
        found.sort(
            key=lambda row: (
                sign * scores[row[0]],
                -row[1] if row[1] is not None else math.inf,
                -row[2],
                row[3],
            )
        )
        return [row[3] for row in found[offset:end]]

    def _top_by_number(
        self, pids: list[int], descending: bool, hits: str, params: list[Any], offset: int, limit: int | None
    ) -> list[str] | None:
        """A page sorted by a numeric field without sorting every hit: walk the field's numbers in
        order (``vals_by_num``) until the page's last number, then take the records tied at that
        number in record id order. None when the walk cannot decide the page (too few records
        have a number there, or no limit)."""
        if limit is None or len(pids) != 1:
            return None
        conn = self._conn
        path = pids[0]
        need = offset + limit
        direction = "DESC" if descending else "ASC"
        everything = hits.startswith(_EVERYTHING)
        probe = "" if everything else f" AND doc IN ({hits})"
        hits_params = [] if everything else params
        cursor = conn.execute(
            f"SELECT doc, num FROM vals WHERE path = ? AND num IS NOT NULL{probe} ORDER BY num {direction}",
            [path, *hits_params],
        )
        # a record's place is its first number met (the smallest; descending, the largest)
        before: dict[int, Any] = {}  # record -> its number, for those before the current number
        group: list[int] = []  # records at the current number
        current = None
        for doc, num in cursor:
            if doc in before or doc in group:
                continue
            if num != current:
                before.update((d, current) for d in group)
                group, current = [], num
                if len(before) >= need:
                    break
            group.append(doc)
            if len(before) + len(group) >= need:
                break  # the page ends at this number: the rest of its records are ranked below
        cursor.close()
        if len(before) + len(group) < need:
            return None  # records without a number there come next: the general query decides
        wanted = need - len(before)
        tied = self._tied(path, current, before, wanted, hits, hits_params) if wanted > 0 else []
        rows = conn.execute(
            "SELECT j.value, d.record FROM json_each(?) j JOIN docs d ON d.doc = j.value",
            [json.dumps([*before, *tied])],
        ).fetchall()
        record_of = dict(rows)
        # by number, ties by record id (the order of the general query)
        ordered = sorted(before, key=lambda doc: record_of[doc])
        ordered.sort(key=lambda doc: before[doc], reverse=descending)
        return [record_of[doc] for doc in [*ordered, *tied][offset:need]]

    def _tied(
        self, path: int, number: Any, before: Mapping[int, Any], wanted: int, hits: str, params: list[Any]
    ) -> list[int]:
        """The first ``wanted`` records (by record id) whose place is ``number`` (they hold it and
        no number before it: not in ``before``), among the hits."""
        conn = self._conn
        everything = hits.startswith(_EVERYTHING)
        inside = "" if everything else f" AND v.doc IN ({hits})"
        many = False
        if everything:
            tied = conn.execute("SELECT COUNT(*) FROM vals WHERE path = ? AND num = ?", [path, number])
            docs = conn.execute("SELECT MAX(doc) FROM docs").fetchone()[0] or 0
            many = tied.fetchone()[0] * TIE_WALK_RATIO >= docs
        if many:
            # many records tied (a year among a million records): walk the records in id order and
            # stop after ``wanted`` of them hold the number (about docs / tied probes each)
            # (vals hold live records only; the unary + keeps SQLite walking records by id, each
            # probed by its key, instead of sorting every record that holds the number)
            found = conn.execute(
                "SELECT d.doc FROM docs d WHERE EXISTS (SELECT 1 FROM vals v"
                " WHERE v.doc = d.doc AND v.path = ? AND +v.num = ?) ORDER BY d.record",
                [path, number],
            )
            out = []
            for (doc,) in found:
                if doc not in before:
                    out.append(doc)
                    if len(out) >= wanted:
                        break
            found.close()
            return out
        rows = conn.execute(
            f"SELECT DISTINCT v.doc, d.record FROM vals v JOIN docs d ON d.doc = v.doc"
            f" WHERE v.path = ? AND v.num = ?{inside}",
            [path, number, *params],
        ).fetchall()
        rows.sort(key=lambda r: r[1])
        return [doc for doc, _record in rows if doc not in before][:wanted]


class _RankerSource:
    """The search index as the ranker reads it (in the caller's read transaction)."""

    def __init__(self, index: SearchIndex) -> None:
        self._index = index
        self._conn = index._conn
        meta = dict(
            self._conn.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'tip', 'live')")
        )
        self.generation = meta.get("generation")
        self.tip = meta.get("tip")
        live = meta.get("live")
        if live is None:
            live = self._conn.execute("SELECT COUNT(*) FROM docs WHERE deleted = 0").fetchone()[0]
        self.live = int(live)

    def rows(self, records: list[str] | None) -> Iterator[tuple[str, str, str]]:
        if records is None:
            return iter(
                self._conn.execute(
                    "SELECT d.record, f.body, f.scoped FROM fts f JOIN docs d ON d.doc = f.rowid"
                )
            )
        return iter(
            self._conn.execute(
                "SELECT d.record, f.body, f.scoped FROM docs d JOIN fts f ON f.rowid = d.doc"
                " WHERE d.record IN (SELECT value FROM json_each(?))",
                (json.dumps(records),),
            )
        )

    def changed(self, old_tip: str, new_tip: str, limit: int) -> list[str] | None:
        try:
            return self._changed(old_tip, new_tip, limit)
        except Exception:  # an old tip whose objects are gone (a purge, a gc): built again
            return None

    def _changed(self, old_tip: str, new_tip: str, limit: int) -> list[str] | None:
        git = self._index._git
        old, new = _git.oid_from_hex(old_tip), _git.oid_from_hex(new_tip)
        if old not in git or new not in git:
            return None
        old_tree, new_tree = _git.tree_of(git, old), _git.tree_of(git, new)
        records_dir = self._index._records_dir(new_tree)
        if records_dir != self._index._records_dir(old_tree):
            return None
        found: list[str] = []
        for path, _before, _after in _git.changed_blobs(
            git,
            _git.subtree(git, old_tree, records_dir),
            _git.subtree(git, new_tree, records_dir),
            records_dir + "/",
        ):
            record_id = layout.id_from_path(path, records_dir)
            if record_id is not None:
                found.append(str(record_id))
                if len(found) > limit:
                    return None
        return found


class _RecordChanges:
    """(record id, blob) of the record files among a writer's changes (path -> blob), counted as
    all of them and iterated as often as needed: the changes of a bulk edit of a million records
    are not listed again (a list of their ids and blobs held 220 MB)."""

    def __init__(self, changes: Mapping[str, _git.Oid | None], records_dir: str) -> None:
        self._changes = changes
        self._records_dir = records_dir

    def __len__(self) -> int:
        return len(self._changes)

    def __iter__(self) -> Iterator[tuple[uuid.UUID, _git.Oid | None]]:
        return layout.records_among(self._changes.items(), self._records_dir)


class _NewPath(Exception):
    """A worker met a field path that has no id yet."""


#: what a part's record is after reading it (_COMPARED: its rows are what differs from its old ones)
_LIVE, _TOMBSTONE, _DEFERRED, _COMPARED = 0, 1, 2, 3


@dataclass
class _Rows:
    """The rows of some records, made here or in a worker (``states``: one per record)."""

    states: list[int | None] = field(default_factory=list)
    vals: list[tuple[Any, ...]] = field(default_factory=list)
    fts: list[tuple[Any, ...]] = field(default_factory=list)
    multi: set[int] = field(default_factory=set)
    counted: set[tuple[int, str, str]] = field(default_factory=set)
    #: of compared records: value rows that replace or add to the old ones, keys of old value
    #: rows that go, docs whose old full-text row goes (a new one is in ``fts`` unless it has none)
    changed: list[tuple[Any, ...]] = field(default_factory=list)
    gone: list[tuple[int, int, int]] = field(default_factory=list)
    fts_gone: list[int] = field(default_factory=list)
    #: a worker could not read a file of the part: nothing else is set, the parent makes them
    unread: bool = False


#: the index whose rows forked workers make (set while they run; each worker has its copy)
_WORKER_INDEX: SearchIndex | None = None


#: in a worker, the repository it reads files from (None: the parent sends the files)
_WORKER_GIT: GitDir | None = None
#: in a worker, the file of the old and new files a writer kept (inherited from the parent)
_WORKER_WRITTEN: int | None = None


def _start_rows_worker(git_dir: str | None, written_fd: int | None = None) -> None:
    global _WORKER_GIT, _WORKER_WRITTEN
    _WORKER_WRITTEN = written_fd
    index = _WORKER_INDEX
    assert index is not None
    # the parent's git and SQLite handles: never used here
    index._git = index._conn = None  # type: ignore[assignment]

    def refuse(path: str) -> int:
        raise _NewPath(path)

    index._path_id = refuse  # type: ignore[method-assign]
    # packs read with pread: a worker reads most of them once, its pages would stay resident
    _WORKER_GIT = GitDir(git_dir, mapped=False) if git_dir is not None else None


def _worker_rows(part: list[tuple[int | None, Any, Any]]) -> _Rows:
    """The rows of a part of (doc, file, old file). A worker that reads the files itself is
    given their ids (20 bytes), or (where, the file's id) of both files in the writer's
    :class:`~gitrecords._written.WrittenFiles`; one it cannot read here (a pack gone in a
    repack, damage, anything this reader does not expect) leaves the whole part to the parent
    (:attr:`_Rows.unread`)."""
    assert _WORKER_INDEX is not None
    try:
        part = [_worker_files(*entry) for entry in part]
    except Exception:
        return _Rows(unread=True)
    return _WORKER_INDEX._make_rows(part, learn=False)


def _worker_files(doc: int | None, new: Any, old: Any) -> tuple[int | None, Any, Any]:
    """(doc, file, old file) of a worker's task: read in the written files or the packs."""
    if new.__class__ is int:  # where both files are, and the new one's id
        assert _WORKER_WRITTEN is not None
        old_file, new_file = _written.read(_WORKER_WRITTEN, new)
        if object_id(BLOB, new_file) != old:
            raise LookupError(old.hex())
        return doc, new_file, old_file
    if _WORKER_GIT is None:
        return doc, new, old  # the files themselves
    return doc, _worker_file(new), _worker_file(old)


def _worker_file(oid: bytes | None) -> bytes | None:
    """The content of the file ``oid`` (None: no file), read in a worker; raises when it is not
    a blob this reader can read."""
    if oid is None:
        return None
    assert _WORKER_GIT is not None
    found = _WORKER_GIT.read(oid)
    if found is None or found[0] != BLOB:
        raise LookupError(oid.hex())
    return found[1]


def _row_changes(
    old_rows: Iterable[tuple[Any, ...]], new_rows: Iterable[tuple[Any, ...]]
) -> tuple[set[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(rows to write, keys (doc, path, n) of rows to delete) that turn value rows ``old_rows``
    into ``new_rows``, compared as sets of whole rows (in C): a row whose key stays is
    replaced, not deleted."""
    old, new = set(old_rows), set(new_rows)
    changed = new - old
    written = {row[:3] for row in changed}
    return changed, [key for row in old - new if (key := row[:3]) not in written]


def _own_paths(data: dict[str, Any]) -> bool:
    """Whether every field path under a top-level name of ``data`` starts with that name and
    no other's does (no name has a dot, none is empty)."""
    return not any(not key or "." in key for key in data)


def _parsed(raw: bytes) -> Any:
    """A record file's data; an unreadable file is reported when read, here it has no words."""
    try:
        return layout.loads(raw)
    except GitRecordsError:
        return {}


class _Batch:
    """Rows waiting to be inserted together (one ``executemany`` per table)."""

    #: records per batch in a build
    SIZE = 500

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.docs: list[tuple[Any, ...]] = []
        self.vals: list[tuple[Any, ...]] = []
        self.fts: list[tuple[Any, ...]] = []
        #: value rows that replace a record's old row at the same (doc, path, n), and the keys of
        #: old rows that go (a compared record's)
        self.vals_changed: list[tuple[Any, ...]] = []
        self.vals_gone: list[tuple[int, int, int]] = []
        #: full-text rows that go before a new one for the same doc comes
        self.fts_gone: list[tuple[int]] = []
        #: docs whose record file is gone
        self.removed: list[tuple[int]] = []
        #: field paths a record has several values at
        self.multi: set[int] = set()
        #: live records added (or, negative, gone)
        self.live = 0
        #: (doc, field path, value) of the facet values: one count per record and value
        self.counted: set[tuple[int, str, str]] = set()
        #: the value rows of ``vals`` wait in ``vals_pending`` (a small catch-up's)
        self.defer = False
        #: full-text rows go to ``fts_next`` until :func:`_rewrite_fts` (a bulk edit's)
        self.stage_fts = False

    def flush(self) -> None:
        conn = self._conn
        if self.removed:
            conn.executemany("DELETE FROM docs WHERE doc=?", self.removed)
        if self.vals_gone:
            conn.executemany("DELETE FROM vals WHERE doc=? AND path=? AND n=?", self.vals_gone)
        if self.vals_changed:
            conn.executemany("INSERT OR REPLACE INTO vals VALUES (?, ?, ?, ?, ?)", self.vals_changed)
        if self.docs:  # a record indexed before keeps its doc id and record: the rest is updated
            conn.executemany(_UPSERT_DOC, self.docs)
        if self.vals:
            table = "vals_pending" if self.defer else "vals"
            conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)", self.vals)
        if self.fts or self.fts_gone:
            self._write_fts()
        if self.counted:
            conn.executemany(_COUNT_ONE, [(path, text) for _doc, path, text in self.counted])
        if self.multi:
            conn.executemany(
                "UPDATE paths SET multi = 1 WHERE id = ? AND multi = 0", [(p,) for p in self.multi]
            )
        if self.live:
            conn.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'live'", (self.live,)
            )
        self.docs, self.vals, self.fts, self.removed = [], [], [], []
        self.vals_changed, self.vals_gone, self.fts_gone = [], [], []
        self.counted, self.multi, self.live = set(), set(), 0

    def _write_fts(self) -> None:
        """Delete, replace and insert full-text rows in one pass in rowid order. FTS5 writes the
        words it holds to a new segment whenever it is given a rowid lower than the last one: a
        run of deletes followed by the inserts of the same records made two segments a batch,
        and their merging made a bulk edit's full-text writes four times its inserts alone."""
        gone = {doc for (doc,) in self.fts_gone}
        if self.stage_fts:
            touched = gone.union(row[0] for row in self.fts)
            self._conn.executemany(
                "INSERT OR IGNORE INTO temp.fts_touched VALUES (?)", [(doc,) for doc in sorted(touched)]
            )
            self._conn.executemany(
                "INSERT INTO fts_next (rowid, body, scoped) VALUES (?, ?, ?)",
                sorted(self.fts, key=operator.itemgetter(0)),
            )
            return
        steps = [(doc, None) for doc in gone.difference(row[0] for row in self.fts)]
        steps += [(row[0], row) for row in self.fts]
        steps.sort(key=operator.itemgetter(0))
        for kind, run in itertools.groupby(
            steps, key=lambda step: _FTS_WRITE[step[1] is None, step[0] in gone]
        ):
            if kind == _FTS_DELETE:
                self._conn.executemany(kind, [(doc,) for doc, _row in run])
            elif kind == _FTS_UPDATE:  # FTS5 deletes and inserts the same rowid, with no segment between
                self._conn.executemany(kind, [(body, scoped, doc) for _doc, (doc, body, scoped) in run])
            else:
                self._conn.executemany(kind, [row for _doc, row in run])


#: FTS5's settings while a bulk edit writes every full-text row again: its words gathered in
#: memory up to 16 MiB before each segment is written (1 MiB usually), and segments merged once
#: 16 of a level are there (4 usually). 100,000 rows: 2.3 to 2.8 s, against 3.2 to 3.9 s.
_BULK_FTS = (("hashsize", 16 << 20), ("automerge", 16))
#: FTS5's own defaults, which the table keeps once it is written
_USUAL_FTS = (("hashsize", 1 << 20), ("automerge", 4))


def _stage_fts(conn: sqlite3.Connection) -> None:
    """Start a new full-text table, ``fts_next``, that the full-text rows a catch-up writes go
    to (the docs they are of noted in ``fts_touched``) until :func:`_rewrite_fts`."""
    conn.execute("DROP TABLE IF EXISTS fts_next")
    conn.execute(_FTS_NEXT)
    for name, value in _BULK_FTS:
        conn.execute("INSERT INTO fts_next (fts_next, rank) VALUES (?, ?)", (name, value))
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS fts_touched (doc INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM temp.fts_touched")


def _rewrite_fts(conn: sqlite3.Connection) -> None:
    """Add the rows of the docs the catch-up left alone to ``fts_next``, which then takes the
    full-text table's place. FTS5 updates a row by reading and tokenizing its old text to
    delete its words (63 µs a record at 100,000, against 31 µs for an insert into a new
    table, in the order of the docs as a bulk edit writes them): when most rows change,
    writing every row again is cheaper."""
    conn.execute(
        "INSERT INTO fts_next (rowid, body, scoped) SELECT rowid, body, scoped FROM fts"
        " WHERE rowid NOT IN (SELECT doc FROM temp.fts_touched) ORDER BY rowid"
    )
    for name, value in _USUAL_FTS:
        conn.execute("INSERT INTO fts_next (fts_next, rank) VALUES (?, ?)", (name, value))
    # its pages are not overwritten with zeros as they are freed (the old words, 170 MB at
    # 100,000 records, written once more and checkpointed: a second of the edit): the file is
    # marked, and a hard delete overwrites its free pages first (see _wipe_free_pages)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('unzeroed', '1')")
    conn.execute("PRAGMA secure_delete=OFF")
    try:
        conn.execute("DROP TABLE fts")
    finally:
        conn.execute("PRAGMA secure_delete=ON")
    conn.execute("ALTER TABLE fts_next RENAME TO fts")
    conn.execute("DELETE FROM temp.fts_touched")


def _wipe_free_pages(conn: sqlite3.Connection) -> None:
    """Overwrite the file's free pages with zeros if some were freed without (a bulk edit's old
    full-text table: :func:`_rewrite_fts`), in the transaction open on ``conn``: the words of
    a record once purged leave no page of the file. (A change of the file's format overwrites
    them too, as it drops the tables: :func:`gitrecords._sqlite.open_derived`.)"""
    if conn.execute("SELECT 1 FROM meta WHERE key = 'unzeroed'").fetchone() is None:
        return
    zero_free_pages(conn)
    conn.execute("DELETE FROM meta WHERE key = 'unzeroed'")


_UPSERT_DOC = (
    "INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (doc) DO UPDATE SET deleted = excluded.deleted,"
    " created = excluded.created, updated = excluded.updated, revision = excluded.revision"
)
_FTS_DELETE = "DELETE FROM fts WHERE rowid = ?"
_FTS_UPDATE = "UPDATE fts SET body = ?, scoped = ? WHERE rowid = ?"
_FTS_INSERT = "INSERT INTO fts (rowid, body, scoped) VALUES (?, ?, ?)"
#: (no new row, had a row) -> the statement
_FTS_WRITE = {(True, True): _FTS_DELETE, (False, True): _FTS_UPDATE, (False, False): _FTS_INSERT}


#: what SQLite says of a query too large or too deep for it (the query language's own limits,
#: MAX_DEPTH and MAX_TERMS, keep most of these from being met)
_TOO_COMPLEX = re.compile(
    r"parser stack overflow|too many terms|too large|too many columns|too many SQL variables"
)
#: terms of one compound SELECT (SQLite's limit is 500): more are grouped in subqueries
_COMPOUND = 400


def _exact_value(path_ids: list[int], text: str) -> tuple[str, list[Any]]:
    """The records holding the value ``text`` at one of ``path_ids`` (both cut to the kept part)."""
    marks = ",".join("?" * len(path_ids))
    sql = f"SELECT DISTINCT doc FROM vals WHERE path IN ({marks}) AND str = ?"
    return sql, [*path_ids, text[:MAX_VALUE_CHARS]]


def _bound(text: str) -> int | float:
    """A range's numeric bound: exact for an integer, infinite past a float's range."""
    number = query_number(text)
    if number is None:
        return -math.inf if text.startswith("-") else math.inf
    return number


def _compound(operator: str, parts: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """The subqueries ``parts`` joined by ``operator`` (UNION, INTERSECT), in groups of at most
    :data:`_COMPOUND` (a query selecting 1,000 records by their PIDs is 1,000 terms)."""
    while len(parts) > _COMPOUND:
        parts = [_compound(operator, parts[i : i + _COMPOUND]) for i in range(0, len(parts), _COMPOUND)]
    return operator.join(f"SELECT * FROM ({sql})" for sql, _ in parts), [
        p for _, params in parts for p in params
    ]


class _Compiler:
    """A query tree as SQL over the index: every value is a parameter, never part of the text."""

    def __init__(self, index: SearchIndex, aliases: Mapping[str, str], pid_fields: Mapping[str, str]) -> None:
        self.index = index
        self.aliases = aliases
        self.pid_fields = pid_fields
        self._ids = index.path_ids()
        self._paths = sorted(self._ids)
        self.rank_terms: list[str] = []
        #: whether a term reads docs (id:, NOT), which hold deleted records too
        self.uses_docs = False
        self._last_match: str | None = None
        #: the last match as the ranker asks it (None: it cannot, a prefix)
        self._last_text: _ranker.TextQuery | None = None
        self._last_range: tuple[str, list[int], str, list[Any]] | None = None

    # fields ------------------------------------------------------------------

    def paths_for(self, field_name: str, *, exact_path: bool = False, inside: bool = False) -> list[int]:
        """Ids of the known paths a field name means: the path itself, or any path that ends with
        it (``title`` is ``titles.title``); with ``inside``, any path that passes through it."""
        name = self.aliases.get(field_name, field_name)
        wanted = name.split(".")
        found = []
        for path in self._paths:
            parts = path.split(".")
            if parts == wanted or (not exact_path and parts[-len(wanted) :] == wanted):
                found.append(path)
            elif inside and any(parts[i : i + len(wanted)] == wanted for i in range(len(parts))):
                found.append(path)
        return [self._ids[p] for p in found]

    def _path_names(self, field_name: str) -> list[str]:
        name = self.aliases.get(field_name, field_name)
        wanted = name.split(".")
        return [p for p in self._paths if p.split(".")[-len(wanted) :] == wanted]

    # filters -------------------------------------------------------------------

    def filter(self, node: Node | None) -> tuple[str, list[Any]]:
        if node is None:
            return "", []
        return self._node(node, positive=True)

    def single_range(self, where: str) -> tuple[list[int], str, list[Any]] | None:
        """(path ids, condition, its parameters) when the whole filter is one range term."""
        if self._last_range is None or where != self._last_range[0]:
            return None
        return self._last_range[1], self._last_range[2], self._last_range[3]

    def single_match(self, where: str) -> str | None:
        """The FTS5 expression when the whole filter is one MATCH (its hits are its matches)."""
        return self._last_match if where == _MATCH else None

    def single_text(self, where: str) -> _ranker.TextQuery | None:
        """The same match as the ranker asks it (None when it cannot)."""
        return self._last_text if where == _MATCH else None

    def _node(self, node: Any, positive: bool) -> tuple[str, list[Any]]:
        if isinstance(node, (And, Or)):
            parts = []
            texts: list[_ranker.TextQuery | None] = []
            for item in node.items:
                parts.append(self._node(item, positive))
                texts.append(self._last_text if parts[-1][0] == _MATCH else None)
            if all(sql == _MATCH for sql, _ in parts):  # one FTS5 query, not a set operation
                joiner = " AND " if isinstance(node, And) else " OR "
                self._last_match = joiner.join(f"({params[0]})" for _, params in parts)
                kind = _ranker.AllOf if isinstance(node, And) else _ranker.AnyOf
                self._last_text = None if None in texts else kind(tuple(texts))  # type: ignore[arg-type]
                return _MATCH, [self._last_match]
            return _compound(" INTERSECT " if isinstance(node, And) else " UNION ", parts)
        if isinstance(node, Not):
            sql, params = self._node(node.item, not positive)
            self.uses_docs = True
            return f"SELECT doc FROM docs EXCEPT SELECT * FROM ({sql})", params
        return self._term(node, positive)

    def _match(
        self, expression: str, positive: bool, text: _ranker.TextQuery | None
    ) -> tuple[str, list[Any]]:
        if positive:
            self.rank_terms.append(expression)
        self._last_match = expression
        self._last_text = text
        return _MATCH, [expression]

    def _term(self, term: Term, positive: bool) -> tuple[str, list[Any]]:
        nothing = ("SELECT doc FROM docs WHERE 0", [])
        name = term.field
        if term.kind == "exists":
            ids = self.paths_for(term.field or "", inside=True)
            if not ids:
                return nothing
            return f"SELECT DISTINCT doc FROM vals WHERE path IN ({','.join('?' * len(ids))})", ids
        if name == "id" and term.kind in ("word", "prefix", "phrase"):
            self.uses_docs = True
            return "SELECT doc FROM docs WHERE instr(record, ?) > 0", [term.text.lower()]
        pid_kinds = ("word", "phrase")  # recid:12 and recid:"12"
        if (
            name is not None
            and name in self.pid_fields
            and name not in self.aliases
            and term.kind in pid_kinds
        ):
            ids = self.paths_for(self.pid_fields[name], exact_path=True)
            if not ids:
                return nothing
            return _exact_value(ids, term.text)
        if term.kind == "range":
            return self._range(term)
        if name is not None and name in self.aliases and term.kind == "phrase":
            # a quoted facet value is that value exactly (what a click on a facet asks for), not
            # a phrase inside a longer value
            ids = self.paths_for(name, exact_path=True)
            if not ids:
                return nothing
            return _exact_value(ids, term.text)
        found = words(term.text)
        if not found:
            return nothing
        if name is None:
            phrase = " ".join(found)
            star = " *" if term.kind == "prefix" else ""
            text = None if star else _ranker.Words("body", tuple(found))
            return self._match(f'body : "{phrase}"{star}', positive, text)
        paths = self._path_names(name)
        if not paths:
            return nothing
        star = " *" if term.kind == "prefix" else ""
        alternatives = []
        scoped: list[_ranker.TextQuery] = []
        for path in paths:
            token = self._ids[path]
            alternatives.append('"' + " ".join(f"{token}:{w}" for w in found) + '"' + star)
            scoped.append(_ranker.Words("scoped", tuple(f"{token}:{w}" for w in found)))
        text = None if star else scoped[0] if len(scoped) == 1 else _ranker.AnyOf(tuple(scoped))
        return self._match(f"scoped : ({' OR '.join(alternatives)})", positive, text)

    def _range(self, term: Term) -> tuple[str, list[Any]]:
        ids = self.paths_for(term.field or "")
        if not ids:
            return "SELECT doc FROM docs WHERE 0", []
        marks = ",".join("?" * len(ids))
        bounds = [b for b in (term.low, term.high) if b is not None]
        numeric = bool(bounds) and all(_NUMBER.match(b) for b in bounds)
        if not numeric:  # values are kept by their first MAX_VALUE_CHARS: so are the bounds
            term = dataclasses.replace(
                term,
                low=None if term.low is None else term.low[:MAX_VALUE_CHARS],
                high=None if term.high is None else term.high[:MAX_VALUE_CHARS],
            )
        conditions, params = [], list(ids)
        column = "num" if numeric else "str"
        if term.low is not None:
            conditions.append(f"{column} {'>=' if term.low_inclusive else '>'} ?")
            params.append(_bound(term.low) if numeric else term.low)
        if term.high is not None:
            if numeric:
                conditions.append(f"num {'<=' if term.high_inclusive else '<'} ?")
                params.append(_bound(term.high))
            elif term.high_inclusive:  # 2020-12-31 includes 2020-12-31T10:00
                conditions.append("(str <= ? OR substr(str, 1, length(?)) = ?)")
                params += [term.high, term.high, term.high]
            else:
                conditions.append("str < ?")
                params.append(term.high)
        if numeric:
            conditions.append("num IS NOT NULL")
        where = " AND ".join(conditions) or "1"  # [* TO *]: any value
        sql = f"SELECT DISTINCT doc FROM vals WHERE path IN ({marks}) AND {where}"
        self._last_range = (sql, list(ids), f"({where})", params[len(ids) :])
        return sql, params

    # order ---------------------------------------------------------------------

    def sort_key(self, sort: str | None) -> tuple[str, bool]:
        """(key, descending): ``relevance`` (only with words), ``updated``, ``created`` or a field;
        "relevance" with no words sorts as ``-updated`` (the default without words)."""
        descending = False
        key = sort
        if key is not None and key.startswith("-"):
            descending, key = True, key[1:]
        if key is None:
            key, descending = ("relevance", False) if self.rank_terms else ("updated", True)
        if key == "relevance" and not self.rank_terms:
            return "updated", True
        return key, descending
