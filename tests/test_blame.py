"""Blame (who last set each field) and time travel (``--at``, ``?at=``), through real repositories:
records written by the API with different authors and by the git binary in a clone, pushed."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from helpers import git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitrecords import Record, Repository, _git
from gitrecords.blame import AtError, escape, find_revision, leaves, parse_at
from gitrecords.errors import NoResultFound, RecordDeletedError

RID = "deadbeef-9fe4-43d3-a08f-38c2b309afba"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
DAY = 86_400
ANN, BOB, CAROL, DAVE, EVE, FAY = (
    f"{name} <{name.lower()}@example.org>" for name in ("Ann", "Bob", "Carol", "Dave", "Eve", "Fay")
)


def when(monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    """The next commits (by gitrecords or the git binary) are dated ``seconds``."""
    for name in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.setenv(name, f"{seconds} +0000")


def who(entries: list[Any]) -> dict[str, tuple[int, str]]:
    return {e.pointer: (e.revision_id, e.author_name) for e in entries}


def commit_of(repo: Repository, revision: int) -> str:
    return repo.index.revisions(uuid.UUID(RID))[revision].commit_id


# -- the lifecycle -------------------------------------------------------------


def test_blame_through_create_update_patch_revert_delete_undelete(repo: Repository) -> None:
    first = {"title": "a", "year": 2000, "n": 1, "creators": [{"name": "x"}], "meta": {}, "a/b~c": "odd"}
    record = Record.create(first, repo=repo, id_=RID, author=ANN, message="first")
    assert who(record.blame()) == {
        "/a~1b~0c": (0, "Ann"),
        "/creators/0/name": (0, "Ann"),
        "/meta": (0, "Ann"),
        "/n": (0, "Ann"),
        "/title": (0, "Ann"),
        "/year": (0, "Ann"),
    }
    # the order is the document's (canonical: sorted keys), the values are the record's
    assert [(e.pointer, e.value) for e in record.blame()] == list(
        leaves(json.loads(json.dumps(record, sort_keys=True)))
    )

    patched = record.patch(
        [
            {"op": "replace", "path": "/title", "value": "b"},
            {"op": "add", "path": "/keywords", "value": ["k"]},
        ]
    ).commit(author=BOB, message="retitle\n\nwith a body")
    blamed = who(repo.blame(RID))
    assert blamed["/title"] == (1, "Bob") and blamed["/keywords/0"] == (1, "Bob")
    assert blamed["/year"] == (0, "Ann") and blamed["/creators/0/name"] == (0, "Ann")
    entry = next(e for e in repo.blame(RID) if e.pointer == "/title")
    assert entry.commit == commit_of(repo, 1) == git(repo, "rev-parse", "main").strip()
    assert (entry.author_email, entry.message) == ("bob@example.org", entry.message)
    assert entry.message.startswith("retitle\n\nwith a body")

    # a whole new body: equal values keep their setter, 1 -> 1.0 is a change, [] is a leaf
    patched.clear()
    patched.update(
        {"title": "b", "year": 2001, "n": 1.0, "creators": [{"name": "x"}], "meta": {}, "keywords": []}
    )
    patched["a/b~c"] = "odd"
    patched.commit(author=CAROL)
    assert who(repo.blame(RID)) == {
        "/a~1b~0c": (0, "Ann"),
        "/creators/0/name": (0, "Ann"),
        "/keywords": (2, "Carol"),
        "/meta": (0, "Ann"),
        "/n": (2, "Carol"),
        "/title": (1, "Bob"),
        "/year": (2, "Carol"),
    }

    # a revert sets again what it changes, and only that
    current = Record.get_record(RID, repo=repo).revert(0, author=DAVE)
    after_revert = {
        "/a~1b~0c": (0, "Ann"),
        "/creators/0/name": (0, "Ann"),
        "/meta": (0, "Ann"),
        "/n": (3, "Dave"),
        "/title": (3, "Dave"),
        "/year": (3, "Dave"),
    }
    assert who(repo.blame(RID)) == after_revert

    # a deleted record has no fields to blame, its past has
    current.delete(author=EVE)
    with pytest.raises(RecordDeletedError, match="deleted in revision 4"):
        repo.blame(RID)
    assert who(repo.blame(RID, revision=3)) == after_revert
    assert who(repo.blame(RID, revision=1))["/title"] == (1, "Bob")
    with pytest.raises(NoResultFound, match="no revision 9"):
        repo.blame(RID, revision=9)

    # an undelete brings the last data back: nobody set anything
    Record.get_record(RID, repo=repo, with_deleted=True).undelete(author=FAY)
    assert who(repo.blame(RID)) == after_revert

    # reverting a deleted record to an older live revision attributes what differs from the last live data
    Record.get_record(RID, repo=repo).delete(author=EVE)
    Record.get_record(RID, repo=repo, with_deleted=True).revert(2, author=FAY)
    blamed = who(repo.blame(RID))
    assert (
        blamed["/year"] == (7, "Fay") and blamed["/keywords"] == (7, "Fay") and blamed["/title"] == (7, "Fay")
    )
    assert blamed["/creators/0/name"] == (0, "Ann")


def test_a_record_that_never_existed(repo: Repository) -> None:
    with pytest.raises(NoResultFound, match="does not exist"):
        repo.blame(RID)
    with pytest.raises(NoResultFound, match="does not exist"):
        find_revision(repo, RID, 0)


def test_an_empty_record_is_one_leaf_the_root(repo: Repository) -> None:
    Record.create({}, repo=repo, id_=RID, author=ANN)
    assert who(repo.blame(RID)) == {"": (0, "Ann")}


def test_json_pointer_escaping() -> None:
    assert escape("a/b~c") == "a~1b~0c"
    assert escape("~1") == "~01"
    data = {"": {"x": []}, "~": {"/": None}, "l": [{}, 0]}
    assert list(leaves(data)) == [("//x", []), ("/~0/~1", None), ("/l/0", {}), ("/l/1", 0)]


# -- commits made with plain git --------------------------------------------------


def run_git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def git_commit(clone: Path, path: str, data: dict[str, Any], author: tuple[str, str], message: str) -> str:
    (clone / path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    who = {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1]}
    committer = {"GIT_COMMITTER_NAME": "Server", "GIT_COMMITTER_EMAIL": "server@example.org"}
    run_git(clone, "add", path)
    run_git(clone, "commit", "-q", "-m", message, env={**who, **committer})
    return run_git(clone, "rev-parse", "HEAD").strip()


def test_commits_made_with_git_and_pushed(repo: Repository, tmp_path: Path) -> None:
    Record.create({"title": "a", "year": 1999, "tags": ["x"]}, repo=repo, id_=RID, author=ANN)
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(repo.git_dir), str(clone))
    path = repo.path_for(uuid.UUID(RID))
    gus = git_commit(
        clone, path, {"title": "a", "year": 2000, "tags": ["x", "y"]}, ("Gus", "gus@x.org"), "Fix year"
    )
    run_git(clone, "push", "-q", "origin", "main")
    Record.get_record(RID, repo=repo).patch([{"op": "replace", "path": "/title", "value": "b"}]).commit(
        author=BOB
    )
    run_git(clone, "pull", "-q", "--ff-only")
    hal = git_commit(
        clone, path, {"title": "b", "year": 2000, "tags": ["z", "y"]}, ("Hal", "hal@x.org"), "Retag"
    )
    run_git(clone, "push", "-q", "origin", "main")

    entries = {e.pointer: e for e in repo.blame(RID)}
    assert {p: (e.revision_id, e.author_name, e.author_email) for p, e in entries.items()} == {
        "/tags/0": (3, "Hal", "hal@x.org"),
        "/tags/1": (1, "Gus", "gus@x.org"),
        "/title": (2, "Bob", "bob@example.org"),
        "/year": (1, "Gus", "gus@x.org"),
    }
    assert entries["/year"].commit == gus and entries["/tags/0"].commit == hal
    assert entries["/year"].message == "Fix year"
    # the time is the commit's, as git log shows it
    shown = git(repo, "log", "-1", "--format=%ct", gus).strip()
    assert entries["/year"].time == datetime.fromtimestamp(int(shown), UTC)


# -- the cost ----------------------------------------------------------------------


def counting(monkeypatch: pytest.MonkeyPatch, repo: Repository) -> dict[str, int]:
    """Count the record files read and the commits looked up."""
    counts = {"files": 0, "commits": 0}
    read_file, commit_info = repo.read_record_file, _git.commit_info

    def read(*args: Any, **kwargs: Any) -> Any:
        counts["files"] += 1
        return read_file(*args, **kwargs)

    def info(*args: Any, **kwargs: Any) -> Any:
        counts["commits"] += 1
        return commit_info(*args, **kwargs)

    monkeypatch.setattr(repo, "read_record_file", read)
    monkeypatch.setattr(_git, "commit_info", info)
    return counts


def test_the_cost_follows_the_records_revisions_not_the_repository(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = Record.create({"title": "a", "year": 1}, repo=repo, id_=RID, author=ANN)
    record["title"] = "b"
    record.commit(author=BOB)
    repo.import_records([{"title": f"other {n}"} for n in range(30)])  # one commit, many records
    others = [Record.create({"title": f"o{n}"}, repo=repo) for n in range(10)]
    record = Record.get_record(RID, repo=repo)
    record["year"] = 2
    record.commit(author=CAROL)
    for other in others:
        other["title"] += "!"
        other.commit()

    counts = counting(monkeypatch, repo)
    before = who(repo.blame(RID))
    assert counts == {"files": 3, "commits": 2}  # three revisions read; the two that set the leaves

    for other in others:
        other["title"] += "?"
        other.commit()
    repo.import_records([{"title": f"more {n}"} for n in range(30)])
    counts.update(files=0, commits=0)
    assert who(repo.blame(RID)) == before == {"/title": (1, "Bob"), "/year": (2, "Carol")}
    assert counts == {"files": 3, "commits": 2}


# -- a property: blame is what a brute-force walk gives ------------------------------

KEYS = st.sampled_from(["a", "b", "a/b", "~"])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.sampled_from([0, 1, 1.0, 2]), st.sampled_from(["", "x", "y"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=6,
)
DOCS = st.dictionaries(KEYS, VALUES, max_size=4)
AUTHORS = st.sampled_from([ANN, BOB, CAROL])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), DOCS, AUTHORS),
        # small edits at the same few pointers, so values change in place (1 -> 1.0 -> true, x -> {})
        st.tuples(
            st.just("set"),
            st.lists(st.tuples(KEYS, st.none() | KEYS, VALUES), min_size=1, max_size=3),
            AUTHORS,
        ),
        st.tuples(st.just("delete"), st.none(), AUTHORS),
        st.tuples(st.just("revert"), st.integers(min_value=0, max_value=10), AUTHORS),
    ),
    min_size=1,
    max_size=8,
)


def brute_force(history: list[tuple[int, dict[str, Any] | None, str]]) -> dict[str, tuple[int, str]]:
    """For each leaf of the last live revision: walk back over the live revisions while the value
    at its pointer (resolved in the whole document, JSON types compared as JSON text) stays."""

    def resolve(data: Any, pointer: str) -> str | None:
        for token in pointer.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(data, dict) and token in data:
                data = data[token]
            elif isinstance(data, list) and token.isdigit() and int(token) < len(data):
                data = data[int(token)]
            else:
                return None
        return json.dumps(data, sort_keys=True)

    live = [(revision, data, author) for revision, data, author in history if data is not None]
    final = live[-1][1]
    answer = {}
    for pointer, _ in leaves(final):
        value = resolve(final, pointer)
        index = len(live) - 1
        while index > 0 and resolve(live[index - 1][1], pointer) == value:
            index -= 1
        answer[pointer] = (live[index][0], live[index][2].split(" <")[0])
    return answer


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=DOCS, first_author=AUTHORS, steps=STEPS)
def test_blame_equals_a_brute_force_walk(first: dict[str, Any], first_author: str, steps: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as where:
        repo = Repository.init(Path(where) / "data.git")
        record = Record.create(first, repo=repo, id_=RID, author=first_author)
        history: list[tuple[int, dict[str, Any] | None, str]] = [
            (0, json.loads(json.dumps(first)), first_author)
        ]
        for kind, arg, author in steps:
            record = Record.get_record(RID, repo=repo, with_deleted=True)
            before = record.revision_id
            if kind in ("write", "set"):
                if record.is_deleted:
                    record = record.undelete(author=author)
                    history.append((record.revision_id, history_live(history), author))
                    before = record.revision_id
                if kind == "set":
                    arg = edited(dict(record), arg)
                patch = jsonpatch.make_patch(dict(record), arg).patch
                record = record.patch(patch).commit(author=author)
            elif kind == "delete":
                if record.is_deleted:
                    continue
                record.delete(author=author)
            else:
                target = arg % len(record.revisions)
                record = record.revert(target, author=author)
            if record.revision_id != before:
                data = None if record.is_deleted else json.loads(json.dumps(dict(record)))
                history.append((record.revision_id, data, author))
        assert [r.revision for r in repo.index.revisions(uuid.UUID(RID))] == [h[0] for h in history]
        last = max(revision for revision, data, _ in history if data is not None)
        assert who(repo.blame(RID, revision=last)) == brute_force(history[: last + 1])


def edited(data: dict[str, Any], changes: list[tuple[str, str | None, Any]]) -> dict[str, Any]:
    """``data`` with ``data[key] = value`` or ``data[key][sub] = value`` (when ``data[key]`` is an object)."""
    data = json.loads(json.dumps(data))
    for key, sub, value in changes:
        if sub is not None and isinstance(data.get(key), dict):
            data[key][sub] = value
        else:
            data[key] = value
    return data


def history_live(history: list[tuple[int, dict[str, Any] | None, str]]) -> dict[str, Any] | None:
    return next(data for _, data, _ in reversed(history) if data is not None)


# -- time travel ---------------------------------------------------------------------


@pytest.fixture
def dated(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> Repository:
    """Revision 0 on day 0 (by Ann), 1 on day 2 (Bob), 2 on day 4 (a soft delete), 3 on day 6 (undelete)."""
    when(monkeypatch, T0)
    record = Record.create({"title": "a"}, repo=repo, id_=RID, author=ANN)
    when(monkeypatch, T0 + 2 * DAY)
    record["title"] = "b"
    record.commit(author=BOB)
    when(monkeypatch, T0 + 4 * DAY)
    record.delete(author=EVE)
    when(monkeypatch, T0 + 6 * DAY)
    record.undelete(author=FAY)
    monkeypatch.delenv("GIT_AUTHOR_DATE")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    return repo


def test_parse_at() -> None:
    assert parse_at("3") == 3 and parse_at(3) == 3
    assert parse_at("2023-11-14") == datetime(2023, 11, 14, 23, 59, 59, 999999, UTC)
    assert parse_at(date(2023, 11, 14)) == datetime(2023, 11, 14, 23, 59, 59, 999999, UTC)
    assert parse_at("2023-11-14T10:00:00") == datetime(2023, 11, 14, 10, tzinfo=UTC)
    assert parse_at("2023-11-14T10:00:00Z") == datetime(2023, 11, 14, 10, tzinfo=UTC)
    assert parse_at("2023-11-14 12:00+02:00") == datetime(2023, 11, 14, 10, tzinfo=UTC)
    assert parse_at("HEAD~1") == "HEAD~1" and parse_at("4f2a9c1") == "4f2a9c1"
    assert parse_at("9" * 18) == int("9" * 18)
    # a revision id no record reaches (past 4,300 digits int() refuses the text: a 500 over HTTP)
    for bad in ("2023-13-01", "2023-11-14Tnoon", "", -1, True, "9" * 19, "9" * 4301):
        with pytest.raises(AtError):
            parse_at(bad)


@pytest.mark.parametrize(
    ("at", "revision"),
    [
        ("0", 0),
        (2, 2),
        ("2023-11-14", 0),  # a date is the end of that day: revision 0 was made that evening
        ("2023-11-14T22:13:20Z", 0),  # at or before: the very second
        ("2023-11-15", 0),
        ("2023-11-16T22:13:19Z", 0),
        ("2023-11-16T23:13:20+01:00", 1),
        ("2023-11-17", 1),
        ("2023-11-19", 2),  # deleted then
        ("2030-01-01", 3),
        (datetime(2023, 11, 17, tzinfo=UTC), 1),
        ("main", 3),
        ("main~2", 1),
        ("HEAD~3", 0),
    ],
)
def test_find_revision(dated: Repository, at: Any, revision: int) -> None:
    assert find_revision(dated, RID, at) == revision


def test_find_revision_by_commit_id(dated: Repository, repo: Repository) -> None:
    for revision in range(4):
        commit = commit_of(repo, revision)
        assert find_revision(dated, RID, commit) == revision
        assert find_revision(dated, RID, commit[:8]) == revision
    # a commit of the branch that did not touch the record: the revision current then
    Record.create({"title": "other"}, repo=repo)
    assert find_revision(dated, RID, str(repo.tip())) == 3
    revision = Record.get_record(RID, repo=repo).revision_at(commit_of(repo, 1))
    assert (revision.revision_id, dict(revision)) == (1, {"title": "b"})


def test_find_revision_errors(dated: Repository, repo: Repository, tmp_path: Path) -> None:
    with pytest.raises(
        NoResultFound, match=r"did not exist yet at 2023-11-13: it was created at 2023-11-14T22:13:20"
    ):
        find_revision(dated, RID, "2023-11-13")
    with pytest.raises(NoResultFound, match=r"has no revision 4 \(it has revisions 0 to 3\)"):
        find_revision(dated, RID, "4")
    with pytest.raises(AtError, match="'nonsense' is not a revision id, an ISO 8601 date or a commit"):
        find_revision(dated, RID, "nonsense")
    # a commit before the record was created
    other = Repository.init(tmp_path / "second.git")
    Record.create({"title": "first"}, repo=other)
    Record.create({"title": "a"}, repo=other, id_=RID)
    with pytest.raises(NoResultFound, match="did not exist yet at commit"):
        find_revision(other, RID, "main~1")
    # a commit outside the branch's first-parent history
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(repo.git_dir), str(clone))
    run_git(clone, "checkout", "-q", "-b", "side")
    git_commit(
        clone, repo.path_for(uuid.UUID(RID)), {"title": "side"}, ("Gus", "gus@x.org"), "On a side branch"
    )
    run_git(clone, "push", "-q", "origin", "side")
    with pytest.raises(NoResultFound, match="not in the first-parent history of branch main"):
        find_revision(repo, RID, "side")


# -- the CLI -------------------------------------------------------------------------


def test_cli_blame_json_and_table(gr, dated: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    result = gr(dated, "blame", RID, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows == [
        {
            "pointer": "/title",
            "revision_id": 1,
            "commit": commit_of(dated, 1),
            "author": {"name": "Bob", "email": "bob@example.org"},
            "time": "2023-11-16T22:13:20+00:00",
            "message": rows[0]["message"],
        }
    ]
    assert rows[0]["message"].startswith(f"update record {RID}")
    at = json.loads(gr(dated, "blame", RID, "--at", "2023-11-15", "--json").stdout)
    assert [(r["pointer"], r["revision_id"]) for r in at] == [("/title", 0)]

    monkeypatch.setenv("COLUMNS", "60")
    table = gr(dated, "blame", RID).stdout.splitlines()
    assert table[0].split() == ["pointer", "rev", "commit", "author", "date", "message"]
    assert table[2].split()[:5] == ["/title", "1", commit_of(dated, 1)[:7], "Bob", "2023-11-16"]
    assert all(len(line) <= 60 for line in table)

    Record.get_record(RID, repo=dated).delete()
    deleted = gr(dated, "blame", RID)
    assert deleted.exit_code == 1 and "is deleted in revision 4" in deleted.stderr


def test_cli_get_at(gr, dated: Repository) -> None:
    def get(*args: str) -> Any:
        return gr(dated, "get", RID, *args)

    assert json.loads(get("--at", "0").stdout) == {"title": "a"}
    assert json.loads(get("--at", "2023-11-17").stdout) == {"title": "b"}
    shown = json.loads(get("--at", commit_of(dated, 1)[:10], "--json").stdout)
    assert (shown["revision_id"], shown["data"], shown["is_deleted"]) == (1, {"title": "b"}, False)
    assert json.loads(get("--at", "main~3", "--json").stdout)["revision_id"] == 0

    gone = get("--at", "2023-11-19")  # deleted then: an error, as plain get and REST's ?at= (410)
    assert (gone.exit_code, gone.stdout) == (1, "")
    assert f"record {RID} is deleted in revision 2 (use --with-deleted to show it)" in gone.stderr
    shown = get("--at", "2023-11-19", "--with-deleted")  # asked for: {} with a note
    assert (shown.exit_code, shown.stdout.strip()) == (0, "{}")
    assert f"record {RID} is deleted in revision 2" in shown.stderr
    assert get("--revision", "2").exit_code == 1

    early = get("--at", "2023-11-13")
    assert early.exit_code == 1
    assert early.stderr == (
        f"Error: record {RID} did not exist yet at 2023-11-13: it was created at 2023-11-14T22:13:20+00:00\n"
    )
    bad = get("--at", "2023-02-30")
    assert (
        bad.exit_code == 2
        and "Invalid value for '--at': '2023-02-30' is not a valid ISO 8601 date" in bad.stderr
    )
    unknown = get("--at", "no-such-ref")
    assert unknown.exit_code == 2 and "is not a revision id, an ISO 8601 date or a commit" in unknown.stderr
    both = get("--at", "0", "--revision", "1")
    assert (both.exit_code, both.stderr) == (
        2,
        "Error: give --revision or --at, not both (--at also takes a revision id)\n",
    )
