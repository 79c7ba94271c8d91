"""The read path's shortcuts never show stale or shared data.

A read takes one snapshot of the branch (tip, tree, configuration, cached by tip
oid), the index answers freshness and the record's summary in one query, and a
repository keeps parsed record files by blob id. These tests pin what must stay
true: a commit made elsewhere is seen by the next read, a value read twice is a
copy, and the strict checks still apply to every file that was not read before.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitrecords import InvalidRecordError, Record, Repository, _git, layout
from gitrecords._parsed import ParsedBlobs


def push_from_clone(repo: Repository, tmp: Path, files: dict[str, bytes], message: str = "edit") -> str:
    """Clone ``repo``, write ``files``, commit and push with the git binary; returns the commit."""
    work = tmp / f"clone-{len(list(tmp.glob('clone-*')))}"
    subprocess.run(["git", "clone", "-q", str(repo.git_dir), str(work)], check=True, capture_output=True)
    for path, content in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(content)
    env = {**os.environ, "GIT_AUTHOR_NAME": "Elsewhere", "GIT_AUTHOR_EMAIL": "e@example.org"}
    env.update(GIT_COMMITTER_NAME="Elsewhere", GIT_COMMITTER_EMAIL="e@example.org")
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", message], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "main"], check=True, capture_output=True)
    return subprocess.run(
        ["git", "-C", str(work), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_a_push_is_seen_by_the_next_get_and_listing(repo: Repository, tmp_path: Path) -> None:
    record = Record.create({"title": "one"}, repo=repo)
    before = Record.get_record(record.id, repo=repo)
    assert (before["title"], before.revision_id, len(before.revisions)) == ("one", 0, 1)
    push_from_clone(repo, tmp_path, {repo.path_for(record.id): layout.dumps({"title": "two"})})
    after = Record.get_record(record.id, repo=repo)
    assert (after["title"], after.revision_id) == ("two", 1)
    assert [dict(r) for r in after.revisions] == [{"title": "one"}, {"title": "two"}]


def test_a_write_through_another_repository_object_is_seen(repo: Repository) -> None:
    other = Repository(repo.path)
    record = Record.create({"title": "one"}, repo=repo)
    assert Record.get_record(record.id, repo=other).revision_id == 0
    record["title"] = "two"
    record.commit()
    seen = Record.get_record(record.id, repo=other)
    assert (seen["title"], seen.revision_id, seen.updated) == ("two", 1, record.updated)
    other.close()


def test_a_value_read_twice_is_a_copy(repo: Repository) -> None:
    record = Record.create({"title": "one", "nested": {"list": [1, {"k": "v"}]}}, repo=repo)
    first = Record.get_record(record.id, repo=repo)
    first["nested"]["list"][1]["k"] = "changed"
    first["nested"]["list"].append(2)
    again = Record.get_record(record.id, repo=repo)
    assert again == {"title": "one", "nested": {"list": [1, {"k": "v"}]}}
    revision = record.revisions[0]
    revision["nested"]["list"].clear()
    assert record.revisions[0]["nested"] == {"list": [1, {"k": "v"}]}


def test_a_value_read_again_is_equal_to_the_first_read(repo: Repository) -> None:
    data = {"a": 1.5, "b": -(10**30), "c": "é\u2028", "d": [True, False, None], "e": {}, "f": []}
    record = Record.create(data, repo=repo)
    reads = [Record.get_record(record.id, repo=repo) for _ in range(3)]
    assert all(r == data for r in reads)
    assert all(list(r) == sorted(data) for r in reads)  # the file's key order
    assert json.dumps(reads[0]) == json.dumps(reads[2])


def test_duplicate_keys_pushed_are_refused_on_every_read(repo: Repository, tmp_path: Path) -> None:
    record = Record.create({"title": "one"}, repo=repo)
    Record.get_record(record.id, repo=repo)  # the good blob is now kept parsed
    commit = push_from_clone(repo, tmp_path, {repo.path_for(record.id): b'{"title": "a", "title": "b"}\n'})
    for _ in range(2):
        with pytest.raises(InvalidRecordError, match="duplicate key 'title'") as err:
            Record.get_record(record.id, repo=repo)
        assert f"{repo.path_for(record.id)} in commit {commit[:12]}" in str(err.value)
    revisions = record.revisions
    assert revisions[0] == {"title": "one"}
    with pytest.raises(InvalidRecordError, match="duplicate key 'title'"):
        revisions[1]


def test_a_lower_size_limit_applies_to_a_file_read_before(repo: Repository, tmp_path: Path) -> None:
    record = Record.create({"title": "x" * 300}, repo=repo)
    Record.get_record(record.id, repo=repo)
    config = {**repo.config, "max_record_bytes": 100}
    push_from_clone(repo, tmp_path, {layout.CONFIG_FILE: layout.dumps(config)})
    with pytest.raises(InvalidRecordError, match="larger than 100 bytes"):
        Record.get_record(record.id, repo=repo)


def test_parsed_blobs_stay_within_their_budget(repo: Repository) -> None:
    parsed = ParsedBlobs(max_entries=50, max_bytes=2000, max_item=500)
    values = [{"n": n, "pad": "x" * 50} for n in range(100)]
    blobs = [_git.create_blob(repo.git, layout.dumps(v)) for v in values]

    def read(blob: _git.Oid) -> Any:
        return parsed.read(blob, 10_000, lambda: _git.read_blob(repo.git, blob))

    assert [read(b) for b in blobs] == values  # strict parse; remembered as checked only
    assert len(parsed._items) == 50 and blobs[0] not in parsed and blobs[-1] in parsed
    assert not parsed.kept(blobs[-1]) and parsed._size == 0
    assert [read(b) for b in blobs[-50:]] == values[-50:]  # checked: kept while within budget
    assert parsed._size <= 2000 and parsed.kept(blobs[-1]) and not parsed.kept(blobs[50])
    assert read(blobs[-1]) == values[-1] and read(blobs[-1]) is not read(blobs[-1])
    with pytest.raises(InvalidRecordError, match="larger than 20 bytes"):
        parsed.read(blobs[-1], 20, lambda: _git.read_blob(repo.git, blobs[-1]))
    big = _git.create_blob(repo.git, layout.dumps({"big": "y" * 1000}))
    read(big)
    read(big)
    assert big in parsed and not parsed.kept(big)  # larger than max_item: checked only


def test_a_file_read_three_times_goes_through_each_stage(repo: Repository, tmp_path: Path) -> None:
    record = Record.create({"title": "one", "tags": ["a", "b"]}, repo=repo)
    blob = record._blob
    assert blob is not None and blob not in repo.parsed
    reads = [Record.get_record(record.id, repo=repo) for _ in range(3)]
    assert all(r == {"title": "one", "tags": ["a", "b"]} for r in reads)
    assert repo.parsed.kept(blob)


def test_a_hard_delete_forgets_the_parsed_files(repo: Repository) -> None:
    record = Record.create({"title": "secret"}, repo=repo)
    for _ in range(2):
        Record.get_record(record.id, repo=repo)
    blob = record._blob
    assert repo.parsed.kept(blob)
    record.delete(force=True)
    assert blob not in repo.parsed and not repo.parsed._items


def test_a_read_racing_a_writer_never_syncs_the_index_backwards(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A get reads the tip, then asks the index; a writer elsewhere may have moved both on in
    between. The index then catches up with the branch: it must not go back to the older tip
    (which is not a descendant of the indexed one, so that would be a full rebuild)."""
    record = Record.create({"title": "one"}, repo=repo)
    older = repo.tip()
    record["title"] = "two"
    record.commit()  # the index is at the new tip now
    monkeypatch.setattr(repo.index, "_clear", lambda: pytest.fail("the index was rebuilt"))
    assert repo.index.summary(record.id, older) is not None
    assert repo.index.indexed_tip() == str(repo.tip())


def test_pack_windows_are_narrowed_and_restored() -> None:
    """narrow_pack_windows narrows libgit2's pack mapping while any use of it lasts (nested, in
    threads) and puts gitrecords' settings back after the last; a process that set its own
    settings keeps them."""
    import threading

    import pygit2

    from gitrecords import _git

    settings = pygit2.settings
    assert (settings.mwindow_size, settings.mwindow_mapped_limit) == (
        _git.MWINDOW_SIZE,
        _git.MWINDOW_MAPPED_LIMIT,
    )
    narrow = (_git.NARROW_WINDOW_SIZE, _git.NARROW_MAPPED_LIMIT)
    entered, leave = threading.Event(), threading.Event()

    def other() -> None:
        with _git.narrow_pack_windows():
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    with _git.narrow_pack_windows():
        assert (settings.mwindow_size, settings.mwindow_mapped_limit) == narrow
        thread.start()
        entered.wait(10)
        with _git.narrow_pack_windows():
            assert (settings.mwindow_size, settings.mwindow_mapped_limit) == narrow
    assert (settings.mwindow_size, settings.mwindow_mapped_limit) == narrow  # the thread still reads
    leave.set()
    thread.join()
    assert (settings.mwindow_size, settings.mwindow_mapped_limit) == (
        _git.MWINDOW_SIZE,
        _git.MWINDOW_MAPPED_LIMIT,
    )

    settings.mwindow_mapped_limit = 96 * 1024 * 1024  # the process's own choice
    try:
        with _git.narrow_pack_windows():
            assert settings.mwindow_mapped_limit == 96 * 1024 * 1024
        assert settings.mwindow_mapped_limit == 96 * 1024 * 1024
    finally:
        settings.mwindow_mapped_limit = _git.MWINDOW_MAPPED_LIMIT


def test_a_bulk_edit_catch_up_reads_the_old_files_in_narrow_windows(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search index's catch-up of a bulk edit reads every record's old and new file with the
    pack windows narrowed (a smaller catch-up does not)."""
    import contextlib

    from gitrecords import _git, search_index

    monkeypatch.setattr(search_index, "BULK", 20)
    narrowed: list[bool] = []
    real = _git.narrow_pack_windows

    @contextlib.contextmanager
    def spy() -> Iterator[None]:
        with real():
            narrowed.append(True)
            yield

    monkeypatch.setattr(_git, "narrow_pack_windows", spy)
    ids = repo.import_records([{"title": f"t{n}"} for n in range(60)]).ids
    repo.search("")
    repo.update_records(ids[:10], [{"op": "add", "path": "/x", "value": 1}])
    assert narrowed == []
    repo.update_records(ids, [{"op": "add", "path": "/y", "value": 2}])
    assert narrowed == [True]
    assert repo.search("y:2").total == 60
