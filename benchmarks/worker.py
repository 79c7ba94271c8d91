"""One measured run in its own process: ``python -m benchmarks.worker SPEC_JSON``.

The last line of stdout is ``BENCH-RESULT {json}``. The orchestrator
(``benchmarks.run``) starts one worker per (system, operation, size), so the
peak memory of each run is its own. ``spec["profile"]`` (a path) writes a
cProfile of the run there.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from typing import Any

from .measure import PeakSampler, Result

MODULES = {
    "gitrecords-api": "benchmarks.sys_gitrecords",
    "gitrecords-cli": "benchmarks.sys_cli",
    "raw-git": "benchmarks.sys_rawgit",
    "invenio": "benchmarks.sys_invenio",
    "linear-scan": "benchmarks.sys_search",
    "sqlite-floor": "benchmarks.sys_search",
}
#: operations of the search rows (issue 17): benchmarks.sys_search runs them for every system
SEARCH_OPS = {"search", "search_build", "search_commit", "search_import"}
PREPARE = {
    "prepare_base": ("benchmarks.sys_gitrecords", "prepare_base"),
    "prepare_history": ("benchmarks.sys_gitrecords", "prepare_history"),
    "prepare_invenio": ("benchmarks.sys_invenio", "prepare"),
}


def execute(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` in this process; the result as JSON-able dict."""
    op = spec["op"]
    if op in PREPARE:
        module, name = PREPARE[op]
        action = getattr(importlib.import_module(module), name)
        call = lambda: action(spec)  # noqa: E731
    else:
        name = "benchmarks.sys_search" if op in SEARCH_OPS else MODULES[spec["system"]]
        module = importlib.import_module(name)
        call = lambda: module.run(op, spec)  # noqa: E731
    with PeakSampler(include_self=spec["system"] != "gitrecords-cli") as sampler:
        if spec.get("profile"):
            import cProfile

            profiler = cProfile.Profile()
            result: Result = profiler.runcall(call)
            profiler.dump_stats(spec["profile"])
        else:
            result = call()
    return result.to_json(sampler.peak_mb())


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        out = execute(spec)
    except Exception as err:
        traceback.print_exc()
        out = {"error": f"{type(err).__name__}: {err}"}
    sys.stdout.write("BENCH-RESULT " + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
