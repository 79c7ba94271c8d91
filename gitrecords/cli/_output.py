"""Output helpers: JSON on stdout, messages and progress on stderr.

stdout carries data only. Progress bars are drawn on stderr, and only when
stderr is a terminal, so pipes and log files never see them.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import click

T = TypeVar("T")


def stderr_is_tty() -> bool:
    """True when stderr is a terminal (progress bars are drawn only then)."""
    return sys.stderr.isatty()


def stdout_is_tty() -> bool:
    """True when stdout is a terminal (tables get a header row only then)."""
    return sys.stdout.isatty()


def stdin_is_tty() -> bool:
    """True when stdin is a terminal (nothing is piped in, and a person can answer)."""
    return sys.stdin.isatty()


def echo_json(value: Any) -> None:
    """Print one JSON document (indented, UTF-8 kept as is) on stdout."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=_default))


def echo_nl(value: Any) -> None:
    """Print one JSON value on one line (JSON Lines) on stdout."""
    click.echo(json.dumps(value, ensure_ascii=False, default=_default))


def note(text: str) -> None:
    """A message for people, on stderr."""
    click.echo(text, err=True)


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def revision_range(count: int) -> str:
    """``it has revisions 0 to 4``, for messages about a missing revision."""
    if count == 0:
        return "it has no revisions"
    if count == 1:
        return "it has revision 0 only"
    return f"it has revisions 0 to {count - 1}"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class Progress:
    """A progress line on stderr (count, percentage, rate, ETA), drawn only on a terminal.

    Use it as a context manager and call :meth:`update` with ``done`` and
    ``total``; it also serves as the ``progress=callback(done, total)`` the
    library's long operations take.
    """

    interval = 0.1

    def __init__(self, label: str, total: int | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.enabled = stderr_is_tty() if enabled is None else enabled
        self._start = time.monotonic()
        self._drawn = 0.0
        self._visible = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __call__(self, done: int, total: int | None = None) -> None:
        self.update(done, total)

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn >= self.interval or (self.total is not None and done >= self.total):
            self._drawn = now
            self._draw(now)

    def advance(self, count: int = 1) -> None:
        self.update(self.done + count)

    def render(self, now: float | None = None) -> str:
        """The progress line, e.g. ``Validating  120/600  20%  850/s  ETA 0:00:01``."""
        elapsed = max((now if now is not None else time.monotonic()) - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            percent = min(100, int(100 * self.done / self.total))
            remaining = (self.total - self.done) / rate if rate > 0 else 0
            eta = _clock(remaining) if self.done < self.total else _clock(elapsed)
            when = "ETA" if self.done < self.total else "in"
            return f"{self.label}  {self.done}/{self.total}  {percent:3d}%  {rate:,.0f}/s  {when} {eta}"
        return f"{self.label}  {self.done}  {rate:,.0f}/s"

    def _draw(self, now: float) -> None:
        click.echo("\r" + self.render(now) + "\x1b[K", err=True, nl=False)
        self._visible = True

    def close(self) -> None:
        if self.enabled and self._visible:
            self._draw(time.monotonic())
            click.echo("", err=True)
            self._visible = False


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_iter(items: Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a progress line on stderr when it is a terminal."""
    with Progress(label, total) as bar:
        for item in items:
            yield item
            bar.advance()
