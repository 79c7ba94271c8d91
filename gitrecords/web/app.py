"""The application factory, the repository pool and the request-wide helpers.

A :class:`~gitrecords.Repository` is not shared between threads: each request
borrows one from a small pool and gives it back when it ends. Every read looks
up the branch tip again, so commits pushed into the repository while the
server runs are seen by the next request.
"""

from __future__ import annotations

import hmac
import os
import queue
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, g, redirect, request, url_for

from ..errors import RepositoryError
from ..repository import Repository

DEFAULTS: dict[str, Any] = {
    "GITRECORDS_REPO": None,
    "GITRECORDS_BRANCH": None,
    #: bearer token for writes; None makes the server read-only
    "GITRECORDS_TOKEN": None,
    #: bearer token for writes and hard deletes; None disables hard deletes
    "GITRECORDS_ADMIN_TOKEN": None,
    #: author of the commits the server makes ("Name <email>"); None: the repository's default
    "GITRECORDS_AUTHOR": None,
    #: PID minters run by POST /api/records when the request names none
    "GITRECORDS_PID_MINTERS": ("recid",),
    "GITRECORDS_PAGE_SIZE": 25,
    "GITRECORDS_MAX_PAGE_SIZE": 500,
    #: write commits with fsync (as the Python API does by default)
    "GITRECORDS_DURABLE": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_HTTPONLY": True,
}


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


def create_app(repo_path: str | os.PathLike[str] | None = None, **config: Any) -> Flask:
    """A Flask application serving the data repository at ``repo_path``.

    ``repo_path`` defaults to ``$GITRECORDS_REPO``; the tokens default to
    ``$GITRECORDS_TOKEN`` and ``$GITRECORDS_ADMIN_TOKEN``. Keyword arguments set
    Flask or gitrecords settings (``GITRECORDS_TOKEN="..."``, ``TESTING=True``);
    see :data:`DEFAULTS`.
    """
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # id first, metadata in the record's order
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.config.update(DEFAULTS)
    app.config["GITRECORDS_REPO"] = os.environ.get("GITRECORDS_REPO")
    for key in ("GITRECORDS_TOKEN", "GITRECORDS_ADMIN_TOKEN", "GITRECORDS_BRANCH", "GITRECORDS_AUTHOR"):
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    if repo_path is not None:
        app.config["GITRECORDS_REPO"] = os.fspath(repo_path)
    app.config.update(config)
    path = app.config["GITRECORDS_REPO"]
    if not path:
        raise RepositoryError("no repository: pass create_app(repo_path) or set GITRECORDS_REPO")
    if not Path(path).exists():
        raise RepositoryError(f"{path}: no such directory")
    for key in ("GITRECORDS_TOKEN", "GITRECORDS_ADMIN_TOKEN"):
        if app.config[key] is not None and len(app.config[key]) < 8:
            raise ValueError(f"{key} is too short: use at least 8 characters")
    app.config.setdefault("SECRET_KEY", None)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = secrets.token_hex(32)  # sessions end when the server stops
    pool = RepositoryPool(path, app.config["GITRECORDS_BRANCH"], bool(app.config["GITRECORDS_DURABLE"]))
    if "MAX_CONTENT_LENGTH" not in config:
        # a record body may be pretty-printed by the client: allow twice the stored limit
        with pool.borrow() as repo:
            app.config["MAX_CONTENT_LENGTH"] = 2 * repo.max_record_bytes + 64 * 1024
    app.extensions["gitrecords"] = pool

    @app.teardown_appcontext
    def give_back(exc: BaseException | None) -> None:
        repo = g.pop("gitrecords_repo", None)
        if repo is not None:
            pool.put(repo)

    from . import admin, api, errors

    errors.register(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(admin.blueprint)
    app.add_url_rule("/", "root", lambda: redirect(url_for("admin.index")))
    return app


def current_repo() -> Repository:
    """The repository this request reads and writes (borrowed until the request ends)."""
    repo = g.get("gitrecords_repo")
    if repo is None:
        from flask import current_app

        repo = g.gitrecords_repo = current_app.extensions["gitrecords"].get()
    return repo


def role_for(token: str | None) -> str | None:
    """'admin', 'write' or None for a presented token (compared in constant time)."""
    from flask import current_app

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
    from flask import current_app

    return bool(current_app.config["GITRECORDS_TOKEN"] or current_app.config["GITRECORDS_ADMIN_TOKEN"])


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def author() -> str | None:
    from flask import current_app

    return current_app.config["GITRECORDS_AUTHOR"]
