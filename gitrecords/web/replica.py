"""Read replicas: a server that follows its primary over git and refuses writes.

A replica is a clone (bare or with files) whose ``origin`` is the primary's
repository. With ``GITRECORDS_FOLLOW_INTERVAL`` set, a :class:`Follower`
thread fetches from ``origin`` at start, every that many seconds, and at once
when ``POST /_fetch`` asks (the primary's ``post-receive`` hook, written by
``gitrecords hooks install --notify URL``). Each fetch fast-forwards the branch
through the write path (:func:`gitrecords.replication.follow`), so the
working clone's files and every derived index (revisions, PIDs, search)
catch up with the commits fetched, incrementally.

With ``GITRECORDS_REPLICA_OF`` set (the primary's URL, without credentials),
every request that would write (any method but GET, HEAD and OPTIONS, except
signing in and out and ``/_fetch``) is refused with 409 naming the primary.

``POST /_fetch`` carries nothing the replica uses: it only wakes the follower,
which fetches from the remote it was configured with. Bursts coalesce (one
fetch runs, at most one more is pending), and it answers 202 at once. It is
accepted from loopback and from the addresses of ``GITRECORDS_NOTIFY_FROM``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request

from ..errors import GitRecordsError
from ..replication import follow, prune_fetch_refs
from ..repository import Repository
from .context import trusted_networks, within
from .errors import HTTPProblem

log = logging.getLogger(__name__)

blueprint = Blueprint("replica", __name__)

#: requests a replica serves: reading, signing in and out (sessions are the replica's own), and
#: the notification
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_ENDPOINTS = frozenset({"admin.login", "admin.logout", "replica.notify"})


class Follower:
    """A daemon thread that fetches the branch from ``remote`` at start, every ``interval``
    seconds, and when :meth:`notify` is called (calls made while a fetch runs make one more)."""

    def __init__(self, path: str, branch: str | None, interval: float, remote: str = "origin") -> None:
        self.path = path
        self.branch = branch
        self.interval = interval
        self.remote = remote
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: what the last fetch did (``GET /_fetch`` shows it)
        self.fetches = 0
        self.last: dict[str, Any] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gitrecords-follower", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Fetch as soon as the running fetch (if any) ends."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:  # what a replica killed in the middle of a fetch left behind
            repo = Repository(self.path, branch=self.branch)
            try:
                prune_fetch_refs(repo)
            finally:
                repo.close()
        except Exception:
            log.warning("could not remove the refs of interrupted fetches", exc_info=True)
        while not self._stop.is_set():
            self._wake.clear()  # notifications from now on make one more fetch
            self.fetch()
            self._wake.wait(self.interval)

    def fetch(self) -> dict[str, Any]:
        """One fetch and fast-forward; errors are logged and kept in :attr:`last`, never raised."""
        started = time.time()
        status: dict[str, Any] = {"started": started}
        try:
            # a repository of its own for each fetch: request threads never share one, and an
            # index file made since (the first search) is opened, so it catches up too
            repo = Repository(self.path, branch=self.branch)
            try:
                outcome = follow(repo, self.remote)
            finally:
                repo.close()
            status.update(status=outcome.status, commit=outcome.commit, records=len(outcome.records))
            if outcome.status != "up-to-date":
                log.info("followed %s to %s (%d records)", self.remote, outcome.commit, len(outcome.records))
        except GitRecordsError as err:
            status.update(status="error", error=str(err))
            log.warning("fetch from %s failed: %s", self.remote, err)
        except Exception as err:  # the thread must live on: the next fetch may work
            status.update(status="error", error=f"{type(err).__name__}: {err}")
            log.exception("fetch from %s failed", self.remote)
        status["seconds"] = round(time.time() - started, 3)
        self.fetches += 1
        self.last = status
        return status


def primary() -> str | None:
    return current_app.config["GITRECORDS_REPLICA_OF"]


@blueprint.before_app_request
def refuse_writes() -> None:
    """409 for every write on a replica, naming the primary."""
    shown = primary()
    if shown is None or request.method in READ_METHODS or request.endpoint in ALLOWED_ENDPOINTS:
        return
    raise HTTPProblem(
        409,
        f"this server is a read replica of {shown}: send writes to the primary",
        primary=shown,
    )


def the_follower() -> Follower:
    """The follower, for a request from loopback or an address of ``GITRECORDS_NOTIFY_FROM``."""
    follower: Follower | None = current_app.extensions.get("gitrecords.follower")
    if follower is None:
        raise HTTPProblem(404, "this server does not follow a primary (gitrecords serve --follow)")
    allowed = current_app.extensions["gitrecords.notify_from"]
    if not within(request.remote_addr, []) and not (allowed and within(request.remote_addr, allowed)):
        raise HTTPProblem(403, "/_fetch is open to loopback and the --notify-from addresses only")
    return follower


@blueprint.post("/_fetch")
def notify() -> Any:
    """Wake the follower: 202 at once; the fetch runs in the background."""
    follower = the_follower()
    follower.notify()
    return jsonify({"status": 202, "message": "a fetch from the primary is on its way"}), 202


@blueprint.get("/_fetch")
def fetch_status() -> Any:
    """What the follower's last fetch did (for monitoring; empty before the first one ends)."""
    follower = the_follower()
    return jsonify({"primary": primary(), "fetches": follower.fetches, "last": follower.last})


def setup(app: Flask) -> None:
    """Start the follower when ``GITRECORDS_FOLLOW_INTERVAL`` is set."""
    app.extensions["gitrecords.notify_from"] = trusted_networks(app.config["GITRECORDS_NOTIFY_FROM"])
    interval = app.config["GITRECORDS_FOLLOW_INTERVAL"]
    if interval is None:
        return
    if not math.isfinite(float(interval)) or float(interval) <= 0:
        raise ValueError(f"GITRECORDS_FOLLOW_INTERVAL must be a positive number of seconds, not {interval!r}")
    follower = Follower(app.config["GITRECORDS_REPO"], app.config["GITRECORDS_BRANCH"], float(interval))
    app.extensions["gitrecords.follower"] = follower
    follower.start()
