"""The derived revision and PID index: a SQLite file beside the git data.

It is never the source of truth. It records, for each record, the commits of
the branch's first-parent history that changed the record's blob, so that
revision listing costs O(revisions of that record). It catches up by itself
when the branch moved (commits made by others, pushes, pulls) and rebuilds
from scratch when the indexed tip is no longer in the branch's history (a
forced update or a hard delete).

Every row knows the position (``seq``) of its commit in that first-parent
history, so a question can be answered as of any commit the index has seen:
a reader that took its snapshot before another writer moved the branch gets
the answer for its snapshot, and never moves the shared index backwards.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from . import _git, layout
from ._index_sql import INDEX_FORMAT, SCHEMA, SUMMARY
from ._sqlite import chunks, open_derived
from .config import parse_config
from .errors import GitRecordsError, PIDError

LIVE, TOMBSTONE, REMOVED = 0, 1, 2
_ANY_TIP: Any = object()


class RevisionRow(NamedTuple):
    """One revision of one record: the commit that changed its file, the new blob and state."""

    # a named tuple, not a frozen dataclass: a listing builds one per revision, and a frozen
    # dataclass costs several times more to construct
    record: uuid.UUID
    revision: int
    commit_id: str
    blob: str | None
    state: int
    time: int

    @property
    def deleted(self) -> bool:
        return self.state != LIVE


#: what a writer already knows about a file it wrote: (state, {pid_type: value})
BlobFacts = tuple[int, dict[str, str]]
#: facts by (record id, blob id): a blob alone is not enough (two tombstones can be one blob)
Hints = Mapping[tuple[str, str], BlobFacts]


def facts_from_data(data: Any, pid_fields: Mapping[str, str]) -> BlobFacts:
    if layout.is_tombstone(data):
        return TOMBSTONE, {}
    pids: dict[str, str] = {}
    if isinstance(data, dict):
        for pid_type, field in pid_fields.items():
            value = data.get(field)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                pids[pid_type] = str(value)
    return LIVE, pids


def pid_type_problems(data: Any, pid_fields: Mapping[str, str]) -> list[tuple[str, str]]:
    """(JSON pointer, message) for each PID field of ``data`` whose value is not a string or an
    integer: such a value is no PID (nothing finds the record by it, and two records could hold
    it), so a write refuses it rather than store a record whose PID is silently not one."""
    found = []
    if isinstance(data, dict) and not layout.is_tombstone(data):
        for pid_type, field in sorted(pid_fields.items()):
            value = data.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
                found.append(
                    (
                        f"/{layout.pointer_token(field)}",
                        f"the {pid_type} PID must be a string or an integer, not "
                        + (repr(value) if isinstance(value, float) else layout.json_type(value)),
                    )
                )
            elif value == "":
                found.append((f"/{layout.pointer_token(field)}", f"the {pid_type} PID must not be empty"))
    return found


#: a PID value of digits only (SQL, on ``pid_value``)
_DIGITS = "pid_value GLOB '[0-9]*' AND pid_value NOT GLOB '*[^0-9]*'"
#: ``pid_high`` keeps the higher of its value and the one inserted
_HIGHER = " ON CONFLICT (pid_type) DO UPDATE SET value = MAX(value, excluded.value)"
_RAISE_HIGH = "INSERT INTO pid_high VALUES (?, ?)" + _HIGHER
#: (record, its next revision id) of a JSON list of record ids, each looked up by its key
_NEXT_REVISIONS = (
    "SELECT j.value, (SELECT COALESCE(MAX(revision) + 1, 0) FROM revisions WHERE record = j.value)"
    " FROM json_each(?) j"
)
#: records indexed with one statement of each kind
_PART = 500


class RevisionIndex:
    """Revision and PID index of one branch of one repository.

    It subscribes to the write path (:class:`gitrecords.writer.DerivedIndex`):
    :meth:`catch_up` after the branch moved, :meth:`rewritten` after a hard delete.
    Each commit is read with the settings (``records``, ``pids``) of its own
    ``gitrecords.json``, so a rebuild gives the same rows as catching up did.
    """

    def __init__(self, repo: Any, ref: str, path: str | None) -> None:
        self._repo = repo
        self._ref = ref
        self._lock = threading.RLock()
        self._settings_cache: tuple[Any, tuple[str, dict[str, str]]] | None = None
        self.path = path
        self._conn = self._connect(path)

    def __repr__(self) -> str:
        return f"<RevisionIndex {self._ref} {self.path or ':memory:'}>"

    def _connect(self, path: str | None) -> sqlite3.Connection:
        # read-only repository, or a file busy for a minute: the index is kept in memory
        conn, self.path = open_derived(path, SCHEMA, INDEX_FORMAT, memory_when_busy=True)
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- catching up -----------------------------------------------------

    def indexed_tip(self) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key='tip'").fetchone()
        return row[0] if row else None

    def seq_of(self, commit: _git.Oid | str | None) -> int | None:
        """The position of ``commit`` in the indexed first-parent history (None: not indexed)."""
        if commit is None:
            return 0
        row = self._conn.execute("SELECT seq FROM commits WHERE commit_id=?", (str(commit),)).fetchone()
        return row[0] if row else None

    def catch_up(self, tip: _git.Oid | None = None, hints: Hints | None = None, since: Any = None) -> None:
        """Bring the index up to ``tip`` (default: the branch tip). ``hints`` are the facts of
        records a writer wrote, and ``since`` is ``(base, changes)`` from the writer that moved
        the branch from ``base`` to ``tip`` (every file that differs, path -> blob): when the
        index is at ``base`` and ``tip`` is one commit past it, those are the records that commit
        changed, and its trees are not compared.

        A ``tip`` the index has already passed (an older snapshot of a reader) changes nothing:
        the shared index never moves backwards for a reader. Only the branch's own tip can take
        it back (a reset to an earlier commit: cut back to it) or make it start again from
        scratch (after a forced update or a rewrite).
        """
        if tip is None:
            tip = _git.tip(self._repo, self._ref)
        tip_text = str(tip) if tip is not None else None
        if self.indexed_tip() == tip_text:
            return
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                indexed = self.indexed_tip()
                passed = tip is not None and self.seq_of(tip) is not None
                if indexed != tip_text and (not passed or tip == _git.tip(self._repo, self._ref)):
                    self._catch_up(tip, indexed, hints or {}, since)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    #: the name this method had before the index subscribed to the write path
    sync = catch_up

    def rebuild(self) -> int:
        """Throw the index away and build it again from the branch; returns revisions indexed."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._clear()
                self._catch_up(_git.tip(self._repo, self._ref), None, {})
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return conn.execute("SELECT COUNT(*) FROM revisions").fetchone()[0]

    def blobs_in_use(self, blobs: list[str], exclude: list[uuid.UUID]) -> set[str]:
        """Which of ``blobs`` some revision of a record not in ``exclude`` also has."""
        if not blobs:
            return set()
        excluded = [str(i) for i in exclude]
        with self._lock:
            rows = self._conn.execute(
                f"SELECT DISTINCT blob FROM revisions WHERE blob IN ({','.join('?' * len(blobs))})"
                f" AND record NOT IN ({','.join('?' * len(excluded))})",
                (*blobs, *excluded),
            ).fetchall()
        return {row[0] for row in rows}

    def rewritten(
        self, old_tip: _git.Oid | None, commit_map: Mapping[Any, Any], purged: list[uuid.UUID]
    ) -> None:
        """After a history rewrite: drop purged records, rename rewritten commits, catch up."""
        if not self.remap(old_tip, commit_map, purged):
            self.rebuild()
        self.catch_up()

    def remap(self, old_tip: _git.Oid | None, commit_map: Mapping[Any, Any], purged: list[uuid.UUID]) -> bool:
        """After a history rewrite: drop purged records, rename rewritten commits.

        Returns False (the caller rebuilds) when the index was not at ``old_tip``.
        """
        new_tip = commit_map.get(old_tip, old_tip) if old_tip is not None else None
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if old_tip is None or self.indexed_tip() != str(old_tip):
                    conn.execute("ROLLBACK")
                    return False
                conn.executemany("DELETE FROM revisions WHERE record=?", [(str(i),) for i in purged])
                conn.executemany("DELETE FROM pids WHERE record=?", [(str(i),) for i in purged])
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS commit_map (old TEXT PRIMARY KEY, new TEXT)")
                conn.execute("DELETE FROM temp.commit_map")
                conn.executemany(
                    "INSERT INTO temp.commit_map VALUES (?, ?)",
                    ((str(old), str(new)) for old, new in commit_map.items() if old != new),
                )
                conn.execute(
                    "UPDATE revisions SET commit_id = (SELECT new FROM temp.commit_map WHERE old = commit_id)"
                    " WHERE commit_id IN (SELECT old FROM temp.commit_map)"
                )
                # a dropped commit (it only changed purged records) maps to its parent's commit: when
                # that one is unchanged, or when several old commits map to one new id, only the
                # oldest keeps the position
                conn.execute("CREATE INDEX IF NOT EXISTS temp.commit_map_by_new ON commit_map (new)")
                conn.execute(
                    "DELETE FROM commits WHERE commit_id IN"
                    " (SELECT m.old FROM temp.commit_map m JOIN commits c ON c.commit_id = m.new)"
                )
                conn.execute(
                    "DELETE FROM commits WHERE commit_id IN (SELECT m.old FROM temp.commit_map m"
                    " JOIN commits c ON c.commit_id = m.old WHERE c.seq > (SELECT MIN(c2.seq)"
                    " FROM temp.commit_map m2 JOIN commits c2 ON c2.commit_id = m2.old WHERE m2.new = m.new))"
                )
                conn.execute(
                    "UPDATE commits SET commit_id = (SELECT new FROM temp.commit_map WHERE old = commit_id)"
                    " WHERE commit_id IN (SELECT old FROM temp.commit_map)"
                )
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?)", (str(new_tip),))
                conn.execute("DELETE FROM temp.commit_map")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return True

    def _clear(self) -> None:
        self._conn.execute("DELETE FROM revisions")
        self._conn.execute("DELETE FROM pids")
        self._conn.execute("DELETE FROM commits")
        self._conn.execute("DELETE FROM meta WHERE key='tip'")

    def _catch_up(self, tip: _git.Oid | None, indexed: str | None, hints: Hints, since: Any = None) -> None:
        repo = self._repo
        if tip is None:
            self._clear()
            return
        chain = None
        if indexed is not None:
            stop = _git.Oid(hex=indexed)
            chain = _git.first_parent_chain(repo, tip, stop) if stop in repo else None
            if chain is None:
                if tip != _git.tip(repo, self._ref):
                    # an old snapshot of a history that was since rewritten: follow the branch
                    # instead of going back to it
                    branch_tip = _git.tip(repo, self._ref)
                    if branch_tip is None or str(branch_tip) == indexed:
                        return
                    self._catch_up(branch_tip, indexed, {})
                    return
                # the branch took another first-parent line (a pull whose merge has the remote's
                # tip as first parent): go back to where the two lines meet and go on from there
                chain = self._rewind_to_fork(tip)
                if chain is None:
                    self._clear()
        if chain is None:
            chain = _git.first_parent_chain(repo, tip, None) or []
        row = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM commits").fetchone()
        seq = row[0]
        known = None  # the files the one commit past the indexed tip changed, as its writer said
        if since is not None and len(chain) == 1 and since[0] is not None and str(since[0]) == indexed:
            known = since[1]
        for commit_id in reversed(chain):
            seq += 1
            self._apply(commit_id, seq, hints, known)
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?)", (str(tip),))

    def _rewind_to_fork(self, tip: _git.Oid) -> list[_git.Oid] | None:
        """The first-parent commits of ``tip`` after the newest one the index holds (the fork
        point), with the index cut back to that commit; None when they share none."""
        repo = self._repo
        chain: list[_git.Oid] = []
        fork_seq = None
        for commit_id in _git.walk_first_parents(repo, tip):
            fork_seq = self.seq_of(commit_id)
            if fork_seq is not None:
                break
            chain.append(commit_id)
        if fork_seq is None:
            return None
        conn = self._conn
        touched = [
            row[0] for row in conn.execute("SELECT DISTINCT record FROM revisions WHERE seq > ?", (fork_seq,))
        ]
        conn.execute("DELETE FROM revisions WHERE seq > ?", (fork_seq,))
        conn.execute("DELETE FROM commits WHERE seq > ?", (fork_seq,))
        for key in touched:  # PIDs as the record's remaining history leaves them
            conn.execute("DELETE FROM pids WHERE record=?", (key,))
            latest = conn.execute(
                "SELECT state FROM revisions WHERE record=? ORDER BY revision DESC LIMIT 1", (key,)
            ).fetchone()
            if latest is None or latest[0] == REMOVED:
                continue
            live = conn.execute(
                "SELECT blob, commit_id FROM revisions WHERE record=? AND state=?"
                " ORDER BY revision DESC LIMIT 1",
                (key, LIVE),
            ).fetchone()
            if live is None:
                continue
            pid_fields = self._settings(_git.tree_of(repo, _git.Oid(hex=live[1])))[1]
            for pid_type, value in self._read_facts(_git.Oid(hex=live[0]), pid_fields)[1].items():
                conn.execute("INSERT OR IGNORE INTO pids VALUES (?, ?, ?)", (pid_type, value, key))
        return chain

    def _settings(self, tree: Any) -> tuple[str, dict[str, str]]:
        """(records folder, PID fields) of the gitrecords.json in ``tree``."""
        blob = _git.entry_id(tree, layout.CONFIG_FILE)
        cached = self._settings_cache
        if cached is not None and cached[0] == blob:
            return cached[1]
        try:
            settings = parse_config(_git.read_blob(self._repo, blob) if blob is not None else None)
            found = (str(settings["records"]), dict(settings.get("pids") or {}))
        except GitRecordsError:
            found = cached[1] if cached is not None else (layout.RECORDS_DIR, {})
        self._settings_cache = (blob, found)
        return found

    def _changed_records(
        self, parent: _git.Oid | None, commit_id: _git.Oid, files: Any = None
    ) -> tuple[Iterator[tuple[uuid.UUID, _git.Oid | None]], dict[str, str]]:
        """(record id, new blob) for every record ``commit_id`` changed against ``parent``, in
        the trees' order; ``files``: what changed (path -> blob), when known (then the trees are
        not compared, unless the configuration changed: the records may have moved)."""
        repo = self._repo
        new_tree = _git.tree_of(repo, commit_id)
        if files is not None and layout.CONFIG_FILE not in files:
            folder, pid_fields = self._settings(new_tree)
            # sorted: a tree's order, as a comparison of the trees gives them (a PID that two
            # records claim in one commit is the first one's, in a rebuild too)
            return layout.records_among(sorted(files.items()), folder), pid_fields
        old_tree = _git.tree_of(repo, parent)
        new_dir, pid_fields = self._settings(new_tree)
        old_dir = self._settings(old_tree)[0] if old_tree is not None else new_dir
        self._settings(new_tree)  # keep the cache on the newer settings
        if old_dir == new_dir:
            old = _git.subtree(repo, old_tree, old_dir)
            new = _git.subtree(repo, new_tree, new_dir)

            def same_folder() -> Iterator[tuple[uuid.UUID, _git.Oid | None]]:
                for path, _old_blob, new_blob in _git.changed_blobs(repo, old, new, new_dir + "/"):
                    record_id = layout.id_from_path(path, new_dir)
                    if record_id is not None:
                        yield record_id, new_blob

            return same_folder(), pid_fields

        # the records folder moved: compare the two folders record by record
        def by_id(tree: Any, folder: str) -> dict[uuid.UUID, _git.Oid]:
            sub = _git.subtree(repo, tree, folder)
            found: dict[uuid.UUID, _git.Oid] = {}
            if sub is not None:
                for path, blob in _git.walk_blobs(repo, sub, folder + "/"):
                    record_id = layout.id_from_path(path, folder)
                    if record_id is not None:
                        found[record_id] = blob
            return found

        before, after = by_id(old_tree, old_dir), by_id(new_tree, new_dir)
        changed = [(i, after.get(i)) for i in sorted(before.keys() | after.keys(), key=str)]
        return iter([(i, blob) for i, blob in changed if before.get(i) != blob]), pid_fields

    def _apply(self, commit_id: _git.Oid, seq: int, hints: Hints, files: Any = None) -> None:
        """Index the records ``commit_id`` changed; ``files``: the files it changed against its
        first parent (path -> blob), when its writer said so."""
        repo = self._repo
        parent = _git.first_parent(repo, commit_id)
        when = _git.commit_time(repo, commit_id)
        conn = self._conn
        conn.execute("INSERT INTO commits VALUES (?, ?)", (seq, str(commit_id)))
        changed, pid_fields = self._changed_records(parent, commit_id, files)
        commit_hex = str(commit_id)
        # in parts: a bulk edit's commit changes 100,000 records, three statements each one by one
        for part in chunks(changed, _PART):
            keys = [str(record_id) for record_id, _blob in part]
            # each record once in a commit's changes: its next revision is one past its last
            following = dict(conn.execute(_NEXT_REVISIONS, (json.dumps(keys),)).fetchall())
            revisions: list[tuple[Any, ...]] = []
            holders: list[tuple[str]] = []
            held: list[tuple[str, str, str]] = []
            highs: list[tuple[str, int]] = []
            for key, (_record_id, new_blob) in zip(keys, part, strict=True):
                if new_blob is None:
                    state, pids = REMOVED, {}
                else:
                    known = hints.get((key, str(new_blob)))
                    if known is None:
                        known = self._read_facts(new_blob, pid_fields)
                    state, pids = known
                revisions.append(
                    (key, following[key], commit_hex, str(new_blob) if new_blob else None, state, when, seq)
                )
                if state == TOMBSTONE:
                    continue  # a tombstone keeps the PIDs its record had, reserved
                holders.append((key,))
                for pid_type, value in pids.items():
                    held.append((pid_type, value, key))
                    if value.isascii() and value.isdigit():
                        highs.append((pid_type, int(value)))
            conn.executemany("INSERT INTO revisions VALUES (?, ?, ?, ?, ?, ?, ?)", revisions)
            conn.executemany("DELETE FROM pids WHERE record=?", holders)
            conn.executemany("INSERT OR IGNORE INTO pids VALUES (?, ?, ?)", held)
            conn.executemany(_RAISE_HIGH, highs)

    def _read_facts(self, blob: _git.Oid, pid_fields: Mapping[str, str]) -> BlobFacts:
        try:
            data = layout.loads(_git.read_blob(self._repo, blob))
        except GitRecordsError:
            return LIVE, {}  # unreadable files are reported when read, not here
        return facts_from_data(data, pid_fields)

    # -- queries ---------------------------------------------------------

    def _as_of(self, tip: Any) -> int | None:
        """The ``seq`` bound for a question asked as of ``tip`` (None: the indexed tip).

        A tip the index has not reached yet makes it catch up with the branch (never back).
        """
        if tip is _ANY_TIP:
            return None
        seq = self.seq_of(tip)
        if seq is None:
            self.catch_up()
            seq = self.seq_of(tip)
        return seq

    def revisions(self, record_id: uuid.UUID, tip: Any = _ANY_TIP) -> list[RevisionRow]:
        """The revisions of a record, oldest first (as of ``tip``, when given)."""
        with self._lock:
            bound = self._as_of(tip)
            rows = self._conn.execute(
                "SELECT revision, commit_id, blob, state, time FROM revisions WHERE record=?"
                " AND seq <= COALESCE(?, seq) ORDER BY revision",
                (str(record_id), bound),
            ).fetchall()
        return [RevisionRow(record_id, *r) for r in rows]

    def count(self, record_id: uuid.UUID) -> int:
        return self._conn.execute(
            "SELECT COUNT(*) FROM revisions WHERE record=?", (str(record_id),)
        ).fetchone()[0]

    def revision(self, record_id: uuid.UUID, revision: int) -> RevisionRow | None:
        r = self._conn.execute(
            "SELECT record, revision, commit_id, blob, state, time FROM revisions "
            "WHERE record=? AND revision=?",
            (str(record_id), revision),
        ).fetchone()
        return RevisionRow(uuid.UUID(r[0]), *r[1:]) if r else None

    def first_and_last(self, record_id: uuid.UUID) -> tuple[RevisionRow, RevisionRow] | None:
        key = str(record_id)
        first = self.revision(record_id, 0)
        if first is None:
            return None
        last = self._conn.execute(
            "SELECT record, revision, commit_id, blob, state, time FROM revisions "
            "WHERE record=? ORDER BY revision DESC LIMIT 1",
            (key,),
        ).fetchone()
        return first, RevisionRow(uuid.UUID(last[0]), *last[1:])

    def summary(self, record_id: uuid.UUID, tip: Any = _ANY_TIP) -> tuple[int, int, int] | None:
        """(number of revisions, time of revision 0, time of the latest revision), in one query.

        With ``tip`` (the branch tip the caller read its data at), the answer is as of that
        commit, even when the index has gone further since: data and revision ids always come
        from one state. A tip the index has not seen yet makes it catch up with the branch.
        """
        key = str(record_id)
        if tip is _ANY_TIP:
            tip = self.indexed_tip()
        if tip is None:
            return None
        with self._lock:
            row = self._conn.execute(SUMMARY, (key, str(tip))).fetchone()
            if row[0] is None:
                self.catch_up()
                row = self._conn.execute(SUMMARY, (key, str(tip))).fetchone()
                if row[0] is None:  # not in the branch's history any more: answer for the index's tip
                    row = self._conn.execute(SUMMARY, (key, self.indexed_tip())).fetchone()
        if row is None or row[1] is None:
            return None
        return row[1] + 1, row[3], row[2]

    def times(self, record_ids: list[uuid.UUID], tip: Any = _ANY_TIP) -> dict[str, tuple[int, int, int]]:
        """(time of revision 0, time of the latest revision, latest revision id) by record id,
        as of ``tip``."""
        with self._lock:
            bound = self._as_of(tip)
            found: dict[str, tuple[int, int, int]] = {}
            keys = [str(i) for i in record_ids]
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    "SELECT r.record, (SELECT time FROM revisions WHERE record = r.record AND revision = 0),"
                    " r.time, r.revision FROM revisions r WHERE r.record IN ("
                    + marks
                    + ") AND r.revision = ("
                    " SELECT MAX(revision) FROM revisions WHERE record = r.record"
                    " AND seq <= COALESCE(?, seq))",
                    (*chunk, bound),
                ).fetchall()
                found.update((record, (created, updated, rev)) for record, created, updated, rev in rows)
        return found

    def last_live(self, record_id: uuid.UUID) -> RevisionRow | None:
        r = self._conn.execute(
            "SELECT record, revision, commit_id, blob, state, time FROM revisions "
            "WHERE record=? AND state=0 ORDER BY revision DESC LIMIT 1",
            (str(record_id),),
        ).fetchone()
        return RevisionRow(uuid.UUID(r[0]), *r[1:]) if r else None

    def pid_owners(self, pid_type: str, value: str) -> list[uuid.UUID]:
        """Every record holding ``pid_type:value`` (more than one only after a plain-git push or
        merge put the same PID in two records: :meth:`duplicate_pids` lists those)."""
        rows = self._conn.execute(
            "SELECT record FROM pids WHERE pid_type=? AND pid_value=? ORDER BY record", (pid_type, value)
        ).fetchall()
        return [uuid.UUID(r[0]) for r in rows]

    def lookup_pid(self, pid_type: str, value: str) -> uuid.UUID | None:
        """The record holding ``pid_type:value``; :class:`PIDError` when two records hold it."""
        owners = self.pid_owners(pid_type, value)
        if len(owners) > 1:
            raise PIDError(
                f"PID {pid_type}:{value} is held by {len(owners)} records "
                f"({', '.join(str(o) for o in owners)}); give all but one another PID"
            )
        return owners[0] if owners else None

    def duplicate_pids(self) -> list[tuple[str, str, list[uuid.UUID]]]:
        """(type, value, records) for every PID that more than one record holds."""
        rows = self._conn.execute(
            "SELECT pid_type, pid_value, group_concat(record, ' ') FROM pids"
            " GROUP BY pid_type, pid_value HAVING COUNT(*) > 1 ORDER BY pid_type, pid_value"
        ).fetchall()
        return [(t, v, sorted(uuid.UUID(r) for r in records.split())) for t, v, records in rows]

    def pids_of(self, record_id: uuid.UUID) -> dict[str, str]:
        rows = self._conn.execute(
            "SELECT pid_type, pid_value FROM pids WHERE record=?", (str(record_id),)
        ).fetchall()
        return dict(rows)

    def max_integer_pid(self, pid_type: str) -> int:
        """The highest integer PID of ``pid_type`` a record holds, or any indexed revision held."""
        r = self._conn.execute(
            f"SELECT MAX(CAST(pid_value AS INTEGER)) FROM pids WHERE pid_type=? AND {_DIGITS}",
            (pid_type,),
        ).fetchone()
        high = self._conn.execute("SELECT value FROM pid_high WHERE pid_type=?", (pid_type,)).fetchone()
        return max(int(r[0] or 0), int(high[0]) if high else 0)

    def latest(
        self, with_deleted: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[tuple[uuid.UUID, int]]:
        """(record id, time of its latest revision), most recently changed first.

        Commit times have one-second resolution: within a second, records with
        more revisions come first, then by id.

        Records whose file was removed are left out; soft-deleted ones too unless
        ``with_deleted``. One scan of the index, no blob is read.
        """
        states = (LIVE, TOMBSTONE) if with_deleted else (LIVE,)
        rows = self._conn.execute(
            "SELECT record, time FROM (SELECT record, MAX(revision) AS revision, state, time"
            f" FROM revisions GROUP BY record) WHERE state IN ({','.join('?' * len(states))})"
            " ORDER BY time DESC, revision DESC, record LIMIT ? OFFSET ?",
            (*states, -1 if limit is None else limit, offset),
        ).fetchall()
        return [(uuid.UUID(r[0]), r[1]) for r in rows]

    def count_latest(self, with_deleted: bool = False) -> int:
        """How many records :meth:`latest` lists."""
        states = (LIVE, TOMBSTONE) if with_deleted else (LIVE,)
        return self._conn.execute(
            "SELECT COUNT(*) FROM (SELECT record, MAX(revision), state FROM revisions GROUP BY record)"
            f" WHERE state IN ({','.join('?' * len(states))})",
            states,
        ).fetchone()[0]

    def iter_pids(self, pid_type: str) -> Iterator[tuple[str, uuid.UUID]]:
        for value, record in self._conn.execute(
            "SELECT pid_value, record FROM pids WHERE pid_type=?", (pid_type,)
        ):
            yield value, uuid.UUID(record)

    def contents(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Every revision row (without positions) and every PID row, sorted: for comparing an
        index with a rebuild in tests."""
        revisions = self._conn.execute(
            "SELECT record, revision, commit_id, blob, state, time FROM revisions ORDER BY record, revision"
        ).fetchall()
        pids = self._conn.execute("SELECT pid_type, pid_value, record FROM pids ORDER BY 1, 2, 3").fetchall()
        return revisions, pids


class PendingImport:
    """Rows of a bulk import, staged in a temporary table until its commit lands.

    Staging catches ids and PIDs that repeat within the batch at once, and
    :meth:`conflicts` finds the ones already used in the repository with one
    join; :meth:`apply` then indexes the whole batch without reading a blob.
    """

    def __init__(self, index: RevisionIndex) -> None:
        self.index = index
        self._conn = index._conn
        with index._lock:
            self._conn.executescript(
                "DROP TABLE IF EXISTS temp.import_records; DROP TABLE IF EXISTS temp.import_pids;"
                "CREATE TEMP TABLE import_records (record TEXT PRIMARY KEY, idx INTEGER, blob TEXT)"
                " WITHOUT ROWID;"
                "CREATE TEMP TABLE import_pids (pid_type TEXT, pid_value TEXT, record TEXT, idx INTEGER,"
                " PRIMARY KEY (pid_type, pid_value)) WITHOUT ROWID;"
            )

    def add(self, rows: list[tuple[int, str, str, dict[str, str]]]) -> list[tuple[int, str, str, str]]:
        """Stage (index, record id, blob, pids) rows; returns problems for repeated ids or PIDs."""
        problems: list[tuple[int, str, str, str]] = []
        conn = self._conn
        with self.index._lock:
            conn.execute("BEGIN")
            for idx, record, blob, pids in rows:
                try:
                    conn.execute("INSERT INTO import_records VALUES (?, ?, ?)", (record, idx, blob))
                except sqlite3.IntegrityError:
                    first = conn.execute(
                        "SELECT idx FROM import_records WHERE record=?", (record,)
                    ).fetchone()
                    problems.append(
                        (idx, record, "/", f"id {record} appears twice in the input (also at {first[0]})")
                    )
                    continue
                for pid_type, value in pids.items():
                    try:
                        conn.execute(
                            "INSERT INTO import_pids VALUES (?, ?, ?, ?)", (pid_type, value, record, idx)
                        )
                    except sqlite3.IntegrityError:
                        other = conn.execute(
                            "SELECT idx FROM import_pids WHERE pid_type=? AND pid_value=?", (pid_type, value)
                        ).fetchone()
                        problems.append(
                            (
                                idx,
                                record,
                                "/",
                                f"PID {pid_type}:{value} is also used by the record at {other[0]}",
                            )
                        )
            conn.execute("COMMIT")
        return problems

    def conflicts(self) -> list[tuple[int, str, str, str]]:
        """Problems for staged ids and PIDs already used at the indexed tip."""
        conn = self._conn
        with self.index._lock:
            existing = conn.execute(
                "SELECT i.idx, i.record FROM import_records i WHERE EXISTS ("
                " SELECT 1 FROM revisions r WHERE r.record = i.record AND r.state != ? AND r.revision = ("
                "  SELECT MAX(revision) FROM revisions WHERE record = i.record))",
                (REMOVED,),
            ).fetchall()
            taken = conn.execute(
                "SELECT i.idx, i.record, i.pid_type, i.pid_value, p.record FROM import_pids i JOIN pids p"
                " ON p.pid_type = i.pid_type AND p.pid_value = i.pid_value AND p.record != i.record"
            ).fetchall()
        problems = [(idx, record, "/", f"record {record} already exists") for idx, record in existing]
        problems += [
            (idx, record, "/", f"PID {pid_type}:{value} is already used by record {owner}")
            for idx, record, pid_type, value, owner in taken
        ]
        return sorted(problems)

    def apply(self, base: _git.Oid | None, commit: _git.Oid, when: int) -> bool:
        """Index the staged rows as revisions of ``commit`` if the index is at ``base``, its
        first parent (else the caller lets the index catch up by reading the commit)."""
        conn = self._conn
        with self.index._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self.index.indexed_tip() != (str(base) if base is not None else None):
                    conn.execute("ROLLBACK")
                    return False
                seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM commits").fetchone()[0]
                conn.execute("INSERT INTO commits VALUES (?, ?)", (seq, str(commit)))
                conn.execute(
                    "INSERT INTO revisions SELECT i.record, COALESCE((SELECT MAX(revision) + 1"
                    " FROM revisions r WHERE r.record = i.record), 0), ?, i.blob, ?, ?, ?"
                    " FROM import_records i",
                    (str(commit), LIVE, when, seq),
                )
                conn.execute("DELETE FROM pids WHERE record IN (SELECT record FROM import_records)")
                conn.execute("INSERT OR IGNORE INTO pids SELECT pid_type, pid_value, record FROM import_pids")
                conn.execute(
                    "INSERT INTO pid_high SELECT pid_type, MAX(CAST(pid_value AS INTEGER)) FROM import_pids"
                    f" WHERE {_DIGITS} GROUP BY pid_type{_HIGHER}"
                )
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?)", (str(commit),))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return True

    def staged_pids(self) -> Iterator[tuple[int, str, str, str]]:
        """(input index, record id, PID type, value) of every staged PID."""
        with self.index._lock:
            rows = self._conn.execute("SELECT idx, record, pid_type, pid_value FROM import_pids ORDER BY idx")
            while batch := rows.fetchmany(10000):
                yield from batch

    def staged(self) -> Iterator[tuple[int, str]]:
        """(input index, record id) of every staged record, in input order."""
        with self.index._lock:
            rows = self._conn.execute("SELECT idx, record FROM import_records ORDER BY idx")
            while batch := rows.fetchmany(10000):
                yield from batch

    def close(self) -> None:
        with self.index._lock:
            self._conn.executescript(
                "DROP TABLE IF EXISTS temp.import_records; DROP TABLE IF EXISTS temp.import_pids;"
            )
