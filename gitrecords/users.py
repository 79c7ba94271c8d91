"""The users file: named people, their roles and a slow hash of each one's token.

A web server started with a users file (``gitrecords serve --users-file F``)
knows who makes each write and commits it with that person as the author.
The file is JSON, written atomically with mode 0600::

    {
      "format": "gitrecords-users 1",
      "users": [
        {"name": "Ada Lovelace", "email": "ada@example.org", "role": "write",
         "token_id": "3f9a1c2b7d4e", "added": "2026-11-26T10:33:12Z",
         "token_hash": {"algorithm": "scrypt", "n": 16384, "r": 8, "p": 1,
                        "salt": "<32 hex digits>", "hash": "<64 hex digits>"}}
      ]
    }

A token is ``<token_id>.<secret>``: the id (12 hex digits) says whose token it
is, so checking a token costs one scrypt, however many people the file holds;
the secret (43 characters from :func:`secrets.token_urlsafe`) is never stored,
only its scrypt hash with a random salt and the parameters it was made with,
and a presented token is compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import GitRecordsError, NoResultFound

__all__ = ["FORMAT", "ROLES", "SCRYPT", "User", "UsersFile", "allows"]

#: the roles, each allowed what the ones before it are: read < write < admin
ROLES = ("read", "write", "admin")

#: the first line of the file's format; a file of another format is refused
FORMAT = "gitrecords-users 1"

#: scrypt's parameters for new tokens: 16 MiB and about 50 ms per check (OWASP's minimum is
#: n=2**17 for passwords; a token has 256 random bits, so the hash need not stretch a guessable secret)
SCRYPT = {"n": 2**14, "r": 8, "p": 1}

#: the longest a stored hash may make a check take (a damaged file must not eat the server's memory)
_MAX_N = 2**20

_EMAIL_RE = re.compile(r"^[^\s<>@]+@[^\s<>@]+$")
_TOKEN_RE = re.compile(r"^([0-9a-f]{12})\.([A-Za-z0-9_-]{20,200})$")


def allows(role: str | None, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` allows (``allows("admin", "write")`` is true)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * r * n + 2**20)


def hash_token(secret: str) -> dict[str, Any]:
    """The stored form of a token's secret: scrypt with a random salt, and its parameters."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, dklen=32, **SCRYPT)
    return {"algorithm": "scrypt", **SCRYPT, "salt": salt.hex(), "hash": digest.hex()}


@dataclass(frozen=True)
class User:
    """One person of the users file (no token: only its id and hash)."""

    name: str
    email: str
    role: str
    token_id: str
    token_hash: dict[str, Any]
    added: str | None = None

    @property
    def author(self) -> tuple[str, str]:
        """(name, email): the git author of this person's writes."""
        return self.name, self.email

    def check(self, secret: str) -> bool:
        """Whether ``secret`` is this person's token secret (scrypt, compared in constant time)."""
        stored = self.token_hash
        try:
            n, r, p = int(stored["n"]), int(stored["r"]), int(stored["p"])
            salt, expected = bytes.fromhex(stored["salt"]), bytes.fromhex(stored["hash"])
        except (KeyError, TypeError, ValueError):
            return False
        if stored.get("algorithm") != "scrypt" or not (1 < n <= _MAX_N and 0 < r <= 32 and 0 < p <= 16):
            return False
        try:
            digest = _scrypt(secret, salt, n, r, p, len(expected))
        except (ValueError, MemoryError):
            return False
        return hmac.compare_digest(digest, expected)

    def public(self) -> dict[str, Any]:
        """What ``users list --json`` shows: no token id, no hash."""
        return {"name": self.name, "email": self.email, "role": self.role, "added": self.added}

    def stored(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "token_id": self.token_id,
            "added": self.added,
            "token_hash": self.token_hash,
        }


def check_name(name: str) -> None:
    """Refuse a name that cannot be a git author name."""
    if not name.strip() or any(c in name for c in "<>\n\r\0"):
        raise GitRecordsError(f"name {name!r} must not be empty nor hold '<', '>' or a line break")


def check_email(email: str) -> None:
    """Refuse an email that does not look like one (it is the git author email too)."""
    if not _EMAIL_RE.match(email):
        raise GitRecordsError(f"email {email!r} must look like someone@example.org")


def _check_person(name: str, email: str, role: str) -> None:
    if role not in ROLES:
        raise GitRecordsError(f"role {role!r} is not one of {', '.join(ROLES)}")
    check_name(name)
    check_email(email)


class UsersFile:
    """A users file: read (again whenever it changed on disk), added to, removed from.

    Reading it is cheap after the first time: the parsed people are kept until
    the file's size, time or inode change, so ``users add`` or ``users remove``
    take effect on a running server at its next request. Checked tokens are
    remembered (by an HMAC of the token under a key of this process) while the
    person's stored hash stays the same, so a client sending its token with
    every request pays for scrypt once.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._loaded: tuple[tuple[int, int, int], list[User]] | None = None
        self._key = secrets.token_bytes(32)
        self._checked: dict[bytes, tuple[str, str]] = {}

    # -- reading -------------------------------------------------------------

    def users(self) -> list[User]:
        """Everyone in the file (none if it does not exist yet)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise GitRecordsError(f"{self.path}: {err.strerror}") from None
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if self._loaded is not None and self._loaded[0] == stamp:
                return self._loaded[1]
        people = self._parse(self.path.read_bytes())
        with self._lock:
            self._loaded = (stamp, people)
        return people

    def _parse(self, data: bytes) -> list[User]:
        try:
            document = json.loads(data)
        except ValueError as err:
            raise GitRecordsError(f"{self.path}: not a users file ({err})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise GitRecordsError(f"{self.path}: not a users file (its format is not {FORMAT!r})")
        people = []
        for n, item in enumerate(document.get("users") or []):
            try:
                user = User(
                    name=str(item["name"]),
                    email=str(item["email"]),
                    role=str(item["role"]),
                    token_id=str(item["token_id"]),
                    token_hash=dict(item["token_hash"]),
                    added=item.get("added"),
                )
                _check_person(user.name, user.email, user.role)
            except (KeyError, TypeError, ValueError, GitRecordsError) as err:
                raise GitRecordsError(f"{self.path}: person {n + 1} is damaged ({err})") from None
            people.append(user)
        return people

    def get(self, email: str) -> User | None:
        """The person with this email (case-insensitive), or None."""
        wanted = email.strip().casefold()
        return next((u for u in self.users() if u.email.casefold() == wanted), None)

    def authenticate(self, token: str | None) -> User | None:
        """The person whose token this is, or None (never raises for a wrong token)."""
        if not token:
            return None
        match = _TOKEN_RE.match(token)
        if match is None:
            return None
        token_id, secret = match[1], match[2]
        user = next((u for u in self.users() if hmac.compare_digest(u.token_id, token_id)), None)
        if user is None:
            return None
        key = hmac.new(self._key, token.encode(), hashlib.sha256).digest()
        stored = user.token_hash.get("hash", "")
        with self._lock:
            remembered = self._checked.get(key)
        if remembered is not None and remembered == (user.token_id, stored):
            return user
        if not user.check(secret):
            return None
        with self._lock:
            if len(self._checked) >= 4096:
                self._checked.clear()
            self._checked[key] = (user.token_id, stored)
        return user

    # -- writing -------------------------------------------------------------

    def add(self, name: str, email: str, role: str, *, replace: bool = False) -> tuple[User, str]:
        """Add a person (or, with ``replace``, give someone a new token and role); returns the
        person and their new token, which is not kept anywhere: show it to them once."""
        name, email = name.strip(), email.strip()
        _check_person(name, email, role)
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        user = User(
            name=name,
            email=email,
            role=role,
            token_id=token_id,
            token_hash=hash_token(secret),
            added=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        with self._file_lock():
            people = self._parse(self.path.read_bytes()) if self.path.exists() else []
            same = [u for u in people if u.email.casefold() == email.casefold()]
            if same and not replace:
                raise GitRecordsError(
                    f"{email} is in {self.path} already: use --replace to give them a new token "
                    "(or users remove first)"
                )
            people = [u for u in people if u not in same] + [user]
            self._save(people)
        return user, f"{token_id}.{secret}"

    def remove(self, email: str) -> User:
        """Take a person out of the file; their token and sessions stop working at once."""
        with self._file_lock():
            people = self._parse(self.path.read_bytes()) if self.path.exists() else []
            wanted = email.strip().casefold()
            gone = [u for u in people if u.email.casefold() == wanted]
            if not gone:
                raise NoResultFound(f"{email} is not in {self.path}")
            self._save([u for u in people if u not in gone])
        return gone[0]

    @contextlib.contextmanager
    def _file_lock(self) -> Any:
        """Two ``users add`` at once: the second waits, then reads what the first wrote (a lock on
        the file's folder, which the atomic rename does not replace)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _save(self, people: list[User]) -> None:
        """Write the file atomically (a temporary file with mode 0600, fsynced, renamed over it)."""
        text = json.dumps({"format": FORMAT, "users": [u.stored() for u in people]}, indent=2) + "\n"
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
