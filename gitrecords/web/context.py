"""What a request works with: the repository pool, the borrowed repository, who is asking.

A :class:`~gitrecords.Repository` is not shared between threads: each request
borrows one from a small pool and gives it back when it ends. Every read looks
up the branch tip again, so commits pushed into the repository while the
server runs are seen by the next request. The blueprints (:mod:`.api`,
:mod:`.admin`) import these helpers; the factory (:mod:`.app`) imports the
blueprints, and nothing imports the factory.
"""

from __future__ import annotations

import hmac
import queue
from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, g, request

from ..repository import Repository
from .errors import HTTPProblem


class RepositoryPool:
    """Open repositories for request threads: borrow one, give it back."""

    def __init__(self, path: str, branch: str | None, durable: bool, size: int = 8) -> None:
        self.path = path
        self.branch = branch
        self.durable = durable
        self._idle: queue.LifoQueue[Repository] = queue.LifoQueue(maxsize=size)
        self.put(self.open())  # fail at start-up, not at the first request

    def open(self) -> Repository:
        return Repository(self.path, branch=self.branch, durable=self.durable)

    @contextmanager
    def borrow(self) -> Iterator[Repository]:
        repo = self.get()
        try:
            yield repo
        finally:
            self.put(repo)

    def get(self) -> Repository:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self.open()

    def put(self, repo: Repository) -> None:
        if repo.in_transaction is not None:  # pragma: no cover - a request never leaves one open
            repo.close()
            return
        try:
            self._idle.put_nowait(repo)
        except queue.Full:
            repo.close()


def current_repo() -> Repository:
    """The repository this request reads and writes (borrowed until the request ends)."""
    repo = g.get("gitrecords_repo")
    if repo is None:
        repo = g.gitrecords_repo = current_app.extensions["gitrecords"].get()
    return repo


def role_for(token: str | None) -> str | None:
    """'admin', 'write' or None for a presented token (compared in constant time)."""
    if not token:
        return None
    admin = current_app.config["GITRECORDS_ADMIN_TOKEN"]
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return "admin"
    writer = current_app.config["GITRECORDS_TOKEN"]
    if writer and hmac.compare_digest(token.encode(), writer.encode()):
        return "write"
    return None


def writes_enabled() -> bool:
    return bool(current_app.config["GITRECORDS_TOKEN"] or current_app.config["GITRECORDS_ADMIN_TOKEN"])


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def author() -> str | None:
    return current_app.config["GITRECORDS_AUTHOR"]


def int_arg(name: str, default: int, lowest: int = 1, highest: int | None = None) -> int:
    """Query parameter ``name`` as an integer from ``lowest`` to ``highest``; 400 otherwise (the API
    and the pages refuse the same values)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPProblem(400, f"query parameter {name!r} must be an integer, not {raw!r}") from None
    if value < lowest or (highest is not None and value > highest):
        upper = f" and {highest}" if highest is not None else ""
        raise HTTPProblem(400, f"query parameter {name!r} must be between {lowest}{upper}, not {value}")
    return value
