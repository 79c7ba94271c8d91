"""Bulk change benchmark (issue 20): one field changed on every record a query selects.

    python -m benchmarks.bulk_edit [--sizes 100000] [--chunk N] [--markdown FILE] [--json FILE]

For each size N, in one run and each step in its own process (so that each peak RSS is that
step's alone):

1. ``import``: ``repo.import_records`` of the N DataCite-like records of benchmarks/data.py into
   an empty repository (the reference rate: the issue's target is at least half of it);
2. ``index``: the first ``repo.search`` builds the search index (a query selects the records);
3. ``edit``: ``repo.update_records("publicationYear:[1900 TO 2100]", SetFields(set=[("/version",
   "2.0")]))``: every record matches, every record changes, one commit, validated, with the
   search index kept up to date inside the call;
4. ``undo``: ``repo.undo`` of that commit (every record back, one commit).

With ``--chunk N`` the edit makes commits of N records (``update_records(..., chunk=N)``) and
the undo undoes each of them, the last first.

Targets (issue 20): the edit of 100,000 records in under 30 s, at least half the bulk import's
rate, with a peak RSS under 500 MB. The load average is printed beside each figure: the
machine may be shared; compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import data
from .measure import PeakSampler
from .sys_search import time_catch_ups

QUERY = "publicationYear:[1900 TO 2100]"
FACETS = {"type": "types.resourceTypeGeneral", "year": "publicationYear"}


def _step(name: str, path: str, n: int, queue: Any, chunk: int | None = None) -> None:
    from gitrecords import Repository
    from gitrecords.edit import SetFields

    index_seconds: list[float] = []  # the search index's own catch-ups inside the measured call
    with PeakSampler() as sampler:
        started = time.perf_counter()
        if name == "import":
            repo = Repository.init(path, config={"facets": FACETS})
            repo.put_schema(data.SCHEMA_STORE_PATH, data.schema())
            started = time.perf_counter()
            repo.import_records((data.record_id(i), data.record(i)) for i in range(n))
            done = n
        elif name == "index":
            repo = Repository(path)
            done = repo.search("").total
        elif name == "edit":
            repo = Repository(path)
            repo.search("", size=1)  # the index is there and caught up: not part of the edit
            index_seconds = time_catch_ups(repo.search_index)
            started = time.perf_counter()
            report = repo.update_records(QUERY, SetFields(set=[("/version", "2.0")]), chunk=chunk)
            done = report.changed
            Path(path, "edit-commits").write_text("\n".join(report.commits))
        else:
            repo = Repository(path)
            repo.search("", size=1)
            commits = Path(path, "edit-commits").read_text().split()
            index_seconds = time_catch_ups(repo.search_index)
            started = time.perf_counter()
            done = sum(len(repo.undo(commit).restored) for commit in reversed(commits))
        seconds = time.perf_counter() - started
    repo.close()
    queue.put(
        {
            "step": name,
            "records": done,
            "seconds": seconds,
            "index_seconds": sum(index_seconds),
            "peak_mb": sampler.peak_mb(),
        }
    )


def measure(n: int, workdir: Path, chunk: int | None = None) -> list[dict[str, Any]]:
    path = str(workdir / f"edit-{n}.git")
    shutil.rmtree(path, ignore_errors=True)
    results = []
    context = multiprocessing.get_context("spawn")
    for name in ("import", "index", "edit", "undo"):
        queue = context.Queue()
        proc = context.Process(target=_step, args=(name, path, n, queue, chunk))
        proc.start()
        result = queue.get()
        proc.join()
        result["load"] = os.getloadavg()[0]
        print(
            f"[{n:,}] {name:6} {result['records']:,} records in {result['seconds']:.2f} s"
            f" ({result['records'] / result['seconds']:,.0f}/s), peak RSS {result['peak_mb']:.0f} MB,"
            f" load {result['load']:.1f}",
            file=sys.stderr,
        )
        results.append(result)
    shutil.rmtree(path, ignore_errors=True)
    return results


def markdown(n: int, results: list[dict[str, Any]], chunk: int | None = None) -> str:
    by_step = {r["step"]: r for r in results}
    rate = {s: r["records"] / r["seconds"] for s, r in by_step.items()}
    edit = by_step["edit"]
    checks = [
        ("edit in under 30 s (at 100k)", edit["seconds"] < 30 * n / 100_000),
        ("at least half the bulk import's rate", rate["edit"] >= 0.5 * rate["import"]),
        ("peak RSS under 500 MB", edit["peak_mb"] < 500),
    ]
    lines = [
        f"#### N = {n:,}" + (f", commits of {chunk:,} records" if chunk else ""),
        "",
        "| step | records | time | of which the search index | rate | vs import | peak RSS | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for step, r in by_step.items():
        index = f"{r['index_seconds']:.2f} s" if r["index_seconds"] else "-"
        lines.append(
            f"| {step} | {r['records']:,} | {r['seconds']:.2f} s | {index} | {rate[step]:,.0f}/s"
            f" | {rate[step] / rate['import']:.2f}x | {r['peak_mb']:.0f} MB | {r['load']:.1f} |"
        )
    lines += ["", "| target | verdict |", "|---|---|"]
    lines += [f"| {what} | {'PASS' if ok else '**FAIL**'} |" for what, ok in checks]
    if "index" in by_step:
        # the edit keeps the search index up to date inside the call; the import step does not
        searchable = by_step["import"]["seconds"] + by_step["index"]["seconds"]
        lines += [
            "",
            f"For comparison (not a target): the import and the index's build together took"
            f" {searchable:.2f} s (until the imported records can be found); the edit ran at"
            f" {rate['edit'] * searchable / by_step['import']['records']:.2f}x their rate.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--chunk", type=int, default=None, help="records a commit (update_records' chunk)")
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gitrecords-edit-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    header = (
        f"    gitrecords bulk change benchmark, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}:"
        f" {os.cpu_count()} cpus, gitrecords {commit}, load average at start"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    out = [header]
    everything = {}
    for n in (int(s) for s in args.sizes.split(",")):
        results = measure(n, workdir, args.chunk)
        everything[n] = results
        out.append(markdown(n, results, args.chunk))
    text = "\n".join(out)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
