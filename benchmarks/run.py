"""The gitrecords benchmark suite: gitrecords (API and CLI) against invenio-records and raw git.

    python -m benchmarks.run [--sizes 1000,10000,100000] [--million] [--only OP,...] [--quick]
                             [--invenio-python PATH] [--markdown FILE] [--json FILE]

For each size N it builds the fixtures (N validated ~1 KB DataCite-like
records; the same plus 10,000 single-record commits, 49 of them on one record
so that it has 50 revisions), then measures every operation of issue 4 for
every system, each (system, operation) in its own worker process, and prints
one table per size: operations per second, time, peak RSS, the ratios to
invenio-records and to raw git measured in the same run, and the issue's
target with PASS/FAIL. A last table checks the targets that compare sizes.

The search rows of issue 17 (``--only search,search_build,search_commit,search_import``,
benchmarks/sys_search.py) get two tables of their own per size: the first page of six kinds
of query by the search index, by the linear scan it replaced (``scan``, up to 100,000
records) and by plain SQLite (``floor``); and what the index costs to build, on disk, per
commit and in a bulk import.

invenio-records runs under ``--invenio-python`` (default: this interpreter if
it can import invenio_records; otherwise its rows are skipped with a note).
See docs/performance.md for what each row measures and the latest results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import data
from .measure import git_env

ROOT = Path(__file__).resolve().parent.parent

OPS = [
    "import",
    "create",
    "get",
    "update",
    "revisions",
    "revert",
    "soft_delete",
    "hard_delete",
    "validate",
    "search",
    "search_build",
    "search_commit",
    "search_import",
]
#: the search rows of issue 17 (benchmarks/sys_search.py), shown in tables of their own
SEARCH_OPS = ["search", "search_build", "search_commit", "search_import"]
OP_TITLES = {
    "import": "bulk import (records/s)",
    "create": "single create, 1 commit each",
    "get": "get by id",
    "update": "update, 1 commit each",
    "revisions": "revisions of a 50-revision record",
    "revert": "revert, 1 commit each",
    "soft_delete": "soft delete, 1 commit each",
    "hard_delete": "hard delete in 10k+ commits",
    "validate": "validate all (records/s)",
    "search": "search, first page",
    "search_build": "build the search index from scratch",
    "search_commit": "single create, durable, with and without the search index",
    "search_import": "bulk import with the search index (records/s)",
}
#: row label, worker system, extra spec
SYSTEMS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "api": ("gitrecords API", "gitrecords-api", {}),
    "api-nondurable": ("gitrecords API, durable=False", "gitrecords-api", {"nondurable": True}),
    "cli": ("gitrecords CLI", "gitrecords-cli", {}),
    "invenio": ("invenio-records 6.1", "invenio", {}),
    "raw": ("raw git", "raw-git", {}),
    "scan": ("linear scan (before the index)", "linear-scan", {}),
    "floor": ("bare SQLite (floor)", "sqlite-floor", {}),
}
#: the non-durable variant is shown only where it tells something: the commit cost
NONDURABLE_OPS = {"create", "update"}
#: operations that write: they get a fresh copy of their fixture
WRITES = {"create", "update", "revert", "soft_delete", "hard_delete"}
HISTORY_OPS = {"revisions", "revert", "hard_delete"}

TARGETS = {
    "import": ">= 0.5x raw git, RSS < 500 MB",
    "create": ">= 1x invenio",
    "update": ">= 1x invenio",
    "get": ">= 3x invenio",
    "revisions": ">= 2x invenio",
    "hard_delete": "< 10 s",
}


@dataclass
class Settings:
    sizes: list[int]
    ops: list[str]
    systems: list[str]
    workdir: Path
    invenio_python: str | None
    invenio_note: str = ""
    commits: int = 10_000
    hot_revisions: int = 50
    counts: dict[str, int] = field(default_factory=dict)
    cli_ops: int = 20
    budget: float = 30.0
    bulk_budget: float = 60.0
    validate_budget: float = 60.0
    #: seconds per query kind for the search rows, and at most per query (gitrecords)
    search_budget: float = 30.0
    query_cap: float = 120.0
    #: the linear scan runs up to this many records
    scan_max: int = 100_000
    workers: int | None = None
    keep: bool = False
    inprocess: bool = False
    profile_dir: Path | None = None
    calibrate: bool = True
    quiet: bool = False


FULL_COUNTS = {
    "create": 200,
    "get": 1000,
    "update": 200,
    "revisions": 100,
    "revert": 200,
    "soft_delete": 200,
    "search": 50,
    "search_commit": 200,
}
QUICK_COUNTS = {
    "create": 50,
    "get": 300,
    "update": 50,
    "revisions": 30,
    "revert": 50,
    "soft_delete": 50,
    "search": 20,
    "search_commit": 50,
}


# -- running workers ------------------------------------------------------------------


def worker_env(settings: Settings) -> dict[str, str]:
    home = settings.workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = git_env(str(home))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def run_worker(settings: Settings, python: str, spec: dict[str, Any]) -> dict[str, Any]:
    if settings.inprocess:
        from .worker import execute

        return execute(spec)
    proc = subprocess.run(
        [python, "-m", "benchmarks.worker", json.dumps(spec)],
        cwd=ROOT,
        env=worker_env(settings),
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH-RESULT ")]
    if not lines:
        return {"error": f"worker exited with {proc.returncode}: {proc.stderr[-1500:]}"}
    out = json.loads(lines[-1][len("BENCH-RESULT ") :])
    if "error" in out:
        out["error"] += "\n" + proc.stderr[-1500:]
    return out


def copy_fixture(source: Path, target: Path) -> None:
    if target.exists():
        remove(target)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copyfile(source, target)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


# -- one size -------------------------------------------------------------------------


def log(settings: Settings, text: str) -> None:
    if not settings.quiet:
        print(text, file=sys.stderr, flush=True)


def run_size(settings: Settings, n: int) -> dict[str, Any]:
    sdir = settings.workdir / f"n{n}"
    remove(sdir)
    sdir.mkdir(parents=True)
    started = time.perf_counter()
    outcome: dict[str, Any] = {"n": n, "load_start": os.getloadavg(), "rows": {}, "info": {}}
    tsv, jsonl, stream = sdir / "records.tsv", sdir / "records.jsonl", sdir / "raw.stream"
    log(settings, f"[{n:,}] writing the input files")
    with open(tsv, "wb") as out_tsv, open(jsonl, "wb") as out_jsonl:
        for i in range(n):
            record_id, compact = str(data.record_id(i)).encode(), data.compact(data.record(i))
            out_tsv.write(b"%s\t%s\n" % (record_id, compact))
            out_jsonl.write(b'{"id":"%s","data":%s}\n' % (record_id, compact))
    systems = [s for s in settings.systems if s != "invenio" or settings.invenio_python]
    if "raw" in systems and {"import", "search_import"} & set(settings.ops):
        from .sys_rawgit import write_import_stream

        write_import_stream(stream, n, tsv)
    common = {
        "n": n,
        "tsv": str(tsv),
        "jsonl": str(jsonl),
        "stream": str(stream),
        "commits": settings.commits,
        "hot_revisions": settings.hot_revisions,
        "budget": settings.budget,
        "bulk_budget": settings.bulk_budget,
        "workers": settings.workers,
    }
    base, history = sdir / "base.git", sdir / "history.git"
    inv_base, inv_history = sdir / "inv-base.db", sdir / "inv-history.db"
    py = sys.executable

    def measure(op: str, key: str, target: Path, fixture: Path | None) -> None:
        label, system, extra = SYSTEMS[key]
        if fixture is not None and op in WRITES:
            copy_fixture(fixture, target)
            os.sync()  # so that the first durable commit does not also flush the copy
        elif fixture is not None:
            target = fixture
        spec = {**common, **extra, "system": system, "op": op, "target": str(target)}
        if key == "cli":
            spec["ops"] = settings.cli_ops
        else:
            spec["ops"] = settings.counts.get(op, 0)
        if op == "validate":
            spec["budget"] = settings.validate_budget
        if settings.profile_dir is not None and key == "api":
            spec["profile"] = str(settings.profile_dir / f"{op}-{n}.pstats")
        log(settings, f"[{n:,}] {op:<12} {label}")
        python = settings.invenio_python if key == "invenio" else py
        assert python is not None
        result = run_worker(settings, python, spec)
        result["load"] = os.getloadavg()
        outcome["rows"].setdefault(op, {})[key] = result
        if "error" in result:
            log(settings, f"    ERROR {result['error']}")
        if target != fixture and target != base:
            remove(target)

    # bulk import first: the gitrecords API import is also the base fixture
    if "import" in settings.ops:
        for key in ("api", "cli", "invenio", "raw"):
            if key in systems:
                target = base if key == "api" else sdir / f"import-{key}"
                measure("import", key, target, None)
    if not base.exists() or "error" in outcome["rows"].get("import", {}).get("api", {}):
        remove(base)
        log(settings, f"[{n:,}] building base.git")
        result = run_worker(
            settings, py, {**common, "system": "gitrecords-api", "op": "prepare_base", "target": str(base)}
        )
        if "error" in result:
            raise RuntimeError(f"cannot build the base fixture: {result['error']}")
        outcome["info"]["base"] = result
    if HISTORY_OPS & set(settings.ops):
        log(settings, f"[{n:,}] building history.git ({settings.commits:,} commits) and indexing it")
        result = run_worker(
            settings,
            py,
            {
                **common,
                "system": "gitrecords-api",
                "op": "prepare_history",
                "base": str(base),
                "target": str(history),
            },
        )
        if "error" in result:
            raise RuntimeError(f"cannot build the history fixture: {result['error']}")
        outcome["info"]["index_catch_up"] = result
    if "invenio" in systems and set(settings.ops) - {"import", *SEARCH_OPS}:
        log(settings, f"[{n:,}] building the invenio-records fixtures")
        result = run_worker(
            settings,
            settings.invenio_python or py,
            {
                **common,
                "system": "invenio",
                "op": "prepare_invenio",
                "base": str(inv_base),
                "history": str(inv_history),
            },
        )
        if "error" in result:
            log(settings, f"    invenio fixtures failed, its rows are skipped: {result['error']}")
            systems = [s for s in systems if s != "invenio"]
            outcome["info"]["invenio_error"] = result["error"]
        else:
            outcome["info"]["invenio_fixture"] = result
    for op in settings.ops:
        if op == "import" or op in SEARCH_OPS:
            continue
        for key in ("api", "api-nondurable", "cli", "invenio", "raw"):
            if key not in systems or (key == "api-nondurable" and op not in NONDURABLE_OPS):
                continue
            if key == "invenio":
                fixture = inv_history if op in HISTORY_OPS else inv_base
                target = sdir / f"work-{op}.db"
            else:
                fixture = history if op in HISTORY_OPS else base
                target = sdir / f"work-{op}-{key}.git"
            measure(op, key, target, fixture)
    if set(SEARCH_OPS) & set(settings.ops):
        run_search(settings, outcome, common, sdir, systems)
    outcome["seconds"] = time.perf_counter() - started
    outcome["load_end"] = os.getloadavg()
    if not settings.keep:
        remove(sdir)
    return outcome


def run_search(
    settings: Settings, outcome: dict[str, Any], common: dict[str, Any], sdir: Path, systems: list[str]
) -> None:
    """The search rows (issue 17): build the index on a copy of base.git (measured: that copy is
    the fixture of the queries and of the commit row), then the queries, commits and the import."""
    n, ops = outcome["n"], settings.ops
    base, search = sdir / "base.git", sdir / "search.git"

    def measure(op: str, key: str, **extra: Any) -> None:
        label, system, _ = SYSTEMS[key]
        spec = {**common, "system": system, "op": op, "ops": settings.counts.get(op, 0), **extra}
        if settings.profile_dir is not None and key == "api":
            spec["profile"] = str(settings.profile_dir / f"{op}-{n}.pstats")
        log(settings, f"[{n:,}] {op:<12} {label}")
        result = run_worker(settings, sys.executable, spec)
        result["load"] = os.getloadavg()
        outcome["rows"].setdefault(op, {})[key] = result
        if "error" in result:
            log(settings, f"    ERROR {result['error']}")

    if {"search", "search_build", "search_commit"} & set(ops) and "api" in systems:
        measure("search_build", "api", base=str(base), target=str(search))
    if "search" in ops:
        budget = settings.search_budget
        if "api" in systems:
            measure("search", "api", target=str(search), budget=budget, query_cap=settings.query_cap)
        if "scan" in systems:
            if n > settings.scan_max:
                outcome["rows"].setdefault("search", {})["scan"] = {
                    "skipped": f"not run above {settings.scan_max:,} records",
                    "load": os.getloadavg(),
                }
            else:
                measure("search", "scan", target=str(base), budget=budget)
        if "floor" in systems:
            measure("search", "floor", floor=str(sdir / "floor.sqlite"), budget=budget)
            remove(sdir / "floor.sqlite")
    if "search_commit" in ops and "api" in systems and search.exists():
        measure(
            "search_commit",
            "api",
            base=str(base),
            search=str(search),
            target=str(sdir / "work-search-commit"),
            budget=settings.budget,
        )
    if "search_import" in ops:
        for key in ("api", "raw"):
            if key in systems:
                target = sdir / f"import-search-{key}"
                measure("search_import", key, target=str(target))
                remove(target)
    if not settings.keep:
        remove(search)


# -- reporting ------------------------------------------------------------------------


def rate(row: dict[str, Any] | None) -> float | None:
    if not row or "error" in row or row.get("skipped"):
        return None
    return row.get("ops_per_s")


def verdict(op: str, row: dict[str, Any], peer: float | None, raw: float | None) -> str:
    mine = rate(row)
    if mine is None or op not in TARGETS:
        return ""
    if op == "import":
        if raw is None:
            return "?"
        return "PASS" if mine >= 0.5 * raw and row["peak_rss_mb"] < 500 else "FAIL"
    if op == "hard_delete":
        return "PASS" if row["seconds"] < 10 else "FAIL"
    if peer is None:
        return "?"
    needed = {"create": 1.0, "update": 1.0, "get": 3.0, "revisions": 2.0}[op]
    return "PASS" if mine >= needed * peer else "FAIL"


def fmt_rate(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.3f}"


def fmt_time(row: dict[str, Any], once: bool) -> str:
    if once:
        return f"{row['seconds']:.2f} s"
    return f"{row['median_ms']:.2f} ms" if row.get("median_ms") is not None else "-"


def fmt_ratio(mine: float | None, other: float | None) -> str:
    if mine is None or other is None or other == 0:
        return "-"
    value = mine / other
    return f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


HEADERS = [
    "operation",
    "system",
    "ops/s",
    "time",
    "peak RSS",
    "vs invenio",
    "vs raw git",
    "target",
    "",
    "note",
]


def table_rows(outcome: dict[str, Any]) -> list[list[str]]:
    rows = []
    for op in OPS:
        results = outcome["rows"].get(op)
        if not results or op in SEARCH_OPS:
            continue
        peer, raw = rate(results.get("invenio")), rate(results.get("raw"))
        once = op in ("import", "hard_delete", "validate")
        first = True
        for key in ("api", "api-nondurable", "cli", "invenio", "raw"):
            row = results.get(key)
            if row is None:
                continue
            label = SYSTEMS[key][0]
            title = OP_TITLES[op] if first else ""
            first = False
            if "error" in row:
                rows.append(
                    [title, label, "ERROR", "", "", "", "", "", "", row["error"].splitlines()[0][:80]]
                )
                continue
            if row.get("skipped"):
                rows.append([title, label, "-", "", "", "", "", "", "", f"not run: {row['skipped']}"])
                continue
            mine = rate(row)
            is_target_row = key == "api"
            note = row.get("note") or ""
            if not once:
                note = (f"{row['ops']} ops; " + note).rstrip("; ")
            rows.append(
                [
                    title,
                    label,
                    fmt_rate(mine),
                    fmt_time(row, once),
                    f"{row['peak_rss_mb']:.0f} MB",
                    fmt_ratio(mine, peer) if key not in ("invenio",) else "1x",
                    fmt_ratio(mine, raw) if key != "raw" else "1x",
                    TARGETS.get(op, "") if is_target_row else "",
                    verdict(op, row, peer, raw) if is_target_row else "",
                    note,
                ]
            )
    return rows


def render_text(rows: list[list[str]], headers: list[str], right: set[int] | None = None) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    right = {2, 3, 4, 5, 6} if right is None else right
    lines = []
    for cells in [headers, *rows]:
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[list[str]], headers: list[str], right: set[int] | None = None) -> str:
    right = {2, 3, 4, 5, 6} if right is None else right
    out = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|",
    ]
    for cells in rows:
        shown = [f"**{c}**" if c == "FAIL" else c for c in cells]
        out.append("| " + " | ".join(shown) + " |")
    return "\n".join(out)


SEARCH_HEADERS = [
    "query, first page of 25",
    "system",
    "p50",
    "p95",
    "hits",
    "peak RSS",
    "vs floor",
    "target",
    "",
    "note",
]
INDEX_HEADERS = ["operation", "system", "rate", "time", "peak RSS", "vs raw git", "target", "", "note"]


def usable(row: dict[str, Any] | None) -> bool:
    return bool(row) and "error" not in row and not row.get("skipped")  # type: ignore[union-attr]


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:,.2f} s"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def load_note(row: dict[str, Any]) -> str:
    load = row.get("load")
    return f"load {load[0]:.1f}" if load else ""


def search_rows(outcome: dict[str, Any]) -> list[list[str]]:
    """One row per (query kind, system) of the ``search`` operation."""
    from .sys_search import KINDS, TITLES, first_page_target

    results = outcome["rows"].get("search")
    if not results:
        return []
    n = outcome["n"]
    rows = []
    for kind in KINDS:
        floor = results.get("floor")
        floor_p50 = floor["extra"]["kinds"][kind]["p50_ms"] if usable(floor) else None
        first = True
        for key in ("api", "scan", "floor"):
            row = results.get(key)
            if row is None:
                continue
            title = TITLES[kind] if first else ""
            first = False
            label = SYSTEMS[key][0]
            if "error" in row:
                rows.append(
                    [title, label, "ERROR", "", "", "", "", "", "", row["error"].splitlines()[0][:80]]
                )
                continue
            if row.get("skipped"):
                rows.append([title, label, "-", "", "", "", "", "", "", row["skipped"]])
                continue
            k = row["extra"]["kinds"][kind]
            notes = [f"{k['ops']} queries"]
            if k.get("stopped"):
                cap = row["extra"].get("query_cap", 0)
                notes.append(f"{k['stopped']} stopped at the {cap:.0f} s cap (counted as {cap:.0f} s)")
            if k.get("count_p50_ms") is not None:
                notes.append(f"+ count {fmt_ms(k['count_p50_ms'])}")
            if k.get("ranked_p50_ms") is not None:
                notes.append(f"sorted by rank (bm25) {fmt_ms(k['ranked_p50_ms'])}")
            notes.append(load_note(row))
            target = verdict_mark = ""
            ratio = "1x" if key == "floor" else "-"
            if key != "floor" and floor_p50 and k["p50_ms"] is not None:
                value = k["p50_ms"] / floor_p50
                ratio = f"{value:,.0f}x" if value >= 10 else f"{value:.1f}x"
            if key == "api":
                limit = first_page_target(n, kind)
                target = f"p50 < {limit:.0f} ms"
                if k["p50_ms"] is not None:
                    verdict_mark = "PASS" if k["p50_ms"] < limit and not k.get("stopped") else "FAIL"
            rows.append(
                [
                    title,
                    label,
                    fmt_ms(k["p50_ms"]),
                    fmt_ms(k["p95_ms"]),
                    f"{k['hits']:,}" if k.get("hits") is not None else "-",
                    f"{row['peak_rss_mb']:.0f} MB",
                    ratio,
                    target,
                    verdict_mark,
                    "; ".join(x for x in notes if x),
                ]
            )
    return rows


def index_rows(outcome: dict[str, Any]) -> list[list[str]]:
    """What the index costs: building it, its size, a single-record commit, a bulk import."""
    rows: list[list[str]] = []
    n = outcome["n"]
    get = outcome["rows"].get

    def error_row(title: str, label: str, row: dict[str, Any]) -> list[str]:
        return [title, label, "ERROR", "", "", "", "", "", row["error"].splitlines()[0][:80]]

    build = (get("search_build") or {}).get("api")
    floor = (get("search") or {}).get("floor")
    if build is not None:
        title = OP_TITLES["search_build"]
        if "error" in build:
            rows.append(error_row(title, SYSTEMS["api"][0], build))
        else:
            rows.append(
                [
                    title,
                    SYSTEMS["api"][0],
                    f"{fmt_rate(rate(build))} records/s",
                    f"{build['seconds']:.2f} s",
                    f"{build['peak_rss_mb']:.0f} MB",
                    "",
                    "",
                    "",
                    load_note(build),
                ]
            )
            if usable(floor) and floor["extra"].get("build_s"):
                built = floor["extra"]["build_s"]
                rows.append(
                    [
                        "",
                        "bare SQLite FTS5 table (floor)",
                        f"{fmt_rate(n / built)} records/s",
                        f"{built:.2f} s",
                        "",
                        "",
                        "",
                        "",
                        "one FTS5 table + one plain table, from the JSON lines",
                    ]
                )
            extra = build["extra"]
            parts = ", ".join(f"{name} {mb:,.0f} MB" for name, mb in extra.get("breakdown", {}).items())
            rows.append(
                [
                    "search index size on disk",
                    SYSTEMS["api"][0],
                    f"{extra['size_bytes'] / n:,.0f} B/record",
                    f"{extra['size_bytes'] / 1e6:,.0f} MB",
                    "",
                    "",
                    "",
                    "",
                    (parts + "; " if parts else "") + f"git objects {extra['objects_bytes'] / 1e6:,.0f} MB, "
                    f"revision index {extra['revision_index_bytes'] / 1e6:,.0f} MB",
                ]
            )
            if usable(floor) and floor["extra"].get("size_bytes"):
                size = floor["extra"]["size_bytes"]
                rows.append(
                    ["", "bare SQLite (floor)", f"{size / n:,.0f} B/record", f"{size / 1e6:,.0f} MB"]
                    + [""] * 5
                )
    searched = (get("search") or {}).get("api")
    if usable(searched) and searched["extra"].get("ranker_build_s"):
        built, size = searched["extra"]["ranker_build_s"], searched["extra"]["ranker_bytes"]
        rows.append(
            [
                "build the ranker (tantivy) from the index",
                SYSTEMS["api"][0],
                f"{fmt_rate(n / built)} records/s",
                f"{built:.2f} s",
                "",
                "",
                "",
                "",
                f"by the first ranked search; {size / 1e6:,.0f} MB on disk ({size / n:,.0f} B/record)",
            ]
        )
    commit = (get("search_commit") or {}).get("api")
    if commit is not None:
        title = OP_TITLES["search_commit"]
        if "error" in commit:
            rows.append(error_row(title, SYSTEMS["api"][0], commit))
        else:
            x = commit["extra"]
            added = x["with_p50_ms"] - x["without_p50_ms"]
            rows.append(
                [
                    title,
                    "gitrecords API, no search index",
                    f"{fmt_rate(1000 / x['without_p50_ms'])} commits/s",
                    fmt_ms(x["without_p50_ms"]),
                    f"{commit['peak_rss_mb']:.0f} MB",
                    "",
                    "",
                    "",
                    f"{commit['ops']} ops, alternating with the next row; p95 {fmt_ms(x['without_p95_ms'])}",
                ]
            )
            rows.append(
                [
                    "",
                    "gitrecords API, search index",
                    f"{fmt_rate(1000 / x['with_p50_ms'])} commits/s",
                    fmt_ms(x["with_p50_ms"]),
                    "",
                    "",
                    "index adds < 1 ms",
                    "PASS" if max(x["index_p50_ms"], x.get("index_update_p50_ms", 0)) < 1.0 else "FAIL",
                    f"the index's catch-up in each commit: p50 {fmt_ms(x['index_p50_ms'])}, "
                    f"p95 {fmt_ms(x['index_p95_ms'])}; in an update of a record: "
                    f"p50 {fmt_ms(x.get('index_update_p50_ms'))}, "
                    f"p95 {fmt_ms(x.get('index_update_p95_ms'))}; "
                    f"medians differ by {added:+.2f} ms; "
                    f"p95 {fmt_ms(x['with_p95_ms'])}; {load_note(commit)}",
                ]
            )
    imports = get("search_import") or {}
    raw = imports.get("raw")
    raw_rate = rate(raw)
    plain = (get("import") or {}).get("api") or outcome["info"].get("base")
    first = True
    for key, label in (
        ("api", "gitrecords API, search index"),
        ("plain", "gitrecords API, no search index"),
        ("raw", SYSTEMS["raw"][0]),
    ):
        row = plain if key == "plain" else imports.get(key)
        if row is None or (key == "plain" and not (imports and usable(row) and row.get("seconds"))):
            continue
        title = OP_TITLES["search_import"] if first else ""
        first = False
        if "error" in row:
            rows.append(error_row(title, label, row))
            continue
        mine = rate(row)
        target = mark = ""
        if key == "api":
            target = ">= 0.5x raw git, RSS < 500 MB"
            if raw_rate is not None and mine is not None:
                mark = "PASS" if mine >= 0.5 * raw_rate and row["peak_rss_mb"] < 500 else "FAIL"
        note = row.get("note", "") if key == "api" else ""
        if key == "plain":
            note = "the import row" if (get("import") or {}).get("api") else "building base.git, same run"
        rows.append(
            [
                title,
                label,
                fmt_rate(mine),
                f"{row['seconds']:.2f} s",
                f"{row['peak_rss_mb']:.0f} MB",
                fmt_ratio(mine, raw_rate) if key != "raw" else "1x",
                target,
                mark,
                "; ".join(x for x in (note, load_note(row)) if x),
            ]
        )
    return rows


def search_tables(outcome: dict[str, Any], markdown: bool) -> list[str]:
    out = []
    for title, rows, headers, right in (
        ("Search", search_rows(outcome), SEARCH_HEADERS, {2, 3, 4, 5, 6}),
        ("Search index costs", index_rows(outcome), INDEX_HEADERS, {2, 3, 4, 5}),
    ):
        if not rows:
            continue
        if markdown:
            out.append(f"#### {title}\n\n" + render_markdown(rows, headers, right))
        else:
            out.append(f"{title}\n" + render_text(rows, headers, right))
    return out


def size_header(outcome: dict[str, Any]) -> str:
    n = outcome["n"]
    start = " ".join(f"{x:.2f}" for x in outcome["load_start"])
    end = " ".join(f"{x:.2f}" for x in outcome["load_end"])
    text = (
        f"N = {n:,} records  (took {outcome['seconds']:.0f} s; load average at start {start}, at end {end})"
    )
    info = outcome["info"].get("index_catch_up")
    if info and "error" not in info:
        text += (
            f"\nhistory fixture: {info['note']}; gitrecords indexed them in {info['seconds']:.1f} s "
            f"({info['ops'] / info['seconds']:,.0f} commits/s), peak RSS {info['peak_rss_mb']:.0f} MB"
        )
    if "invenio_error" in outcome["info"]:
        text += "\ninvenio-records fixtures failed: " + outcome["info"]["invenio_error"].splitlines()[0]
    return text


def scaling_rows(outcomes: list[dict[str, Any]]) -> list[list[str]]:
    """Targets that compare sizes: the smallest against the largest size measured."""
    done = [o for o in outcomes if o["rows"]]
    if len(done) < 2:
        return []
    small, large = done[0], done[-1]
    rows = []

    def api(outcome: dict[str, Any], op: str) -> dict[str, Any] | None:
        row = outcome["rows"].get(op, {}).get("api")
        return row if row and "error" not in row and not row.get("skipped") else None

    for op, label, limit in (
        ("create", "single create latency (median)", 1.5),
        ("update", "update latency (median)", 1.5),
        ("revisions", "revisions listing latency (median)", 1.5),
        ("get", "get by id latency (median)", None),
    ):
        a, b = api(small, op), api(large, op)
        if a is None or b is None or not a.get("median_ms") or not b.get("median_ms"):
            continue
        ratio = b["median_ms"] / a["median_ms"]
        target = f"<= {limit}x" if limit else "-"
        mark = ("PASS" if ratio <= limit else "FAIL") if limit else ""
        rows.append(
            [
                label,
                f"{a['median_ms']:.2f} ms",
                f"{b['median_ms']:.2f} ms",
                f"{ratio:.2f}x",
                target,
                mark,
            ]
        )
    for op, needed in (("get", 3.0), ("revisions", 2.0)):
        marks = []
        for o in (small, large):
            row, peer = api(o, op), rate(o["rows"].get(op, {}).get("invenio"))
            if row is None or peer is None:
                marks.append("?")
            else:
                marks.append(f"{rate(row) / peer:.1f}x")
        if "?" in marks:
            continue
        ok = all(float(m[:-1]) >= needed for m in marks)
        rows.append(
            [
                f"{op} vs invenio at both sizes",
                marks[0],
                marks[1],
                "",
                f">= {needed:g}x at both",
                "PASS" if ok else "FAIL",
            ]
        )
    return rows


def scaling_headers(outcomes: list[dict[str, Any]]) -> list[str]:
    done = [o for o in outcomes if o["rows"]]
    return ["check", f"N = {done[0]['n']:,}", f"N = {done[-1]['n']:,}", "ratio", "target", ""]


# -- the header ------------------------------------------------------------------------


def versions(settings: Settings) -> dict[str, str]:
    import pygit2

    import gitrecords

    info = {
        "python": platform.python_version(),
        "gitrecords": gitrecords.__version__,
        "pygit2": pygit2.__version__,
        "libgit2": pygit2.LIBGIT2_VERSION,
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
        "cpus": str(os.cpu_count()),
        "platform": platform.platform(),
    }
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "gitrecords"], capture_output=True, text=True
    )
    if head.returncode == 0:
        info["commit"] = head.stdout.strip() + (
            " + uncommitted changes in gitrecords/" if dirty.stdout.strip() else ""
        )
    if settings.invenio_python:
        probe = subprocess.run(
            [
                settings.invenio_python,
                "-c",
                "import importlib.metadata as m; print(m.version('invenio-records'), m.version('SQLAlchemy'),"
                " m.version('SQLAlchemy-Continuum'), m.version('jsonschema'))",
            ],
            capture_output=True,
            text=True,
        )
        info["invenio"] = probe.stdout.strip() or "unknown"
    return info


def calibrate() -> dict[str, float]:
    """Microseconds to validate one record: DataCite-lite (the benchmark) and the sample-repo schema."""
    from gitrecords.schema import SchemaStore

    def best(validator: Any, records: list[Any]) -> float:
        for r in records:
            list(validator.iter_errors(r))
        times = []
        for _ in range(3):
            t = time.perf_counter()
            for r in records:
                list(validator.iter_errors(r))
            times.append((time.perf_counter() - t) / len(records))
        return min(times) * 1e6

    lite = SchemaStore({data.SCHEMA_STORE_PATH: data.schema()})
    out = {"datacite-lite": best(lite.validator(data.SCHEMA_ID), [data.record(i) for i in range(500)])}
    sample = ROOT / "sample-repo"
    if sample.is_dir():
        root = sample / "schemas"
        schemas = {p.relative_to(root).as_posix(): json.loads(p.read_text()) for p in root.rglob("*.json")}
        records = [json.loads(p.read_text()) for p in sorted((sample / "records").rglob("*.json"))]
        with_schema = [r for r in records if isinstance(r.get("$schema"), str)]
        if with_schema:
            store = SchemaStore(schemas)
            out["sample-repo datacite-v4.5-subset"] = best(
                store.validator(with_schema[0]["$schema"]), with_schema * 5
            )
    return out


# -- main ---------------------------------------------------------------------------


def find_invenio(requested: str | None) -> tuple[str | None, str]:
    candidates = [requested] if requested else [sys.executable]
    for python in candidates:
        probe = subprocess.run(
            [
                python,
                "-c",
                "import warnings; warnings.simplefilter('ignore'); import invenio_records, invenio_db, flask",
            ],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            return python, ""
        if requested:
            return (
                None,
                f"invenio-records rows skipped: {requested} cannot import invenio_records, invenio_db, flask",
            )
    return None, (
        "invenio-records rows skipped: this interpreter cannot import invenio_records "
        "(install the bench extra, or pass --invenio-python PATH)"
    )


def run_all(settings: Settings) -> dict[str, Any]:
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_start": os.getloadavg()}
    report["versions"] = versions(settings)
    if settings.calibrate:
        report["validation_us"] = calibrate()
    started = time.perf_counter()
    report["sizes"] = []
    for n in settings.sizes:
        outcome = run_size(settings, n)
        report["sizes"].append(outcome)
        text = size_header(outcome)
        if table_rows(outcome):
            text += "\n" + render_text(table_rows(outcome), HEADERS)
        log(settings, "\n\n".join([text, *search_tables(outcome, markdown=False)]))
    report["seconds"] = time.perf_counter() - started
    return report


def render(report: dict[str, Any], settings: Settings, markdown: bool = False) -> str:
    v = report["versions"]
    out = []
    load = " ".join(f"{x:.2f}" for x in report["load_start"])
    lines = [
        f"gitrecords benchmark, {report['started']}: {v['cpus']} cpus, {v['platform']}",
        f"python {v['python']}, gitrecords {v['gitrecords']} ({v.get('commit', '?')}), pygit2 {v['pygit2']} "
        f"(libgit2 {v['libgit2']}), {v['git']}",
        f"invenio-records, SQLAlchemy, SQLAlchemy-Continuum, jsonschema: {v.get('invenio') or 'not run'}"
        + (f" ({settings.invenio_note})" if settings.invenio_note else ""),
        f"load average at start: {load}; total {report['seconds']:.0f} s",
    ]
    if "validation_us" in report:
        lines.append(
            "validation of one record, one core: "
            + ", ".join(f"{name} {us:.0f} us" for name, us in report["validation_us"].items())
        )
    counts = ", ".join(f"{k} {v}" for k, v in settings.counts.items())
    lines.append(
        f"single-op counts: {counts}; CLI {settings.cli_ops} each; time budget "
        f"{settings.budget:.0f} s per row, {settings.bulk_budget:.0f} s for the invenio bulk import, "
        f"{settings.validate_budget:.0f} s for validate"
    )
    out.append("\n".join(("    " + ln) if markdown else ln for ln in lines))
    for outcome in report["sizes"]:
        rows = table_rows(outcome)
        header = size_header(outcome)
        if markdown:
            out.append(
                ("### " + header.splitlines()[0] + "\n\n" + "\n".join(header.splitlines()[1:])).strip()
            )
            if rows:
                out.append(render_markdown(rows, HEADERS))
        else:
            out.append(header + ("\n" + render_text(rows, HEADERS) if rows else ""))
        out.extend(search_tables(outcome, markdown))
    scaling = scaling_rows(report["sizes"])
    if scaling:
        headers = scaling_headers(report["sizes"])
        if markdown:
            out.append("### Targets across sizes\n\n" + render_markdown(scaling, headers, right={1, 2, 3}))
        else:
            out.append("Targets across sizes\n" + render_text(scaling, headers, right={1, 2, 3}))
    return "\n\n".join(out) + "\n"


def parse_args(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="record counts, comma-separated")
    parser.add_argument("--million", action="store_true", help="add 1,000,000 to the sizes")
    parser.add_argument("--only", help=f"operations to run, comma-separated, of: {','.join(OPS)}")
    parser.add_argument(
        "--systems",
        default="api,api-nondurable,cli,invenio,raw,scan,floor",
        help="systems, comma-separated, of: " + ",".join(SYSTEMS),
    )
    parser.add_argument(
        "--quick", action="store_true", help="1,000 records only, fewer operations (about 3 minutes)"
    )
    parser.add_argument("--invenio-python", help="interpreter that has the bench extra (invenio-records)")
    parser.add_argument(
        "--commits", type=int, default=10_000, help="commits in the history fixture (default 10000)"
    )
    parser.add_argument(
        "--workers", type=int, help="validation workers of the bulk import (default: one per cpu)"
    )
    parser.add_argument("--workdir", help="where fixtures go (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the fixtures")
    parser.add_argument("--markdown", help="also write the tables as Markdown to this file")
    parser.add_argument("--json", help="also write every measurement as JSON to this file")
    parser.add_argument("--profile", help="write a cProfile of each gitrecords API row into this directory")
    args = parser.parse_args(argv)
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    if args.million and 1_000_000 not in sizes:
        sizes.append(1_000_000)
    ops = OPS if not args.only else [op for op in OPS if op in args.only.split(",")]
    unknown = set(args.only.split(",")) - set(OPS) if args.only else set()
    if unknown:
        parser.error(f"unknown operation(s) {', '.join(sorted(unknown))}; known: {', '.join(OPS)}")
    systems = [s for s in args.systems.split(",") if s]
    if set(systems) - set(SYSTEMS):
        parser.error(f"unknown system(s); known: {', '.join(SYSTEMS)}")
    invenio_python, note = (None, "")
    if "invenio" in systems:
        invenio_python, note = find_invenio(args.invenio_python)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="gitrecords-bench-"))
    settings = Settings(
        sizes=sorted(sizes),
        ops=ops,
        systems=systems,
        workdir=workdir,
        invenio_python=invenio_python,
        invenio_note=note,
        commits=args.commits,
        counts=dict(QUICK_COUNTS if args.quick else FULL_COUNTS),
        cli_ops=5 if args.quick else 20,
        budget=10.0 if args.quick else 30.0,
        bulk_budget=30.0 if args.quick else 60.0,
        validate_budget=20.0 if args.quick else 60.0,
        search_budget=10.0 if args.quick else 30.0,
        query_cap=30.0 if args.quick else 120.0,
        workers=args.workers,
        keep=args.keep,
        profile_dir=Path(args.profile) if args.profile else None,
    )
    return settings, args


def main(argv: list[str] | None = None) -> None:
    settings, args = parse_args(argv)
    if settings.invenio_note:
        print(settings.invenio_note, file=sys.stderr)
    if settings.profile_dir is not None:
        settings.profile_dir.mkdir(parents=True, exist_ok=True)
    settings.workdir.mkdir(parents=True, exist_ok=True)
    try:
        report = run_all(settings)
    finally:
        if not settings.keep and not args.workdir:
            shutil.rmtree(settings.workdir, ignore_errors=True)
    print(render(report, settings))
    if args.markdown:
        Path(args.markdown).write_text(render(report, settings, markdown=True), encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
