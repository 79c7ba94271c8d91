"""gitrecords through its command line: one ``gitrecords`` process per operation.

Each single-record operation starts the CLI, so its rate includes the Python
start-up and imports, as a shell script calling ``gitrecords`` would pay.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import data
from .measure import Result, budgeted, timed_each, timed_once
from .sys_gitrecords import init_repository


def command() -> list[str]:
    script = Path(sys.executable).parent / "gitrecords"
    if script.exists():
        return [str(script)]
    found = shutil.which("gitrecords")
    return [found] if found else [sys.executable, "-m", "gitrecords.cli"]


def run(op: str, spec: dict[str, Any]) -> Result:
    n = spec["n"]
    target = Path(spec["target"])
    base = [*command(), "--repo", str(target)]
    budget = spec["budget"]
    ops = spec["ops"]

    def cli(args: Sequence[str], stdin: bytes | None = None) -> str:
        proc = subprocess.run([*base, *args], input=stdin, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"gitrecords {' '.join(args)} failed: {proc.stderr.decode()[-2000:]}")
        return proc.stdout.decode()

    if op == "import":
        init_repository(target)
        result = timed_once(lambda: len(cli(["import", spec["jsonl"]]).split()))
        if result.ops != n:
            raise AssertionError(f"imported {result.ops} records, expected {n}")
        return result
    if op == "create":
        new = [(str(data.record_id(n + j)), data.record(n + j)) for j in range(ops)]
        return timed_each(
            budgeted(new, budget), lambda x: cli(["create", "-i", x[0], "-"], json.dumps(x[1]).encode())
        )
    if op == "get":
        ids = [str(data.record_id(i)) for i in data.sample(n, ops, "get", exclude_hot=False)]
        return timed_each(budgeted(ids, budget), lambda i: cli(["get", i]))
    if op == "update":
        picked = data.sample(n, ops, "update")
        items = [(str(data.record_id(i)), {**data.record(i), "version": "3.0"}) for i in picked]
        return timed_each(
            budgeted(items, budget), lambda x: cli(["update", "-i", x[0], "-"], json.dumps(x[1]).encode())
        )
    if op == "soft_delete":
        ids = [str(data.record_id(i)) for i in data.sample(n, ops, "delete")]
        return timed_each(budgeted(ids, budget), lambda i: cli(["delete", "-i", i]))
    hot = str(data.record_id(data.HOT))
    if op == "revisions":
        expected = spec["hot_revisions"]

        def history(_: int) -> None:
            listed = json.loads(cli(["history", hot, "--json"]))
            if len(listed) != expected:
                raise AssertionError(f"{len(listed)} revisions, expected {expected}")

        result = timed_each(budgeted(list(range(ops)), budget), history)
        result.note = "'history --json': commit info, no record data"
        return result
    if op == "revert":
        return timed_each(budgeted(list(range(ops)), budget), lambda j: cli(["revert", hot, str(j % 2)]))
    if op == "hard_delete":
        return Result(skipped="same code path as the API")
    if op == "validate":

        def validate() -> None:
            cli(["validate"])

        return timed_once(validate, ops=n)
    raise ValueError(f"unknown operation {op!r}")
