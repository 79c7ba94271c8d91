"""The application factory: settings, the repository pool, the blueprints.

Request-wide helpers live in :mod:`.context`; the factory imports the
blueprints and nothing imports the factory but the package itself.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, g, redirect, request, url_for

from ..errors import RepositoryError
from ..users import UsersFile
from . import admin, api, bulk_pages, errors, replica  # noqa: F401 - bulk_pages adds its routes to admin
from .context import RepositoryPool, trusted_networks
from .sessions import SessionStore

#: scripts from this server only, no inline script; inline style attributes are allowed (the facet
#: bars' widths); no framing; forms post to this server only
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)

DEFAULTS: dict[str, Any] = {
    "GITRECORDS_REPO": None,
    "GITRECORDS_BRANCH": None,
    #: bearer token for writes; None makes the server read-only
    "GITRECORDS_TOKEN": None,
    #: bearer token for writes and hard deletes; None disables hard deletes
    "GITRECORDS_ADMIN_TOKEN": None,
    #: author of the commits the server makes ("Name <email>"); None: the repository's default. It
    #: is the committer of every write, and its author unless a person of the users file makes it
    "GITRECORDS_AUTHOR": None,
    #: the users file (gitrecords users add): named people with roles, each the author of their writes
    "GITRECORDS_USERS_FILE": None,
    #: reads need a token or a session too (any role); False: anyone who reaches the server reads
    "GITRECORDS_PRIVATE": False,
    #: a header set by an authenticating proxy naming the person (their email in the users file);
    #: None: no header is trusted
    "GITRECORDS_TRUSTED_USER_HEADER": None,
    #: addresses or networks (a list, or comma-separated) the trusted header is honoured from;
    #: empty: loopback only
    "GITRECORDS_TRUSTED_PROXIES": (),
    #: PID minters run for a new record (POST /api/records when the request names none, the new
    #: record page); None: the repository's default ("mint" in gitrecords.json)
    "GITRECORDS_PID_MINTERS": None,
    "GITRECORDS_PAGE_SIZE": 25,
    "GITRECORDS_MAX_PAGE_SIZE": 500,
    #: write commits with fsync (as the Python API does by default)
    "GITRECORDS_DURABLE": True,
    #: a read replica: the primary's URL (shown in the 409 that refuses every write); None: not one
    "GITRECORDS_REPLICA_OF": None,
    #: seconds between fetches from origin (a replica that follows its primary); None: no fetches
    "GITRECORDS_FOLLOW_INTERVAL": None,
    #: addresses or networks POST /_fetch is accepted from besides loopback (a list, or comma-separated)
    "GITRECORDS_NOTIFY_FROM": (),
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_HTTPONLY": True,
}


#: settings read from the environment as a number, a yes/no, or a comma-separated list (the others
#: are text)
_NUMBERS = {"GITRECORDS_PAGE_SIZE": int, "GITRECORDS_MAX_PAGE_SIZE": int, "GITRECORDS_FOLLOW_INTERVAL": float}
_SWITCHES = {"GITRECORDS_PRIVATE", "GITRECORDS_DURABLE"}
_LISTS = {"GITRECORDS_PID_MINTERS"}
_YES, _NO = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def settings_from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings of :data:`DEFAULTS` that ``environ`` sets (empty values are unset), so that
    a server started by gunicorn or systemd is configured like ``gitrecords serve``: a variable
    such as ``GITRECORDS_PRIVATE=true`` is never silently ignored. A value that is not of the
    setting's kind raises :class:`RepositoryError`."""
    found: dict[str, Any] = {}
    for key in DEFAULTS:
        text = environ.get(key, "").strip()
        if not key.startswith("GITRECORDS_") or not text:
            continue
        if key in _SWITCHES:
            if text.lower() not in _YES | _NO:
                raise RepositoryError(f"{key}={text!r}: give true or false")
            found[key] = text.lower() in _YES
        elif key in _NUMBERS:
            try:
                number = _NUMBERS[key](text)
            except ValueError:
                number = None
            if number is None or not math.isfinite(number) or number <= 0:
                raise RepositoryError(f"{key}={text!r}: give a number above 0") from None
            found[key] = number
        elif key in _LISTS:
            found[key] = [part.strip() for part in text.split(",") if part.strip()]
        else:
            found[key] = text
    return found


def create_app(repo_path: str | os.PathLike[str] | None = None, **config: Any) -> Flask:
    """A Flask application serving the data repository at ``repo_path``.

    ``repo_path`` defaults to ``$GITRECORDS_REPO``; the tokens default to
    ``$GITRECORDS_TOKEN`` and ``$GITRECORDS_ADMIN_TOKEN``, ``SECRET_KEY`` to
    ``$GITRECORDS_SECRET_KEY`` (else a random one per process). Keyword arguments set
    Flask or gitrecords settings (``GITRECORDS_TOKEN="..."``, ``TESTING=True``);
    see :data:`DEFAULTS`.
    """
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # id first, metadata in the record's order
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.config.update(DEFAULTS)
    app.config.update(settings_from_environment(os.environ))
    if os.environ.get("GITRECORDS_SECRET_KEY"):
        # several processes (gunicorn -w 4) must sign the pages' cookies with the same key
        app.config["SECRET_KEY"] = os.environ["GITRECORDS_SECRET_KEY"]
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
    if app.config["GITRECORDS_USERS_FILE"]:
        users = UsersFile(app.config["GITRECORDS_USERS_FILE"])
        users.users()  # a damaged file fails at start-up, not at the first request
        app.extensions["gitrecords.users"] = users
    if app.config["GITRECORDS_TRUSTED_USER_HEADER"] and not app.config["GITRECORDS_USERS_FILE"]:
        raise ValueError(
            "GITRECORDS_TRUSTED_USER_HEADER names people of the users file: set GITRECORDS_USERS_FILE"
        )
    app.extensions["gitrecords.trusted_proxies"] = trusted_networks(app.config["GITRECORDS_TRUSTED_PROXIES"])
    pool = RepositoryPool(
        path,
        app.config["GITRECORDS_BRANCH"],
        bool(app.config["GITRECORDS_DURABLE"]),
        author=app.config["GITRECORDS_AUTHOR"],
    )
    if "MAX_CONTENT_LENGTH" not in config:
        # a record body may be pretty-printed by the client: allow twice the stored limit
        with pool.borrow() as repo:
            app.config["MAX_CONTENT_LENGTH"] = 2 * repo.max_record_bytes + 64 * 1024
    app.extensions["gitrecords"] = pool
    with pool.borrow() as repo:
        app.extensions["gitrecords.sessions"] = SessionStore(
            repo.git_dir / "gitrecords" / "web-sessions.sqlite"
        )

    @app.after_request
    def security_headers(response: Any) -> Any:
        """On every response: scripts and styles from this server only (no inline script), never
        framed (the buttons cannot be clickjacked), no content-type sniffing, no referrer sent to
        other sites."""
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # the pages (a person's view, a form's CSRF token) and a private server's answers stay
        # out of every cache: signed out, the back button shows nothing of them
        if request.blueprint == "admin" or app.config["GITRECORDS_PRIVATE"]:
            if not request.path.startswith(app.static_url_path or "/static"):
                response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.after_request
    def no_date(response: Any) -> Any:
        """The WSGI server writes the one ``Date`` header. Werkzeug's ``make_conditional`` (the
        records' ``ETag`` answers) adds its own, which werkzeug's server (``flask run``) and some
        others send as a second ``Date`` beside theirs."""
        response.headers.pop("Date", None)
        return response

    @app.after_request
    def no_type_without_content(response: Any) -> Any:
        """A 204 has no body, so no ``Content-Type`` (Flask gives every response one)."""
        if response.status_code == 204:
            response.headers.pop("Content-Type", None)
        return response

    @app.teardown_appcontext
    def give_back(exc: BaseException | None) -> None:
        repo = g.pop("gitrecords_repo", None)
        if repo is not None:
            pool.put(repo)

    errors.register(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(replica.blueprint)
    replica.setup(app)
    app.add_url_rule("/", "root", lambda: redirect(url_for("admin.index")))
    return app
