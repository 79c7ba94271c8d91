"""The revision index's file: where it lives, its format and tables, the summary query.

:class:`gitrecords.index.RevisionIndex` owns the file; ``gitrecords get --json`` reads one
summary from it without opening the repository through libgit2 (issue 21), so what both
rely on is written once, here, on the floor that imports nothing of git.
"""

from __future__ import annotations

import hashlib
import os
import re

__all__ = ["INDEX_FORMAT", "SCHEMA", "SUMMARY", "derived_file"]

INDEX_FORMAT = "3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revisions (
    record TEXT NOT NULL,
    revision INTEGER NOT NULL,
    commit_id TEXT NOT NULL,
    blob TEXT,
    state INTEGER NOT NULL,
    time INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (record, revision)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (seq INTEGER PRIMARY KEY, commit_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS pids (
    pid_type TEXT NOT NULL,
    pid_value TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (pid_type, pid_value, record)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pids_by_record ON pids (record);
-- the highest integer value of each PID type any revision indexed has held (a number that a
-- record gave up, by an update that dropped or changed it, is never minted again)
CREATE TABLE IF NOT EXISTS pid_high (pid_type TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""

#: (seq of the commit ?2, the record ?1's latest revision up to it, that revision's time, the
#: time of revision 0): one pass, the commit's position, then the record's newest row up to it
#: (SQLite gives the bare column r.time from the row MAX() picks), and revision 0's time by its
#: key; the seq is NULL when the index has not seen the commit
SUMMARY = (
    "SELECT b.seq, MAX(r.revision), r.time,"
    " (SELECT time FROM revisions WHERE record = ?1 AND revision = 0)"
    " FROM (SELECT seq FROM commits WHERE commit_id = ?2) AS b"
    " LEFT JOIN revisions r ON r.record = ?1 AND r.seq <= b.seq"
)


def derived_file(git_dir: str | os.PathLike[str], kind: str, branch: str) -> str:
    """Where the derived database ``kind`` (``index``, ``search``) of ``branch`` lives:
    ``<git dir>/gitrecords/<kind>-<branch>.sqlite``. A name with other characters than lower
    case letters, digits, ``.``, ``_`` and ``-`` has them as ``_`` and a hash of the whole name
    after it: ``feature/x`` and ``feature_x`` (or ``Main`` and ``main``, on a file system that
    ignores case) are two branches and have two files."""
    safe_branch = re.sub(r"[^a-z0-9._-]", "_", branch)
    if safe_branch != branch:
        safe_branch += "-" + hashlib.sha256(branch.encode()).hexdigest()[:12]
    return os.path.join(os.fspath(git_dir), "gitrecords", f"{kind}-{safe_branch}.sqlite")
