"""CLI start-up (issue 21): the wall time of short commands, beside Python's and git's floors.

    python -m benchmarks.startup [--runs 21] [--json]

Builds a small repository (sample-repo/, 60 records) in a temporary folder and times, in
the same run and interleaved (one of each per round, so a change of load hits them all):

* ``python -c pass``: the interpreter's own start-up (with this environment's ``site``,
  so an editable install's finder is in it too);
* ``git cat-file -p <blob>``: git printing the record's file, the floor of a read;
* ``gitrecords --version`` and ``gitrecords get ID``, the console script beside
  ``sys.executable`` (it imports whatever ``gitrecords`` is on ``PYTHONPATH``);
* ``gitrecords get ID`` again on a copy packed by ``git gc`` (a record read out of a pack,
  as in a repository that has lived), and ``gitrecords get --json ID``, which needs the
  revision index and reads through libgit2.

Each command runs once untimed first. The children get a private ``PYTHONPYCACHEPREFIX`` and
never ``PYTHONDONTWRITEBYTECODE``: a user's installation has its ``.pyc`` files, and compiling
the sources on every run would measure the compiler. The median and the fastest run are
printed with the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_REPO = ROOT / "sample-repo"


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "GITRECORDS_REPO")}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def _script() -> str:
    found = Path(sys.executable).with_name("gitrecords")
    if found.exists():
        return str(found)
    which = shutil.which("gitrecords")
    if which is None:
        raise SystemExit("no gitrecords console script beside the interpreter nor on PATH")
    return which


def commands(workdir: Path) -> dict[str, list[str]]:
    """The commands to time, on a repository built in ``workdir``."""
    from gitrecords import Repository, layout

    repo = Repository.init(workdir / "sample.git", from_dir=SAMPLE_REPO)
    first = min(p for p in SAMPLE_REPO.glob("records/**/*.json"))
    record_id = layout.id_from_path(first.relative_to(SAMPLE_REPO).as_posix())
    assert record_id is not None, first
    blob = repo.record_blob(record_id)
    gitrecords = _script()
    git_dir = str(repo.git_dir)
    repo.close()
    packed = workdir / "packed.git"
    shutil.copytree(git_dir, packed)
    subprocess.run(["git", "--git-dir", str(packed), "gc", "--quiet"], check=True)
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "git cat-file -p <blob>": ["git", "--git-dir", git_dir, "cat-file", "-p", str(blob)],
        "gitrecords --version": [gitrecords, "--version"],
        "gitrecords get ID": [gitrecords, "--repo", git_dir, "get", str(record_id)],
        "gitrecords get ID (after git gc)": [gitrecords, "--repo", str(packed), "get", str(record_id)],
        "gitrecords get --json ID": [gitrecords, "--repo", git_dir, "get", "--json", str(record_id)],
    }


def measure(cmds: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for argv in cmds.values():  # warm-up: page cache, .pyc files
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    for _ in range(runs):
        for name, argv in cmds.items():
            start = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    return times


def finder_cost(env: dict[str, str]) -> float | None:
    """Milliseconds ``site`` spends on an editable install's finder (``python -X importtime``),
    or None when gitrecords is not installed as editable."""
    argv = [sys.executable, "-X", "importtime", "-c", "pass"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    for line in proc.stderr.splitlines():
        if "__editable__" in line and "gitrecords" in line:
            return int(line.split("|")[1]) / 1000
    return None


def run(runs: int) -> dict[str, object]:
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gitrecords-startup-") as tmp:
        workdir = Path(tmp)
        env = _env(workdir / "pycache")
        cmds = commands(workdir)
        times = measure(cmds, runs, env)
        finder = finder_cost(env)
    load_end = os.getloadavg()
    floor = statistics.median(times["python -c pass"])
    rows = {
        name: {
            "median_ms": statistics.median(values) * 1000,
            "min_ms": min(values) * 1000,
            "over_python_ms": (statistics.median(values) - floor) * 1000,
        }
        for name, values in times.items()
    }
    return {
        "runs": runs,
        "rows": rows,
        "editable_finder_ms": finder,
        "load_start": load_start,
        "load_end": load_end,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def render(report: dict[str, object]) -> str:
    load = " ".join(f"{x:.2f}" for x in report["load_start"])  # type: ignore[attr-defined]
    load_end = " ".join(f"{x:.2f}" for x in report["load_end"])  # type: ignore[attr-defined]
    lines = [
        f"{report['runs']} runs of each, interleaved; Python {report['python']}, {report['cpus']} cpus; "
        f"load average at start {load}, at end {load_end}",
        "",
        "| command | median | fastest | over `python -c pass` |",
        "|---|---:|---:|---:|",
    ]
    for name, row in report["rows"].items():  # type: ignore[attr-defined]
        median, fastest, over = row["median_ms"], row["min_ms"], row["over_python_ms"]
        lines.append(f"| `{name}` | {median:.0f} ms | {fastest:.0f} ms | {over:+.0f} ms |")
    finder = report["editable_finder_ms"]
    if finder is not None:
        lines += ["", f"The editable install's finder costs {finder:.1f} ms of every Python start-up here."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    report = run(args.runs)
    print(json.dumps(report, indent=2) if args.json else render(report))


if __name__ == "__main__":
    main()
