"""A real ``gitrecords serve`` for the tests: a subprocess on a free port, stopped at the end.

    env = isolated_env(tmp_path / "home", GITRECORDS_TOKEN=TOKEN)
    with serve(repo_path, "--author", "Curator <curator@example.org>", env=env) as base_url:
        urlopen(f"{base_url}/api/records")

The server gets the environment of the tests plus ``env``; pass
:func:`isolated_env` there (or start it from a test whose git config is
already isolated) so the git config of the person running the tests is not read.
It is stopped (SIGTERM) when the ``with`` block ends, even on a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

#: the CLI, run by the interpreter running the tests (no console script on PATH needed)
GITRECORDS = [sys.executable, "-m", "gitrecords.cli"]


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
    full_env = dict(os.environ) if env is None else {**os.environ, **env}
    repo = Path(os.fspath(repo_path))
    for _attempt in range(3):  # another process may take the free port before the server binds it
        port = free_port()
        log_path = repo.with_name(f"{repo.name}.serve-{port}.log")
        command = [*GITRECORDS, "--repo", os.fspath(repo_path), "serve", "--port", str(port), *args]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        if _wait_until_up(proc, f"{base_url}/api/records?size=1", time.monotonic() + timeout):
            break
        _stop(proc)
        output = log_path.read_text(errors="replace")
        if "Address already in use" not in output:
            raise RuntimeError(f"gitrecords serve did not start: {' '.join(command)}\n{output[-3000:]}")
    else:  # pragma: no cover - three lost races in a row
        raise RuntimeError(f"gitrecords serve found no free port:\n{output[-3000:]}")
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
