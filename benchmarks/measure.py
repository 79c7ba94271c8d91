"""Timing and peak memory of one measured run (standard library, psutil if installed).

Every (system, operation, size) runs in its own worker process, so the peak
memory is that run's alone. Peak RSS is the largest of:

* the process's own ``ru_maxrss`` (not for the CLI rows: there the driver is
  not the thing measured);
* ``ru_maxrss`` of its children (the largest single descendant: a CLI
  process, a ``git fast-import``, a validation worker);
* with psutil, the largest *sum* of the memory of the process tree, sampled
  every 20 ms: on Linux the proportional set size (PSS: a page that forked
  workers share with their parent counts once, split between them), elsewhere
  the RSS (shared pages counted in each process: it errs on the high side).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

try:  # optional: the bench extra installs it
    import psutil
except ImportError:  # pragma: no cover - depends on the environment
    psutil = None


def _resident(proc: Any) -> int:
    """The proportional set size of ``proc`` where the system tells it (Linux), else its RSS."""
    try:
        return int(proc.memory_full_info().pss)
    except (AttributeError, psutil.AccessDenied):
        return int(proc.memory_info().rss)


class PeakSampler:
    """Samples the summed memory of this process tree from another process.

    The sampler is a child process (left out of the sum), not a thread: a thread would change
    what is measured, since gitrecords lets its forked workers read git only when the process
    that forks them runs no other thread.

    Reading a process's PSS walks its page tables (8 ms for 400 MB) and holds its memory map's
    lock meanwhile: sampled every 20 ms, three such processes kept the sampler busy and made a
    bulk edit on two cores 2 to 4 s slower. It samples every ``interval`` (0.1 s), at the
    lowest priority; the peaks measured here last seconds."""

    def __init__(self, include_self: bool = True, interval: float = 0.1) -> None:
        self.include_self = include_self
        self.interval = interval
        self.peak = 0
        self._sampler: subprocess.Popen[str] | None = None

    def __enter__(self) -> PeakSampler:
        if psutil is not None:
            self._sampler = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _SAMPLER,
                    str(os.getpid()),
                    str(int(self.include_self)),
                    str(self.interval),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={
                    **os.environ,
                    "PYTHONPATH": os.pathsep.join(filter(None, (_ROOT, os.environ.get("PYTHONPATH")))),
                },
            )
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._sampler is not None:
            out, _ = self._sampler.communicate("")  # its stdin closes: it prints the peak
            self.peak = int(out.strip() or 0)

    def peak_mb(self) -> float:
        kb_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kb_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peak = max(self.peak, kb_children * 1024)
        if self.include_self:
            peak = max(peak, kb_self * 1024)
        return peak / 1e6


def sample_tree(pid: int, include_self: bool, interval: float, done: threading.Event) -> int:
    """The largest summed memory of process ``pid``'s tree (without this process), sampled every
    ``interval`` seconds until ``done``."""
    me = psutil.Process(pid)
    own = os.getpid()
    peak = 0
    while not done.is_set():
        total = 0
        try:
            procs = [proc for proc in me.children(recursive=True) if proc.pid != own]
        except psutil.Error:
            break
        if include_self:
            procs.append(me)
        for proc in procs:
            try:
                total += _resident(proc)
            except psutil.Error:
                pass
        peak = max(peak, total)
        done.wait(interval)
    return peak


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the sampler process: samples until its standard input closes, then prints the peak in bytes
_SAMPLER = """
import os, sys, threading
os.nice(19)  # reading a process's PSS walks its page tables: on a busy machine, the sampler waits
from benchmarks.measure import sample_tree
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
print(sample_tree(int(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3]), done))
"""


@dataclass
class Result:
    """What a worker reports for one (system, operation, size)."""

    ops: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    def to_json(self, peak_mb: float) -> dict[str, Any]:
        lat = self.latencies
        return {
            "ops": self.ops,
            "seconds": self.seconds,
            "ops_per_s": self.ops / self.seconds if self.seconds > 0 else None,
            "median_ms": statistics.median(lat) * 1000 if lat else None,
            "p95_ms": sorted(lat)[int(len(lat) * 0.95)] * 1000 if len(lat) >= 20 else None,
            "peak_rss_mb": peak_mb,
            "note": self.note,
            "extra": self.extra,
            "skipped": self.skipped,
        }


def timed_each(items: Iterable[Any], action: Callable[[Any], Any]) -> Result:
    """Run ``action`` on each item; the total and the latency of each."""
    latencies = []
    started = time.perf_counter()
    for item in items:
        t0 = time.perf_counter()
        action(item)
        latencies.append(time.perf_counter() - t0)
    return Result(ops=len(latencies), seconds=time.perf_counter() - started, latencies=latencies)


def timed_once(action: Callable[[], int | None], ops: int = 1) -> Result:
    """Run ``action`` once; it may return how many records it handled (default ``ops``)."""
    started = time.perf_counter()
    handled = action()
    seconds = time.perf_counter() - started
    return Result(ops=handled if handled is not None else ops, seconds=seconds, latencies=[seconds])


def git_env(home: str) -> dict[str, str]:
    """An environment that ignores the git configuration of the person running the benchmark."""
    env = dict(os.environ)
    env.update(
        HOME=home,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.path.join(home, "gitconfig"),
        GIT_AUTHOR_NAME="Bench Mark",
        GIT_AUTHOR_EMAIL="bench@example.org",
        GIT_COMMITTER_NAME="Bench Mark",
        GIT_COMMITTER_EMAIL="bench@example.org",
    )
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GITRECORDS_REPO", "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        env.pop(name, None)
    return env


def budgeted(items: Iterable[Any], budget: float) -> Iterator[Any]:
    """``items``, until ``budget`` seconds have passed (at least 3)."""
    deadline = time.perf_counter() + budget
    for done, item in enumerate(items):
        if done >= 3 and time.perf_counter() > deadline:
            return
        yield item


def partial_note(ops: int, n: int, budget: float) -> str:
    """The note of a row that stopped at its time budget before doing all ``n``."""
    return f"partial: {ops:,} of {n:,} in the {budget:.0f} s budget"


def timed_within(action: Callable[[], int], n: int, budget: float) -> Result:
    """:func:`timed_once` for an ``action`` that does what it can of ``n`` within ``budget``
    seconds; the row says so when it stopped early."""
    result = timed_once(action)
    if result.ops < n:
        result.note = partial_note(result.ops, n, budget)
    return result
