"""Sign-in sessions of the administration pages, kept on the server so that they can end.

The session cookie only carries a random session id. The server keeps, per id,
the role (or ``user:<email>`` for a person of the users file) and a fingerprint
of the token it was opened with (for a person: of their stored token hash, so a
new token or ``users remove`` ends their sessions)
(``<git dir>/gitrecords/web-sessions.sqlite``, shared by every process serving
the repository). Signing out deletes the id, so a captured cookie stops working
at once; a session opened with a token that is no longer the server's (the
token was changed) is refused on its next request, even with a fixed
``SECRET_KEY``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from pathlib import Path

#: sessions end after this many seconds without a sign-in (a person signs in again)
MAX_AGE = 7 * 24 * 3600


def fingerprint(token: str) -> str:
    """What the server keeps of a token: enough to tell it changed, never the token."""
    return hmac.new(b"gitrecords session", token.encode(), hashlib.sha256).hexdigest()


class SessionStore:
    """Open sessions: id -> (role, token fingerprint, time opened)."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        target = ":memory:"
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                target = str(path)
            except OSError:
                pass
        try:
            self._conn = self._open(target)
        except sqlite3.Error:  # a read-only repository: sessions live as long as this process
            self._conn = self._open(":memory:")

    @staticmethod
    def _open(target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=10, isolation_level=None, check_same_thread=False)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, role TEXT NOT NULL,"
            " token TEXT NOT NULL, opened INTEGER NOT NULL) WITHOUT ROWID"
        )
        return conn

    def open(self, role: str, token: str) -> str:
        """A new session for ``role``, opened with ``token``; returns its id."""
        session_id = secrets.token_urlsafe(32)
        now = int(time.time())
        with self._lock:
            self._conn.execute("DELETE FROM sessions WHERE opened < ?", (now - MAX_AGE,))
            self._conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)", (session_id, role, fingerprint(token), now)
            )
        return session_id

    def lookup(self, session_id: str | None) -> tuple[str, str] | None:
        """(role, token fingerprint) of an open session that has not expired. The role is
        ``write`` or ``admin`` for a shared token, ``user:<email>`` for a person of the users file."""
        if not session_id:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT role, token, opened FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        if row is None or row[2] < time.time() - MAX_AGE:
            return None
        return str(row[0]), str(row[1])

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
