"""gitrecords through its Python API, and the gitrecords fixtures.

Runs in a worker process (see worker.py); ``spec`` says which fixture to use.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gitrecords import Record, Repository

from . import data
from .measure import Result, budgeted, timed_each, timed_once, timed_within


def init_repository(path: Path) -> Repository:
    """An empty data repository holding the DataCite-lite schema in its store, declaring the
    facets of the search rows (:data:`data.FACETS`)."""
    repo = Repository.init(path, config={"facets": dict(data.FACETS)})
    repo.put_schema(data.SCHEMA_STORE_PATH, data.schema())
    return repo


def tsv_items(path: Path) -> Iterator[tuple[str, bytes]]:
    """(id, JSON text) pairs from records.tsv, read as the import goes."""
    with open(path, "rb") as stream:
        for line in stream:
            record_id, _, payload = line.rstrip(b"\n").partition(b"\t")
            yield record_id.decode(), payload


def run(op: str, spec: dict[str, Any]) -> Result:
    n = spec["n"]
    target = Path(spec["target"])
    durable = not spec.get("nondurable", False)
    budget = spec["budget"]
    if op == "import":
        repo = init_repository(target)
        workers = spec.get("workers")
        result = timed_once(
            lambda: len(repo.import_records(tsv_items(Path(spec["tsv"])), workers=workers).ids)
        )
        if result.ops != n:
            raise AssertionError(f"imported {result.ops} records, expected {n}")
        return result
    repo = Repository(target, durable=durable)
    repo.sync_index()
    ops = spec["ops"]
    if op == "create":
        new = [(data.record_id(n + j), data.record(n + j)) for j in range(ops)]
        return timed_each(budgeted(new, budget), lambda x: Record.create(x[1], id_=x[0], repo=repo))
    if op == "get":
        ids = [data.record_id(i) for i in data.sample(n, ops, "get", exclude_hot=False)]
        return timed_each(budgeted(ids, budget), lambda i: Record.get_record(i, repo=repo))
    if op == "update":
        ids = [data.record_id(i) for i in data.sample(n, ops, "update")]

        def update(record_id: Any) -> None:
            record = Record.get_record(record_id, repo=repo)
            record["version"] = "3.0"
            record.commit()

        return timed_each(budgeted(ids, budget), update)
    if op == "soft_delete":
        ids = [data.record_id(i) for i in data.sample(n, ops, "delete")]
        return timed_each(budgeted(ids, budget), lambda i: Record.get_record(i, repo=repo).delete())
    hot = data.record_id(data.HOT)
    if op == "revisions":
        record = Record.get_record(hot, repo=repo)
        expected = spec["hot_revisions"]

        def listing(_: int) -> None:
            # every listing starts with no parsed files remembered: what listing a record's history
            # costs the first time, not the cache that listing the same record 100 times would measure
            repo.parsed.clear()
            revisions = list(record.revisions)
            if len(revisions) != expected:
                raise AssertionError(f"{len(revisions)} revisions, expected {expected}")

        return timed_each(budgeted(list(range(ops)), budget), listing)
    if op == "revert":
        state = {"record": Record.get_record(hot, repo=repo)}

        def revert(j: int) -> None:
            state["record"] = state["record"].revert(j % 2)

        return timed_each(budgeted(list(range(ops)), budget), revert)
    if op == "hard_delete":
        record = Record.get_record(hot, repo=repo)

        def hard_delete() -> None:
            record.delete(force=True)

        result = timed_once(hard_delete)
        result.note = f"{spec['commits']:,} commits"
        return result
    if op == "validate":
        deadline = time.perf_counter() + budget

        def validate_all() -> int:
            done = 0
            for record_id in repo.ids():
                Record.get_record(record_id, repo=repo).validate()
                done += 1
                if done % 256 == 0 and time.perf_counter() > deadline:
                    break
            return done

        return timed_within(validate_all, n, budget)
    raise ValueError(f"unknown operation {op!r}")


# -- fixtures --------------------------------------------------------------------------


def prepare_base(spec: dict[str, Any]) -> Result:
    """base.git when the 'import' row did not build it (the same import, timed for the search
    rows, which compare an import with the search index to one without)."""
    repo = init_repository(Path(spec["target"]))
    result = timed_once(
        lambda: len(repo.import_records(tsv_items(Path(spec["tsv"])), workers=spec.get("workers")).ids)
    )
    result.note = "fixture"
    return result


def history_stream(n: int, commits: int, hot_revisions: int, base: str) -> Iterator[bytes]:
    """A fast-import stream of ``commits`` single-record updates on top of ``base``."""
    when = int(time.time()) - commits
    for j, (index, revision) in enumerate(data.history_plan(n, commits, hot_revisions)):
        record_id = data.record_id(index)
        blob = data.canonical(data.revised(data.record(index), revision))
        message = (
            f"update record {record_id}\n\nGitrecords-Operation: update\nGitrecords-Record: {record_id}\n"
        ).encode()
        stamp = b"Bench Mark <bench@example.org> %d +0000\n" % (when + j)
        yield b"commit refs/heads/main\nauthor " + stamp + b"committer " + stamp
        yield b"data %d\n%s\n" % (len(message), message)
        if j == 0:
            yield b"from %s\n" % base.encode()
        path = data.record_path(record_id).encode()
        yield b"M 100644 inline %s\ndata %d\n%s\n" % (path, len(blob), blob)
    yield b"done\n"


def prepare_history(spec: dict[str, Any]) -> Result:
    """history.git: base.git plus ``commits`` single-record updates written by git fast-import,
    then indexed by gitrecords (that catch-up is what this step reports)."""
    base, target = Path(spec["base"]), Path(spec["target"])
    shutil.copytree(base, target, symlinks=True)
    tip = subprocess.run(
        ["git", "--git-dir", str(target), "rev-parse", "refs/heads/main"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout.strip()
    proc = subprocess.Popen(
        ["git", "--git-dir", str(target), "fast-import", "--quiet", "--done"], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    started = time.perf_counter()
    for chunk in history_stream(spec["n"], spec["commits"], spec["hot_revisions"], tip):
        proc.stdin.write(chunk)
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import of the history failed")
    written = time.perf_counter() - started
    repo = Repository(target)
    result = timed_once(repo.sync_index, ops=spec["commits"])
    revisions = len(Record.get_record(data.record_id(data.HOT), repo=repo).revisions)
    if revisions != spec["hot_revisions"]:
        raise AssertionError(f"hot record has {revisions} revisions, expected {spec['hot_revisions']}")
    result.extra["fast_import_s"] = written
    result.note = f"{spec['commits']:,} commits written by git fast-import in {written:.1f} s"
    return result
