"""Output helpers: JSON on stdout, messages and progress on stderr.

stdout carries data only. Progress bars are drawn on stderr, and only when
stderr is a terminal, so pipes and log files never see them; a command that
prints its data while the bar runs (``export``) draws none when stdout is a
terminal too, where the bar would cut into the data's lines.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import shutil
import sys
import time
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Sequence
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
    click.echo(json_text(value))


def json_text(value: Any) -> str:
    """The text :func:`echo_json` prints (without its final newline)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=_default)


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

    def __init__(
        self, label: str, total: int | None = None, enabled: bool | None = None, streaming: bool = False
    ) -> None:
        """``streaming``: the command prints its data on stdout while the bar runs."""
        self.label = label
        self.total = total
        self.done = 0
        self.enabled = progress_wanted(streaming) if enabled is None else enabled
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


def progress_wanted(streaming: bool = False) -> bool:
    """Whether to draw a progress bar: when stderr is a terminal, unless the command prints its
    data on stdout while the bar runs (``streaming``) and stdout is a terminal as well, where
    the bar and the data would share the screen's lines."""
    return stderr_is_tty() and not (streaming and stdout_is_tty())


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_iter(
    items: Iterable[T], label: str, total: int | None = None, streaming: bool = False
) -> Iterator[T]:
    """Iterate ``items`` with a progress line on stderr when it is a terminal (see
    :func:`progress_wanted` for ``streaming``)."""
    with Progress(label, total, streaming=streaming) as bar:
        for item in items:
            yield item
            bar.advance()


# -- CSV and tables --------------------------------------------------------------

#: rows a table looks at to choose its column widths (the rest are cut to fit them)
TABLE_SAMPLE = 1000

#: the narrowest a cut column gets (an ellipsis included)
MIN_CELL = 8


def echo_csv(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    """A header and the ``rows`` as CSV on stdout; returns the number of rows."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    sys.stdout.flush()
    return count


def table_width() -> int | None:
    """The width a table fits: ``$COLUMNS``, else the terminal's when stdout is one; None (no
    limit) when stdout is a pipe or a file."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if stdout_is_tty():
        return shutil.get_terminal_size().columns
    return None


#: C0 and C1 control characters and DEL: a terminal acts on them (ESC starts a sequence that can
#: set the window title or move the cursor, CR goes back over a line) instead of showing them
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` for a line of a table or a listing: each control character shown as an escape
    (``\\x1b``), so that data (a title, an author, a commit message) cannot drive the terminal
    or hide a line; JSON output escapes them already."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def text_width(text: str) -> int:
    """How many terminal cells ``text`` takes: East Asian wide characters take two, combining
    marks none."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, ending with an ellipsis when it had to be cut."""
    if text_width(text) <= width:
        return text
    kept: list[str] = []
    used = 0
    for char in text:
        size = text_width(char)
        if used + size > width - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept) + "\u2026"


def column_widths(
    natural: Sequence[int], width: int | None, fixed: Collection[int] = (), gap: int = 2
) -> list[int]:
    """Each column's width so that a row fits ``width`` cells: the columns not in ``fixed`` give
    up room, the widest first, down to :data:`MIN_CELL` (a row may still be wider then)."""
    if width is None or sum(natural) + gap * (len(natural) - 1) <= width:
        return list(natural)
    flexible = [i for i in range(len(natural)) if i not in fixed]
    room = width - gap * (len(natural) - 1) - sum(natural[i] for i in fixed)
    # the largest cap that fits: min(natural, cap) for every flexible column
    low, high = 0, max((natural[i] for i in flexible), default=0)
    while low < high:
        cap = (low + high + 1) // 2
        if sum(min(natural[i], cap) for i in flexible) <= room:
            low = cap
        else:
            high = cap - 1
    return [w if i in fixed else min(w, max(low, MIN_CELL)) for i, w in enumerate(natural)]


def echo_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    fixed: Collection[int] = (),
    width: int | None = None,
) -> int:
    """A table on stdout, as ``sqlite-utils --table`` prints one: a header, a rule, the rows, in
    columns two spaces apart; a column of numbers is aligned right. Cells are cut (with an ellipsis)
    so that rows fit :func:`table_width`, except in the ``fixed`` columns (ids, revisions, times).
    The widths come from the first :data:`TABLE_SAMPLE` rows; returns the number of rows."""
    if width is None:
        width = table_width()
    flat = ([printable(" ".join(cell.split())) for cell in row] for row in rows)
    first = list(itertools.islice(flat, TABLE_SAMPLE))
    natural = [
        max([text_width(name), *(text_width(row[i]) for row in first)]) for i, name in enumerate(columns)
    ]
    widths = column_widths(natural, width, fixed)
    right = [
        bool(first) and all(row[i].isdigit() or not row[i] for row in first) for i in range(len(columns))
    ]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for cell, size, to_right in zip(cells, widths, right, strict=True):
            text = cut(cell, size)
            pad = " " * (size - text_width(text))
            parts.append(pad + text if to_right else text + pad)
        return "  ".join(parts).rstrip()

    click.echo(line(columns))
    click.echo("  ".join("-" * size for size in widths))
    count = 0
    for row in itertools.chain(first, flat):
        click.echo(line(row))
        count += 1
    return count
