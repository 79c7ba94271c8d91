"""Concurrent durable writers (issue 21, section 2): group commit against one flush per write.

    python -m benchmarks.group_commit [--records 10000] [--writers 8] [--ops 60] [--repeat 3]
                                      [--systems invenio,baseline,gitrecords] [--baseline REV]
                                      [--invenio-python PATH] [--markdown FILE] [--json FILE]

One fixture of N DataCite-like records (benchmarks/data.py), then ``--writers`` processes
that start together and each make ``--ops`` durable single-record writes, one after the
other: a create (``Record.create``), then an update of a fixture record of its own
(``get_record``, change a field, ``commit``), alternately. Every write is validated and
durable (gitrecords' default; invenio-records on SQLite with its defaults: rollback journal,
``synchronous=FULL``). The writers touch different records, so no write is refused.

Systems, each on a fresh copy of the fixture:

* ``invenio``: invenio-records 6.1 on file SQLite, set up as in benchmarks/sys_invenio.py,
  under ``--invenio-python`` (default: this interpreter if it can import invenio_records);
* ``baseline``: gitrecords as it is at ``--baseline`` (default ``main``; ``git archive`` of
  that revision, put first on the writers' ``PYTHONPATH``): one flush per write;
* ``gitrecords``: this checkout: group commit.

Throughput is all the writes divided by the time from the first write's start to the last
one's end; p50 and p99 are over every write's latency; CPU is the writers' own (user and
system) time per write. Each system runs ``--repeat`` times, the rounds in turns (invenio,
baseline, gitrecords; then baseline, gitrecords, invenio; ...), and the table shows the run
of median throughput with the throughput of every run: the load of a shared machine drifts
during a run. The load average is printed beside the figures: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import data
from .measure import git_env

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = ["invenio", "baseline", "gitrecords"]
TITLES = {
    "invenio": "invenio-records 6.1, SQLite",
    "baseline": "gitrecords {rev} (one flush per write)",
    "gitrecords": "gitrecords, group commit",
}


# -- the writers ------------------------------------------------------------------------


def _plan(spec: dict[str, Any]) -> list[tuple[str, int]]:
    """("create", index of a new record) or ("update", index of a fixture record) per write of
    this writer; writers never touch each other's records."""
    n, w, writers, ops = spec["n"], spec["worker"], spec["writers"], spec["ops"]
    plan = []
    for j in range(ops):
        if j % 2 == 0:
            plan.append(("create", n + w * ops + j))
        else:
            plan.append(("update", 1 + w + writers * j))  # record 0 is data.HOT; not touched
    return plan


def _writer(spec: dict[str, Any]) -> dict[str, Any]:
    plan = _plan(spec)
    if spec["system"] == "invenio":
        import warnings

        warnings.simplefilter("ignore")
        from invenio_db import db
        from invenio_records.api import Record as InvenioRecord

        from .sys_invenio import make_app

        app = make_app(Path(spec["target"]))
        context = app.app_context()
        context.push()

        def create(i: int) -> None:
            InvenioRecord.create(data.record(i), id_=data.record_id(i))
            db.session.commit()

        def update(i: int) -> None:
            record = InvenioRecord.get_record(data.record_id(i))
            record["version"] = "3.0"
            record.commit()
            db.session.commit()

        InvenioRecord.get_record(data.record_id(1))  # connect and load the schema before the start
    else:
        from gitrecords import Record, Repository

        repo = Repository(spec["target"])
        repo.sync_index()

        def create(i: int) -> None:
            Record.create(data.record(i), id_=data.record_id(i), repo=repo)

        def update(i: int) -> None:
            record = Record.get_record(data.record_id(i), repo=repo)
            record["version"] = "3.0"
            record.commit()

        Record.get_record(data.record_id(1), repo=repo).validate()
        from gitrecords.plugins import get_plugin_manager

        get_plugin_manager()  # the signals' plugin manager, made by the first write otherwise
    print("ready", flush=True)
    sys.stdin.readline()  # the start signal: every writer is ready
    times = []
    cpu = time.process_time()
    for kind, i in plan:
        started = time.monotonic()
        (create if kind == "create" else update)(i)
        times.append((started, time.monotonic()))
    return {"times": times, "cpu": time.process_time() - cpu}


# -- the fixtures -----------------------------------------------------------------------


def _gitrecords_fixture(path: Path, n: int) -> None:
    from .sys_gitrecords import init_repository

    repo = init_repository(path)
    repo.import_records((data.record_id(i), data.record(i)) for i in range(n))
    repo.search("")  # the search index, as a server has it
    repo.close()


def _invenio_fixture(path: str, tsv: str) -> None:
    from .sys_invenio import write_base

    write_base(Path(path), Path(tsv))


def _write_tsv(path: Path, n: int) -> None:
    with open(path, "wb") as out:
        for i in range(n):
            out.write(b"%s\t%s\n" % (str(data.record_id(i)).encode(), data.compact(data.record(i))))


# -- the driver -------------------------------------------------------------------------


def _run_writers(python: str, pythonpath: str, spec: dict[str, Any], writers: int, env: dict[str, str]):
    env = dict(env, PYTHONPATH=pythonpath)
    procs = []
    for w in range(writers):
        worker_spec = dict(spec, worker=w, writers=writers)
        procs.append(
            subprocess.Popen(
                [python, "-m", "benchmarks.group_commit", "--worker", json.dumps(worker_spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=str(ROOT),
                env=env,
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"a writer did not start: {line!r}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"a writer failed (exit {proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _measure(
    system: str,
    args: argparse.Namespace,
    workdir: Path,
    fixture: Path,
    baseline_src: Path,
    invenio_python: str | None,
    env: dict[str, str],
) -> dict[str, Any]:
    """One run of ``system`` on a fresh copy of the fixture."""
    n = args.records
    here = str(ROOT)
    spec: dict[str, Any] = {"system": system, "n": n, "ops": args.ops}
    if system == "invenio":
        assert invenio_python is not None
        target = workdir / "invenio.db"
        target.unlink(missing_ok=True)
        args_ = (str(target), str(workdir / "records.tsv"))
        subprocess.run(
            [invenio_python, "-c", f"from benchmarks.group_commit import _invenio_fixture as f; f{args_!r}"],
            check=True,
            cwd=here,
            env=dict(env, PYTHONPATH=here),
        )
        python, pythonpath = invenio_python, here
    else:
        target = workdir / f"{system}.git"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(fixture, target)
        python = sys.executable
        pythonpath = f"{baseline_src}:{here}" if system == "baseline" else here
    spec["target"] = str(target)
    load = os.getloadavg()
    results = _run_writers(python, pythonpath, spec, args.writers, env)
    row = _summary(results)
    row["load"] = [round(x, 2) for x in (load[0], os.getloadavg()[0])]
    return row


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    times = [t for r in results for t in r["times"]]
    latencies = sorted(end - start for start, end in times)
    elapsed = max(end for _s, end in times) - min(start for start, _e in times)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    return {
        "writes": len(times),
        "seconds": elapsed,
        "writes_per_s": len(times) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "cpu_ms_per_write": sum(r["cpu"] for r in results) / len(times) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--ops", type=int, default=60, help="writes per writer")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--baseline", default="main", help="the gitrecords revision to compare with")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each system (the median is shown)")
    parser.add_argument("--invenio-python", default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(_writer(json.loads(args.worker))), flush=True)
        return 0

    systems = args.systems.split(",")
    invenio_python = args.invenio_python
    if invenio_python is None and "invenio" in systems:
        probe = subprocess.run([sys.executable, "-c", "import invenio_records"], capture_output=True)
        invenio_python = sys.executable if probe.returncode == 0 else None
        if invenio_python is None:
            print("invenio_records cannot be imported: --invenio-python PATH", file=sys.stderr)
            systems.remove("invenio")
    workdir = Path(tempfile.mkdtemp(prefix="gitrecords-group-", dir=args.workdir))
    home = workdir / "home"
    home.mkdir()
    env = git_env(str(home))
    n = args.records
    outcome: dict[str, Any] = {
        "records": n,
        "writers": args.writers,
        "ops_per_writer": args.ops,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": {},
    }
    try:
        fixture = workdir / "fixture.git"
        started = time.perf_counter()
        here = str(ROOT)
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"from benchmarks.group_commit import _gitrecords_fixture as f; f({str(fixture)!r}, {n})",
            ],
            check=True,
            cwd=here,
            env=dict(env, PYTHONPATH=here),
        )
        print(f"fixture: {n:,} records in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        baseline_src = workdir / "baseline-src"
        if "baseline" in systems:
            baseline_src.mkdir()
            archive = subprocess.run(
                ["git", "-C", here, "archive", args.baseline], capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(baseline_src)], input=archive.stdout, check=True)
        if "invenio" in systems:
            _write_tsv(workdir / "records.tsv", n)
        runs: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
        for round_ in range(args.repeat):
            # each round in another order: the load of a shared machine drifts during a run
            order = systems[round_ % len(systems) :] + systems[: round_ % len(systems)]
            for system in order:
                row = _measure(system, args, workdir, fixture, baseline_src, invenio_python, env)
                runs[system].append(row)
                print(
                    f"{system:>10}: {row['writes']} writes in {row['seconds']:.2f} s = "
                    f"{row['writes_per_s']:.1f}/s, p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
                    f"CPU {row['cpu_ms_per_write']:.1f} ms/write "
                    f"(load {row['load'][0]} -> {row['load'][1]})",
                    file=sys.stderr,
                    flush=True,
                )
        for system, rows in runs.items():  # the run of median throughput stands for the system
            ranked = sorted(rows, key=lambda r: r["writes_per_s"])
            outcome["rows"][system] = dict(ranked[len(ranked) // 2], runs=[r["writes_per_s"] for r in rows])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = _markdown(outcome, args.baseline)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(outcome, indent=2))
    return 0


def _markdown(outcome: dict[str, Any], baseline: str) -> str:
    rows = outcome["rows"]
    lines = [
        f"{outcome['writers']} writer processes, {outcome['ops_per_writer']} durable single-record "
        f"writes each (creates and updates) on {outcome['records']:,} records, {outcome['date']}",
        "",
        "| System | writes/s | runs | p50 ms | p99 ms | CPU ms/write | vs invenio | vs baseline | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for system, row in rows.items():
        ratios = []
        for other in ("invenio", "baseline"):
            ref = rows.get(other)
            ratios.append(f"{row['writes_per_s'] / ref['writes_per_s']:.1f}x" if ref else "-")
        lines.append(
            f"| {TITLES[system].format(rev=baseline)} | {row['writes_per_s']:.1f} | "
            f"{', '.join(f'{r:.0f}' for r in row['runs'])} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['cpu_ms_per_write']:.1f} | {ratios[0]} | {ratios[1]} | "
            f"{row['load'][0]} → {row['load'][1]} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
