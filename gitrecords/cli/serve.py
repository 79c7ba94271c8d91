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
@click.option("--author", help="Author of the commits the server makes, 'Name <email>'.")
@click.option(
    "--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Requests served at once."
)
@pass_repo
def serve(
    repo: Repository,
    host: str,
    port: int,
    token_file: str | None,
    admin_token_file: str | None,
    author: str | None,
    threads: int,
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
      curl http://127.0.0.1:5000/records/1
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
    try:
        app = create_app(str(repo.path), **config)
    except ValueError as err:
        raise UsageFailure(str(err)) from None
    mode = "writes need the token" if token or admin else "read-only (no token)"
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
