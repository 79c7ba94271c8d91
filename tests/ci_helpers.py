"""What the CI tests share (test_checks, test_cli_ci, test_hooks, test_precommit): a small
data repository, working clones, and commits made with the real git binary."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from helpers import TITLE_SCHEMA

from gitrecords import Record, Repository, layout

A = "deadbeef-9fe4-43d3-a08f-38c2b309afba"
B = "0b7f2a4e-8a41-4f0e-9f65-1d2c3b4a5f60"
C = "5a1c0e3d-2b4f-4c6a-8e9d-7f0a1b2c3d4e"
D = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
E = "13cf6a59-08d8-4c88-b782-fb728707a7ae"


def run(cwd: Path, *args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command (git, pre-commit, ...) in ``cwd``; fail the test if it fails and ``check``."""
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, **kwargs)
    if check:
        assert proc.returncode == 0, f"{' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc


def commit_all(
    work: Path, message: str = "change", check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``git add -A`` and ``git commit`` (which runs the clone's git hooks, if any)."""
    run(work, "git", "add", "-A", **kwargs)
    identity = ("-c", "user.name=T", "-c", "user.email=t@example.org")
    return run(work, "git", *identity, "commit", "-qm", message, check=check, **kwargs)


def write(work: Path, path: str, data: Any, raw: bool = False) -> None:
    """Write a record's data (canonically, unless ``raw`` bytes) at ``path`` in a working clone."""
    file = work / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data if raw else layout.dumps(data))


def make_server(path: Path) -> Repository:
    """A bare data repository: default schema title.json, records A, B, C with control numbers 1-3."""
    repo = Repository.init(path, config={"default_schema": "title.json"})
    repo.put_schema("title.json", TITLE_SCHEMA)
    with repo:
        for number, record_id in enumerate((A, B, C), 1):
            Record.create({"title": f"record {number}", "control_number": str(number)}, id_=record_id)
    return repo


def clone(server: Repository | Path, where: Path, *args: str) -> Path:
    """A working clone of ``server`` at ``where`` (over file://, as a remote would be)."""
    source = server.path if isinstance(server, Repository) else server
    run(where.parent, "git", "clone", "-q", *args, f"file://{source}", where.name)
    return where
