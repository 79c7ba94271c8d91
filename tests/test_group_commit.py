"""Group commit (issue 21): durable writers that find the write lock busy queue up, and the lock's
holder commits, flushes and publishes them together. Real processes, SIGKILL at each new step.

Each crash case starts a *leader*, a child process that writes one record and, holding the write
lock, waits inside ``Queue.claim`` until the *waiters* (three more children, started once the
leader leads) have queued their writes; then it goes on, and one process (the leader, or a
waiter) kills itself with ``SIGKILL`` before or after the Nth call of one function. The hook
lives in the child script; the library has no fault-injection code. Then the test checks:

* ``git fsck --strict`` is clean, no lock file is left, the write lock is free;
* every write a waiter saw succeed is in the branch exactly once, with its own author and
  message, and the record has the content written; the leader's own write is there (once) or
  not, as the case says; a killed waiter's write is there at most once; nothing else is;
* every surviving waiter finished (a new leader took over), and the next writer proceeds;
* the queue folder is empty after the next write, and the revision index equals a rebuild.

``CASES`` is also the source of the group commit table in docs/reliability.md.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import fsck, git

from gitrecords import Record, Repository, layout
from gitrecords.errors import RecordExistsError, StaleRevisionError

TIMEOUT = 120  # seconds: a bound for a hung child, never an expectation
WAITERS = 3


@dataclass(frozen=True)
class GroupCrash:
    """The ``victim`` (leader or waiter 0) dies at the ``nth`` call of ``target``."""

    id: str
    point: str  # where it dies, for people
    target: str
    when: str  # "before" or "after" the call
    nth: int
    victim: str  # "leader" or "waiter"
    leader_write: str  # "absent" or "present": the leader's own write in the branch afterwards


CASES = [
    GroupCrash(
        "chaining",
        "leader: its own commit and the first queued one written",
        "_git.create_commit",
        "after",
        2,
        "leader",
        "absent",
    ),
    GroupCrash(
        "before-syncfs",
        "leader: every commit of the group written, not synced",
        "_git.sync_filesystem",
        "before",
        1,
        "leader",
        "absent",
    ),
    GroupCrash(
        "after-syncfs",
        "leader: objects synced, ref not moved",
        "_git.sync_filesystem",
        "after",
        1,
        "leader",
        "absent",
    ),
    GroupCrash(
        "ref-moved",
        "leader: ref moved (one compare-and-swap for the group), no answer given",
        "_git.set_ref",
        "after",
        1,
        "leader",
        "present",
    ),
    GroupCrash(
        "request-taken",
        "leader, lock let go, indexes caught up: the first request's file deleted, no answer sent",
        "_groupcommit.Queue.done",
        "after",
        1,
        "leader",
        "present",
    ),
    GroupCrash(
        "answering",
        "leader: one answer sent, two not",
        "_groupcommit.Queue.answer",
        "after",
        1,
        "leader",
        "present",
    ),
    GroupCrash(
        "waiter",
        "a waiter, once its request is queued",
        "_groupcommit.Queue.enqueue",
        "after",
        1,
        "waiter",
        "present",
    ),
]

CHILD = r"""
import json, os, signal, sys, time, uuid

import gitrecords
from gitrecords import Record, Repository, _git, _groupcommit

spec = json.loads(sys.argv[1])
calls = 0


def say(kind, **fields):
    print(json.dumps({"kind": kind, **fields}), flush=True)


def install(target, when, nth):
    *owner_path, attr = target.split(".")
    owner = gitrecords
    for name in owner_path:
        owner = getattr(owner, name)
    original = getattr(owner, attr)

    def wrapper(*args, **kwargs):
        global calls
        calls += 1
        number = calls
        if number == nth and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if number == nth and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, attr, wrapper)


if spec["role"] == "leader":
    original_claim = _groupcommit.Queue.claim

    def claim(self):
        # holding the write lock: wait until every waiter has queued its write
        say("leading")
        while sum(n.startswith("req-") for n in os.listdir(self.dir)) < spec["expect"]:
            time.sleep(0.01)
        return original_claim(self)

    _groupcommit.Queue.claim = claim
if spec.get("target"):
    install(spec["target"], spec["when"], spec["nth"])

repo = Repository(spec["repo"])
name, k = spec["name"], spec["k"]
author = f"{name.title()} {k} <{name}{k}@example.org>"
data = {"title": f"{name} {k}"}
if spec["update"]:
    record = Record.get_record(spec["update"], repo=repo)
    record.update(data)
    say("op", id=str(record.id), data=dict(record))
    record.commit(message=f"{name} {k}", author=author)
else:
    say("op", id=spec["id"], data=data)
    record = Record.create(data, id_=spec["id"], repo=repo, message=f"{name} {k}", author=author)
commit = record.revisions[record.revision_id].commit_id
say("ack", id=str(record.id), commit=commit)
"""


def start(tmp_path: Path, spec: dict[str, Any]) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    env = {k: v for k, v in os.environ.items() if k != "GITRECORDS_DEBUG"}
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(spec)], stdout=subprocess.PIPE, text=True, env=env
    )


def events_of(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, _ = proc.communicate(timeout=TIMEOUT)
    return [json.loads(line) for line in out.splitlines()]


def commits_since(repo: Repository, base: str) -> list[tuple[str, str, str]]:
    """(commit, author name, subject) of each first-parent commit after ``base``, oldest first."""
    out = git(repo, "log", "--first-parent", "--reverse", "--format=%H%x00%an%x00%s", f"{base}..main")
    return [tuple(line.split("\0")) for line in out.splitlines()]  # type: ignore[misc]


def check_lock_free(repo: Repository) -> None:
    left = [p for p in repo.git_dir.rglob("*.lock") if p.name != "write.lock"]
    assert not left, left
    with open(repo.git_dir / "gitrecords" / "write.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a writer still held it
        fcntl.flock(lock, fcntl.LOCK_UN)


def queue_files(repo: Repository) -> list[str]:
    return sorted(n for d in (repo.git_dir / "gitrecords").glob("queue-*") for n in os.listdir(d))


def check_index(repo: Repository, ids: list[str]) -> None:
    seen = {i: repo.index.revisions(i) for i in ids}
    assert repo.index.indexed_tip() == git(repo, "rev-parse", "main").strip()
    repo.reindex()
    assert {i: repo.index.revisions(i) for i in ids} == seen


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_killed_group(case: GroupCrash, tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "data.git")
    old = Record.create({"title": "old"}, repo=repo)
    base = git(repo, "rev-parse", "main").strip()
    crash = {"target": case.target, "when": case.when, "nth": case.nth}
    ids = [str(uuid.UUID(int=n + 1, version=4)) for n in range(WAITERS + 1)]

    common = {"repo": str(repo.path), "update": None}
    leader = start(
        tmp_path,
        {**common, "role": "leader", "name": "leader", "k": 0, "id": ids[0], "expect": WAITERS}
        | (crash if case.victim == "leader" else {}),
    )
    assert leader.stdout is not None
    first = json.loads(leader.stdout.readline())
    assert first["kind"] == "op"
    assert json.loads(leader.stdout.readline())["kind"] == "leading"
    waiters = []
    for k in range(WAITERS):
        spec = {**common, "role": "waiter", "name": "writer", "k": k, "id": ids[k + 1]}
        if k == 1:
            spec["update"] = str(old.id)  # an update among the creates
        if k == 0 and case.victim == "waiter":
            spec |= crash
        waiters.append(start(tmp_path, spec))

    leader_events = [first, {"kind": "leading"}, *events_of(leader)]
    waiter_events = [events_of(w) for w in waiters]
    if case.victim == "leader":
        assert leader.returncode == -signal.SIGKILL
        assert [w.returncode for w in waiters] == [0] * WAITERS
    else:
        assert leader.returncode == 0
        assert waiters[0].returncode == -signal.SIGKILL
        assert [w.returncode for w in waiters[1:]] == [0] * (WAITERS - 1)

    fsck(repo)
    check_lock_free(repo)
    commits = commits_since(repo, base)
    subjects = [subject for _c, _a, subject in commits]
    assert len(subjects) == len(set(subjects)), "a write was applied twice"
    expected: dict[str, dict[str, Any]] = {}  # record id -> content
    for k, events in enumerate(waiter_events):
        acks = [e for e in events if e["kind"] == "ack"]
        if case.victim == "waiter" and k == 0:
            assert not acks
            continue
        [op] = [e for e in events if e["kind"] == "op"]
        [ack] = acks
        [(commit, author, _s)] = [c for c in commits if c[2] == f"writer {k}"]
        assert (ack["commit"], author) == (commit, f"Writer {k}")
        expected[op["id"]] = op["data"]
    leader_commits = [c for c in commits if c[2] == "leader 0"]
    assert len(leader_commits) == (1 if case.leader_write == "present" else 0)
    if leader_commits:
        expected[ids[0]] = first["data"]
        assert [e["commit"] for e in leader_events if e["kind"] == "ack"] in ([], [leader_commits[0][0]])
    extra = set(subjects) - {f"writer {k}" for k in range(WAITERS)} - {"leader 0"}
    assert not extra
    for record_id, data in expected.items():
        assert Record.get_record(record_id, repo=repo) == data
    # the next writer proceeds, and the queue is empty after it
    after = Record.create({"title": "after the crash"}, repo=repo)
    assert Record.get_record(after.id, repo=repo) == {"title": "after the crash"}
    assert queue_files(repo) == []
    check_index(repo, [*ids, str(old.id), str(after.id)])
    fsck(repo)


# -- queued writers, deterministic groups ---------------------------------------------------------

WRITER = r"""
import json, sys
from gitrecords import Record, Repository
from gitrecords.errors import GitRecordsError

spec = json.loads(sys.argv[1])
repo = Repository(spec["repo"])
author = f"Writer {spec['k']} <w{spec['k']}@example.org>"
message = f"write {spec['k']}"
if spec["kind"] == "update":
    record = Record.get_record(spec["id"], repo=repo)  # read before the others write
    record["title"] = message
print(json.dumps({"kind": "ready"}), flush=True)
sys.stdin.readline()
try:
    if spec["kind"] == "update":
        record.commit(message=message, author=author)
    else:
        record = Record.create({"title": message}, id_=spec["id"], repo=repo, message=message, author=author)
except GitRecordsError as err:
    print(json.dumps({"kind": "error", "class": type(err).__name__, "message": str(err)}), flush=True)
else:
    commit = record.revisions[record.revision_id].commit_id
    print(json.dumps({"kind": "ok", "commit": commit, "id": str(record.id)}), flush=True)
"""


def test_queued_writers_keep_their_commits_and_stale_writes_fail(tmp_path: Path) -> None:
    """Seven processes queue their writes while the test holds the write lock; whoever leads
    next commits them all, each as its own commit with its own author and message, published
    with one move of the branch. Of two updates read at the same revision, one lands and the
    other gets StaleRevisionError; a create of an existing id gets RecordExistsError."""
    repo = Repository.init(tmp_path / "data.git")
    shared = Record.create({"title": "shared"}, repo=repo)
    other = Record.create({"title": "other"}, repo=repo)
    base = git(repo, "rev-parse", "main").strip()
    reflog_before = git(repo, "reflog", "show", "--format=%H", "main").split()
    new_ids = [str(uuid.UUID(int=100 + n, version=4)) for n in range(4)]
    plan = [
        ("create", new_ids[0]),
        ("create", new_ids[1]),
        ("update", str(shared.id)),
        ("update", str(shared.id)),
        ("create", new_ids[2]),
        ("update", str(other.id)),
        ("create", str(other.id)),  # exists already
    ]
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                json.dumps({"repo": str(repo.path), "k": k, "kind": kind, "id": id_}),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k, (kind, id_) in enumerate(plan)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["kind"] == "ready"
    with repo.writer.lock():  # every write below finds the lock busy and queues
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        deadline = time.monotonic() + TIMEOUT
        while sum(n.startswith("req-") for n in queue_files(repo)) < len(plan):
            assert time.monotonic() < deadline, "the writers did not queue"
            assert all(p.poll() is None for p in procs), "a writer ended while the lock was held"
            time.sleep(0.01)
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0
        results.append(json.loads(out.splitlines()[-1]))

    # the two updates of the shared record: one landed, the other is stale
    shared_results = [results[2], results[3]]
    assert sorted(r["kind"] for r in shared_results) == ["error", "ok"]
    [stale] = [r for r in shared_results if r["kind"] == "error"]
    assert (stale["class"], stale["message"]) == (
        StaleRevisionError.__name__,
        f"record {shared.id} changed since it was read; read it again and retry",
    )
    assert (results[6]["class"], results[6]["message"]) == (
        RecordExistsError.__name__,
        f"record {other.id} already exists",
    )
    # every success is its own commit, once, with its author and message, and its content
    commits = commits_since(repo, base)
    landed = {k: r for k, r in enumerate(results) if r["kind"] == "ok"}
    assert len(commits) == len(landed) == 5
    for k, result in landed.items():
        [(commit, author, _s)] = [c for c in commits if c[2] == f"write {k}"]
        assert (commit, author) == (result["commit"], f"Writer {k}")
        assert Record.get_record(result["id"], repo=repo)["title"] == f"write {k}"
    assert git(repo, "rev-list", "--merges", f"{base}..main") == ""
    # queued requests name themselves in a trailer; published with one move of the branch
    bodies = git(repo, "log", "--format=%B", f"{base}..main")
    assert bodies.count("Gitrecords-Request: ") == len(landed)
    reflog = git(repo, "reflog", "show", "--format=%H", "main").split()
    assert len(reflog) == len(reflog_before) + 1
    assert queue_files(repo) == []
    fsck(repo)
    check_index(repo, [*new_ids, str(shared.id), str(other.id)])


def test_threads_of_one_process_are_grouped(tmp_path: Path) -> None:
    """Threads (a web server's) queue like processes: while one holds the lock, the others'
    writes wait in the queue and land in the next group, each its own commit."""
    repo = Repository.init(tmp_path / "data.git")
    base = git(repo, "rev-parse", "main").strip()
    errors: list[BaseException] = []
    queued = threading.Event()

    def write(k: int) -> None:
        try:
            Record.create({"title": f"thread {k}"}, repo=repo, message=f"thread {k}", author=f"T{k} <t@x>")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    with repo.writer.lock():
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + TIMEOUT
        while sum(n.startswith("req-") for n in queue_files(repo)) < len(threads):
            assert time.monotonic() < deadline, "the threads did not queue"
            time.sleep(0.01)
        queued.set()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not errors
    commits = commits_since(repo, base)
    assert sorted(s for _c, _a, s in commits) == [f"thread {k}" for k in range(4)]
    assert sorted(a for _c, a, _s in commits) == [f"T{k}" for k in range(4)]
    assert queue_files(repo) == []
    fsck(repo)


def test_a_queued_write_gives_up_after_lock_wait(tmp_path: Path) -> None:
    """A queued write that no leader took within ``lock_wait`` is withdrawn: nothing is
    written, and the error names the lock's holder, as without group commit."""
    repo = Repository.init(tmp_path / "data.git")
    impatient = Repository(repo.path, lock_wait=0.2)
    base = git(repo, "rev-parse", "main").strip()
    with repo.writer.lock():
        with pytest.raises(Exception, match=r"waited 0.2 s for the write lock of .*held by pid") as info:
            Record.create({"title": "too late"}, repo=impatient)
    assert type(info.value).__name__ == "RepositoryLockedError"
    assert git(repo, "rev-parse", "main").strip() == base
    assert queue_files(repo) == []


def test_request_files_hold_what_the_write_means(tmp_path: Path) -> None:
    """A request names the record file, the blob, what the writer expected, and both
    signatures with their time stamps (kept as the writer made them)."""
    repo = Repository.init(tmp_path / "data.git")
    record = Record.create({"title": "v0"}, repo=repo)
    seen: list[dict[str, Any]] = []
    from gitrecords import _groupcommit

    original = _groupcommit.Queue.enqueue

    def spy(self: Any, request: dict[str, Any]) -> str:
        seen.append(json.loads(json.dumps(request)))
        return original(self, request)

    other = Repository(repo.path)
    with repo.writer.lock():
        _groupcommit.Queue.enqueue = spy  # type: ignore[method-assign]
        try:
            copy = Record.get_record(record.id, repo=other)
            copy["title"] = "v1"
            done = threading.Event()
            thread = threading.Thread(target=lambda: (copy.commit(message="m", author="A <a@x>"), done.set()))
            thread.start()
            deadline = time.monotonic() + TIMEOUT
            while not seen:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        finally:
            _groupcommit.Queue.enqueue = original  # type: ignore[method-assign]
    thread.join(TIMEOUT)
    assert done.is_set()
    [request] = seen
    [change] = request["changes"]
    assert change["path"] == layout.path_for(record.id)
    assert change["expected"] == str(record._blob)
    assert change["blob"] == str(copy._blob)
    assert request["author"][:2] == ["A", "a@x"]
    info = git(repo, "log", "-1", "--format=%an %ae %at", "main").split()
    assert info == ["A", "a@x", str(request["author"][2])]


def test_the_request_of_a_writer_killed_while_it_waits_is_dropped(tmp_path: Path) -> None:
    """A writer killed while its request waits was never told it was written, and nobody waits
    for the answer: its request is dropped when the lock is let go (it was left for the next
    durable write that led, maybe days later, and committed then), and the queue is empty."""
    repo = Repository.init(tmp_path / "data.git")
    base = git(repo, "rev-parse", "main").strip()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    victim = str(uuid.UUID(int=7, version=4))
    spec = json.dumps({"repo": str(repo.path), "k": 0, "kind": "create", "id": victim})
    with subprocess.Popen(
        [sys.executable, str(script), spec], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert json.loads(proc.stdout.readline())["kind"] == "ready"
        with repo.writer.lock():
            proc.stdin.write("go\n")
            proc.stdin.flush()
            deadline = time.monotonic() + TIMEOUT
            while not any(n.startswith("req-") for n in queue_files(repo)):
                assert time.monotonic() < deadline, "the writer did not queue"
                time.sleep(0.01)
            proc.kill()
            proc.wait()
    assert queue_files(repo) == []
    kept = Record.create({"title": "next"}, repo=repo)  # durable, bare: it may lead a group
    assert [str(i) for i in repo.ids()] == [str(kept.id)]
    assert len(commits_since(repo, base)) == 1
    fsck(repo)


def test_a_leader_drops_the_requests_of_dead_writers(tmp_path: Path) -> None:
    """What a leader claims, or takes over from a leader that died, leaves out the requests
    whose writer died: deleted, not committed."""
    from gitrecords._groupcommit import Queue

    repo = Repository.init(tmp_path / "data.git")
    queue = Queue(repo.git_dir, repo.ref)
    queue.dir.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        gone.wait()
    alive = {"id": "a" * 32, "pid": os.getpid(), "changes": []}
    dead = {"id": "b" * 32, "pid": gone.pid, "changes": []}
    (queue.dir / f"req-1-{alive['id']}.json").write_text(json.dumps(alive))
    (queue.dir / f"req-2-{dead['id']}.json").write_text(json.dumps(dead))
    (queue.dir / f"claimed-3-{'c' * 32}-{gone.pid}.json").write_text(json.dumps({**dead, "id": "c" * 32}))
    assert [request["id"] for _name, request in queue.left()] == []
    assert [request["id"] for _name, request in queue.claim()] == [alive["id"]]
    assert sorted(os.listdir(queue.dir)) == [f"claimed-1-{alive['id']}-{os.getpid()}.json"]
