"""Read replicas over git: a primary bare repository, replicas that are clones of it served by real
``gitrecords serve --follow`` processes, the primary's post-receive hook that notifies them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import webserver
from helpers import fsck, git
from webserver import GITRECORDS, free_port, json_request, urlopen

from gitrecords import Record, Repository, githooks
from gitrecords.errors import GitRecordsError, NoResultFound
from gitrecords.replication import follow, remote_url
from gitrecords.web.replica import Follower

pytestmark = pytest.mark.usefixtures("curator_identity")

TOKEN = "a-replica-token"


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """``serve(path, *args)`` starts a server (stopped after the test); returns its URL."""
    with ExitStack() as stack:
        yield lambda path, *args: stack.enter_context(
            webserver.serve(path, *args, env={"GITRECORDS_TOKEN": TOKEN})
        )


def request(url: str, method: str = "GET", body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    return json_request(url, method, body, token)


def until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something true; its last answer otherwise fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            assert answer, f"not within {timeout} s"
            return answer
        time.sleep(0.05)


def up(url: str) -> bool:
    try:
        return request(url, token=None)[0] == 200
    except OSError:  # not listening yet
        return False


def clone(primary: Repository, dest: Path, bare: bool = True) -> Path:
    args = ["clone", "--quiet", *(["--bare"] if bare else []), f"file://{primary.path}", str(dest)]
    subprocess.run(["git", *args], check=True, capture_output=True, env=dict(os.environ))
    return dest


def found(base: str, query: str) -> list[str]:
    status, body = request(f"{base}/api/records?q={urllib.request.quote(query)}")
    assert status == 200, body
    return [hit["id"] for hit in body["hits"]["hits"]]


def test_a_replica_follows_on_notification_searches_and_refuses_writes(
    repo: Repository, tmp_path: Path, serve: Any
) -> None:
    Record.create({"title": "first"}, repo=repo)
    replica = clone(repo, tmp_path / "replica.git")
    base = serve(replica, "--follow", "--interval", "600")
    assert found(base, "title:replicated") == []  # the replica's search index exists from now on

    record = Record.create({"title": "replicated over git"}, repo=repo)
    status, body = request(f"{base}/_fetch", "POST", token=None)
    assert (status, body["status"]) == (202, 202)
    until(lambda: request(f"{base}/api/records/{record.id}")[0] == 200)
    assert found(base, "title:replicated") == [str(record.id)]
    status, fetched = request(f"{base}/_fetch")
    assert fetched["last"]["status"] in ("fast-forward", "up-to-date")
    assert fetched["primary"] == f"file://{repo.path}"

    # every write is refused with 409 naming the primary, with or without a token
    message = f"this server is a read replica of file://{repo.path}: send writes to the primary"
    for method, path, data in [
        ("POST", "/api/records", {"title": "on the replica"}),
        ("PUT", f"/api/records/{record.id}", {"title": "changed"}),
        ("PATCH", f"/api/records/{record.id}", [{"op": "replace", "path": "/title", "value": "x"}]),
        ("DELETE", f"/api/records/{record.id}", None),
        ("POST", "/api/bulk", {"query": "", "patch": []}),
    ]:
        for token in (TOKEN, None):
            status, body = request(f"{base}{path}", method, data, token=token)
            assert (status, body["message"], body["primary"]) == (409, message, f"file://{repo.path}")
    status, page = request(f"{base}/admin/new", "POST", {"title": "x"})
    assert status == 409 and "read replica of" in page and "send writes to the primary" in page
    status, page = request(f"{base}/admin/records/{record.id}/delete", "POST")
    assert status == 409
    with urlopen(f"{base}/admin/records/{record.id}", timeout=30) as response:
        page = response.read().decode()
    assert f"read replica of file://{repo.path}" in page and "/edit" not in page
    # nothing reached the replica's branch but what it fetched
    assert git(replica, "rev-parse", "main") == git(repo, "rev-parse", "main")
    fsck(replica)

    # the post-receive hook without curl: Python's standard library posts the notification
    hook = githooks.install_notify(repo, [base])
    bin_dir = tmp_path / "bin"  # a PATH with cat and no curl
    bin_dir.mkdir()
    (bin_dir / "cat").symlink_to(shutil.which("cat") or "/bin/cat")
    later = Record.create({"title": "notified without curl"}, repo=repo)
    subprocess.run(["/bin/sh", str(hook)], input=b"", env={"PATH": str(bin_dir)}, check=True, timeout=10)
    until(lambda: request(f"{base}/api/records/{later.id}")[0] == 200)


def test_the_notify_hook_brings_a_push_to_a_replica_with_files(
    repo: Repository, tmp_path: Path, serve: Any
) -> None:
    Record.create({"title": "first"}, repo=repo)
    replica = clone(repo, tmp_path / "replica", bare=False)
    base = serve(
        replica, "--follow", "--interval", "600", "--primary", "https://user:secret@primary.example/r.git"
    )
    dead = f"http://127.0.0.1:{free_port()}"  # a replica that is down never fails or slows a push
    hanging = socket.socket()  # nor does one that accepts the connection and never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen()
    stuck = f"http://127.0.0.1:{hanging.getsockname()[1]}"
    proc = subprocess.run(
        [
            *GITRECORDS,
            "--repo",
            str(repo.path),
            "hooks",
            "install",
            "--notify",
            dead,
            "--notify",
            stuck,
            "--notify",
            base,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "post-receive" in proc.stderr

    # a curator pushes with plain git
    work = clone(repo, tmp_path / "curator", bare=False)
    path = next(work.glob("records/*/*/*.json"))
    data = json.loads(path.read_text())
    data["title"] = "pushed to the primary"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    subprocess.run(["git", "-C", str(work), "commit", "-qam", "Retitle"], check=True)
    started = time.monotonic()
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "main"], check=True, timeout=30)
    assert time.monotonic() - started < 4  # the hook's notifications run in the background (5 s timeout)
    hanging.close()
    record_id = path.stem
    until(
        lambda: request(f"{base}/api/records/{record_id}")[1]["metadata"]["title"] == "pushed to the primary"
    )
    assert json.loads(next(replica.glob(f"records/*/*/{record_id}.json")).read_text())["title"] == (
        "pushed to the primary"
    )
    assert found(base, "title:pushed") == [record_id]
    status, body = request(f"{base}/api/records", "POST", {"title": "x"})
    assert status == 409  # the primary named is --primary's, without its password
    assert (
        body["message"]
        == "this server is a read replica of https://primary.example/r.git: send writes to the primary"
    )


def test_the_interval_fetch_works_without_notifications(repo: Repository, tmp_path: Path, serve: Any) -> None:
    Record.create({"title": "first"}, repo=repo)
    replica = clone(repo, tmp_path / "replica.git")
    base = serve(replica, "--follow", "--interval", "1")
    records = [Record.create({"title": f"later {n}"}, repo=repo) for n in range(2)]
    for record in records:
        until(lambda record=record: request(f"{base}/api/records/{record.id}")[0] == 200, timeout=20)
    status, body = request(f"{base}/api/records/{records[0].id}/revisions")
    assert status == 200 and len(body["revisions"]) == 1


def test_fetch_is_refused_from_other_addresses_and_on_servers_that_do_not_follow(
    repo: Repository, tmp_path: Path
) -> None:
    from gitrecords.web import create_app

    Record.create({"title": "first"}, repo=repo)
    replica = clone(repo, tmp_path / "replica.git")
    app = create_app(replica, TESTING=True, GITRECORDS_REPLICA_OF="https://primary.example/r.git")
    client = app.test_client()
    assert client.post("/_fetch").status_code == 404  # not following: nothing to wake
    assert client.post("/api/records", json={"title": "x"}).status_code == 409
    assert client.post("/admin/login", data={"token": "nope"}).status_code != 409  # signing in is no write

    app = create_app(
        replica, TESTING=True, GITRECORDS_FOLLOW_INTERVAL=600, GITRECORDS_NOTIFY_FROM=["10.0.0.0/8"]
    )
    client = app.test_client()
    assert client.post("/_fetch", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 403
    assert client.post("/_fetch", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 202
    assert client.post("/_fetch").status_code == 202  # loopback
    app.extensions["gitrecords.follower"].stop(10)


def test_follow_refuses_a_diverged_replica_and_a_clone_without_origin(
    repo: Repository, tmp_path: Path, gr: Any
) -> None:
    Record.create({"title": "first"}, repo=repo)
    replica = Repository(clone(repo, tmp_path / "replica.git"))
    assert remote_url(replica) == f"file://{repo.path}"
    Record.create({"title": "on the primary"}, repo=repo)
    Record.create({"title": "written on the replica"}, repo=replica)
    before = replica.tip()
    with pytest.raises(GitRecordsError, match="has diverged from origin/main"):
        follow(replica)
    assert replica.tip() == before

    result = gr(repo, "serve", "--follow")
    assert result.exit_code == 2
    assert "--follow needs a clone whose remote 'origin' is the primary" in result.output


def has_object(path: Path, oid: str) -> bool:
    return (
        subprocess.run(["git", "--git-dir", str(path), "cat-file", "-e", oid], capture_output=True).returncode
        == 0
    )


@pytest.mark.parametrize("bare", [True, False])
def test_a_replica_follows_a_hard_delete_on_the_primary(repo: Repository, tmp_path: Path, bare: bool) -> None:
    """The primary's hard delete rewrites its history: the replica hard-deletes the same records
    (the same rewrite gives the same commits), moves to the primary's tip, and has none of the
    purged content left: not in its commits, refs, objects, files or search index."""
    keep = Record.create({"title": "kept"}, repo=repo)
    secret = Record.create({"title": "a secret to hide"}, repo=repo)
    secret = secret.patch([{"op": "add", "path": "/note", "value": "second revision"}]).commit()
    blobs = [r._blob for r in secret.revisions]
    path = clone(repo, tmp_path / "replica", bare=bare)
    replica = Repository(path)
    assert replica.search("secret").total == 1  # its indexes are built before the primary purges
    Record.create({"title": "written before the purge"}, repo=repo)
    assert follow(replica).status == "fast-forward"
    secret.delete(force=True)
    after = Record.create({"title": "written after the purge"}, repo=repo)

    outcome = follow(replica)
    assert outcome.status == "realigned"
    assert replica.tip() == repo.tip() and outcome.commit == str(repo.tip())
    assert not any(has_object(replica.git_dir, str(blob)) for blob in blobs)
    assert replica.search("secret").total == 0 and replica.search("hide").total == 0
    assert {str(i) for i in replica.search("").ids} == {str(keep.id), str(after.id)} | {
        str(i) for i in repo.search("").ids
    }
    assert replica.search("").total == repo.search("").total
    with pytest.raises(GitRecordsError, match="hard-deleted"):
        Record.create({"title": "again"}, id_=secret.id, repo=replica)
    # every commit the replica still reaches is one of the primary's
    assert set(git(replica, "log", "--all", "--format=%H").split()) <= set(
        git(repo, "log", "--all", "--format=%H").split()
    )
    assert len(Record.get_record(keep.id, repo=replica).revisions) == 1
    replica.search_index.rebuild()
    assert replica.search("").total == repo.search("").total
    if not bare:
        assert not (path / replica.path_for(secret.id)).exists()
        status = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain"], capture_output=True, text=True
        )
        assert status.returncode == 0 and status.stdout == ""
    fsck(replica)
    assert follow(replica).status == "up-to-date"


def test_a_served_replica_stops_serving_what_the_primary_hard_deleted(
    repo: Repository, tmp_path: Path, serve: Any
) -> None:
    """The same through a real ``serve --follow`` process and its interval fetch: the record,
    its revisions and its words stop being served, and /_fetch says the branch was realigned."""
    secret = Record.create({"title": "classified memo"}, repo=repo)
    replica = clone(repo, tmp_path / "replica.git")
    base = serve(replica, "--follow", "--interval", "0.5")
    assert found(base, "classified") == [str(secret.id)]
    secret.delete(force=True)
    until(lambda: request(f"{base}/api/records/{secret.id}")[0] in (404, 410), timeout=20)
    assert found(base, "classified") == []
    assert request(f"{base}/api/records/{secret.id}/revisions")[0] in (404, 410)
    # the record goes with the replica's own hard delete; the branch then moves to the primary's
    # tip, a moment later in the same fetch
    until(lambda: git(replica, "rev-parse", "main").strip() == str(repo.tip()), timeout=20)
    assert request(f"{base}/_fetch")[1]["last"]["status"] in ("realigned", "up-to-date")
    assert not has_object(replica, str(secret._blob))


def test_a_follow_stopped_by_local_edits_realigns_once_they_are_gone(
    repo: Repository, tmp_path: Path
) -> None:
    """The replica's own hard delete happens before the branch moves: when local edits stop the
    move, the branch keeps the commit that logs the purge here, and the next follow, the edits
    gone, still realigns (it found no newly purged record and refused as diverged)."""
    from gitrecords.errors import LocalChangesError

    secret = Record.create({"title": "secret"}, repo=repo)
    kept = Record.create({"title": "k"}, repo=repo)
    path = clone(repo, tmp_path / "replica", bare=False)
    replica = Repository(path)
    edited = path / replica.path_for(kept.id)
    original = edited.read_text()
    edited.write_text(original.replace('"k"', '"k-local"'))
    secret.delete(force=True)
    changed = Record.get_record(kept.id, repo=repo)
    changed["title"] = "k2"
    changed.commit()
    with pytest.raises(LocalChangesError):
        follow(replica)
    edited.write_text(original)
    assert follow(replica).status == "realigned"
    assert replica.tip() == repo.tip()
    assert Record.get_record(kept.id, repo=replica)["title"] == "k2"
    fsck(replica)


def test_a_replica_written_to_is_not_realigned_by_a_hard_delete(repo: Repository, tmp_path: Path) -> None:
    """A commit of the replica's own is never thrown away: the purged record goes, the branch
    stays diverged, and the error says how to realign by hand."""
    secret = Record.create({"title": "secret"}, repo=repo)
    replica = Repository(clone(repo, tmp_path / "replica.git"))
    own = Record.create({"title": "written on the replica"}, repo=replica)
    secret.delete(force=True)
    with pytest.raises(GitRecordsError, match="has diverged from origin/main"):
        follow(replica)
    assert Record.get_record(own.id, repo=replica)["title"] == "written on the replica"
    with pytest.raises(NoResultFound):
        Record.get_record(secret.id, repo=replica)


def test_notifications_coalesce_while_a_fetch_runs() -> None:
    class Slow(Follower):
        def __init__(self) -> None:
            super().__init__("unused", None, interval=600)
            self.running = threading.Event()
            self.release = threading.Event()
            self.calls = 0

        def fetch(self) -> dict[str, Any]:
            self.calls += 1
            self.running.set()
            self.release.wait(10)
            self.running.clear()
            return {}

    follower = Slow()
    follower.start()  # the first fetch, at start
    until(follower.running.is_set)
    for _ in range(50):  # a burst of pushes while it runs
        follower.notify()
    follower.release.set()
    until(lambda: follower.calls == 2 and not follower.running.is_set())
    time.sleep(0.2)
    assert follower.calls == 2  # the burst made one more fetch, not fifty
    follower.stop(10)


def test_a_replica_killed_during_catch_up_recovers(repo: Repository, tmp_path: Path, serve: Any) -> None:
    Record.create({"title": "first"}, repo=repo)
    replica = clone(repo, tmp_path / "replica.git")
    port = free_port()
    command = [
        *GITRECORDS,
        "--repo",
        str(replica),
        "serve",
        "--port",
        str(port),
        "--follow",
        "--interval",
        "600",
    ]
    log = tmp_path / "killed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        until(lambda: proc.poll() is None and up(f"{base}/api/records?size=1"))
        assert found(base, "title:imported") == []  # the search index exists and follows
        imported = repo.import_records([{"title": f"imported {n}"} for n in range(3000)])
        repo.import_records([{"title": "imported last"}])
        assert request(f"{base}/_fetch", "POST", token=None)[0] == 202
        # the branch moved: the indexes are catching up with 3001 records (for about 0.3 s here)
        tip = git(repo, "rev-parse", "main")
        until(lambda: git(replica, "rev-parse", "main") == tip, timeout=30)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    base = serve(replica, "--follow", "--interval", "600")
    until(
        lambda: request(f"{base}/api/records?q=title:imported&size=1")[1]["hits"]["total"] == 3001, timeout=60
    )
    assert request(f"{base}/api/records/{imported.ids[-1]}")[0] == 200
    assert git(replica, "rev-parse", "main") == git(repo, "rev-parse", "main")
    assert git(replica, "for-each-ref", "refs/gitrecords/fetch") == ""  # the killed fetch's ref is gone
    fsck(replica)


def test_each_push_reaches_two_replicas_by_notification(repo: Repository, tmp_path: Path, serve: Any) -> None:
    """Every push reaches both replicas through the notify hook (their interval is 10 minutes), and
    the lag from the moment ``git push`` returns is printed (pytest -s), not asserted: a timing is a
    benchmark's figure, not a test's verdict."""
    Record.create({"title": "first"}, repo=repo)
    replicas = [
        serve(clone(repo, tmp_path / "one.git"), "--follow", "--interval", "600"),
        serve(clone(repo, tmp_path / "two", bare=False), "--follow", "--interval", "600"),
    ]
    notify = [arg for base in replicas for arg in ("--notify", base)]
    subprocess.run([*GITRECORDS, "--repo", str(repo.path), "hooks", "install", *notify], check=True)
    work = clone(repo, tmp_path / "curator", bare=False)
    path = next(work.glob("records/*/*/*.json"))
    lags: list[float] = []
    pushes: list[float] = []
    for n in range(10):
        data = json.loads(path.read_text())
        data["title"] = f"pushed {n}"
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        subprocess.run(["git", "-C", str(work), "commit", "-qam", f"Push {n}"], check=True)
        started = time.monotonic()
        subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "main"], check=True, timeout=30)
        pushed = time.monotonic()
        pushes.append(pushed - started)
        for base in replicas:
            url = f"{base}/api/records/{path.stem}"
            until(lambda url=url, n=n: request(url)[1]["metadata"]["title"] == f"pushed {n}", timeout=10)
            lags.append(time.monotonic() - pushed)
    lags.sort()
    print(
        f"push: median {sorted(pushes)[5]:.3f} s; lag after the push, 20 samples: "
        f"median {lags[10]:.3f} s, max {lags[-1]:.3f} s"
    )
    assert len(lags) == 20  # every push reached both replicas, long before their interval
