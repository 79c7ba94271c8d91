"""Several real processes writing to one bare repository: nothing lost, nothing doubled."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue as queues
import subprocess
import threading
import time
import traceback
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitrecords import Record, Repository, StaleRevisionError, layout
from gitrecords.worktree import WorkingClone
from gitrecords.writer import WritePath

SPAWN = multiprocessing.get_context("spawn")
TIMEOUT = 120  # seconds; a bound for a hung child, never a way to wait for one


# The spawned workers import this module; it does not import conftest, because which
# conftest.py a child finds as "conftest" depends on its sys.path (there is one at the root).
def git(repo: Repository, *args: str) -> str:
    proc = subprocess.run(["git", "--git-dir", str(repo.git_dir), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def fsck(repo: Repository) -> None:
    git(repo, "fsck", "--strict", "--no-progress")


def blob_of(data: dict[str, Any]) -> str:
    return str(pygit2.hash(layout.dumps(data)))


def blob_history(repo: Repository, path: str) -> list[str]:
    out = git(
        repo, "log", "--first-parent", "--reverse", "--format=", "--raw", "--no-abbrev", "main", "--", path
    )
    return [line.split()[3] for line in out.splitlines() if line.startswith(":")]


# -- workers (run in spawned processes: module-level, results through a queue) ---------------


def without_lock_file() -> None:
    """Leave only the compare-and-swap on the ref to keep writers apart (as for writers that do
    not share the lock file, e.g. on other machines or older versions)."""
    WritePath.lock = lambda self: contextlib.nullcontext()  # type: ignore[method-assign]
    # nor the queue of group commit, which is for writers that share the lock file
    WritePath._groups = lambda self, locked, prebuilt: False  # type: ignore[method-assign]


def bulk_worker(
    path: str, worker: int, count: int, counter_id: str, locking: bool, start: Any, queue: Any
) -> None:
    """Creates and updates its own records; now and then increments a shared counter."""
    try:
        if not locking:
            without_lock_file()
        repo = Repository(path)
        start.wait(timeout=TIMEOUT)  # all workers begin writing together
        acked: list[tuple[str, str, int]] = []  # (record id, blob, revision id) of each acknowledged write
        commits = increments = conflicts = 0
        mine: list[Record] = []
        for i in range(count):
            if i % 10 == 9:
                with repo.transaction(message=f"worker {worker} batch {i}"):
                    pair = [Record.create({"worker": worker, "i": i, "part": p}, repo=repo) for p in range(2)]
                mine.extend(pair)
                acked.extend((str(r.id), blob_of(dict(r)), r.revision_id) for r in pair)
                commits += 1
            elif i % 3 == 0 or not mine:
                rec = Record.create({"worker": worker, "i": i}, repo=repo)
                mine.append(rec)
                acked.append((str(rec.id), blob_of(dict(rec)), rec.revision_id))
                commits += 1
            else:
                rec = mine[i % len(mine)]
                rec["i"] = i
                rec.commit()
                acked.append((str(rec.id), blob_of(dict(rec)), rec.revision_id))
                commits += 1
            if i % 4 == 0:
                while True:  # read, modify, write; on a conflict read again
                    counter = Record.get_record(counter_id, repo=repo)
                    counter["count"] += 1
                    counter["last"] = f"{worker}/{i}"
                    try:
                        counter.commit()
                    except StaleRevisionError:
                        conflicts += 1
                        continue
                    increments += 1
                    commits += 1
                    break
        queue.put(
            {
                "worker": worker,
                "acked": acked,
                "commits": commits,
                "increments": increments,
                "conflicts": conflicts,
            }
        )
    except BaseException:
        queue.put({"worker": worker, "error": traceback.format_exc()})


def rival_worker(path: str, worker: int, record_id: str, rounds: int, barrier: Any, queue: Any) -> None:
    """Reads the record, waits until the rival has read it too, then both commit."""
    try:
        repo = Repository(path)
        results = []
        for round_ in range(rounds):
            rec = Record.get_record(record_id, repo=repo)
            read_revision = rec.revision_id
            barrier.wait(timeout=TIMEOUT)  # both copies are now of the same revision
            rec["by"] = worker
            rec["round"] = round_
            try:
                rec.commit()
                results.append(("won", round_, read_revision, rec.revision_id, blob_of(dict(rec))))
            except StaleRevisionError as err:
                results.append(("lost", round_, read_revision, str(err), blob_of(dict(rec))))
            barrier.wait(timeout=TIMEOUT)  # both writes are done before the next read
        queue.put({"worker": worker, "results": results})
    except BaseException:
        queue.put({"worker": worker, "error": traceback.format_exc()})


def collect(processes: list[Any], queue: Any) -> list[dict[str, Any]]:
    """Start the workers and gather one result from each; fail at once if one dies without one."""
    for process in processes:
        process.start()
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT
    while len(results) < len(processes):
        try:
            results.append(queue.get(timeout=1))
        except queues.Empty:
            crashed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            assert not crashed, f"a worker died with exit code {crashed[0]} (see its stderr above)"
            assert time.monotonic() < deadline, "the workers did not finish"
    for process in processes:
        process.join(timeout=TIMEOUT)
        assert process.exitcode == 0
    errors = [r["error"] for r in results if "error" in r]
    assert not errors, "\n".join(errors)
    return sorted(results, key=lambda r: r["worker"])


# -- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("locking", [True, False], ids=["lock-file", "compare-and-swap-only"])
def test_processes_writing_at_once_lose_nothing(tmp_path: Path, locking: bool) -> None:
    repo = Repository.init(tmp_path / "data.git")
    counter = Record.create({"count": 0}, repo=repo)
    workers, count = 4, 30
    queue = SPAWN.Queue()
    start = SPAWN.Barrier(workers)
    processes = [
        SPAWN.Process(
            target=bulk_worker, args=(str(repo.path), w, count, str(counter.id), locking, start, queue)
        )
        for w in range(workers)
    ]
    results = collect(processes, queue)
    print("conflicts on the shared counter:", [r["conflicts"] for r in results])

    # every acknowledged write is in the branch's history exactly once, in the order it was made
    by_record: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for result in results:
        for record_id, blob, revision_id in result["acked"]:
            by_record[record_id].append((blob, revision_id))
    assert len(by_record) == sum(len({a[0] for a in r["acked"]}) for r in results)
    for record_id, writes in by_record.items():
        path = layout.path_for(record_id)
        assert blob_history(repo, path) == [blob for blob, _ in writes], record_id
        assert [rev for _, rev in writes] == list(range(len(writes))), record_id
        assert Record.get_record(record_id, repo=repo).revision_id == len(writes) - 1

    # one commit per acknowledged write (or transaction), nothing else
    expected_commits = 2 + sum(r["commits"] for r in results)  # + init + the counter's creation
    assert int(git(repo, "rev-list", "--count", "main")) == expected_commits
    assert int(git(repo, "rev-list", "--count", "--all")) == expected_commits
    assert git(repo, "rev-list", "--merges", "main") == ""

    # the shared counter: no lost increment
    increments = sum(r["increments"] for r in results)
    assert increments == workers * len(range(0, count, 4))
    final = Record.get_record(counter.id, repo=repo)
    assert final["count"] == increments
    assert final.revision_id == increments
    assert [r["count"] for r in final.revisions] == list(range(increments + 1))

    # the on-disk index agrees with a rebuild from git
    reopened = Repository(repo.path)
    before = {i: reopened.index.revisions(uuid.UUID(i)) for i in by_record}
    reopened.reindex()
    assert {i: reopened.index.revisions(uuid.UUID(i)) for i in by_record} == before
    fsck(repo)


def test_two_processes_updating_the_same_record(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "data.git")
    rec = Record.create({"by": None, "round": None}, repo=repo)
    rounds = 5
    queue = SPAWN.Queue()
    barrier = SPAWN.Barrier(2)
    processes = [
        SPAWN.Process(target=rival_worker, args=(str(repo.path), w, str(rec.id), rounds, barrier, queue))
        for w in range(2)
    ]
    results = collect(processes, queue)

    winners: list[tuple[int, str]] = []
    for round_ in range(rounds):
        outcomes = [next(r for r in result["results"] if r[1] == round_) for result in results]
        assert sorted(o[0] for o in outcomes) == ["lost", "won"], outcomes
        assert outcomes[0][2] == outcomes[1][2] == round_  # both read the same revision
        won = next(o for o in outcomes if o[0] == "won")
        lost = next(o for o in outcomes if o[0] == "lost")
        assert won[3] == round_ + 1
        assert "changed since it was read" in lost[3]
        winner = outcomes.index(won)
        winners.append((winner, won[4]))

    # the winners' writes are the history; the losers' data was never written
    final = Record.get_record(rec.id, repo=repo)
    assert final.revision_id == rounds
    assert [(r["by"], r["round"]) for r in list(final.revisions)[1:]] == [
        (w, n) for n, (w, _) in enumerate(winners)
    ]
    assert blob_history(repo, repo.path_for(rec.id))[1:] == [blob for _, blob in winners]
    lost_blobs = {o[4] for result in results for o in result["results"] if o[0] == "lost"}
    for blob in lost_blobs:
        assert blob not in blob_history(repo, repo.path_for(rec.id))
    assert int(git(repo, "rev-list", "--count", "main")) == 2 + rounds
    fsck(repo)


def test_threads_sharing_one_repository_object(repo: Repository) -> None:
    counter = Record.create({"count": 0}, repo=repo)
    errors: list[BaseException] = []
    created: list[uuid.UUID] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            for i in range(10):
                rec = Record.create({"thread": n, "i": i}, repo=repo)
                with lock:
                    created.append(rec.id)
                while True:
                    copy_ = Record.get_record(counter.id, repo=repo)
                    copy_["count"] += 1
                    try:
                        copy_.commit()
                        break
                    except StaleRevisionError:
                        continue
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    assert not errors
    assert len(set(created)) == 40
    assert set(repo.ids()) == {*created, counter.id}
    assert Record.get_record(counter.id, repo=repo)["count"] == 40
    assert int(git(repo, "rev-list", "--count", "main")) == 1 + 1 + 40 + 40
    fsck(repo)


@pytest.mark.parametrize("durable", [True, False])
def test_a_write_survives_a_fresh_open(tmp_path: Path, durable: bool) -> None:
    repo = Repository.init(tmp_path / "data.git", durable=durable)
    rec = Record.create({"t": 1}, repo=repo)
    assert Record.get_record(rec.id, repo=Repository(repo.path)) == {"t": 1}
    fsck(repo)


def sneak_in_before_next_write(
    repo: Repository, record_id: Any, title: str, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Make another writer commit ``record_id`` (as "sneaked in") just before ``repo``'s next
    write builds its commit, bypassing the lock, so only the compare-and-swap protects
    that write; returns a list that then holds the sneaked commit's id."""
    other = Repository(repo.path)
    monkeypatch.setattr(other.writer, "lock", contextlib.nullcontext)
    other.writer.group_commit = False  # nor the queue (for writers that share the lock file)
    their_copy = Record.get_record(record_id, repo=other)
    original = WorkingClone.check
    sneaked: list[str] = []

    def sneak(self: WorkingClone, tip: Any, changes: Any) -> None:
        if self is repo.working_clone and not sneaked:
            their_copy["t"] = title
            their_copy.commit(message="sneaked in")
            sneaked.append(git(repo, "rev-parse", "main").strip())
        original(self, tip, changes)

    monkeypatch.setattr(WorkingClone, "check", sneak)
    return sneaked


def test_a_write_is_rebased_when_the_branch_moved(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    """The branch moves between reading the tip and moving the ref: the commit is rebuilt on the
    new tip, because it touches another record."""
    mine = Record.create({"t": "mine v0"}, repo=repo)
    theirs = Record.create({"t": "theirs v0"}, repo=repo)
    base = git(repo, "rev-parse", "main").strip()
    sneaked = sneak_in_before_next_write(repo, theirs.id, "theirs v1", monkeypatch)
    mine["t"] = "mine v1"
    mine.commit(message="mine")
    assert git(repo, "log", "--format=%s", f"{base}..main").splitlines() == ["mine", "sneaked in"]
    assert git(repo, "rev-parse", "main~1").strip() == sneaked[0]
    assert Record.get_record(theirs.id, repo=repo) == {"t": "theirs v1"}
    assert Record.get_record(mine.id, repo=repo) == {"t": "mine v1"}
    assert mine.revision_id == 1
    fsck(repo)


def test_a_write_is_refused_when_its_record_changed_meanwhile(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Record.create({"t": "v0"}, repo=repo)
    sneaked = sneak_in_before_next_write(repo, rec.id, "theirs", monkeypatch)
    rec["t"] = "mine"
    with pytest.raises(StaleRevisionError):
        rec.commit(message="mine")
    assert git(repo, "rev-parse", "main").strip() == sneaked[0]
    assert Record.get_record(rec.id, repo=repo) == {"t": "theirs"}
    fsck(repo)


def test_processes_writing_to_a_working_clone_at_once(tmp_path: Path) -> None:
    """Hundreds of mixed writes (creates, updates, batches, read-modify-write of a shared record)
    from 4 processes into a non-bare clone: every acknowledged write is in the history exactly
    once, and the checked-out files and git's index end up equal to the branch."""
    server = Repository.init(tmp_path / "server.git")
    subprocess.run(["git", "clone", "--quiet", f"file://{server.path}", str(tmp_path / "work")], check=True)
    repo = Repository(tmp_path / "work")
    counter = Record.create({"count": 0}, repo=repo)
    workers, count = 4, 30
    queue = SPAWN.Queue()
    start = SPAWN.Barrier(workers)
    processes = [
        SPAWN.Process(
            target=bulk_worker, args=(str(repo.path), w, count, str(counter.id), True, start, queue)
        )
        for w in range(workers)
    ]
    results = collect(processes, queue)
    acked = [write for result in results for write in result["acked"]]
    increments = sum(r["increments"] for r in results)
    assert len(acked) + increments >= 150  # hundreds of writes

    by_record: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for record_id, blob, revision_id in acked:
        by_record[record_id].append((blob, revision_id))
    for record_id, writes in by_record.items():
        assert blob_history(repo, layout.path_for(record_id)) == [blob for blob, _ in writes], record_id
        assert [rev for _, rev in writes] == list(range(len(writes))), record_id
    assert Record.get_record(counter.id, repo=repo)["count"] == increments
    expected_commits = 2 + sum(r["commits"] for r in results)
    assert int(git(repo, "rev-list", "--count", "main")) == expected_commits

    work = repo.path
    status = subprocess.run(
        ["git", "-C", str(work), "status", "--porcelain"], capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
    for record_id in by_record:
        path = layout.path_for(record_id)
        assert (work / path).read_bytes() == git(repo, "show", f"main:{path}").encode()
    fsck(repo)
