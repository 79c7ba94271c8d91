"""Serving (issue 21): gitrecords' web application under gunicorn, beside a bare Flask floor.

    python -m benchmarks.serving [--records 100000] [--seconds 10] [--workers 2,4] [--clients 8]
                                 [--repo PATH] [--workdir DIR] [--markdown FILE]

Builds a repository of N DataCite-like records (``benchmarks/data.py``, imported with
``Repository.import_records``, the facets of the search rows declared, the search index built
by one ``repo.search("")``), or uses ``--repo PATH`` as it is (the PUT row writes to it: pass a
copy). Then, for each worker count, it starts on loopback, one after the other and with the
same settings (``gunicorn -w W -b 127.0.0.1:PORT``, sync workers, gunicorn's defaults):

* ``benchmarks.hello:create_app()``, a bare Flask application answering ``GET /hello``: the
  floor;
* ``gitrecords.web:create_app("PATH")`` (the call of docs/web.md), with a write token in
  ``GITRECORDS_TOKEN``.

A load generator of its own drives each row: ``--clients`` threads, each with one
``http.client`` connection (gunicorn's sync workers close it after every response, so each
request also opens one), for ``--seconds`` after a short untimed warm-up:

* ``hello``: ``GET /hello`` (the floor);
* ``get``: ``GET /api/records/ID`` of random records;
* ``search ...``: ``GET /api/records?q=...``, the first page of 25 hits, one row per query
  kind: a field term, a full-text word, a range, everything;
* ``put``: a real update of a random record: ``GET`` it (untimed), change its version, ``PUT``
  it with ``If-Match`` (timed, durable); a 412 (another client changed it first) is counted
  and retried from the ``GET``.

Each row reports requests/s, the median and 99th percentile latency, the load average when it
started and the CPU time the load generator itself used (it shares the machine with the
servers). The verdict is the target of issue 21: GET by id at least 50% of the hello floor.
Servers are stopped with SIGTERM (gunicorn's graceful stop) and their process group is
killed if anything is left after 30 s.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import data

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "serving-benchmark-token-0123456789"
#: the search rows: (row name, query)
SEARCHES = [
    ("search: field term", "creators.name:lovelace"),
    ("search: word", "glacier"),
    ("search: range", "publicationYear:[2010 TO 2015]"),
    ("search: first page of all", ""),
]
TARGET = 0.5  # GET by id at least 50% of the hello floor


# -- the repository ------------------------------------------------------------------------


def build_repository(path: Path, n: int) -> float:
    """N benchmark records in a new repository at ``path``, with its search index; the seconds."""
    from .sys_gitrecords import init_repository

    start = time.perf_counter()
    repo = init_repository(path)
    repo.import_records((str(data.record_id(i)), data.canonical(data.record(i))) for i in range(n))
    repo.search("")  # builds the search index
    repo.close()
    return time.perf_counter() - start


def record_ids(path: Path, k: int = 5000) -> list[str]:
    """Up to ``k`` ids of the repository's records, chosen at random (seeded)."""
    from gitrecords import Repository

    repo = Repository(path)
    ids = [str(i) for i in repo.ids()]
    repo.close()
    if not ids:
        raise SystemExit(f"{path}: no records")
    return random.Random(21).sample(ids, min(k, len(ids)))


# -- gunicorn --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(app: str, workers: int, env: dict[str, str], log: Path, ready: str) -> Iterator[int]:
    """A gunicorn serving ``app`` on a free loopback port, in its own process group; yields the
    port once ``GET ready`` answers 200, and stops the server (and anything it left) after."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    argv += ["--timeout", "120", "--graceful-timeout", "20", app]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}: see {log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", ready)
                if conn.getresponse().status == 200:
                    conn.close()
                    break
                conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer {ready} within 120 s: see {log}")
            time.sleep(0.2)
        yield port
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to gunicorn's master (it stops its workers), then SIGKILL to whatever of its
    process group is still there."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group the server was started in: only ours
    except ProcessLookupError:
        pass
    proc.wait()


# -- the load generator ------------------------------------------------------------------------


class Client:
    """One keep-alive ``http.client`` connection (reopened when the server closes it)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPResponse, bytes, float]:
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            payload = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        return response.status, response, payload, time.perf_counter() - start

    def close(self) -> None:
        self.conn.close()


@dataclass
class Tally:
    """What one client thread saw."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    retries: int = 0
    first_error: str = ""

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


#: one operation: (client, random source, tally); appends the timed latencies to the tally
Operation = Callable[[Client, random.Random, Tally], None]


def simple_get(path_for: Callable[[random.Random], str]) -> Operation:
    def op(client: Client, rng: random.Random, tally: Tally) -> None:
        path = path_for(rng)
        status, _, payload, seconds = client.call("GET", path)
        if status == 200:
            tally.latencies.append(seconds)
        else:
            tally.error(f"GET {path}: {status} {payload[:200]!r}")

    return op


def put_operation(ids: list[str]) -> Operation:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def op(client: Client, rng: random.Random, tally: Tally) -> None:
        record_id = rng.choice(ids)
        path = f"/api/records/{record_id}"
        for _ in range(10):
            status, response, payload, _ = client.call("GET", path)
            if status != 200:
                tally.error(f"GET {path}: {status} {payload[:200]!r}")
                return
            metadata = json.loads(payload)["metadata"]
            metadata["version"] = f"3.{rng.randrange(10**6)}"
            headers = {**auth, "If-Match": response.getheader("ETag") or ""}
            status, _, payload, seconds = client.call("PUT", path, json.dumps(metadata).encode(), headers)
            if status == 200:
                tally.latencies.append(seconds)
                return
            if status != 412:
                tally.error(f"PUT {path}: {status} {payload[:200]!r}")
                return
            tally.retries += 1
        tally.error(f"PUT {path}: still 412 after 10 tries")

    return op


def drive(port: int, op: Operation, clients: int, seconds: float, warmup: float) -> dict[str, Any]:
    """``clients`` threads running ``op`` for ``warmup`` seconds (not counted), then ``seconds``."""
    tallies = [Tally() for _ in range(clients)]
    times: dict[str, float] = {}
    barrier = threading.Barrier(clients + 1, action=lambda: times.__setitem__("start", time.monotonic()))

    def worker(k: int) -> None:
        rng = random.Random(1000 + k)
        client = Client(port)
        try:
            scratch = Tally()
            end = time.monotonic() + warmup
            while time.monotonic() < end:
                try:
                    op(client, rng, scratch)
                except (http.client.HTTPException, OSError):
                    pass
            barrier.wait()
            end = times["start"] + seconds
            while time.monotonic() < end:
                try:
                    op(client, rng, tallies[k])
                except (http.client.HTTPException, OSError) as err:
                    tallies[k].error(f"{type(err).__name__}: {err}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=warmup + 120)  # its action sets times["start"]
    load = os.getloadavg()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    for thread in threads:
        thread.join(seconds + 180)
    elapsed = max(time.monotonic() - times["start"], 1e-9)
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
    latencies = sorted(x for t in tallies for x in t.latencies)
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
        "errors": sum(t.errors for t in tallies),
        "first_error": next((t.first_error for t in tallies if t.first_error), ""),
        "retries_412": sum(t.retries for t in tallies),
        "load": load[0],
        "client_cpu": cpu / elapsed,
    }


# -- the run -----------------------------------------------------------------------------------


def server_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITRECORDS_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["GITRECORDS_TOKEN"] = TOKEN
    env["GITRECORDS_SECRET_KEY"] = "serving-benchmark-secret-key"
    return env


def run(
    repo: Path, workers: list[int], seconds: float, clients: int, workdir: Path, quiet: bool = False
) -> dict[str, Any]:
    ids = record_ids(repo)
    env = server_env(workdir)
    warmup = min(1.0, seconds / 2)
    log = workdir / "gunicorn.log"
    rows: list[dict[str, Any]] = []

    def row(w: int, name: str, port: int, op: Operation) -> None:
        result = {"workers": w, "row": name, **drive(port, op, clients, seconds, warmup)}
        rows.append(result)
        if not quiet:
            done = f"{result['rps']:,.0f} req/s, {result['errors']} errors"
            print(f"  {w} workers, {name}: {done}", file=sys.stderr)

    for w in workers:
        with gunicorn("benchmarks.hello:create_app()", w, env, log, "/hello") as port:
            row(w, "hello (bare Flask)", port, simple_get(lambda rng: "/hello"))
        app = f"gitrecords.web:create_app({str(repo)!r})"
        with gunicorn(app, w, env, log, "/api/records?size=1") as port:
            row(w, "GET by id", port, simple_get(lambda rng: f"/api/records/{rng.choice(ids)}"))
            for name, q in SEARCHES:
                path = "/api/records" + (f"?q={urllib.parse.quote(q)}" if q else "")
                row(w, name, port, simple_get(lambda rng, path=path: path))
            row(w, "PUT (durable update)", port, put_operation(ids))
    return {"rows": rows}


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def verdicts(rows: list[dict[str, Any]]) -> list[tuple[int, float | None]]:
    """(workers, GET by id / hello) for each worker count."""
    out = []
    for w in sorted({r["workers"] for r in rows}):
        by = {r["row"]: r for r in rows if r["workers"] == w}
        hello, get = by.get("hello (bare Flask)"), by.get("GET by id")
        out.append((w, get["rps"] / hello["rps"] if hello and get and hello["rps"] else None))
    return out


def render(report: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    head = report["header"]
    lines = [
        f"{head['when']}: {head['records']:,} records, gitrecords {head['commit']}, Python {head['python']}, "
        f"gunicorn {head['gunicorn']} (sync workers), {head['cpus']} cpus; {head['clients']} client threads "
        f"(one process, http.client), {head['seconds']:g} s per row; "
        f"load average at start {head['load_start']}, at end {head['load_end']}",
        "",
        "| workers | row | requests/s | p50 | p99 | vs hello | 412 retries | errors | load (1 min) "
        "| client CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    floors = {r["workers"]: r["rps"] for r in report["rows"] if r["row"].startswith("hello")}
    for r in report["rows"]:
        floor = floors.get(r["workers"])
        ratio = f"{r['rps'] / floor:.2f}x" if floor else "-"
        lines.append(
            f"| {r['workers']} | {r['row']} | {r['rps']:,.0f} | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} "
            f"| {ratio} "
            f"| {r['retries_412']} | {r['errors']} | {r['load']:.2f} | {r['client_cpu']:.2f} |"
        )
    lines += ["", "| target (issue 21) | workers | GET by id / hello | verdict |", "|---|---:|---:|---|"]
    for w, ratio in verdicts(report["rows"]):
        verdict = "-" if ratio is None else ("**met**" if ratio >= TARGET else "**not met**")
        shown = "-" if ratio is None else f"{ratio:.2f}x"
        lines.append(f"| GET by id >= {TARGET:.0%} of the hello floor | {w} | {shown} | {verdict} |")
    errors = [r for r in report["rows"] if r["errors"]]
    for r in errors:
        lines.append(f"\n{r['workers']} workers, {r['row']}: first error: {r['first_error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to build (default 100,000)")
    parser.add_argument("--repo", type=Path, help="use this repository as it is (the PUT row writes to it)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per row (default 10)")
    parser.add_argument("--workers", default="2,4", help="gunicorn worker counts (default 2,4)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--workdir", type=Path, help="keep the repository and the server log here")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.seconds <= 0 or args.clients < 1 or not workers or min(workers) < 1:
        parser.error("--seconds, --clients and --workers must be positive")
    import gunicorn as gunicorn_package

    load_start = os.getloadavg()
    tmp = None
    workdir = args.workdir
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="gitrecords-serving-")
        workdir = Path(tmp)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        repo = args.repo
        records = args.records
        if repo is None:
            repo = workdir / f"r{args.records}.git"
            if not repo.exists():
                took = build_repository(repo, args.records)
                if not args.quiet:
                    print(
                        f"built {args.records:,} records and their search index in {took:.1f} s",
                        file=sys.stderr,
                    )
        else:
            from gitrecords import Repository

            opened = Repository(repo)
            records = sum(1 for _ in opened.ids())
            opened.close()
        report = run(repo.resolve(), workers, args.seconds, args.clients, workdir, args.quiet)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    report["header"] = {
        "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "records": records,
        "commit": git_commit(),
        "python": platform.python_version(),
        "gunicorn": gunicorn_package.__version__,
        "cpus": os.cpu_count(),
        "clients": args.clients,
        "seconds": args.seconds,
        "load_start": " ".join(f"{x:.2f}" for x in load_start),
        "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    text = render(report)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
