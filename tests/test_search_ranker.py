"""The ranker (gitrecords._ranker): tantivy ranks the pages of full-text queries at scale.

It must answer exactly what FTS5 answers (the same total, the same records, ties in the same
order), follow every kind of change the search index follows, lose purged words with the purge,
and never be needed: a damaged or half-built ranker is built again, and FTS5 answers meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import fsck, git
from test_search_properties import assert_equals_rebuild

from gitrecords import Record, Repository, _ranker, replication
from gitrecords.search_index import ranker_folder

UNIQUE = "Zanzibarquux"
SEGMENT_FILE = re.compile(r"^[0-9a-f]{32}\.")
QUERIES = [
    "coral",
    "reefs",
    '"coral reefs"',
    "coral AND glacier",
    "coral OR glacier",
    "(coral OR sea) AND ice",
    "title:coral",
    'title:"coral reefs"',
    "tags:ice",
    "sami",
    "nomatchatall",
]
WORDS = ["coral", "reefs", "glacier", "sea", "ice", "Sámi", "delta"]


@pytest.fixture(autouse=True)
def ranker_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranker answers at any size here (by default only from 20,000 records)."""
    monkeypatch.setattr(_ranker, "MIN_RECORDS", 0)
    monkeypatch.setenv("GITRECORDS_RANKER_MIN_RECORDS", "0")  # for child processes


def record(n: int) -> dict:
    pick = [WORDS[(n * k) % len(WORDS)] for k in (1, 3, 5)]
    return {
        "title": " ".join(pick[: 1 + n % 3]),
        "n": n,
        "tags": [WORDS[n % len(WORDS)], WORDS[(n + 2) % len(WORDS)]],
        "notes": "coral" if n % 4 == 0 else "plain",
    }


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    repo = Repository.init(tmp_path / "data.git")
    repo.search("")
    repo.import_records([record(n) for n in range(120)])
    yield repo
    repo.close()


def by_fts5(repo: Repository, q: str, **kwargs) -> tuple[int, list]:
    saved = _ranker.MIN_RECORDS
    _ranker.MIN_RECORDS = 10**12
    try:
        hits = repo.search(q, **kwargs)
    finally:
        _ranker.MIN_RECORDS = saved
    return hits.total, hits.ids


def by_ranker(repo: Repository, q: str, **kwargs) -> tuple[int, list]:
    hits = repo.search(q, **kwargs)
    return hits.total, hits.ids


def ranker_used(repo: Repository) -> bool:
    return os.path.exists(os.path.join(ranker_folder(repo.search_index.path), "state.json"))


def assert_same_answers(repo: Repository) -> None:
    for q in QUERIES:
        total, ids = by_ranker(repo, q, size=10_000)
        expected_total, expected = by_fts5(repo, q, size=10_000)
        assert total == expected_total, q
        assert len(ids) == min(total, 10_000) == len(set(ids)), q
        if total <= 10_000:
            assert set(ids) == set(expected), q
    assert ranker_used(repo)


def test_it_answers_what_fts5_answers(repo: Repository) -> None:
    assert_same_answers(repo)


def test_pages_are_stable_and_ties_are_ordered_as_fts5_orders_them(repo: Repository) -> None:
    """Records with the same text score the same in both engines: then the order is the same
    (most recently updated first, then more revisions, then by id), page by page."""
    same = [{"title": "identical words here"} for _ in range(40)]
    ids = repo.import_records(same).ids
    updated = Record.get_record(ids[7], repo=repo)
    updated["title"] = "other words"
    updated.commit()
    updated["title"] = "identical words here"  # the same text again: the same score, a later update
    updated.commit()
    full = by_ranker(repo, "identical", size=100)[1]
    assert full == by_fts5(repo, "identical", size=100)[1]
    assert full[0] == ids[7]
    pages = [by_ranker(repo, "identical", size=7, page=p)[1] for p in range(1, 7)]
    assert [i for page in pages for i in page] == full
    for q in ("coral", '"coral reefs"', "coral OR glacier"):
        full = by_ranker(repo, q, size=1000)[1]
        pages = [by_ranker(repo, q, size=9, page=p)[1] for p in range(1, len(full) // 9 + 2)]
        assert [i for page in pages for i in page] == full, q


def test_it_follows_every_kind_of_change(repo: Repository, tmp_path: Path) -> None:
    assert_same_answers(repo)
    created = Record.create({"title": "coral reefs again", "tags": ["ice"]}, repo=repo)
    assert_same_answers(repo)
    changed = Record.get_record(repo.search("title:glacier").ids[0], repo=repo)
    changed["title"] = "now sea ice"
    changed.commit()
    assert_same_answers(repo)
    created.delete()
    assert_same_answers(repo)
    created.undelete()
    assert_same_answers(repo)
    first = git(repo, "rev-parse", repo.ref).strip()
    # a clone's commits, pulled
    clone = tmp_path / "clone.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(repo.git_dir), str(clone)], check=True)
    other = Repository(clone)
    Record.create({"title": "glacier from the clone"}, repo=other)
    other.close()
    replication.pull(repo, str(clone))
    assert_same_answers(repo)
    # the branch moved back behind gitrecords' back
    git(repo, "update-ref", repo.ref, first)
    assert_same_answers(repo)
    assert by_ranker(repo, "clone")[0] == 0
    # a rebuild of the search index (new record numbers there): the ranker is built again
    repo.search_index.rebuild()
    assert_same_answers(repo)
    # an edit of many records at once
    repo.update_records("coral", [{"op": "add", "path": "/notes", "value": "glacier"}])
    assert_same_answers(repo)
    assert_equals_rebuild(repo)


def test_a_purge_removes_the_purged_words_from_the_ranker(repo: Repository) -> None:
    secret = Record.create({"title": f"{UNIQUE} coral expedition"}, repo=repo)
    assert by_ranker(repo, UNIQUE.lower())[1] == [secret.id]
    folder = Path(ranker_folder(repo.search_index.path))
    before = {p.name for p in folder.iterdir()}

    repo.hard_delete([secret.id])

    # every file that held the record's words is gone with the purge (tantivy keeps its terms
    # in a compressed dictionary: a search of the bytes would not see them even before)
    assert not folder.exists()
    assert by_ranker(repo, UNIQUE.lower())[0] == 0
    assert by_ranker(repo, '"coral expedition"')[0] == 0
    assert ranker_used(repo)  # built again, from the index without the record
    segment_files = {p.name for p in folder.iterdir() if SEGMENT_FILE.match(p.name)}
    assert segment_files and not segment_files & before
    assert_same_answers(repo)
    fsck(repo)


def test_a_purge_removes_the_ranker_of_another_branch(repo: Repository) -> None:
    secret = Record.create({"title": f"{UNIQUE} on two branches"}, repo=repo)
    git(repo, "branch", "other", repo.ref)
    other = Repository(repo.path, branch="other")
    try:
        assert by_ranker(other, UNIQUE.lower())[0] == 1
        folder = ranker_folder(other.search_index.path)
        assert os.path.exists(folder)
        repo.hard_delete([secret.id])
        assert not os.path.exists(folder)
    finally:
        other.close()


def test_a_damaged_ranker_is_built_again(repo: Repository) -> None:
    assert_same_answers(repo)
    folder = Path(ranker_folder(repo.search_index.path))
    for path in folder.iterdir():
        if path.suffix in (".idx", ".term", ".pos"):
            path.write_bytes(b"garbage")
    reopened = Repository(repo.path)
    try:
        # this process's first answer comes from FTS5, the ranker is marked to be built again
        assert_same_answers(reopened)
    finally:
        reopened.close()
    reopened = Repository(repo.path)
    try:
        Record.create({"title": "coral after the damage"}, repo=reopened)
        assert_same_answers(reopened)
    finally:
        reopened.close()


def test_a_half_written_state_is_caught_up(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash after tantivy's commit but before the state names the new tip: the same records
    are added again on the next search, once."""
    assert_same_answers(repo)
    monkeypatch.setattr(_ranker, "_write_state", lambda folder, state: None)
    Record.create({"title": "coral written twice"}, repo=repo)
    assert by_ranker(repo, "twice")[0] == 1
    monkeypatch.undo()
    monkeypatch.setattr(_ranker, "MIN_RECORDS", 0)
    reopened = Repository(repo.path)
    try:
        assert by_ranker(reopened, "twice")[0] == 1
        assert_same_answers(reopened)
    finally:
        reopened.close()


BUILDER = textwrap.dedent(
    """
    import sys
    from gitrecords import Repository, _ranker

    add = _ranker._add
    def announced(*args, **kwargs):
        print("building", flush=True)
        add(*args, **kwargs)
    _ranker._add = announced
    repo = Repository(sys.argv[1])
    print(repo.search("coral").total, flush=True)
    """
)


def test_killed_while_the_ranker_is_built(repo: Repository) -> None:
    repo.import_records([record(n) for n in range(120, 20_000)])
    repo.search("")
    for delay in (0.3, 0.1, 0.02, 0.0):
        shutil.rmtree(ranker_folder(repo.search_index.path), ignore_errors=True)  # to be built
        with subprocess.Popen(
            [sys.executable, "-c", BUILDER, str(repo.path)], stdout=subprocess.PIPE, text=True
        ) as child:
            assert child.stdout.readline() == "building\n"  # type: ignore[union-attr]
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            rest = child.stdout.read()  # type: ignore[union-attr]
            child.wait(timeout=60)
        if child.returncode == -signal.SIGKILL and not rest:
            break
    else:
        pytest.fail("the kill never landed while the ranker was being built")
    reopened = Repository(repo.path)
    try:
        assert_same_answers(reopened)
    finally:
        reopened.close()


SEARCHER = textwrap.dedent(
    """
    import sys
    from gitrecords import Repository

    repo = Repository(sys.argv[1])
    print(repo.search(sys.argv[2], size=1000).total, flush=True)
    """
)


def test_processes_that_find_it_behind_at_once_build_it_once(repo: Repository) -> None:
    Record.create({"title": "coral from before the race"}, repo=repo)
    expected = by_fts5(repo, "coral", size=1000)[0]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", SEARCHER, str(repo.path), "coral"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        assert int(out) == expected
    assert_same_answers(repo)


def test_a_query_it_cannot_answer_is_left_to_fts5(repo: Repository) -> None:
    """Prefixes, NOT, values and other orders are not the ranker's: the same answers as before."""
    for q, kwargs in [
        ("cor*", {}),
        ("coral -reefs", {}),
        ("coral n:[1 TO 50]", {}),
        ("coral", {"sort": "-relevance"}),
        ("coral", {"sort": "n"}),
    ]:
        assert by_ranker(repo, q, size=1000, **kwargs) == by_fts5(repo, q, size=1000, **kwargs), q


def test_a_state_naming_a_commit_whose_trees_are_gone_is_built_again(repo: Repository) -> None:
    """The ranker's tip exists but its records tree does not (seen beside a hard delete in
    another process): the search answers, and the ranker is built again."""
    assert_same_answers(repo)
    Record.create({"title": "coral later"}, repo=repo)
    config = git(repo, "rev-parse", f"{repo.ref}:gitrecords.json").strip()
    listing = f"100644 blob {config}\tgitrecords.json\n040000 tree {'1' * 40}\trecords\n"
    tree = subprocess.run(
        ["git", "--git-dir", str(repo.git_dir), "mktree", "--missing"],
        input=listing,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    commit = git(
        repo, "-c", "user.name=T", "-c", "user.email=t@example.org", "commit-tree", tree, "-m", "missing"
    ).strip()
    state_file = Path(ranker_folder(repo.search_index.path)) / "state.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "tip": commit}))
    assert_same_answers(repo)


@pytest.mark.parametrize("suffix", [".fast", ".idx", ".term"])
def test_damaged_files_give_the_index_answers_and_a_rebuild(repo: Repository, suffix: str) -> None:
    """A byte flipped in one of tantivy's files: no traceback and no wrong page, in this
    process or the next; the next process builds the ranker again."""
    assert_same_answers(repo)
    folder = Path(ranker_folder(repo.search_index.path))
    expected = {q: by_fts5(repo, q, size=1000) for q in QUERIES}
    for offset in (0, 1, 2, 7, 40):
        reopened = Repository(repo.path)
        try:
            reopened.search("")
            files = sorted(p for p in folder.iterdir() if p.suffix == suffix)
            if not files:
                continue
            data = bytearray(files[0].read_bytes())
            data[min(offset, len(data) - 1)] ^= 0xFF
            files[0].write_bytes(bytes(data))
            for q in QUERIES:
                total, ids = by_ranker(reopened, q, size=1000)
                assert (total, set(ids)) == (expected[q][0], set(expected[q][1])), (q, offset)
        finally:
            reopened.close()
        # the next process: the same answers, from a ranker built again or from FTS5
        fresh = Repository(repo.path)
        try:
            assert_same_answers(fresh)
        finally:
            fresh.close()


def test_a_ranker_that_lost_its_meta_file_is_built_again(repo: Repository) -> None:
    assert_same_answers(repo)
    meta = Path(ranker_folder(repo.search_index.path)) / "meta.json"
    meta.unlink()
    reopened = Repository(repo.path)
    try:
        assert_same_answers(reopened)
        assert meta.exists()
    finally:
        reopened.close()


def test_words_are_the_same_in_both_engines_whatever_the_sqlite_unicode_tables(tmp_path: Path) -> None:
    """Python counts New Tai Lue vowel signs and two Vedic signs as word characters; SQLite's
    unicode61 tokenizer (3.40's tables) split words there, so FTS5 and the ranker disagreed."""
    repo = Repository.init(tmp_path / "data.git")
    texts = ["ᦀᦰᦁ", "ᦀ ᦁ", "ᦰ", "kaᳲ", "ka"]
    ids = repo.import_records([{"title": t} for t in texts]).ids
    for q, expected in [("ᦀᦰᦁ", [0]), ("ᦰ", [2]), ("kaᳲ", [3]), ("ka", [4]), ("title:ᦀᦰᦁ", [0])]:
        want = {ids[i] for i in expected}
        assert set(by_fts5(repo, q)[1]) == want, q
        assert set(by_ranker(repo, q)[1]) == want, q
    repo.close()


def test_a_ranked_page_reads_docs_by_record_not_by_a_walk(repo: Repository) -> None:
    """Every statement of a ranked search that reads ``docs`` looks records up by id: a plan
    that walks the table (SQLite preferred the live-records index for ``deleted = 0``: 13 ms
    a page at 100,000 records) is a failure here, since timings are not asserted."""
    repo.search("coral")  # the ranker is built and current
    conn = repo.search_index._conn
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        for q in ("coral", "title:glacier", "coral OR glacier"):
            assert by_ranker(repo, q)[0] > 0, q
    finally:
        conn.set_trace_callback(None)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and " docs " in f"{s} "]
    assert reads
    for sql in reads:
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        # a walk: of the table, or of every live record in the update-time index
        assert not re.search(r"\bSCAN (d|docs)\b|docs_by_update", plan), (sql, plan)


def test_reindex_builds_the_ranker_too(repo: Repository) -> None:
    """A rebuild of the index (gitrecords reindex) builds the ranker after it, so that the first
    ranked search does not (at a million records that is 25 s)."""
    folder = Path(ranker_folder(repo.search_index.path))
    repo.reindex()
    assert (folder / "state.json").exists()
    built = (folder / "state.json").stat().st_mtime_ns
    assert_same_answers(repo)
    assert (folder / "state.json").stat().st_mtime_ns == built  # current: not built again


class _Rows(_ranker.Source):
    def __init__(self, generation: str, tip: str, rows: list[tuple[str, str, str]]) -> None:
        self.generation, self.tip, self.live, self._rows = generation, tip, len(rows), rows

    def rows(self, records: list[str] | None) -> Iterator[tuple[str, str, str]]:
        return iter(self._rows if records is None else [r for r in self._rows if r[0] in records])

    def changed(self, old_tip: str, new_tip: str, limit: int) -> list[str] | None:
        return None


def test_a_reader_never_takes_a_folder_another_process_is_rebuilding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader checked the state without the lock, then opened the index: if another process
    rebuilt the folder in between (after a reindex or a purge), it took the half-built index,
    answered 0 matches, and kept answering so. The state is read again after opening."""
    import uuid

    folder = str(tmp_path / "search-main.ranker")
    rows = [(str(uuid.uuid4()), "alpha bravo", "") for _ in range(50)]
    source = _Rows("G1", "T1", rows)
    assert _ranker.Ranker(folder).current(source)
    reader = _ranker.Ranker(folder)
    read_state = _ranker._read_state
    interleaved: list[bool] = []

    def read_then_rebuild_elsewhere(where: str) -> Any:
        state = read_state(where)
        if not interleaved:
            interleaved.append(True)
            shutil.rmtree(folder)  # another process's build: a new, empty index, no state yet
            os.makedirs(folder)
            _ranker._new_index(folder)
        return state

    monkeypatch.setattr(_ranker, "_read_state", read_then_rebuild_elsewhere)
    assert reader.current(source)
    assert interleaved and reader.top(_ranker.Words("body", ("alpha",)), 10)[0] == 50


def test_a_field_that_goes_and_comes_back_is_found_by_the_ranker(repo: Repository) -> None:
    """The last record with a field losing it drops the field's path id; the field coming back
    gets a new one. Records whose files end as they were (a bulk edit and its undo) were never
    re-added to the ranker, whose field-scoped words kept the old id: notes:coral found none."""
    assert by_ranker(repo, "notes:coral")[0] == 30
    edit = repo.update_records("", [{"op": "remove", "path": "/notes"}])
    repo.undo(edit.commit)
    assert by_ranker(repo, "notes:coral")[0] == by_fts5(repo, "notes:coral")[0] == 30
    assert_same_answers(repo)
