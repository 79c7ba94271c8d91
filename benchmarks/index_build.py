"""Time a build of the search index of an existing repository: wall time, and the CPU time of
this process and of its worker processes apart (the figures of docs/performance.md, "Building
faster").

    python -m benchmarks.index_build REPOSITORY [--rounds N]
    PYTHONPATH=/path/to/other/tree python -m benchmarks.index_build REPOSITORY   # another tree

The build rewrites the repository's search index: use a copy.
"""

from __future__ import annotations

import argparse
import os
import resource
import time


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def build_once(path: str) -> str:
    from gitrecords import Repository

    repo = Repository(path)
    repo.sync_index()
    own, children = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    records = repo.search_index.rebuild()
    wall = time.perf_counter() - started
    own = cpu_seconds(resource.RUSAGE_SELF) - own
    children = cpu_seconds(resource.RUSAGE_CHILDREN) - children
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    repo.close()
    return (
        f"{records:,} records: wall {wall:.2f} s, CPU {own:.2f} s here and {children:.2f} s in workers,"
        f" max RSS here {peak} MB; load average {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repository")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.rounds):
        print(build_once(args.repository), flush=True)


if __name__ == "__main__":
    main()
