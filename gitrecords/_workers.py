"""Forked worker processes that map a function over work items, results in order.

The bulk import validates records in them and the search index makes its rows in
them: work whose input the parent already holds, so the workers are forked (no
re-import, no pickled state) and die with the parent.
"""

from __future__ import annotations

import gc
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def die_with_parent(parent: int) -> None:
    """In a worker process: be killed when the parent dies (Linux ``PR_SET_PDEATHSIG``), and exit
    at once if it is already gone. Elsewhere a worker notices when its next task never comes."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def can_fork() -> bool:
    from multiprocessing import get_all_start_methods

    return "fork" in get_all_start_methods()


def _start(parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def ordered_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    *,
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    window: int = 3,
    start: str = "fork",
) -> Iterator[Result]:
    """``function`` of each item, in order, computed by ``workers`` processes (at most
    ``workers * window`` items in flight, so memory stays flat) that die with this one.
    ``initializer(*initargs)`` runs first in each worker. ``start`` is the start method:
    ``fork`` (see :func:`can_fork`; nothing is pickled but the items and results) or ``spawn``
    (``function``, ``initializer`` and ``initargs`` are pickled)."""
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing import get_context

    setup = (os.getpid(), initializer, initargs)
    with ProcessPoolExecutor(
        workers, mp_context=get_context(start), initializer=_start, initargs=setup
    ) as pool:
        queue: deque[Future[Result]] = deque()
        for item in items:
            if queue or start != "fork":
                queue.append(pool.submit(function, item))
            else:
                # the first task forks every worker: this process's objects are frozen meanwhile,
                # so a worker's garbage collector never touches them (which would copy every page
                # of the heap it shares with this process into its own memory)
                gc.freeze()
                try:
                    queue.append(pool.submit(function, item))
                finally:
                    gc.unfreeze()
            if len(queue) >= workers * window:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
