"""What ``gitrecords gc`` and other pack settings make of a repository's size.

    python -m benchmarks.packsize [--size 100000] [--history 0] [--settings gc,aggressive,...]

Builds one repository of ``--size`` benchmark records (``benchmarks/data.py``) with
``Repository.import_records``, then, with ``--history``, that many single-record commits
through the API (each one a revision of a record, as in the history fixture of run.py). Each
setting runs on a copy; the table gives its time, the bytes of the packs and loose objects, those over the
gzip'd JSON Lines of the live records (``gitrecords.maintenance.jsonl_gzip_size``, the
reference ``gitrecords gc --ratio`` reports), and where the bytes go by object type (``git
cat-file --batch-all-objects``). docs/performance.md, "Pack size and ``gitrecords gc``",
holds the results.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gitrecords import Record, Repository
from gitrecords.maintenance import gc, jsonl_gzip_size, object_store

from . import data
from .sys_gitrecords import init_repository


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(path), *args], check=True, capture_output=True, text=True
    ).stdout


def repack(window: int, depth: int) -> Callable[[Path], None]:
    return lambda path: git(path, "repack", "-a", "-d", "-f", "-q", f"--window={window}", f"--depth={depth}")


def gitrecords_gc(aggressive: bool) -> Callable[[Path], None]:
    def run(path: Path) -> None:
        repo = Repository(path)
        try:
            gc(repo, aggressive=aggressive)
        finally:
            repo.close()

    return run


#: name -> what it does to a repository
SETTINGS: dict[str, Callable[[Path], None]] = {
    "as-written": lambda path: None,
    "git-gc": lambda path: git(path, "gc", "-q"),
    "git-gc-aggressive": lambda path: git(path, "gc", "-q", "--aggressive"),
    "gc": gitrecords_gc(False),
    "aggressive": gitrecords_gc(True),
    "w10d10": repack(10, 10),
    "w50d50": repack(50, 50),
    "w250d50": repack(250, 50),
}


def by_type(path: Path) -> dict[str, tuple[int, int]]:
    """Object type -> (objects, bytes on disk)."""
    totals: dict[str, tuple[int, int]] = {}
    out = git(path, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectsize:disk)")
    for line in out.splitlines():
        kind, size = line.split()
        count, total = totals.get(kind, (0, 0))
        totals[kind] = (count + 1, total + int(size))
    return totals


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build(path: Path, size: int, history: int) -> None:
    repo = init_repository(path)
    repo.import_records((data.record_id(i), data.record(i)) for i in range(size))
    if history:
        repo.close()
        repo = Repository(path, durable=False)
        for i, k in data.history_plan(size, history, hot_revisions=min(50, history + 1)):
            record = Record.get_record(data.record_id(i), repo=repo)
            record.clear()
            record.update(data.revised(data.record(i), k))
            record.commit()
    repo.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="records to import")
    parser.add_argument("--history", type=int, default=0, help="single-record commits after the import")
    parser.add_argument(
        "--settings", default="as-written,gc,aggressive", help=f"comma-separated, of: {','.join(SETTINGS)}"
    )
    parser.add_argument("--workdir", help="where the repositories go (default: a temporary directory)")
    args = parser.parse_args(argv)
    names = args.settings.split(",")
    unknown = [name for name in names if name not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings: {', '.join(unknown)}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="packsize-"))
    base = work / "base.git"
    version = subprocess.run(["git", "--version"], check=True, capture_output=True, text=True).stdout
    print(f"git {version.split()[-1]}; load average at start {_load()}")
    started = time.monotonic()
    build(base, args.size, args.history)
    repo = Repository(base)
    records, reference = jsonl_gzip_size(repo)
    repo.close()
    print(
        f"{records:,} live records, {args.history:,} commits after the import "
        f"(built in {time.monotonic() - started:.0f} s); gzip'd JSON Lines: {reference:,} bytes\n"
    )
    print(
        "| setting | time | packs | loose objects | bytes (packs + loose) | x gzip'd JSON Lines "
        "| trees | blobs | commits | load after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    try:
        for name in names:
            copy = work / f"{name}.git"
            shutil.copytree(base, copy)
            start = time.monotonic()
            SETTINGS[name](copy)
            seconds = time.monotonic() - start
            store = object_store(copy)
            kinds = by_type(copy)
            load = _load()
            stored = store.pack_bytes + store.loose_bytes
            print(
                f"| {name} | {seconds:.1f} s | {store.packs} | {store.loose_objects:,} | {stored:,} | "
                f"{stored / reference:.2f} | "
                + " | ".join(f"{kinds.get(kind, (0, 0))[1]:,}" for kind in ("tree", "blob", "commit"))
                + f" | {load} |",
                flush=True,
            )
            shutil.rmtree(copy)
    finally:
        if not args.workdir:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
