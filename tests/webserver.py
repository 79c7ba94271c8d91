"""A real ``gitrecords serve`` for the tests: a subprocess on a free port, stopped at the end.

    env = isolated_env(tmp_path / "home", GITRECORDS_TOKEN=TOKEN)
    with serve(repo_path, "--author", "Curator <curator@example.org>", env=env) as base_url:
        urlopen(f"{base_url}/api/records")

The server gets the environment of the tests plus ``env``; pass
:func:`isolated_env` there (or start it from a test whose git config is
already isolated) so the git config of the person running the tests is not read.
It is stopped (SIGTERM) when the ``with`` block ends, even on a failure.
:func:`flask_run` and :func:`gunicorn` run the same application on werkzeug's
development server and on gunicorn, the other servers docs/web.md names.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: the CLI, run by the interpreter running the tests (no console script on PATH needed)
GITRECORDS = [sys.executable, "-m", "gitrecords.cli"]


def json_request(
    url: str, method: str = "GET", body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """(status, answer) of a request with a JSON body, or none; the answer is the JSON the server
    sent, or the text of an error that is not JSON."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:  # urllib sends a body as a form unless told otherwise: a 415
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw.decode()


@contextmanager
def threaded(app: Any) -> Iterator[str]:
    """A WSGI ``app`` served by a thread of this process on a free port; yields its URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def free_port() -> int:
    """A TCP port nobody listens on right now (the server may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """The tests' environment with an empty ``home`` and no git config from outside it."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITRECORDS_"))}
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / "gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    env.update(extra)
    return env


#: urlopen that never goes through a proxy from $http_proxy: the server is on 127.0.0.1
urlopen = urllib.request.build_opener(urllib.request.ProxyHandler({})).open


def _answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=2) as response:
            return response.status < 500
    except urllib.error.HTTPError as err:
        return err.code < 500
    except OSError:
        return False


@contextmanager
def serve(
    repo_path: str | os.PathLike[str],
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[str]:
    """Run ``gitrecords --repo REPO_PATH serve --port PORT ARGS``; yield its base URL (no trailing /).

    ``env`` is added to (or, from :func:`isolated_env`, replaces most of) the
    tests' environment: ``GITRECORDS_TOKEN``, ``GITRECORDS_ADMIN_TOKEN`` and so on.
    The server's output goes to ``REPO_PATH.serve-PORT.log`` next to the repository; its
    tail is in the error if the server does not start.
    """

    def command(port: int) -> list[str]:
        return [*GITRECORDS, "--repo", os.fspath(repo_path), "serve", "--port", str(port), *args]

    with _running(command, Path(os.fspath(repo_path)), "serve", env, timeout) as base_url:
        yield base_url


def factory(repo_path: str | os.PathLike[str]) -> str:
    """The application as ``flask --app`` and gunicorn name it: ``gitrecords.web:create_app("PATH")``."""
    return f"gitrecords.web:create_app({os.fspath(repo_path)!r})"


@contextmanager
def flask_run(repo_path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``flask --app 'gitrecords.web:create_app("REPO_PATH")' run``: werkzeug's development server,
    the other runner docs/web.md names. Yields its base URL, as :func:`serve` does."""

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "flask", "--app", factory(repo_path), "run", "--port", str(port)]

    with _running(command, Path(os.fspath(repo_path)), "flask", env, 30.0) as base_url:
        yield base_url


@contextmanager
def gunicorn(
    repo_path: str | os.PathLike[str], *, workers: int = 2, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``gunicorn -w WORKERS 'gitrecords.web:create_app("REPO_PATH")'``, as docs/web.md deploys
    several processes (gunicorn is not a dependency: skip a test that needs it when it is missing)."""

    def command(port: int) -> list[str]:
        bind = f"127.0.0.1:{port}"
        return [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", bind, factory(repo_path)]

    with _running(command, Path(os.fspath(repo_path)), "gunicorn", env, 30.0) as base_url:
        yield base_url


@contextmanager
def _running(
    command: Callable[[int], list[str]],
    repo: Path,
    name: str,
    env: Mapping[str, str] | None,
    timeout: float,
) -> Iterator[str]:
    """Start ``command(port)`` on a free port, wait until it answers, yield its URL, stop it."""
    full_env = dict(os.environ) if env is None else {**os.environ, **env}
    for _attempt in range(3):  # another process may take the free port before the server binds it
        port = free_port()
        log_path = repo.with_name(f"{repo.name}.{name}-{port}.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command(port), env=full_env, stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        if _wait_until_up(proc, f"{base_url}/api/records?size=1", time.monotonic() + timeout):
            break
        _stop(proc)
        output = log_path.read_text(errors="replace")
        if "Address already in use" not in output and "Connection in use" not in output:
            raise RuntimeError(f"{name} did not start: {' '.join(command(port))}\n{output[-3000:]}")
    else:  # pragma: no cover - three lost races in a row
        raise RuntimeError(f"{name} found no free port:\n{output[-3000:]}")
    try:
        yield base_url
    finally:
        _stop(proc)


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, deadline: float) -> bool:
    while proc.poll() is None and time.monotonic() < deadline:
        if _answers(url):
            return proc.poll() is None
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - the server ignores SIGTERM
            proc.kill()
            proc.wait()
