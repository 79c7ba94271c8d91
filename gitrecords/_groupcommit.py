"""Group commit's queue: the request files and wake-up FIFOs durable writers leave for each other.

A durable record write that finds the write lock busy does not wait its turn to flush: it
writes its request into ``<git dir>/gitrecords/queue-<ref hash>/`` and sleeps. Whoever holds
the lock (the *leader*, see :meth:`gitrecords.writer.WritePath.write`) takes every request
in arrival order, checks and commits each one on top of the one before, flushes once and
moves the branch once; then it lets go of the lock (the next group can start), lets the
derived indexes catch up, and answers each request. The files, by name:

``req-<ns>-<id>.json``
    a request: what :class:`gitrecords.writer.Change` holds, the message, the signatures
    (with their time stamps), the tip the writer saw and its pid. Written whole (a temporary
    file, then a rename), without fsync: until its writer hears back, it is a write in flight.
``claimed-<ns>-<id>-<leader pid>.json``
    the same request, renamed by the leader that took it. The leader deletes it, then answers.
    One whose leader died is taken by the next leader, which looks for its commit (the
    trailer ``Gitrecords-Request: <id>``) between the tip its writer saw and the branch's tip:
    found, the request is answered with that commit; not found, it is done again. A leader
    that fails puts the requests it did not publish back (``req-*``).
``wake-<id>-<pid>``
    the FIFO its writer sleeps on (``select``, no polling). The answer arrives there as one
    line of JSON (one ``write`` of less than ``PIPE_BUF`` bytes: never torn):
    ``{"commit": ..., "published": ...}`` (the request's commit, and the tip published with
    it), ``{"noop": ...}`` (nothing to change) or ``{"error": class name, "message": ...}``.
    An empty line only wakes the writer: the lock is free, it may lead.

A writer whose request file is gone without an answer (its leader died between deleting the
file and answering) looks for its commit in the branch, or else writes itself: a request is
never applied twice, and success is only reported for a commit the branch holds. A writer that
waited :attr:`~gitrecords.writer.WritePath.lock_wait` seconds withdraws its request (deleting
``req-*``) unless a leader took it already, and then waits for the answer.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import select
import time
import uuid
from pathlib import Path
from typing import Any

from . import _git

__all__ = ["REQUEST_TRAILER", "Queue", "applied_in"]

#: the trailer that names the request a commit was made for (only for queued requests)
REQUEST_TRAILER = "Gitrecords-Request"
#: how far back (first-parent commits) a leader looks for a request's commit
LOOKBACK = 100_000
#: an answer is one write into a FIFO; longer messages are cut to stay below PIPE_BUF
MAX_MESSAGE = 3000


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _id_of(name: str) -> str:
    """The request id in ``req-<ns>-<id>.json`` or ``claimed-<ns>-<id>-<pid>.json``."""
    return name.split("-")[2].split(".")[0]


class Queue:
    """The queue folder of one branch."""

    def __init__(self, git_dir: Path, ref: str) -> None:
        self.dir = git_dir / "gitrecords" / f"queue-{hashlib.sha1(ref.encode()).hexdigest()[:12]}"
        self._wakes: dict[str, tuple[int, int]] = {}
        self._received: dict[str, bytes] = {}

    def usable(self) -> bool:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.dir, os.W_OK)

    # -- a waiting writer -----------------------------------------------------------------

    def enqueue(self, request: dict[str, Any]) -> str:
        """Add ``request`` (which has an ``id`` and a ``pid``); returns its file name. The
        writer waits with :meth:`receive`, and calls :meth:`leave` at the end."""
        fifo = self.dir / f"wake-{request['id']}-{request['pid']}"
        os.mkfifo(fifo, 0o600)
        # the read end, and a writer of our own: else, once a leader has written and closed,
        # the FIFO would read as hung up and select would not sleep any more
        self._wakes[request["id"]] = (
            os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC),
            os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC),
        )
        name = f"req-{time.time_ns():020d}-{request['id']}.json"
        temporary = self.dir / f"tmp-{uuid.uuid4().hex}"
        temporary.write_text(json.dumps(request))
        os.rename(temporary, self.dir / name)
        return name

    def receive(self, request_id: str, seconds: float) -> dict[str, Any] | None:
        """The answer to ``request_id`` if it came within ``seconds`` (0: do not wait), else None
        (also when only woken: the lock is free)."""
        fd = self._wakes[request_id][0]
        if seconds > 0:
            select.select([fd], [], [], seconds)
        data = self._received.pop(request_id, b"")
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        *lines, rest = data.split(b"\n")
        if rest:
            self._received[request_id] = rest
        for line in lines:
            if line.strip():
                return json.loads(line)
        return None

    def queued(self, request_id: str) -> bool:
        """Whether the request is still in the folder (waiting, or taken by a leader)."""
        return any(_id_of(n) == request_id for n in os.listdir(self.dir) if n.endswith(".json"))

    def withdraw(self, name: str) -> bool:
        """Take back a request no leader has taken yet; False if one took it."""
        try:
            os.unlink(self.dir / name)
        except FileNotFoundError:
            return False
        return True

    def leave(self, request: dict[str, Any]) -> None:
        """Close and remove this request's FIFO."""
        self._received.pop(request["id"], None)
        for fd in self._wakes.pop(request["id"], ()):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.dir / f"wake-{request['id']}-{request['pid']}")

    # -- the leader -----------------------------------------------------------------------

    def left(self) -> list[tuple[str, dict[str, Any]]]:
        """Requests taken by a leader that died, in arrival order (those whose writer died too
        are dropped: see :meth:`_of_live_writers`)."""
        names = []
        for name in sorted(os.listdir(self.dir)):
            if name.startswith("claimed-") and name.endswith(".json"):
                pid = name[: -len(".json")].rsplit("-", 1)[1]
                if pid.isdigit() and not _alive(int(pid)):
                    names.append(name)
        return self._of_live_writers(self._read(names))

    def claim(self) -> list[tuple[str, dict[str, Any]]]:
        """Take every waiting request of a live writer, in arrival order (renamed
        ``claimed-*``)."""
        names = []
        for name in sorted(os.listdir(self.dir)):
            if name.startswith("req-"):
                claimed = f"claimed-{name[len('req-') : -len('.json')]}-{os.getpid()}.json"
                try:
                    os.rename(self.dir / name, self.dir / claimed)
                except FileNotFoundError:  # withdrawn meanwhile
                    continue
                names.append(claimed)
        return self._of_live_writers(self._read(names))

    def _of_live_writers(self, found: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        """``found`` but the requests whose writer died before its answer: nobody was told they
        were written, and nobody waits for them, so they are dropped (their files deleted)
        rather than committed whenever a durable write next leads, maybe days later."""
        kept = []
        for name, request in found:
            pid = request.get("pid")
            if isinstance(pid, int) and not _alive(pid):
                self.done(name)
            else:
                kept.append((name, request))
        return kept

    def unclaim(self, name: str) -> None:
        """Put a taken request back, for the next leader."""
        back = "req-" + "-".join(name[: -len(".json")].split("-")[1:3]) + ".json"
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.dir / name, self.dir / back)

    def _read(self, names: list[str]) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for name in names:
            try:
                found.append((name, json.loads((self.dir / name).read_text())))
            except (OSError, ValueError):  # a request cut short cannot be read: drop it
                with contextlib.suppress(OSError):
                    os.unlink(self.dir / name)
        return found

    def done(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.dir / name)

    def answer(self, request: dict[str, Any], result: dict[str, Any]) -> None:
        """Send ``result`` to the writer of ``request`` (nothing if it is gone)."""
        if len(result.get("message", "")) > MAX_MESSAGE:
            result = dict(result, message=result["message"][:MAX_MESSAGE] + "...")
        self._send(request["id"], request["pid"], json.dumps(result).encode() + b"\n")

    def _send(self, request_id: str, pid: Any, data: bytes) -> None:
        try:
            fd = os.open(self.dir / f"wake-{request_id}-{pid}", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # gone, or nobody reads it any more
            return
        try:
            os.write(fd, data)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EPIPE):
                raise
        finally:
            os.close(fd)

    def wake_waiting(self) -> None:
        """Wake the writers of the requests still waiting: the lock is free, one may lead."""
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        waiting = {_id_of(n) for n in names if n.startswith("req-") and n.endswith(".json")}
        for name in names:
            if name.startswith("wake-"):
                _wake, request_id, pid = name.split("-")
                if request_id in waiting:
                    self._send(request_id, pid, b"\n")

    def sweep(self) -> None:
        """Delete the FIFOs and the waiting requests of writers that died, and temporary files
        left by them. Every holder of the write lock does this as it lets go (a writer killed
        while it waited leaves nothing behind after the next write, whichever path it takes)."""
        try:
            names = os.listdir(self.dir)
        except OSError:  # no queue (yet): nothing to sweep
            return
        waiting = []
        for name in names:
            path = self.dir / name
            with contextlib.suppress(OSError, ValueError):
                if name.startswith("wake-") and not _alive(int(name.rsplit("-", 1)[1])):
                    path.unlink()
                elif name.startswith("tmp-") and time.time() - path.stat().st_mtime > 3600:
                    path.unlink()
                elif name.startswith("req-") and name.endswith(".json"):
                    waiting.append(name)
        self._of_live_writers(self._read(sorted(waiting)))


def applied_in(git: Any, tip: _git.Oid | None, request: dict[str, Any]) -> _git.Oid | None:
    """The commit between the tip ``request``'s writer saw and ``tip`` that was made for it."""
    line = f"{REQUEST_TRAILER}: {request['id']}"
    seen = request.get("seen")
    stop = _git.oid_from_hex(seen) if seen else None
    return _git.commit_with_line(git, tip, stop, line, LOOKBACK)
