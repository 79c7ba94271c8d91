"""The search index as derived data (issue 17, "Proof"): a hard delete leaves nothing of the purged
record in the index's files, a process killed with SIGKILL while the index is updated leaves a
state the next command catches up from, and the cases the property tests found, one by one.

Most tests compare the repository's index with one built from scratch (``assert_equals_rebuild``
of tests/test_search_properties.py: every row, and the answers of a fixed set of queries).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pygit2
import pytest
from helpers import fsck, git
from test_search_properties import assert_equals_rebuild

from gitrecords import GitRecordsError, NoResultFound, Record, Repository, _git, layout, replication
from gitrecords.index import RevisionIndex
from gitrecords.search_index import SearchIndex

UNIQUE = "Zanzibarquux"  # a word no other record has


def index_files(repo: Repository) -> list[Path]:
    folder = repo.git_dir / "gitrecords"
    return sorted(p for p in folder.iterdir() if p.name.startswith(f"search-{repo.branch}.sqlite"))


def index_bytes(repo: Repository) -> bytes:
    """The raw bytes of the search index's files: the database, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in index_files(repo))


def leaks(repo: Repository, *texts: str) -> list[str]:
    """The ``texts`` found in the index's files, in any case (FTS keeps words folded)."""
    raw = index_bytes(repo).lower()
    return [t for t in texts if t.lower().encode() in raw]


@pytest.fixture
def indexed(tmp_path: Path) -> Repository:
    """A repository whose search index exists (the first search makes it) with 30 records; facet
    counts are kept for its notes and tags (so a purge must take values out of those too)."""
    repo = Repository.init(tmp_path / "data.git", config={"facets": {"note": "notes", "tag": "tags"}})
    repo.search("")
    repo.import_records([{"title": f"record {n}", "n": n, "tags": ["kept", f"t{n % 3}"]} for n in range(30)])
    return repo


# -- hard delete: nothing purged stays in the files --------------------------------------------------


def test_a_purged_record_leaves_no_word_in_the_index_files(indexed: Repository) -> None:
    secret = Record.create(
        {"title": f"{UNIQUE} Expedition", "notes": ["Flobbergast island"], "year": 987654321}, repo=indexed
    )
    kept = Record.get_record(indexed.search("n:3").ids[0], repo=indexed)
    kept["title"] = "record 3, updated after the secret"
    kept.commit()
    assert indexed.search(UNIQUE.lower()).ids == [secret.id]
    assert leaks(indexed, UNIQUE, "flobbergast")  # the test can see them before

    indexed.hard_delete([secret.id])

    for q in (UNIQUE, "flobbergast", "expedition", "year:987654321", f'"{UNIQUE} expedition"'):
        assert indexed.search(q, with_deleted=True).total == 0, q
    assert indexed.search("").total == 30
    assert leaks(indexed, UNIQUE, "flobbergast", "987654321") == []
    assert_equals_rebuild(indexed)
    fsck(indexed)


@pytest.mark.parametrize("branch", ["this one", "another one"])
def test_a_purged_record_leaves_no_word_in_the_pages_a_bulk_edit_freed(
    indexed: Repository, monkeypatch: pytest.MonkeyPatch, branch: str
) -> None:
    """A bulk edit of most records writes the full-text table again and drops the old one without
    overwriting its pages with zeros: they keep the words the records had. A hard delete then
    overwrites every free page first, in this branch's index and in another branch's: the
    purged record's old words leave the file too."""
    from gitrecords import search_index
    from gitrecords.edit import SetFields

    monkeypatch.setattr(search_index, "BULK", 10)
    secret = Record.create({"title": f"{UNIQUE} Expedition", "n": 99}, repo=indexed)
    if branch == "another one":
        git(indexed, "branch", "other", indexed.branch)
        searched = Repository(indexed.path, branch="other")
    else:
        searched = indexed
    searched.search("")
    # every record, the secret's title too: the full-text table is written again
    edit = searched.update_records("", SetFields(set=[("/title", "renamed")]))
    assert edit.changed == 31 and searched.search(UNIQUE).total == 0
    conn = searched.search_index._conn
    assert conn.execute("SELECT value FROM meta WHERE key = 'unzeroed'").fetchone() == ("1",)
    assert leaks(searched, UNIQUE)  # in the pages of the old full-text table, free now
    if branch == "another one":
        searched.close()
        indexed.search("")
    indexed.hard_delete([secret.id])

    files = sorted((indexed.git_dir / "gitrecords").glob("search-*.sqlite*"))
    assert len(files) >= (2 if branch == "another one" else 1)
    raw = b"".join(p.read_bytes() for p in files).lower()
    assert UNIQUE.lower().encode() not in raw and b"expedition" not in raw
    again = Repository(indexed.path, branch="other") if branch == "another one" else indexed
    marked = again.search_index._conn.execute("SELECT value FROM meta WHERE key = 'unzeroed'").fetchone()
    assert marked is None
    assert again.search("renamed").total == 30
    assert_equals_rebuild(again)
    fsck(indexed)


def test_a_build_overwrites_the_pages_a_bulk_edit_freed(indexed: Repository, monkeypatch) -> None:
    """When a hard delete's step in the search index fails (the file busy), the next read builds
    the index again: the build overwrites the pages a bulk edit freed without zeros, so no word
    of the purged record stays in the file (found by a review)."""
    from gitrecords import search_index
    from gitrecords.edit import SetFields

    monkeypatch.setattr(search_index, "BULK", 10)
    secret = Record.create({"title": f"{UNIQUE} Expedition", "n": 99}, repo=indexed)
    indexed.search("")
    indexed.update_records("", SetFields(set=[("/title", "renamed")]))
    assert leaks(indexed, UNIQUE)  # in the pages of the old full-text table, free now

    def busy(self, *args):  # type: ignore[no-untyped-def]
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as failing:
        failing.setattr(SearchIndex, "rewritten", busy)
        indexed.hard_delete([secret.id])  # its index step fails: logged, rebuilt on the next read
    assert indexed.search("renamed").total == 30
    assert leaks(indexed, UNIQUE, "expedition") == []
    assert_equals_rebuild(indexed)


def test_a_change_of_format_overwrites_the_pages_a_bulk_edit_freed(
    indexed: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index of another format is emptied in its file (its tables dropped), mark and all: the
    pages a bulk edit freed without zeros are overwritten then, so a later hard delete leaves
    no word of the purged record's old version (found by a review)."""
    from gitrecords import search_index
    from gitrecords.edit import SetFields

    monkeypatch.setattr(search_index, "BULK", 10)
    secret = Record.create({"title": f"{UNIQUE} Expedition", "n": 99}, repo=indexed)
    indexed.search("")
    indexed.update_records("", SetFields(set=[("/title", "renamed")]))
    assert leaks(indexed, UNIQUE)  # in the pages of the old full-text table, free now
    indexed.close()
    monkeypatch.setattr(search_index, "FORMAT", search_index.FORMAT + "-next")  # an upgrade
    again = Repository(indexed.path)
    assert again.search("renamed").total == 31  # the same file, its tables made again
    assert leaks(again, UNIQUE) == []
    again.hard_delete([secret.id])
    assert leaks(again, UNIQUE, "expedition") == []
    assert_equals_rebuild(again)


def test_a_purged_record_leaves_no_field_name_in_the_index_files(indexed: Repository) -> None:
    """The field paths of the index (which map field names to values) keep no name only the purged
    record had."""
    secret = Record.create({"title": "a record", "QuuxConfidentialKey": "value"}, repo=indexed)
    assert indexed.search("QuuxConfidentialKey:value").ids == [secret.id]

    indexed.hard_delete([secret.id])

    assert leaks(indexed, "QuuxConfidentialKey") == []
    assert_equals_rebuild(indexed)


def test_the_purge_also_clears_a_second_process_index(indexed: Repository, tmp_path: Path) -> None:
    """Another process has the index open (a web server): the purge in this one still leaves no word
    in the files, and the other process finds nothing either."""
    secret = Record.create({"title": f"{UNIQUE} in two processes"}, repo=indexed)
    with subprocess.Popen(
        [sys.executable, "-c", READER, str(indexed.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as reader:
        assert ask(reader, UNIQUE) == 1
        indexed.hard_delete([secret.id])
        assert leaks(indexed, UNIQUE) == []  # while the other process has the files open
        assert ask(reader, UNIQUE) == 0
        assert ask(reader, "in two processes") == 0
    assert leaks(indexed, UNIQUE) == []


READER = textwrap.dedent(
    """
    import sys
    from gitrecords import Repository

    repo = Repository(sys.argv[1])
    for line in sys.stdin:
        print(repo.search(line.strip(), with_deleted=True).total, flush=True)
    """
)


def ask(reader: subprocess.Popen, q: str) -> int:
    reader.stdin.write(q + "\n")  # type: ignore[union-attr]
    reader.stdin.flush()  # type: ignore[union-attr]
    return int(reader.stdout.readline())  # type: ignore[union-attr]


# -- killed while the index is updated --------------------------------------------------------------

#: the child: opens the repository, searches once (the index exists and follows commits), marks the
#: moment the index starts writing a large change (the class is wrapped in this process only), then
#: imports (mode "import"), rebuilds (mode "reindex") or hard-deletes (mode "purge")
CHILD = textwrap.dedent(
    """
    import sys
    from gitrecords import Repository
    from gitrecords.search_index import SearchIndex

    path, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    repo = Repository(path)
    repo.search("")
    index_changes = SearchIndex._index
    rewritten = SearchIndex.rewritten

    def marked(self, tip, changes, *args, **kwargs):
        if not isinstance(changes, list) or len(changes) >= 100:  # a build streams its records
            print("indexing", flush=True)
        return index_changes(self, tip, changes, *args, **kwargs)

    def marked_rewritten(self, *args, **kwargs):
        print("indexing", flush=True)
        sys.stdin.readline()  # the parent kills us here
        return rewritten(self, *args, **kwargs)

    SearchIndex._index = marked
    SearchIndex.rewritten = marked_rewritten
    if mode == "import":
        repo.import_records(
            {"title": f"imported {n} {'alpha' if n % 2 else 'beta'}", "n": n, "tags": [f"t{n % 7}"]}
            for n in range(count)
        )
    elif mode == "reindex":
        repo.reindex()
    else:
        repo.hard_delete([repo.search("secret").ids[0]])
    print("done", flush=True)
    """
)


def kill_while_indexing(repo: Repository, mode: str, count: int, delay: float) -> bool:
    """Run the child, SIGKILL it ``delay`` seconds after the index starts writing; True if the kill
    landed during the update (the child had not finished, and the index had not moved)."""
    before = repo.search_index.indexed_tip()
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(repo.path), mode, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        watchdog = threading.Timer(120, child.kill)  # a child that never gets there does not hang the test
        watchdog.start()
        try:
            line = child.stdout.readline()  # type: ignore[union-attr]
            assert line == "indexing\n", line
            time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            rest = child.stdout.read()  # type: ignore[union-attr]
            child.wait(timeout=60)
            watchdog.cancel()
    if child.returncode == 0:
        return False  # it finished before the signal arrived: the caller tries again, sooner
    assert child.returncode == -signal.SIGKILL
    # what the file says (a new connection: not what this process cached)
    conn = sqlite3.connect(repo.search_index.path)  # type: ignore[arg-type]
    try:
        tip = conn.execute("SELECT value FROM meta WHERE key='tip'").fetchone()
    finally:
        conn.close()
    return "done" not in rest and (mode == "reindex" or (tip[0] if tip else None) == before)


def next_command_catches_up(repo: Repository, expected: int) -> None:
    """The next command (a new process) finds every record; then this process: the index equals a
    rebuild, and git is consistent."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gitrecords.cli",
            "--repo",
            str(repo.path),
            "search",
            "--json",
            "--limit",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["total"] == expected
    reopened = Repository(repo.path)
    try:
        assert reopened.search("").total == expected
        assert_equals_rebuild(reopened)
    finally:
        reopened.close()
    fsck(repo)


@pytest.mark.parametrize(("mode", "count"), [("import", 3000), ("reindex", 0)])
def test_killed_while_the_index_is_updated(indexed: Repository, mode: str, count: int) -> None:
    expected = indexed.search("").total
    if mode == "reindex":  # enough records that a rebuild takes a while on a fast machine too
        indexed.import_records([{"title": f"many {n}", "n": n} for n in range(12000)])
        expected = indexed.search("").total
    delay = 0.2
    for _ in range(6):
        if kill_while_indexing(indexed, mode, count, delay):
            break
        # the update committed before the kill: try again, sooner
        delay /= 4
    else:
        pytest.fail("the kill never landed while the index was being updated")
    if mode == "import":  # the import itself had landed: the index had not caught up with it
        assert str(_git.tip(indexed.git, indexed.ref)) != indexed.search_index.indexed_tip()
        expected = len(git(indexed, "ls-tree", "-r", "--name-only", indexed.ref, "records").split())
    next_command_catches_up(indexed, expected)


def test_killed_before_the_index_applies_a_hard_delete(indexed: Repository) -> None:
    """The history was rewritten and the records purged, but the index was not told: the next command
    rebuilds it without the purged record, and its words are not left in the files."""
    Record.create({"title": f"secret {UNIQUE}", "notes": "Flobbergast"}, repo=indexed)
    assert indexed.search(UNIQUE).total == 1
    assert kill_while_indexing(indexed, "purge", 0, 0.0)
    next_command_catches_up(indexed, 30)
    assert indexed.search(UNIQUE, with_deleted=True).total == 0
    indexed.search_index._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert leaks(indexed, UNIQUE, "flobbergast") == []


# -- the cases the property tests found ---------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = Repository.init(tmp_path / "data.git")
    repo.search("")
    return repo


def found(repo: Repository, q: str, **kwargs) -> set[str]:
    """The titles of the records ``q`` finds."""
    return {r["title"] for r in repo.search(q, size=100, **kwargs).records}


def test_a_phrase_does_not_span_two_values(repo: Repository) -> None:
    Record.create({"title": "list", "tags": ["coral", "reefs"]}, repo=repo)
    Record.create({"title": "fields", "a": "coral", "b": "reefs"}, repo=repo)
    Record.create({"title": "one value", "tags": ["Coral Reefs"]}, repo=repo)
    assert found(repo, 'tags:"coral reefs"') == {"one value"}
    assert found(repo, '"coral reefs"') == {"one value"}
    assert found(repo, "tags:coral-re*") == {"one value"}  # a prefix of several words is a phrase too
    assert found(repo, "coral reefs") == {"list", "fields", "one value"}  # two words: AND


def test_field_names_that_differ_in_case_or_punctuation_are_different_fields(repo: Repository) -> None:
    Record.create({"title": "lower", "type": "dataset"}, repo=repo)
    Record.create({"title": "upper", "Type": "software"}, repo=repo)
    Record.create({"title": "underscore", "a_b": "x"}, repo=repo)
    Record.create({"title": "dash", "a-b": "y"}, repo=repo)
    assert found(repo, "type:software") == set()
    assert found(repo, "Type:dataset") == set()
    assert found(repo, "Type:software") == {"upper"}
    assert found(repo, "a-b:x") == set()
    assert found(repo, "a_b:y") == set()
    assert found(repo, "a-b:y") == {"dash"}


def test_an_open_range_matches_any_value(repo: Repository) -> None:
    Record.create({"title": "text", "date": "2020-01-01"}, repo=repo)
    Record.create({"title": "number", "date": 2021}, repo=repo)
    Record.create({"title": "none"}, repo=repo)
    assert found(repo, "date:[* TO *]") == {"text", "number"}
    assert found(repo, "date:{* TO *}") == {"text", "number"}


def test_a_sort_by_a_field_no_record_has_any_more_is_the_same_after_a_rebuild(repo: Repository) -> None:
    """The index's answers depend on the records at the tip, not on what it saw before: a field that
    no record has any more is as unknown as in an index built from scratch."""
    record = Record.create({"title": "had it", "rank": 3}, repo=repo)
    del record["rank"]
    record.commit()

    def answer(repo: Repository) -> object:
        try:
            return repo.search("", sort="rank").ids
        except GitRecordsError as err:
            return str(err)

    before = answer(repo)
    repo.close()
    for path in (repo.git_dir / "gitrecords").glob("search-*"):
        path.unlink()  # derived data: the next search builds the index from git
    again = Repository(repo.path)
    assert answer(again) == before
    again.close()


def test_the_index_goes_back_with_a_branch_reset_to_an_earlier_commit(repo: Repository) -> None:
    """``git reset``, ``update-ref`` or a forced fetch moves the branch back to a commit the index
    has passed: the index goes back too (a search for what the branch lost finds nothing, so a
    bulk edit of it changes nothing); a search of an older snapshot does not move it back."""
    first = Record.create({"title": "kept", "n": 1}, repo=repo)
    start = repo.tip()
    first["title"] = "kept resetword"
    first.commit()
    other = Record.create({"title": "gone resetword", "n": 2}, repo=repo)
    assert repo.search("resetword").total == 2
    git(repo, "update-ref", "refs/heads/main", str(start))
    assert repo.search("resetword").total == 0
    assert repo.search("kept").ids == [first.id]
    assert repo.update_records("resetword", [{"op": "add", "path": "/x", "value": 1}]).matched == 0
    assert_equals_rebuild(repo)
    # the revision index goes back too: one revision of the first record, none of the other
    assert [r.revision_id for r in Record.get_record(first.id, repo=repo).revisions] == [0]
    with pytest.raises(NoResultFound):
        Record.get_record(other.id, repo=repo)
    repo.sync_index()
    fresh = RevisionIndex(repo.git, repo.ref, None)
    fresh.rebuild()
    assert repo.index.contents() == fresh.contents()
    fresh.close()
    again = Record.create({"title": "later resetword"}, repo=repo)
    assert repo.search("resetword").ids == [again.id]
    repo.search_index.catch_up(start)  # a reader's older snapshot: the branch is ahead
    assert repo.search("resetword").ids == [again.id] and other.id not in repo.search("").ids
    assert_equals_rebuild(repo)
    # commits that leave a record's file as it was: going back over them re-dates the record
    same = Record.create({"title": "same", "n": 1}, repo=repo)
    back_to = repo.tip()
    for n in (2, 1):
        same = Record.get_record(same.id, repo=repo)
        same["n"] = n
        same.commit()
    assert repo.search("title:same", sort="updated").total == 1
    git(repo, "update-ref", "refs/heads/main", str(back_to))
    assert_equals_rebuild(repo)


def test_a_record_nested_to_the_limit_is_indexed_and_a_deeper_file_is_not_read(repo: Repository) -> None:
    """MAX_DEPTH is shallow enough for every walk of a record (its copy, its rows): 495 levels,
    under the old limit of 500, broke every search and reindex with a RecursionError."""
    deep: dict = {}
    inner = deep
    for _ in range(layout.MAX_DEPTH - 1):
        inner["a"] = {}
        inner = inner["a"]
    inner["a"] = "bottomword"
    record = Record.create(deep, repo=repo)
    assert repo.search("bottomword").ids == [record.id]
    assert repo.reindex() == 1
    too_deep = b'{"a":' * (layout.MAX_DEPTH + 1) + b"1" + b"}" * (layout.MAX_DEPTH + 1)
    with pytest.raises(GitRecordsError, match=f"nested deeper than {layout.MAX_DEPTH} levels"):
        layout.loads(too_deep)


def test_branches_whose_names_differ_only_in_punctuation_have_their_own_indexes(repo: Repository) -> None:
    from gitrecords._index_sql import derived_file

    files = {
        derived_file(repo.git_dir, "search", name) for name in ("feature/x", "feature_x", "Main", "main")
    }
    assert len(files) == 4
    assert derived_file(repo.git_dir, "index", "main").endswith("index-main.sqlite")
    Record.create({"title": "on main"}, repo=repo)
    git(repo, "branch", "feature_x", "main")
    git(repo, "branch", "feature/x", "main")
    with Repository(repo.path, branch="feature/x") as feature:
        Record.create({"title": "featureword"}, repo=feature)
        assert feature.search("featureword").total == 1
    with Repository(repo.path, branch="feature_x") as plain:
        assert plain.search("featureword").total == 0
        assert plain.search("").total == 1


def test_times_follow_a_pull_whose_merge_puts_the_remote_first(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull that merges makes the remote's tip the first parent: the revision index then dates the
    records this repository changed since the fork by the merge commit. The search index's
    ``updated`` (and its sorts) must say the same, though those records' files did not change."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@1700000000 +0000")
    ours = Record.create({"title": "ours"}, repo=repo)
    theirs_id = Record.create({"title": "theirs"}, repo=repo).id
    clone_path = tmp_path / "clone.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(repo.git_dir), str(clone_path)], check=True)
    clone = Repository(clone_path)
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@1700000250 +0000")
    other = Record.get_record(theirs_id, repo=clone)
    other["title"] = "theirs, changed in the clone"
    other.commit()
    clone.close()
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@1700000200 +0000")
    ours["title"] = "ours, changed here"
    ours.commit()
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@1700000300 +0000")
    replication.pull(repo, str(clone_path))

    assert Record.get_record(ours.id, repo=repo).updated.timestamp() == 1700000300  # the revision index
    assert repo.search("", sort="-updated").ids == [ours.id, theirs_id]
    assert_equals_rebuild(repo)


def commit_files(repo: Repository, records: dict[uuid.UUID, dict]) -> None:
    """One commit writing ``records``' files, made with pygit2 (no gitrecords subscriber sees it)."""
    git_repo = repo.git
    tip = _git.tip(git_repo, repo.ref)
    changes = {repo.path_for(i): git_repo.create_blob(layout.dumps(d)) for i, d in records.items()}
    tree = _git.build_tree(git_repo, _git.tree_of(git_repo, tip), changes)
    sig = pygit2.Signature("Plain", "plain@example.org", 1_700_000_000, 0)
    git_repo.create_commit(repo.ref, sig, sig, "plain commit", tree, [tip])


def test_a_catch_up_that_fails_leaves_no_stale_field_ids(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up that raises half-way is rolled back; the field ids it made in the meantime must not
    outlive it (a later catch-up would file values under ids no field has)."""
    first = Record.create({"title": "first"}, repo=repo)
    # two records with new fields, committed behind gitrecords' back (as a push would bring them)
    records = {uuid.uuid4(): {"title": "new", "fresh": "alpha"}, uuid.uuid4(): {"other": "beta"}}
    commit_files(repo, records)
    blobs = {pygit2.hash(layout.dumps(data)) for data in records.values()}
    again = Repository(repo.path)
    again.index.catch_up()  # the revision index has read the files: what follows is the search index's
    reads = []
    real_read = _git.read_blob

    def failing_read(git, oid):
        if oid in blobs:
            reads.append(oid)
            if len(reads) == 2:  # the first record's new field has been given an id by now
                raise OSError("the disk went away")
        return real_read(git, oid)

    monkeypatch.setattr(_git, "read_blob", failing_read)
    with pytest.raises(OSError):
        again.search_index.catch_up()
    monkeypatch.setattr(_git, "read_blob", real_read)
    assert again.search("fresh:alpha").total == 1
    assert again.search("other:beta").total == 1
    assert again.search("first").ids == [first.id]
    assert_equals_rebuild(again)
    again.close()


def test_the_index_of_another_branch_loses_a_purged_record_too(tmp_path: Path) -> None:
    """A hard delete rewrites every branch; the search index of a branch this process did not open must
    not keep the purged record's words."""
    repo = Repository.init(tmp_path / "data.git")
    secret = Record.create({"title": f"{UNIQUE} on two branches"}, repo=repo)
    git(repo, "branch", "other", repo.branch)
    other = Repository(repo.path, branch="other")
    assert other.search(UNIQUE).total == 1
    other.close()
    repo.hard_delete([secret.id])
    other_files = sorted((repo.git_dir / "gitrecords").glob("search-other.sqlite*"))
    raw = b"".join(p.read_bytes() for p in other_files).lower()
    assert UNIQUE.lower().encode() not in raw
    other = Repository(repo.path, branch="other")
    assert other.search(UNIQUE, with_deleted=True).total == 0
    other.close()


def test_the_in_memory_rebuild_helper_sees_what_the_repository_sees(indexed: Repository) -> None:
    fresh = SearchIndex(indexed.git, indexed.ref, None, indexed.index)
    assert fresh.rebuild() == 30
    fresh.close()
    assert_equals_rebuild(indexed)


def test_field_ids_cached_by_one_process_are_dropped_when_another_prunes_them(repo: Repository) -> None:
    """Each open index keeps its field ids between commits; when another process deletes an id
    (the last record with that field changed), the cache must not file new values under it."""
    Record.create({"title": "keeper"}, repo=repo)
    other = Repository(repo.path)
    other.search("")
    rare = Record.create({"title": "rare", "rarefield": "alpha"}, repo=other)  # other caches the id
    Record.get_record(rare.id, repo=repo).delete()  # this index prunes "rarefield"
    Record.create({"title": "again", "rarefield": "beta"}, repo=other)  # a stale id would be reused
    assert found(other, "rarefield:beta") == {"again"}
    assert found(repo, "rarefield:beta") == {"again"}
    assert_equals_rebuild(other)
    other.close()


def test_a_commit_that_moves_the_records_folder_is_indexed_from_the_trees(repo: Repository) -> None:
    """The writer's list of changed files is enough for record writes, not for a configuration
    change that points the records folder elsewhere: every record there (and none here) is then
    a record, though no record file changed."""
    Record.create({"title": "left behind"}, repo=repo)
    git_repo = repo.git
    tip = repo.tip()
    tree = _git.tree_of(git_repo, tip)
    config = json.loads(_git.read_blob(git_repo, _git.entry_id(tree, layout.CONFIG_FILE)))
    config["records"] = "data"
    changes = {layout.CONFIG_FILE: git_repo.create_blob(json.dumps(config).encode())}
    commit = repo.writer.commit(tip, _git.build_tree(git_repo, tree, changes), "move\n", author=None)
    repo.writer.landed(tip, commit, changes)
    assert found(repo, "left") == set()
    assert_equals_rebuild(repo)


def test_an_index_of_an_older_format_is_built_again(repo: Repository) -> None:
    """An index file written by another version (its tables, the AUTOINCREMENT bookkeeping
    included) is replaced by a current one when opened, not an error."""
    Record.create({"title": "kept"}, repo=repo)
    path = repo.search_index.path
    repo.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'format'")
    conn.execute("CREATE TABLE leftover (x)")
    conn.commit()
    conn.close()
    again = Repository(repo.path)
    assert found(again, "kept") == {"kept"}
    tables = {
        r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert "leftover" not in tables
    again.close()


def test_a_commit_that_changes_most_records_compares_their_rows(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than BULK changes that are new versions of records the index has (a bulk edit): each
    record's new rows are compared with its old ones and only what differs is written, the
    value indexes stay; the index holds what a build from scratch holds. An import of mostly
    new records, more than the index has, builds the index again instead."""
    from gitrecords import search_index

    monkeypatch.setattr(search_index, "BULK", 50)
    builds = []
    real_build = SearchIndex._build
    live = repo.search_index

    def build(self, tip):
        if self is live:  # not the fresh index the comparison builds
            builds.append(tip)
        return real_build(self, tip)

    monkeypatch.setattr(SearchIndex, "_build", build)
    repo.import_records([{"title": f"record {n}", "n": n, "tags": ["old"]} for n in range(120)])
    assert builds == [repo.tip()]  # an import into an index that has fewer records
    assert repo.search("tags:old").total == 120
    written: list[int] = []
    real_flush = search_index._Batch.flush

    def flush(self):
        written.append(len(self.vals) + len(self.vals_changed) + len(self.vals_gone))
        return real_flush(self)

    monkeypatch.setattr(search_index._Batch, "flush", flush)
    from gitrecords.edit import SetFields

    repo.update_records("n:[0 TO 99]", SetFields(set=[("/tags", ["new"])]))
    assert builds == [builds[0]]  # not built again
    assert 0 < sum(written) <= 100  # one value row a record, not all of them again
    assert repo.search("tags:new").total == 100 and repo.search("tags:old").total == 20
    assert_equals_rebuild(repo)
    # new fields, fields gone, values moved (the rows' positions shift), records deleted
    repo.update_records(
        "n:[0 TO 79]", SetFields(set=[("/a", {"b": ["x", "y"]}), ("/n2", 5)], unset=["/tags"])
    )
    assert_equals_rebuild(repo)
    repo.update_records("n:[0 TO 9]", SetFields(set=[("/tags", ["newer"])]))  # few: caught up
    assert repo.search("tags:newer").total == 10
    assert_equals_rebuild(repo)


def test_a_commit_that_changes_most_records_writes_the_full_text_table_again(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up of more changes than BULK, most of them new versions of records the index has,
    writes every full-text row into a new table instead of updating two thirds of them one by
    one: records changed, deleted and left alone are found as before, phrases and ranking
    included, and the index holds what a build holds. A failure in it leaves the index as it
    was, and the next catch-up does it again."""
    from gitrecords import search_index

    monkeypatch.setattr(search_index, "BULK", 50)
    rewrites: list[int] = []
    real_rewrite = search_index._rewrite_fts

    def rewrite(conn):
        rewrites.append(conn.execute("SELECT COUNT(*) FROM temp.fts_touched").fetchone()[0])
        return real_rewrite(conn)

    monkeypatch.setattr(search_index, "_rewrite_fts", rewrite)
    ids = repo.import_records([{"title": f"coral reefs {n}", "n": n} for n in range(120)]).ids
    assert repo.search('"coral reefs"').total == 120 and rewrites == []
    with repo.transaction():
        for n, record_id in enumerate(ids[:100]):
            record = Record.get_record(record_id, repo=repo)
            if n < 10:
                record.delete()
            else:
                record["title"] = f"sea ice {n}" if n % 2 else f"reefs coral {n}"
                record.commit()
    assert rewrites == [90]  # 90 new rows; the 10 deleted records left the old table, 20 are copied
    assert repo.search('"coral reefs"').total == 20
    assert repo.search('"sea ice"').total == 45 and repo.search("reefs coral").total == 65
    assert repo.search("coral", sort="-n", size=3).ids == list(reversed(ids[117:]))
    conn = repo.search_index._conn
    assert conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'fts_next%'").fetchall() == []
    conn.execute("INSERT INTO fts (fts) VALUES ('integrity-check')")
    # the new table was written with larger in-memory batches and fewer merges: it keeps FTS5's usual ones
    assert dict(conn.execute("SELECT k, v FROM fts_config WHERE k IN ('hashsize', 'automerge')")) == {
        "hashsize": 1 << 20,
        "automerge": 4,
    }
    assert_equals_rebuild(repo)

    tip = repo.search_index.indexed_tip()

    def failing(conn):
        real_rewrite(conn)
        raise OSError("disk full")

    monkeypatch.setattr(search_index, "_rewrite_fts", failing)
    repo.update_records("n:[0 TO 119]", [{"op": "add", "path": "/title", "value": "glacier"}])
    with pytest.raises(OSError, match="disk full"):
        repo.search_index.catch_up()
    assert repo.search_index.indexed_tip() == tip
    monkeypatch.setattr(search_index, "_rewrite_fts", rewrite)
    assert repo.search("glacier").total == 110  # the ten deleted records are not changed
    assert repo.search('"sea ice"').total == 0
    assert_equals_rebuild(repo)


def test_an_import_is_indexed_without_a_list_of_every_change(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up that finds mostly new records, more than the index has, stops listing the
    changes once it knows and builds the index from the tree (a list of a million changes held
    223 MB); one that finds mostly records the index has lists them all and compares."""
    from gitrecords import search_index

    monkeypatch.setattr(search_index, "BULK", 20)
    listed: list[int] = []
    real_index = SearchIndex._index

    def index(self, tip, changes, fresh=False, diff=None, before=None, one_commit=False, written=None):
        if not fresh:
            listed.append(len(changes))
        return real_index(self, tip, changes, fresh, diff, before, one_commit, written)

    monkeypatch.setattr(SearchIndex, "_index", index)
    repo.import_records([{"title": f"record {n}", "n": n} for n in range(200)])
    assert listed == []  # 21 changes listed, then built from the tree
    assert repo.search("record").total == 200
    repo.import_records([{"title": f"more {n}", "n": n} for n in range(150)])
    assert listed == []  # 101 listed (more than half the 200 the index had), then built
    assert repo.search("more").total == 150
    repo.update_records("n:[0 TO 99]", [{"op": "add", "path": "/x", "value": 1}])
    assert listed == [200]  # records the index has: every change listed and compared
    assert_equals_rebuild(repo)


def test_a_single_record_update_writes_only_the_value_rows_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit of a few records compares each live record's new value rows with its old ones:
    changing one field of a record with many writes that field's rows, not all of them again
    (each row is a page of the value index to write). Facet counts and field paths follow."""
    from gitrecords import search_index

    repo = Repository.init(tmp_path / "one.git", config={"facets": {"tag": "tags"}})
    repo.search("")
    record = Record.create(
        {"title": "coral", "tags": ["a", "b"], "n": 1, "extra": {"x": 1}, **{f"f{i}": i for i in range(20)}},
        repo=repo,
    )
    Record.create({"title": "other", "tags": ["a"]}, repo=repo)
    written: list[tuple[int, int, int]] = []
    real_flush = search_index._Batch.flush

    def flush(self):
        written.append((len(self.vals), len(self.vals_changed), len(self.vals_gone)))
        return real_flush(self)

    monkeypatch.setattr(search_index._Batch, "flush", flush)
    record["n"] = 2
    record.commit()
    assert written == [(0, 1, 0)]  # the one changed row; the other 25 stay
    assert repo.search("n:2").ids == [record.id] and repo.search("n:1").total == 0
    written.clear()
    record = Record.get_record(record.id, repo=repo)
    record["tags"] = ["c"]
    del record["extra"]
    record.commit()
    assert sum(n for counts in written for n in counts) == 3  # tags/0 replaced, tags/1 and extra.x gone
    assert repo.search("", facets=True).facets == {"tag": [("a", 1), ("c", 1)]}
    assert "extra.x" not in repo.search_index.known_paths()
    assert repo.search("coral").ids == [record.id]
    assert_equals_rebuild(repo)


def pending_rows(repo: Repository) -> int:
    return repo.search_index._conn.execute("SELECT COUNT(*) FROM vals_pending").fetchone()[0]


def test_the_values_of_records_created_one_commit_at_a_time_wait_for_a_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single create writes its value rows to ``vals_pending``, not to the value indexes; a
    search moves them first, so every query that reads values (ranges, ``_exists_``, sorts,
    exact facet values) finds the new records; so does the commit after which
    PENDING_RECORDS records wait."""
    from gitrecords import search_index

    monkeypatch.setattr(search_index, "PENDING_RECORDS", 4)
    repo = Repository.init(tmp_path / "one.git", config={"facets": {"tag": "tags"}})
    repo.search("")
    made = [
        Record.create({"title": f"coral {n}", "n": n, "tags": ["t", f"t{n}"]}, repo=repo) for n in range(3)
    ]
    assert pending_rows(repo) == 3 * 4  # title, n and two tags each: none in vals yet
    assert repo.search_index._conn.execute("SELECT COUNT(*) FROM vals").fetchone() == (0,)
    assert_equals_rebuild(repo, search=False)  # the same rows, only not moved yet
    assert repo.search("n:[1 TO 2]", sort="-n").ids == [made[2].id, made[1].id]
    assert pending_rows(repo) == 0
    for n in range(3, 7):
        made.append(Record.create({"title": f"coral {n}", "n": n, "tags": ["t"]}, repo=repo))
    assert pending_rows(repo) == 0  # the fourth record waiting moved them all
    made.append(Record.create({"title": "coral 7", "n": 7, "tags": ["t7"]}, repo=repo))
    assert pending_rows(repo) == 3
    assert repo.search("_exists_:n").total == 8
    assert repo.search('tag:"t7"').ids == [made[-1].id]
    assert repo.search("", facets=True).facets["tag"][0] == ("t", 7)
    assert_equals_rebuild(repo)


def test_a_record_whose_values_wait_is_changed_deleted_and_purged(tmp_path: Path) -> None:
    """Later commits meet the rows that wait: an update compares with them, a delete drops them,
    the only record at a field path goes while another comes with it in one commit (the path
    stays), and a hard delete leaves none of the purged record's values in the files."""
    repo = Repository.init(tmp_path / "one.git")
    repo.search("")
    first = Record.create({"title": "one", "n": 1, "solo": "x"}, repo=repo)
    second = Record.create({"title": "two", "n": 2, "tags": ["a"]}, repo=repo)
    assert pending_rows(repo) == 6
    first["n"] = 10
    first.commit()
    assert_equals_rebuild(repo, search=False)
    second.delete()
    assert_equals_rebuild(repo, search=False)
    with repo.transaction():
        Record.get_record(first.id, repo=repo).delete()
        third = Record.create({"title": "three", "solo": "y"}, repo=repo)
    assert "solo" in repo.search_index.known_paths()
    assert_equals_rebuild(repo, search=False)
    assert repo.search("solo:y").ids == [third.id]
    secret = Record.create({"title": "plain", "code": f"{UNIQUE}Code", "n": 987654321}, repo=repo)
    Record.create({"title": "after"}, repo=repo)
    assert pending_rows(repo) > 0
    repo.hard_delete([secret.id])
    assert leaks(repo, f"{UNIQUE}Code", "987654321") == []
    assert_equals_rebuild(repo)


def test_facet_counts_and_the_newest_first_list_with_deleted_records(tmp_path: Path) -> None:
    """A tombstone holds no values: the facet counts of everything are the same with and without
    deleted records (both read the kept counts), and the list of every record, deleted ones too,
    is newest first as the list of live ones is."""
    repo = Repository.init(tmp_path / "facets.git", config={"facets": {"tag": "tags"}})
    repo.search("")
    records = [
        Record.create({"title": f"t{n}", "tags": ["a", "b" if n % 2 else "c"]}, repo=repo) for n in range(6)
    ]
    records[0].delete()
    records[1].delete()
    live = repo.search("", facets=True)
    every = repo.search("", facets=True, with_deleted=True)
    assert live.facets == every.facets == {"tag": [("a", 4), ("b", 2), ("c", 2)]}
    assert (live.total, every.total) == (4, 6)
    newest_first = sorted(
        repo.search("", size=100, with_deleted=True).records,
        key=lambda r: (-r.updated.timestamp(), -r.revision_id, str(r.id)),
    )
    assert every.ids == [r.id for r in newest_first]
    assert_equals_rebuild(repo)


def test_rows_made_in_worker_processes_equal_rows_made_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PARALLEL records, forked workers make the rows: a build and a large catch-up give
    the rows a build in this process gives, with tombstones, records whose field paths the
    workers did not know yet (left to the parent), values that hold the separator character,
    and facet counts."""
    from gitrecords import search_index

    repo = Repository.init(tmp_path / "many.git", durable=False, config={"facets": {"tag": "tags"}})
    repo.search("")
    records = [{"title": f"record {n} Sámi", "n": n, "tags": ["kept", f"t{n % 3}"]} for n in range(400)]
    records += [{"title": f"late {n}", f"field{n % 7}": {"deep": [n, "x\x1fy"]}} for n in range(200)]
    ids = repo.import_records(records).ids
    for record_id in ids[:15]:
        Record.get_record(record_id, repo=repo).delete()
    made_by: list[int] = []
    real_map = search_index.ordered_map

    def counting_map(*args, **kwargs):
        for rows in real_map(*args, **kwargs):
            made_by.append(len(rows.states))
            yield rows

    monkeypatch.setattr(search_index, "ordered_map", counting_map)
    monkeypatch.setattr(search_index, "PARALLEL", 100)
    monkeypatch.setattr(search_index, "BULK", 50)
    monkeypatch.setattr(search_index._Batch, "SIZE", 40)
    assert repo.search_index.rebuild() == 600
    assert sum(made_by) >= 400  # most rows were made by the workers
    monkeypatch.setattr(search_index, "PARALLEL", 10**9)
    assert_equals_rebuild(repo)  # the fresh build of the comparison is made in this process
    # a large catch-up of records that have rows already (fewer than half: not a build)
    monkeypatch.setattr(search_index, "PARALLEL", 60)
    made_by.clear()
    from gitrecords.edit import SetFields

    repo.update_records("n:[100 TO 349]", SetFields(set=[("/tags", ["changed"]), ("/extra", {"a": "b"})]))
    assert sum(made_by) >= 150
    assert repo.search("tags:changed").total == 250
    monkeypatch.setattr(search_index, "PARALLEL", 10**9)
    assert_equals_rebuild(repo)


def record_comparisons(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The docs of the records compared with their old files in this process from now on,
    field by field or whole."""
    compared: list[int] = []
    real_by_field, real_differ = SearchIndex._by_field, SearchIndex._differ

    def by_field(self, doc, *args):
        done = real_by_field(self, doc, *args)
        if done:
            compared.append(doc)
        return done

    monkeypatch.setattr(SearchIndex, "_by_field", by_field)
    monkeypatch.setattr(
        SearchIndex, "_differ", lambda self, doc, *a: compared.append(doc) or real_differ(self, doc, *a)
    )
    return compared


def test_a_compared_catch_up_of_files_that_are_no_longer_records(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain git commit rewrites most records' files, one of them into a JSON array (no object,
    so no words and no values): the compared catch-up drops that record's old full-text row and
    values too, and the index equals a rebuild."""
    from gitrecords import search_index

    monkeypatch.setattr(search_index, "BULK", 50)
    ids = repo.import_records([{"title": f"record {n} kept", "n": n} for n in range(120)]).ids
    assert repo.search("kept").total == 120
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "plain-index")}
    tip = git(repo.git_dir, "rev-parse", "--verify", repo.ref).strip()
    subprocess.run(["git", "--git-dir", str(repo.git_dir), "read-tree", tip], env=env, check=True)
    lines = []
    for n, record_id in enumerate(ids[:100]):
        content = b"[1, 2]\n" if n == 0 else json.dumps({"title": f"record {n} changed", "n": n}).encode()
        blob = (
            subprocess.run(
                ["git", "--git-dir", str(repo.git_dir), "hash-object", "-w", "--stdin"],
                input=content,
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        lines.append(f"100644 {blob}\t{repo.path_for(record_id)}\n")
    subprocess.run(
        ["git", "--git-dir", str(repo.git_dir), "update-index", "--index-info"],
        input="".join(lines).encode(),
        env=env,
        check=True,
    )
    tree = (
        subprocess.run(
            ["git", "--git-dir", str(repo.git_dir), "write-tree"], env=env, capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    for name in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(name, "Plain Git")
    for name in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(name, "plain@example.org")
    commit = git(repo.git_dir, "commit-tree", tree, "-p", tip, "-m", "plain git").strip()
    git(repo.git_dir, "update-ref", repo.ref, commit, tip)
    compared = record_comparisons(monkeypatch)
    assert repo.search("kept").total == 20 and repo.search("changed").total == 99
    assert len(compared) == 100  # with its old file, the array's record too: it had rows
    assert_equals_rebuild(repo)


def test_the_rows_of_a_record_are_its_leaves(tmp_path: Path) -> None:
    """The index's value rows of a record are the (path, value) pairs ``leaves`` gives, for the
    odd shapes too: an empty key at the top (the path "") and inside (``a.``), lists of lists,
    nulls, booleans, a top-level list's objects."""
    from gitrecords.search_index import _Batch, leaves

    index = SearchIndex(None, "refs/heads/main", None, None)  # type: ignore[arg-type]
    data = {"": "top", "a": {"": 2, "b": [[1, None], {"c": True}]}, "d": [], "e": None, "f": [{"g": "h"}]}
    batch = _Batch(None)  # type: ignore[arg-type]
    index._rows(1, data, batch)
    names = {path_id: path for path, path_id in index._paths.items()}
    rows = [(names[path_id], text) for _doc, path_id, _n, text, _num in batch.vals]
    assert rows == [
        (path, str(value).lower() if isinstance(value, bool) else str(value)) for path, value in leaves(data)
    ]
    assert rows == [("", "top"), ("a.", "2"), ("a.b", "1"), ("a.b.c", "true"), ("f.g", "h")]
    assert list(leaves([1, {"x": "y"}])) == [("x", "y")]
    index.close()


def test_a_ranked_page_from_the_best_matches_equals_every_match_ordered(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relevance page of one full-text match is ordered from a window of the best matches
    (RANK_WINDOW_MIN past the page's end here), ties by update time, revision and id as when every match
    is ordered; when the window ends inside the tie at the page's last score, every match is."""
    from gitrecords import search_index

    texts = ["coral reefs"] * 40 + ["coral reefs coral"] * 7 + ["coral reefs and much else besides"] * 9
    repo.import_records([{"title": text, "n": n} for n, text in enumerate(texts)])
    for record_id in repo.search("n:[30 TO 45]", size=100).ids[::3]:  # other update times
        record = Record.get_record(record_id, repo=repo)
        record["n"] += 100
        record.commit()
    windows: list[bool] = []
    real = SearchIndex._ranked_window

    def counted(self, *args):
        found = real(self, *args)
        windows.append(found is not None)
        return found

    monkeypatch.setattr(SearchIndex, "_ranked_window", counted)

    def pages(window: int | None) -> list[list[uuid.UUID]]:
        if window is None:
            monkeypatch.setattr(SearchIndex, "_ranked_window", lambda self, *args: None)
        else:
            monkeypatch.setattr(SearchIndex, "_ranked_window", counted)
            monkeypatch.setattr(search_index, "RANK_WINDOW_MIN", window)
        return [
            repo.search(query, sort=sort, page=page, size=size).ids
            for query in ('"coral reefs"', "coral")
            for sort in (None, "-relevance")
            for size, page in ((5, 1), (5, 9), (7, 2), (25, 1), (25, 3), (100, 1))
        ]

    default = search_index.RANK_WINDOW_MIN
    every = pages(None)
    assert pages(2) == every  # small windows: most end inside a tie, and are ordered whole
    assert False in windows and True in windows
    windows.clear()
    assert pages(default) == every
    assert all(windows)
    assert len(set(every[0])) == 5 and every[0] != every[1]


@pytest.mark.parametrize("workers", [False, True], ids=["in-process", "workers"])
def test_a_bulk_edit_is_compared_with_the_old_files(
    repo: Repository, monkeypatch: pytest.MonkeyPatch, workers: bool
) -> None:
    """A bulk edit's catch-up makes each record's old rows from its old file and writes only what
    differs: a field removed, a field on a path no record had (in a worker: made again by this
    process), a number changed (its words too), a list grown, a record made a JSON array, and
    records the edit leaves alone. The index equals a rebuild, and only the records whose words
    changed had their full-text row rewritten."""
    from gitrecords import search_index

    monkeypatch.setattr(search_index, "BULK", 50)
    monkeypatch.setattr(search_index, "PARALLEL", 60 if workers else 10_000)
    monkeypatch.setattr(search_index._Batch, "SIZE", 20)
    records = [{"title": f"record {n}", "n": n, "tags": ["a", "b"], "note": "same"} for n in range(240)]
    # ids fixed, so the tree's order is: with random ones, one run in 50 had no record of some new
    # path (extra.k2) in the three parts made here first; a worker met it, and left that record
    # to this process, which compared it (one more in ``differed``)
    ids = repo.import_records(
        [(uuid.uuid5(uuid.NAMESPACE_URL, f"r{n}"), r) for n, r in enumerate(records)]
    ).ids
    assert repo.search("record").total == 240
    # the last records in the tree's order get a field path no other record has: met first by a
    # worker, which leaves those records to this process
    in_tree_order = sorted(range(240), key=lambda n: repo.path_for(ids[n]))
    late = {n for n in in_tree_order[-30:] if n % 6 != 4}
    # what the parts made here meet first: every new path but late's (see above)
    assert {n // 6 % 3 for n in in_tree_order[:60] if n % 6 == 1} == {0, 1, 2}
    assert any(n % 6 == 0 for n in in_tree_order[:60])

    def change(data: dict) -> dict | None:
        n = data["n"]
        if n in late:
            data["late"] = "new"
        kind = n % 6
        if kind == 0:
            del data["note"]
            data["pair"] = ["x", f"y{n}"]  # two values at one new field path
        elif kind == 1:
            data["extra"] = {f"k{n // 6 % 3}": f"new {n}"}
        elif kind == 2:
            data["n"] = n + 1000
        elif kind == 3:
            data["tags"].append("c")
        elif kind == 4:
            return None
        else:
            data["title"] = f"record {n} renamed"
        return data

    differed = record_comparisons(monkeypatch)
    written: list[str] = []
    real_write = search_index._Batch._write_fts

    def write_fts(batch: search_index._Batch) -> None:
        written.extend(str(row[0]) for row in batch.fts)
        real_write(batch)

    monkeypatch.setattr(search_index._Batch, "_write_fts", write_fts)
    deferred: list[int] = []
    real_record_rows = SearchIndex._record_rows
    monkeypatch.setattr(
        SearchIndex,
        "_record_rows",
        lambda self, doc, *a: deferred.append(doc) or real_record_rows(self, doc, *a),
    )
    report = repo.update_records(ids, change)
    assert report.changed == 200
    # compared in this process: every record, or with workers the first three parts (the
    # workers' calls are not seen here), and the late records are made again here
    assert len(differed) == (60 if workers else 200)
    assert len(deferred) == (len(late) if workers else 0)
    assert len(written) == 200  # every changed record has a new word here (none keeps all its words)
    assert repo.search("note:same").total == 200
    assert repo.search("late:new").total == len(late)
    assert repo.search("extra.k1:new").total == sum(1 for n in range(240) if n % 6 == 1 and n // 6 % 3 == 1)
    assert repo.search("n:[1000 TO 2000]").total == 40
    assert repo.search("tags:c").total == 40
    assert repo.search("renamed").total == 40
    assert_equals_rebuild(repo)

    # an edit that changes no word (words are case-insensitive): no full-text row is written,
    # the values still change
    written.clear()
    report = repo.update_records(ids, lambda data: {**data, "note": "SAME"} if "note" in data else None)
    assert report.changed == 200
    assert written == []
    assert repo.search("note:same").total == 200
    assert_equals_rebuild(repo)


def test_a_compared_bulk_edit_of_fields_whose_paths_meet(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fields a compared catch-up makes again alone: a top-level name with a dot (``a.b``)
    or an empty one shares paths with another field, so those records are made whole; values
    that Python finds equal (1, 1.0 and true) make different rows and count as changed."""
    from gitrecords import search_index

    monkeypatch.setattr(search_index, "BULK", 5)
    records = [
        {"a": {"b": 1}, "a.b": 2, "k": 1},
        {"": {"x": "under empty"}, "x": "top", "k": 1},
        {"k": 1, "t": "one"},
        {"k": 1, "t": "two"},
        {"k": [1, 1], "t": "three"},
        {"k": 1, "t": "four"},
        {"k": 1, "t": "five"},
    ]
    changes = [
        {"a.b": 5},  # its value follows a's under the same path, after it
        {"x": "top moved"},  # the same: after the empty name's
        {"k": True},
        {"k": 1.0},
        {"k": [1, 1.0]},
        {"t": "FOUR"},
        {"k": 2},
    ]
    ids = repo.import_records([{**record, "n": n} for n, record in enumerate(records)]).ids
    report = repo.update_records(ids, lambda data: {**data, **changes[data["n"]]})
    assert report.changed == 7
    assert repo.search("a.b:5").total == 1 and repo.search("a.b:2").total == 0
    assert repo.search("k:true").total == 1
    assert repo.search("x:moved").total == 1 and repo.search("x:empty").total == 1
    assert_equals_rebuild(repo)


def rows_made_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small bulk catch-ups (past 50 changes, workers past 40 records, parts of 20): the list
    gets the size of each part whose rows this process made, not a forked worker."""
    from gitrecords import search_index

    monkeypatch.setattr(search_index, "BULK", 50)
    monkeypatch.setattr(search_index, "PARALLEL", 40)
    monkeypatch.setattr(search_index._Batch, "SIZE", 20)
    made_here: list[int] = []
    real_make_rows = SearchIndex._make_rows

    def make_rows(self, part, learn):  # type: ignore[no-untyped-def]
        if learn:
            made_here.append(len(part))
        return real_make_rows(self, part, learn)

    monkeypatch.setattr(SearchIndex, "_make_rows", make_rows)
    return made_here


@pytest.mark.parametrize("how", ["kept", "past the budget", "not the file committed", "a read error"])
def test_a_bulk_edit_gives_its_catch_up_the_files_it_read_and_wrote(
    repo: Repository, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A bulk edit keeps each changed record's old and new file (gitrecords._written), and its
    catch-up makes the rows from them, in this process and in the workers: no record file is
    read from the packs. Past the budget, the records not kept are read from the packs; a
    kept file that is not the one committed (its id differs), or that cannot be read back, is
    not used. Each way gives the index a rebuild gives."""
    from gitrecords import _objects, _written, search_index
    from gitrecords.edit import SetFields

    imported = repo.import_records({"title": f"record {n}", "n": n, "tags": ["a"]} for n in range(200))
    assert repo.search("record").total == 200
    made_here = rows_made_here(monkeypatch)  # the first PARALLEL records, and the parts given back
    read_here: list[str] = []  # record files read from the packs in this process
    real_read_blob = _git.read_blob

    def read_blob(git, oid):
        read_here.append(str(oid))
        return real_read_blob(git, oid)

    monkeypatch.setattr(_git, "read_blob", read_blob)

    def unreadable(self, oid: bytes):  # a worker that reads a file from the packs gives its part back
        raise RuntimeError("read from the packs")

    monkeypatch.setattr(_objects.GitDir, "read", unreadable)
    real_init = _written.WrittenFiles.__init__
    if how == "past the budget":  # some 100 records' files kept, of 180
        monkeypatch.setattr(
            _written.WrittenFiles, "__init__", lambda self, folder=None: real_init(self, folder, budget=8_000)
        )
    if how == "not the file committed":  # a byte of every new file changed
        real_read = _written.read

        def altered(fd: int, location: int) -> tuple[bytes, bytes]:
            old, new = real_read(fd, location)
            return old, new[:-1] + b" "

        monkeypatch.setattr(_written, "read", altered)
    if how == "a read error":  # the temporary file cannot be read back (found by a review)

        def failing(fd: int, location: int) -> tuple[bytes, bytes]:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(_written, "read", failing)
    edit = repo.update_records(imported.ids[:180], SetFields(set=[("/tags", ["b"]), ("/title", "changed")]))
    assert edit.changed == 180
    assert repo.search_index.indexed_tip() == edit.commit  # caught up within the edit, each way
    assert repo.search("tags:b").total == repo.search("changed").total == 180
    folders = [repo.git[sub.id] for top in repo.git[edit.commit].tree["records"] for sub in repo.git[top.id]]
    edited_files = {str(entry.id) for folder in folders for entry in folder}
    read_files = edited_files.intersection(read_here)
    if how == "kept":
        assert sum(made_here) == 40 and not read_files
    else:
        assert sum(made_here) > 40 and read_files
        assert len(read_files) < 180 if how == "past the budget" else len(read_files) == 180
    with monkeypatch.context() as plain:  # the rebuild compared with: in this process, reading all
        plain.setattr(search_index, "PARALLEL", 10**9)
        assert_equals_rebuild(repo)


@pytest.mark.parametrize("how", ["by id", "sent", "unreadable", "raising"])
def test_workers_read_the_files_of_a_bulk_edit_or_are_sent_them(
    repo: Repository, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The rows workers of a large catch-up read each record's old and new file from the
    repository themselves (given their ids; no libgit2 in a forked process), unless this
    process runs another thread (a fork copies its locks): then the files are read here and
    sent. A part with a file a worker cannot read (a pack repacked away, damage, an error it
    did not expect) is made here.
    A bulk edit, its undo and the undo of the import (every record a tombstone): each way
    gives the index a rebuild gives."""
    from gitrecords import _objects, search_index
    from gitrecords.edit import SetFields

    imported = repo.import_records({"title": f"record {n}", "n": n, "tags": ["a"]} for n in range(200))
    assert repo.search("record").total == 200
    given: list[tuple] = []
    real_map = search_index.ordered_map

    def recording_map(*args, **kwargs):
        given.append(kwargs["initargs"])
        return real_map(*args, **kwargs)

    monkeypatch.setattr(search_index, "ordered_map", recording_map)
    made_here = rows_made_here(monkeypatch)  # the first PARALLEL records at least
    real_read = _objects.GitDir.read
    if how in ("unreadable", "raising"):  # one read in seven (forked workers inherit this class)
        reads = itertools.count()  # each worker counts its own: a part is 20 reads or more

        def read(self, oid: bytes):
            if next(reads) % 7:
                return real_read(self, oid)
            if how == "raising":  # what this reader did not expect (e.g. a RecursionError)
                raise RuntimeError("unexpected")
            return None

        monkeypatch.setattr(_objects.GitDir, "read", read)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    if how == "sent":
        other.start()

    def check(changed: int, written: bool = False) -> None:
        # a bulk edit's workers read both files of each record in the ones its writer kept
        assert [args[0] for args in given] == [None if how == "sent" else str(repo.git_dir) + "/"]
        assert [isinstance(args[1], int) for args in given] == [written]
        if how in ("unreadable", "raising") and not written:
            assert sum(made_here) == changed  # every part had a file the workers could not read
        else:
            assert sum(made_here) == 40
        with monkeypatch.context() as plain:  # the rebuild compared with: in this process, reading all
            plain.setattr(search_index, "PARALLEL", 10**9)
            plain.setattr(_objects.GitDir, "read", real_read)
            assert_equals_rebuild(repo)
        given.clear()
        made_here.clear()

    try:
        change = SetFields(set=[("/tags", ["b"]), ("/title", "changed")])
        edit = repo.update_records(imported.ids[:180], change)
        assert edit.changed == 180
        assert repo.search("tags:b").total == repo.search("changed").total == 180
        check(180, written=True)
        assert len(repo.undo(edit.commit).restored) == 180
        assert repo.search("tags:a").total == 200
        check(180)
        assert len(repo.undo(imported.commit_id).restored) == 200
        assert repo.search("").total == 0
        check(200)
    finally:
        stop.set()
        if other.is_alive():
            other.join()


def test_a_catch_up_over_several_commits_dates_a_record_taken_there_and_back(tmp_path: Path) -> None:
    """A fetch (or any writer behind the index's back) takes a record A -> B -> A: its file is the
    same at both ends, so no tree comparison of the two tips names it, but it has two revisions
    more, made at those commits' times, which sorting by ``updated`` must see."""
    primary = Repository.init(tmp_path / "primary.git")
    record = Record.create({"title": "there and back"}, repo=primary)
    Record.create({"title": "unchanged"}, repo=primary)
    replica = Repository(replication_clone(primary, tmp_path / "replica.git"))
    assert replica.search("").total == 2  # the index is built here, before the commits
    changed = record.patch([{"op": "add", "path": "/x", "value": 1}]).commit()
    changed.patch([{"op": "remove", "path": "/x"}]).commit()
    assert replication.follow(replica).status == "fast-forward"
    assert replica.search("", sort="-updated").ids[0] == record.id
    assert_equals_rebuild(replica)


def replication_clone(primary: Repository, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "--bare", f"file://{primary.path}", str(dest)], check=True)
    return dest


def test_a_single_record_catch_up_reads_values_by_record(sample_repo: Repository) -> None:
    """The statements of a catch-up of one record's create, update, soft delete and revert
    (with facets declared, whose counts follow each record) read the value table by record,
    never by walking every value of a field: such a plan grows with the repository (taking
    an update out of the facet counts walked each facet field's values, 2.5 ms an update at
    10,000 records). Timings are not asserted; the plans are."""
    repo = sample_repo
    assert repo.config.get("facets")
    repo.search("")
    conn = repo.search_index._conn
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        record = Record.create({"titles": [{"title": "planned"}], "publicationYear": "2020"}, repo=repo)
        record["publicationYear"] = "2021"
        record.commit()
        repo.search_index.catch_up()
        record.delete()
        repo.search_index.catch_up()
        record.revert(1)
        repo.search_index.catch_up()
    finally:
        conn.set_trace_callback(None)
    reads = [s for s in statements if re.search(r"\b(FROM|JOIN) vals\b", s)]
    # (the trace gives statements with their parameters in place)
    assert any(re.search(r"DISTINCT p.path, v.str .* v.doc = \d+", s) for s in reads)  # facet counts
    for sql in reads:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        # a walk: of the table, or of a field's values in a value index
        assert not re.search(r"\bSCAN (v|vals)\b|vals_by_\w+ \(path=\? AND (str|num)>\?\)", plan), (sql, plan)


def test_integers_past_2_to_the_53_compare_exactly(repo: Repository) -> None:
    """Ranges and sorts compare integers as integers (a float made 2**53 + 1 equal to 2**53),
    in numbers and in text that reads as one; other numbers as before."""
    big = 2**53
    one = Record.create({"big": big + 1, "text": str(big + 1)}, repo=repo)
    two = Record.create({"big": big, "text": str(big)}, repo=repo)
    Record.create({"big": 1.5, "text": "1.5"}, repo=repo)
    for field in ("big", "text"):
        assert repo.search(f"{field}:>{big}").ids == [one.id]
        assert repo.search(f"{field}:[{big + 1} TO {big + 1}]").ids == [one.id]
        assert repo.search(f"{field}:[1 TO {big}]").total == 2
        assert repo.search("", sort=f"-{field}").ids[:2] == [one.id, two.id]
    assert repo.search("big:>1e400").total == 0 and repo.search("big:<1e400").total == 3
    # past 4,300 digits int() refuses the text: a bound that long is a float (infinite) too
    assert repo.search(f"big:>{'9' * 4301}").total == 0 and repo.search(f"big:<{'9' * 5000}").total == 3
    assert_equals_rebuild(repo)


def test_a_top_level_key_that_is_empty_is_indexed(repo: Repository) -> None:
    """A value under the top-level key "" is found by its words like any other, and the members
    of an object there do not take the paths of top-level fields ("a" is not ".a")."""
    record = Record.create({"": "zanzibarword", "x": {"": "pembaword"}}, repo=repo)
    nested = Record.create({"": {"a": "mafiaword"}, "b": 1}, repo=repo)
    assert repo.search("zanzibarword").ids == [record.id]
    assert repo.search("pembaword").ids == [record.id]
    assert repo.search("mafiaword").ids == [nested.id]
    assert {"", "x.", ".a", "b"} <= set(repo.search_index.known_paths())
    assert "a" not in repo.search_index.known_paths()
    assert_equals_rebuild(repo)


def test_updated_sorts_oldest_first_and_the_default_is_newest_first(repo: Repository) -> None:
    """``updated`` ascends like every sort key; ``-updated`` (newest first) is the default
    without words, as docs/search.md says."""
    first = Record.create({"title": "first"}, repo=repo)
    second = Record.create({"title": "second"}, repo=repo)
    first["title"] = "first, again"
    first.commit()
    assert repo.search("", sort="updated").ids == [second.id, first.id]
    assert repo.search("", sort="-updated").ids == [first.id, second.id]
    assert repo.search("").ids == [first.id, second.id]


def test_values_longer_than_the_kept_length_compare_by_their_kept_part(tmp_path: Path) -> None:
    """A value past MAX_VALUE_CHARS is kept by its first MAX_VALUE_CHARS characters, and a
    query's exact value or string bound is cut the same way (docs/search.md): the record is found
    by its whole value, as its facet value, and by ranges on either side of it."""
    from gitrecords import search_index

    kept = search_index.MAX_VALUE_CHARS
    repo = Repository.init(tmp_path / "long.git", config={"facets": {"kind": "kind"}})
    long_value = "Dataset " + "x" * (kept + 60)
    record = Record.create({"kind": long_value, "note": "k" * (kept + 50)}, repo=repo)
    Record.create({"kind": "Text", "note": "a"}, repo=repo)
    assert repo.search(f'kind:"{long_value}"').ids == [record.id]
    [(shown, count)] = [f for f in repo.search(facets=True).facets["kind"] if f[0] != "Text"]
    assert (shown, count) == (long_value[:kept], 1)
    assert repo.search(f'kind:"{shown}"').ids == [record.id]  # a click on the facet value
    assert repo.search(f"note:>={'k' * (kept + 50)}").ids == [record.id]
    assert repo.search(f"note:<{'k' * (kept + 1)}").total == 1  # "a" only: both cut to the kept part
    assert repo.search("dataset").ids == [record.id]  # its words are all indexed
