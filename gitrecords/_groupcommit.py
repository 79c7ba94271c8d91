"""Group commit's queue: the request and result files durable writers leave for each other.

A durable record write that finds the write lock busy does not wait its turn to flush: it
writes its request into ``<git dir>/gitrecords/queue-<ref hash>/`` and waits. Whoever holds
the lock (the *leader*, see :meth:`gitrecords.writer.WritePath.write`) takes every request
in arrival order, checks and commits each one on top of the previous one, flushes once, moves
the branch once, and answers each request with a result file. The files, by name:

``req-<ns>-<id>.json``
    a request: what :class:`gitrecords.writer.Change` holds, the message, the signatures
    (with their time stamps), the tip the writer saw and its pid. Written whole (a temporary
    file, then a rename), without fsync: until its writer hears back, it is a write in flight.
``claimed-<ns>-<id>.json``
    the same request, renamed by the leader that took it. The leader deletes it once the
    request is answered; one that is left was taken by a leader that died (or failed), and the
    next leader looks for its commit (the trailer ``Gitrecords-Request: <id>``) between the tip
    the writer saw and the branch's tip: found, the request is answered with that commit; not
    found, it is done again. A request is never applied twice, and a success is only reported
    for a commit the branch holds.
``wake-<id>-<pid>``
    a FIFO its writer sleeps on (``select``, no polling): the leader writes a byte into it
    when the answer is there, and into those of the requests still waiting when it lets go
    of the lock (one of them leads next).
``res-<id>.json``
    the answer: ``{"commit": ..., "published": ...}`` (the request's commit, and the tip the
    leader published with it), ``{"noop": ...}`` (nothing to change) or ``{"error": class name,
    "message": ...}``. Its writer reads and deletes it; a leader deletes the answers of writers
    that died.

A writer that waited :attr:`~gitrecords.writer.WritePath.lock_wait` seconds withdraws its
request (deleting ``req-*``) unless a leader took it already, and then waits for its answer.
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Queue:
    """The queue folder of one branch."""

    def __init__(self, git_dir: Path, ref: str) -> None:
        self.dir = git_dir / "gitrecords" / f"queue-{hashlib.sha1(ref.encode()).hexdigest()[:12]}"
        self._wakes: dict[str, tuple[int, int]] = {}

    def usable(self) -> bool:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.dir, os.W_OK)

    def _write(self, name: str, content: dict[str, Any]) -> None:
        temporary = self.dir / f"tmp-{uuid.uuid4().hex}"
        temporary.write_text(json.dumps(content))
        os.rename(temporary, self.dir / name)

    # -- a waiting writer -----------------------------------------------------------------

    def enqueue(self, request: dict[str, Any]) -> str:
        """Add ``request`` (which has an ``id`` and a ``pid``); returns its file name. The
        writer waits for news with :meth:`sleep`, and calls :meth:`leave` at the end."""
        fifo = self.dir / f"wake-{request['id']}-{request['pid']}"
        os.mkfifo(fifo, 0o600)
        # read end and a writer of our own (else, once a leader has written and closed, the
        # FIFO would read as "hung up" and select would not sleep any more)
        self._wakes[request["id"]] = (
            os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC),
            os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC),
        )
        name = f"req-{time.time_ns():020d}-{request['id']}.json"
        self._write(name, request)
        return name

    def sleep(self, request_id: str, seconds: float) -> None:
        """Sleep until a leader writes to this request's FIFO, or ``seconds`` passed."""
        fd = self._wakes[request_id][0]
        ready, _w, _x = select.select([fd], [], [], max(seconds, 0))
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(fd, 4096)

    def leave(self, request: dict[str, Any]) -> None:
        """Close and remove this request's FIFO."""
        for fd in self._wakes.pop(request["id"], ()):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.dir / f"wake-{request['id']}-{request['pid']}")

    def wake(self, request: dict[str, Any]) -> None:
        """Tell the writer of ``request`` to look again (its answer is there, or the lock is free)."""
        try:
            fd = os.open(self.dir / f"wake-{request['id']}-{request['pid']}", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # gone, or nobody reads it any more
            return
        try:
            os.write(fd, b"!")
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EPIPE):
                raise
        finally:
            os.close(fd)

    def wake_waiting(self) -> None:
        """Wake the writers of the requests still waiting (the lock is free now)."""
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        for name in names:
            if name.startswith("req-") and name.endswith(".json"):
                request_id = name[len("req-") :].split("-", 1)[1][: -len(".json")]
                for fifo in (n for n in names if n.startswith(f"wake-{request_id}-")):
                    self.wake({"id": request_id, "pid": fifo.rsplit("-", 1)[1]})

    def withdraw(self, name: str) -> bool:
        """Take back a request no leader has taken yet; False if one took it."""
        try:
            os.unlink(self.dir / name)
        except FileNotFoundError:
            return False
        return True

    def result(self, request_id: str) -> dict[str, Any] | None:
        """The answer to request ``request_id`` (deleted as it is read), or None."""
        path = self.dir / f"res-{request_id}.json"
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return json.loads(text)

    def has_result(self, request_id: str) -> bool:
        return (self.dir / f"res-{request_id}.json").exists()

    def holds(self, name: str) -> bool:
        return (self.dir / name).exists()

    # -- the leader -----------------------------------------------------------------------

    def left(self) -> list[tuple[str, dict[str, Any]]]:
        """Requests taken by a leader that died or failed, in arrival order."""
        return self._read(sorted(n for n in os.listdir(self.dir) if n.startswith("claimed-")))

    def claim(self) -> list[tuple[str, dict[str, Any]]]:
        """Take every waiting request, in arrival order (renamed ``claimed-*``)."""
        names = []
        for name in sorted(os.listdir(self.dir)):
            if name.startswith("req-"):
                claimed = "claimed-" + name[len("req-") :]
                try:
                    os.rename(self.dir / name, self.dir / claimed)
                except FileNotFoundError:  # withdrawn meanwhile
                    continue
                names.append(claimed)
        return self._read(names)

    def _read(self, names: list[str]) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for name in names:
            try:
                found.append((name, json.loads((self.dir / name).read_text())))
            except (OSError, ValueError):  # a request cut short cannot be read: drop it
                with contextlib.suppress(OSError):
                    os.unlink(self.dir / name)
        return found

    def answer(self, request: dict[str, Any], result: dict[str, Any]) -> None:
        self._write(f"res-{request['id']}.json", dict(result, pid=request["pid"]))
        self.wake(request)

    def done(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.dir / name)

    def sweep(self) -> None:
        """Delete answers nobody will read (their writers died) and temporary files left."""
        for name in os.listdir(self.dir):
            path = self.dir / name
            try:
                if name.startswith("res-"):
                    pid = json.loads(path.read_text()).get("pid")
                    if isinstance(pid, int) and not _alive(pid):
                        path.unlink()
                elif name.startswith("wake-") and not _alive(int(name.rsplit("-", 1)[1])):
                    path.unlink()
                elif name.startswith("tmp-") and time.time() - path.stat().st_mtime > 3600:
                    path.unlink()
            except (OSError, ValueError):
                continue


def applied_in(git: Any, tip: _git.Oid | None, request: dict[str, Any]) -> _git.Oid | None:
    """The commit between the tip ``request``'s writer saw and ``tip`` that was made for it."""
    line = f"{REQUEST_TRAILER}: {request['id']}"
    seen = request.get("seen")
    stop = _git.oid_from_hex(seen) if seen else None
    return _git.commit_with_line(git, tip, stop, line, LOOKBACK)
