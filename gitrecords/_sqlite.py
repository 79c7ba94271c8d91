"""Opening the derived SQLite databases (the revision index, the search index).

Both are derived from git: a file that is damaged, or was written in another format, is thrown
away and built again, and a repository whose folder cannot be written keeps its index in memory.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["chunks", "open_derived", "remove_database", "zero_free_pages"]


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last one shorter): the rows of one statement each."""
    iterator = iter(items)
    while part := list(itertools.islice(iterator, size)):
        yield part


def remove_database(path: str) -> None:
    """Remove the database file ``path`` with its write-ahead log and shared memory, those of
    them that exist."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + suffix)


def open_derived(
    path: str | None,
    schema: str,
    fmt: str,
    *,
    pragmas: Iterable[str] = (),
    keep: Iterable[str] = (),
    memory_when_busy: bool = False,
) -> tuple[sqlite3.Connection, str | None]:
    """(connection, path) of the database at ``path`` (``None`` or unwritable: in memory, and
    the path is None).

    ``schema`` is run when the file is new or its ``meta`` table names another format than
    ``fmt``; the tables found then are dropped first, but those whose names start with a prefix
    in ``keep`` (a virtual table's shadow tables go with it). ``pragmas`` are set on every
    connection. A file that is busy for a minute raises :class:`sqlite3.OperationalError`, or
    with ``memory_when_busy`` gives an index in memory.
    """
    if path is not None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                return _open(path, schema, fmt, pragmas, keep), path
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError:  # not a database any more: it is derived, start again
                remove_database(path)
                return _open(path, schema, fmt, pragmas, keep), path
        except sqlite3.OperationalError:
            if not memory_when_busy:
                raise
        except OSError:
            pass
    return _open(":memory:", schema, fmt, pragmas, keep), None


def _open(
    path: str, schema: str, fmt: str, pragmas: Iterable[str], keep: Iterable[str]
) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    try:
        if path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        found = None
        with contextlib.suppress(sqlite3.OperationalError):  # a new file has no meta table
            found = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if found is None or found[0] != fmt:
            # SQLite's own tables (sqlite_sequence of AUTOINCREMENT) cannot be dropped
            skip = ("sqlite_", *keep)
            tables = [
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                if not name.startswith(skip)
            ]
            drops = "".join(f'DROP TABLE IF EXISTS "{name}";' for name in tables)
            mark = f"INSERT INTO meta VALUES ('format', '{fmt}');"
            conn.executescript(f"BEGIN IMMEDIATE; {drops} {schema} {mark}")
            try:
                # what the file held is gone from its free pages too (some may have been freed
                # without being overwritten, with what the old format knew of that)
                zero_free_pages(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    except BaseException:
        conn.close()
        raise
    return conn


#: the free pages one row of zeros takes at most (64 MiB of 4 KiB pages)
_ZERO_PAGES = 16384


def zero_free_pages(conn: sqlite3.Connection) -> None:
    """Overwrite every free page of the database with zeros, in the transaction open on
    ``conn``: a table of zeros as large as the free pages takes them (SQLite allocates from the
    free list before it grows the file), and is dropped. For pages freed while
    ``secure_delete`` was off, whose old content would otherwise stay in the file."""
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if not free:
        return
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("CREATE TABLE gitrecords_zeros (x BLOB)")
    while free > 0:
        # a row of at most 64 MiB at a time (SQLite's limit on a value is 1 GB)
        conn.execute("INSERT INTO gitrecords_zeros VALUES (zeroblob(?))", (min(free, _ZERO_PAGES) * page,))
        left = conn.execute("PRAGMA freelist_count").fetchone()[0]
        if left >= free:  # (never seen: SQLite takes free pages before it grows the file)
            raise sqlite3.DatabaseError("the free pages of the database were not taken")
        free = left
    secure = conn.execute("PRAGMA secure_delete").fetchone()[0]
    conn.execute("PRAGMA secure_delete=OFF")  # they hold zeros already
    try:
        conn.execute("DROP TABLE gitrecords_zeros")
    finally:
        conn.execute(f"PRAGMA secure_delete={int(secure)}")
