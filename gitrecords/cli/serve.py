"""Serving a repository over HTTP: serve."""

from __future__ import annotations

import os

import click

from ..repository import Repository
from ._common import UsageFailure, pass_repo
from ._output import note


def _read_token(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            token = f.readline().strip()
    except OSError as err:
        raise UsageFailure(f"{option} {path}: {err.strerror}") from None
    if len(token) < 8:
        raise UsageFailure(f"{option} {path}: the token on its first line must have at least 8 characters")
    return token


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="File whose first line is the bearer token for writes (default: $GITRECORDS_TOKEN; "
    "with neither, the server is read-only).",
)
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False),
    help="File whose first line is the token that may also hard-delete (default: $GITRECORDS_ADMIN_TOKEN).",
)
@click.option(
    "--author",
    help="The server's identity, 'Name <email>': the committer of every write, and its author "
    "unless a person of the users file makes it.",
)
@click.option(
    "--users-file",
    metavar="FILE",
    envvar="GITRECORDS_USERS_FILE",
    show_envvar=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Named people with roles (gitrecords users add): each signs in or sends their own token, "
    "and is the git author of their writes.",
)
@click.option(
    "--private",
    is_flag=True,
    help="Reads need a token or a signed-in session too (any role). [env var: GITRECORDS_PRIVATE=true]",
)
@click.option(
    "--trusted-user-header",
    metavar="HEADER",
    help="Trust this header (e.g. X-Forwarded-User), set by an authenticating proxy, to name the "
    "person (their email in the users file). Off by default; see docs/web.md for the risk.",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    metavar="ADDR",
    multiple=True,
    help="Address or network the trusted header is honoured from (repeatable; default: loopback only).",
)
@click.option(
    "--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Requests served at once."
)
@click.option(
    "--follow",
    is_flag=True,
    help="Be a read replica: fetch from origin (the primary) at start, every --interval seconds and "
    "on POST /_fetch, and refuse writes with 409.",
)
@click.option(
    "--interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between fetches with --follow.",
)
@click.option(
    "--primary",
    metavar="URL",
    help="The primary named in the 409 that refuses writes (default: origin's URL, without credentials); "
    "alone, without --follow, it makes a read-only replica that something else updates.",
)
@click.option(
    "--notify-from",
    "notify_from",
    metavar="ADDR",
    multiple=True,
    help="Address or network POST /_fetch is accepted from besides loopback (repeatable).",
)
@pass_repo
def serve(
    repo: Repository,
    host: str,
    port: int,
    token_file: str | None,
    admin_token_file: str | None,
    author: str | None,
    users_file: str | None,
    private: bool,
    trusted_user_header: str | None,
    trusted_proxies: tuple[str, ...],
    threads: int,
    follow: bool,
    interval: float,
    primary: str | None,
    notify_from: tuple[str, ...],
) -> None:
    """Serve the REST API and the administration pages (needs the web extra).

    Reads are open to whoever can reach the server, which is why it listens on
    127.0.0.1 unless told otherwise. Commits pushed into the repository while it
    runs are served at once. It runs on waitress, a production WSGI server (for
    several processes, run gitrecords.web:create_app under gunicorn: docs/web.md).

    \b
    Examples:
      gitrecords --repo demo.git serve
      GITRECORDS_TOKEN=$(cat token) gitrecords --repo demo.git serve --port 8080
      gitrecords --repo demo.git serve --users-file users.json --author 'Curation <curation@example.org>'
      curl http://127.0.0.1:5000/records/1
      gitrecords --repo replica.git serve --follow --interval 30 --port 8081
    """
    try:
        import waitress

        from ..web import create_app
    except ImportError as err:
        raise UsageFailure(
            f"serve needs the web extra ({err}): install gitrecords with it, "
            "pip install -e '.[web]' in a checkout (docs/web.md)"
        ) from None
    config: dict[str, object] = {"GITRECORDS_BRANCH": repo.branch}
    token = _read_token(token_file, "--token-file") or os.environ.get("GITRECORDS_TOKEN") or None
    admin = _read_token(admin_token_file, "--admin-token-file") or os.environ.get("GITRECORDS_ADMIN_TOKEN")
    config["GITRECORDS_TOKEN"] = token
    config["GITRECORDS_ADMIN_TOKEN"] = admin or None
    if author:
        config["GITRECORDS_AUTHOR"] = author
    if users_file:
        config["GITRECORDS_USERS_FILE"] = users_file
    if trusted_user_header and not users_file:
        raise UsageFailure("--trusted-user-header names people of the users file: add --users-file")
    if trusted_proxies and not (trusted_user_header or os.environ.get("GITRECORDS_TRUSTED_USER_HEADER")):
        raise UsageFailure("--trusted-proxy is for --trusted-user-header: add it, or drop --trusted-proxy")
    # unset here, these come from the environment as create_app reads it (GITRECORDS_PRIVATE...)
    if private:
        config["GITRECORDS_PRIVATE"] = True
    if trusted_user_header:
        config["GITRECORDS_TRUSTED_USER_HEADER"] = trusted_user_header
    if trusted_proxies:
        config["GITRECORDS_TRUSTED_PROXIES"] = list(trusted_proxies)
    if follow or primary:
        from ..replication import remote_url, shown_url

        origin = remote_url(repo, "origin")
        if follow and origin is None:
            raise UsageFailure(
                "--follow needs a clone whose remote 'origin' is the primary: git remote add origin URL"
            )
        config["GITRECORDS_REPLICA_OF"] = shown_url(primary or origin or "")
        if follow:
            config["GITRECORDS_FOLLOW_INTERVAL"] = interval
    elif notify_from:
        raise UsageFailure("--notify-from is for --follow: add it, or drop --notify-from")
    if notify_from:  # else GITRECORDS_NOTIFY_FROM, as create_app reads it
        config["GITRECORDS_NOTIFY_FROM"] = list(notify_from)
    try:
        app = create_app(str(repo.path), **config)
    except ValueError as err:
        raise UsageFailure(str(err)) from None
    if users_file:
        mode = f"people of {users_file}" + (" and the shared token" if token or admin else "")
    else:
        mode = "writes need the token" if token or admin else "read-only (no token)"
    if private:
        mode += ", private"
    if config.get("GITRECORDS_REPLICA_OF"):
        mode = f"read replica of {config['GITRECORDS_REPLICA_OF']}" + (
            f", fetching every {interval:g} s and on POST /_fetch" if follow else ""
        )
    shown = f"[{host}]" if ":" in host else host
    try:
        server = waitress.create_server(app, host=host, port=port, threads=threads, ident="gitrecords")
    except OSError as err:
        raise UsageFailure(f"cannot listen on {shown}:{port}: {err.strerror or err}") from None
    note(f"Serving {repo.path} (branch {repo.branch}, {mode}) on http://{shown}:{port}/  (Ctrl-C stops)")
    try:
        server.run()
    except KeyboardInterrupt:
        note("Stopped.")


COMMANDS = [serve]
