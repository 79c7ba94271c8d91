"""Replication over the git protocol: a `git daemon` on 127.0.0.1, started and stopped by the test."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import fsck, git

from gitrecords import Record, Repository
from gitrecords.replication import PushRejectedError, pull, push


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Repository, str]]:
    """A bare server repository served read-write by `git daemon`; yields it and its git:// URL."""
    root = tmp_path / "served"
    root.mkdir()
    server = Repository.init(root / "server.git")
    for title in ("one", "two"):
        Record.create({"title": title}, repo=server, pid_minters=["recid"])
    port = free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={root}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:  # wait until the daemon accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"git daemon did not start: {proc.stderr.read().decode()}") from None
            time.sleep(0.05)
    try:
        yield server, f"git://127.0.0.1:{port}/server.git"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def clone(url: str, dest: Path, bare: bool) -> Repository:
    args = ["git", "clone", "--quiet", *(["--bare"] if bare else []), url, str(dest)]
    subprocess.run(args, check=True, capture_output=True, env=dict(os.environ))
    return Repository(dest)


def test_two_curators_replicate_through_git_daemon(daemon: tuple[Repository, str], tmp_path: Path) -> None:
    server, url = daemon
    one, two = sorted(server.ids(), key=lambda i: server.index.pids_of(i)["recid"])
    alice = clone(url, tmp_path / "alice", bare=False)
    bob = clone(url, tmp_path / "bob.git", bare=True)

    record = Record.get_record(one, repo=alice)
    record["title"] = "one (alice)"
    record.commit()
    assert push(alice).status == "pushed"

    record = Record.get_record(two, repo=bob)
    record["title"] = "two (bob)"
    record.commit()
    with pytest.raises(PushRejectedError):  # not a fast-forward: pull first
        push(bob)
    assert pull(bob).status == "merged"
    assert len(git(bob, "rev-list", "--parents", "-n1", "main").split()) == 3  # a real merge commit
    assert push(bob).status == "pushed"
    assert pull(alice).status == "fast-forward"

    for repo in (server, alice, bob):
        assert Record.get_record(one, repo=repo)["title"] == "one (alice)"
        assert Record.get_record(two, repo=repo)["title"] == "two (bob)"
        fsck(repo)
    assert git(server, "rev-parse", "main") == git(bob, "rev-parse", "main")
    # the server's index caught up with what was pushed into it
    assert Record.get_record(two, repo=server).revision_id == 1
    assert server.lookup_pid("recid", "2") == two
