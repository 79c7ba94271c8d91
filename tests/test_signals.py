"""Record hooks (invenio-records' signals, as pluggy hooks): order, arguments, persisted changes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest
from helpers import git

from gitrecords import Record, Repository, ValidationError, hookimpl, hookspecs, plugins

HOOKS = [
    "before_record_insert",
    "after_record_insert",
    "before_record_update",
    "after_record_update",
    "before_record_delete",
    "after_record_delete",
    "before_record_revert",
    "after_record_revert",
]


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", "main").strip()


class Recorder:
    """Implements all eight hooks; records (hook, revision_id, is_deleted, data, branch tip)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, bool, dict, str]] = []
        self.records: list[Record] = []

    def _log(self, name: str, repo: Repository, record: Record) -> None:
        self.calls.append((name, record.revision_id, record.is_deleted, dict(record), tip(repo)))
        self.records.append(record)

    @property
    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    @hookimpl
    def before_record_insert(self, repo: Repository, record: Record) -> None:
        self._log("before_record_insert", repo, record)

    @hookimpl
    def after_record_insert(self, repo: Repository, record: Record) -> None:
        self._log("after_record_insert", repo, record)

    @hookimpl
    def before_record_update(self, repo: Repository, record: Record) -> None:
        self._log("before_record_update", repo, record)

    @hookimpl
    def after_record_update(self, repo: Repository, record: Record) -> None:
        self._log("after_record_update", repo, record)

    @hookimpl
    def before_record_delete(self, repo: Repository, record: Record) -> None:
        self._log("before_record_delete", repo, record)

    @hookimpl
    def after_record_delete(self, repo: Repository, record: Record) -> None:
        self._log("after_record_delete", repo, record)

    @hookimpl
    def before_record_revert(self, repo: Repository, record: Record) -> None:
        self._log("before_record_revert", repo, record)

    @hookimpl
    def after_record_revert(self, repo: Repository, record: Record) -> None:
        self._log("after_record_revert", repo, record)


@contextlib.contextmanager
def registered(plugin: object) -> Iterator[object]:
    plugins.register(plugin)
    try:
        yield plugin
    finally:
        plugins.unregister(plugin)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with registered(Recorder()) as plugin:
        yield plugin  # type: ignore[misc]


def test_recorder_implements_every_record_hook() -> None:
    specs = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "gitrecords_spec")}
    assert specs == {*HOOKS, "gitrecords_pid_minters", "gitrecords_record_view"}
    assert all(hasattr(getattr(Recorder, name), "gitrecords_impl") for name in HOOKS)


def test_signals(repo: Repository, recorder: Recorder) -> None:
    """test_signals.py::test_signals: every operation fires its before/after pair, in order."""
    t0 = tip(repo)
    rec = Record.create({"title": "test"}, repo=repo)
    t1 = tip(repo)
    assert recorder.calls == [
        ("before_record_insert", None, False, {"title": "test"}, t0),
        ("after_record_insert", 0, False, {"title": "test"}, t1),
    ]
    assert recorder.records == [rec, rec]
    assert all(r is rec for r in recorder.records)

    recorder.calls.clear()
    rec["title"] = "test 2"
    rec.commit()
    t2 = tip(repo)
    assert recorder.calls == [
        ("before_record_update", 0, False, {"title": "test 2"}, t1),
        ("after_record_update", 1, False, {"title": "test 2"}, t2),
    ]

    recorder.calls.clear()
    recorder.records.clear()
    new = rec.revert(0)
    t3 = tip(repo)
    assert recorder.names == ["before_record_revert", "after_record_revert"]
    assert recorder.calls[0][1:] == (1, False, {"title": "test 2"}, t2)
    assert recorder.records[0] is rec
    # after_record_revert receives the new record, holding the restored data
    assert recorder.calls[1][1:] == (2, False, {"title": "test"}, t3)
    assert recorder.records[1] is new

    recorder.calls.clear()
    new.delete()
    t4 = tip(repo)
    assert recorder.calls == [
        ("before_record_delete", 2, False, {"title": "test"}, t3),
        ("after_record_delete", 3, True, {"title": "test"}, t4),
    ]

    recorder.calls.clear()
    new.undelete()
    assert recorder.calls == []  # there is no undelete hook

    recorder.calls.clear()
    new.delete(force=True)
    assert recorder.names == ["before_record_delete", "after_record_delete"]
    assert recorder.calls[0][2] is False
    assert recorder.calls[1][2] is True


def test_noop_commit_still_calls_the_update_hooks(repo: Repository, recorder: Recorder) -> None:
    rec = Record.create({"title": "same"}, repo=repo)
    recorder.calls.clear()
    rec.commit()
    assert recorder.names == ["before_record_update", "after_record_update"]


def test_signals_disabled(repo: Repository, recorder: Recorder) -> None:
    """test_signals.py::test_signals_disabled."""

    class QuietRecord(Record):
        send_signals = False

    rec = QuietRecord.create({"title": "test"}, repo=repo)
    rec["title"] = "test 2"
    rec.commit()
    rec = rec.revert(0)
    rec.delete()
    rec.undelete()
    rec.delete(force=True)
    assert recorder.calls == []
    # the base class still sends them
    Record.create({"title": "loud"}, repo=repo)
    assert recorder.names == ["before_record_insert", "after_record_insert"]


class Stamper:
    @hookimpl
    def before_record_insert(self, record: Record) -> None:
        record["created_with"] = "gitrecords"

    @hookimpl
    def before_record_update(self, record: Record) -> None:
        record["edits"] = record.get("edits", 0) + 1


def test_changes_made_by_before_hooks_are_persisted(repo: Repository) -> None:
    """OBS 84-86, improved: the before_record_insert change reaches the repository."""
    with registered(Stamper()):
        rec = Record.create({"title": "My new record"}, repo=repo)
        assert rec == {"title": "My new record", "created_with": "gitrecords"}
        stored = json.loads(git(repo, "show", f"main:{repo.path_for(rec.id)}"))
        assert stored == {"title": "My new record", "created_with": "gitrecords"}

        rec["title"] = "Changed"
        rec.commit()
        stored = json.loads(git(repo, "show", f"main:{repo.path_for(rec.id)}"))
        assert stored == {"title": "Changed", "created_with": "gitrecords", "edits": 1}
        assert Record.get_record(rec.id, repo=repo)["edits"] == 1
        assert rec.revision_id == 1
    # unregistered: nothing is added any more
    rec["title"] = "Plain"
    rec.commit()
    assert json.loads(git(repo, "show", f"main:{repo.path_for(rec.id)}"))["edits"] == 1


class FailsAfterInsert:
    @hookimpl
    def after_record_insert(self, record: Record) -> None:
        raise RuntimeError("receiver failed")


@pytest.mark.parametrize("minters", [[], ["recid"]], ids=["no minter", "recid"])
def test_a_failing_after_insert_receiver_finds_the_record_written_with_or_without_minters(
    repo: Repository, minters: list[str]
) -> None:
    """after_record_insert comes once the record is written (plugins.md); minting, which writes
    in a transaction of its own, does not make a receiver's error roll the create back."""
    before = git(repo, "rev-parse", "main").strip()
    with registered(FailsAfterInsert()), pytest.raises(RuntimeError, match="receiver failed"):
        Record.create({"title": "kept"}, repo=repo, pid_minters=minters)
    assert git(repo, "rev-parse", "main").strip() != before
    assert repo.search("kept").total == 1


class Breaker:
    @hookimpl
    def before_record_insert(self, record: Record) -> None:
        record["year"] = "not a number"


def test_changes_made_by_before_hooks_are_validated(repo: Repository) -> None:
    schema = {"type": "object", "properties": {"year": {"type": "integer"}}}
    before = tip(repo)
    with registered(Breaker()):
        with pytest.raises(ValidationError, match="'not a number' is not of type 'integer'"):
            Record.create({"$schema": schema, "title": "T"}, repo=repo)
    assert tip(repo) == before


class Veto:
    @hookimpl
    def before_record_insert(self) -> None:
        raise PermissionError("no new records today")

    @hookimpl
    def before_record_delete(self) -> None:
        raise PermissionError("no deletes today")


def test_an_error_in_a_before_hook_writes_nothing(repo: Repository) -> None:
    rec = Record.create({"title": "keep"}, repo=repo)
    before = tip(repo)
    with registered(Veto()):
        with pytest.raises(PermissionError, match="no new records"):
            Record.create({"title": "T"}, repo=repo)
        with pytest.raises(PermissionError, match="no deletes"):
            rec.delete()
        with pytest.raises(PermissionError, match="no deletes"):
            rec.delete(force=True)
    assert tip(repo) == before
    assert Record.get_record(rec.id, repo=repo) == {"title": "keep"}


class RecordOnly:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    @hookimpl
    def after_record_insert(self, record: Record) -> None:
        self.seen.append(("insert", record.id))

    @hookimpl
    def after_record_update(self, record):  # untyped, record only
        self.seen.append(("update", record.revision_id))


def test_an_implementation_may_take_only_record(repo: Repository) -> None:
    plugin = RecordOnly()
    with registered(plugin):
        rec = Record.create({"a": 1}, repo=repo)
        rec["a"] = 2
        rec.commit()
    assert plugin.seen == [("insert", rec.id), ("update", 1)]


def test_hooks_inside_a_transaction(repo: Repository, recorder: Recorder) -> None:
    before = tip(repo)
    with repo.transaction():
        rec = Record.create({"a": 1}, repo=repo)
        rec["a"] = 2
        rec.commit()
    assert recorder.names == [
        "before_record_insert",
        "after_record_insert",
        "before_record_update",
        "after_record_update",
    ]
    # every hook ran before the single commit was made
    assert {c[4] for c in recorder.calls} == {before}
    assert int(git(repo, "rev-list", "--count", f"{before}..main")) == 1


class Misspelled:
    @hookimpl
    def before_record_insrt(self, record: Record) -> None:  # no such hook
        pass


def test_a_misspelled_hook_is_refused_and_not_left_registered(repo: Repository) -> None:
    plugin = Misspelled()
    with pytest.raises(pluggy.PluginValidationError, match="before_record_insrt"):
        plugins.register(plugin)
    assert not plugins.get_plugin_manager().is_registered(plugin)
    # other plugins can still be registered
    with registered(RecordOnly()):
        Record.create({"a": 1}, repo=repo)


def test_register_by_name_and_unregister() -> None:
    plugin = RecordOnly()
    assert plugins.register(plugin, name="my-plugin") == "my-plugin"
    try:
        assert plugins.get_plugin_manager().get_plugin("my-plugin") is plugin
    finally:
        plugins.unregister(plugin)
    assert plugins.get_plugin_manager().get_plugin("my-plugin") is None


def test_the_cli_hard_delete_sends_the_delete_signals(repo: Repository, recorder: Recorder, gr) -> None:
    """``gitrecords delete --force`` purged without a word to the plugins: a veto in
    before_record_delete was ignored and after_record_delete never came."""
    first = Record.create({"title": "one"}, repo=repo)
    second = Record.create({"title": "two"}, repo=repo)
    with registered(Veto()):
        refused = gr(repo, "delete", "--force", "--yes", "-i", str(first.id), "-i", str(second.id))
    assert refused.exit_code == 1 and "no deletes" in refused.stderr
    assert Record.get_record(first.id, repo=repo) == {"title": "one"}
    recorder.calls.clear()
    recorder.records.clear()
    done = gr(repo, "delete", "--force", "--yes", "-i", str(first.id), "-i", str(second.id))
    assert done.exit_code == 0, done.stderr
    assert recorder.names == ["before_record_delete"] * 2 + ["after_record_delete"] * 2
    assert [r.id for r in recorder.records] == [first.id, second.id] * 2


def test_a_failing_after_signal_of_a_bulk_edit_names_the_commit_and_reaches_every_record(
    repo: Repository,
) -> None:
    """The change has landed when after_record_update runs: a receiver that raises for one record
    no longer keeps the others from hearing of theirs, and the error says what was committed."""
    from gitrecords.errors import AfterSignalError

    records = [Record.create({"title": f"r{n}"}, repo=repo) for n in range(3)]

    class Flaky:
        seen: list[Any] = []

        @hookimpl
        def after_record_update(self, record: Record) -> None:
            self.seen.append(record.id)
            raise ConnectionError("search server unreachable")

    with registered(Flaky()) as plugin, pytest.raises(AfterSignalError) as raised:
        repo.update_records([r.id for r in records], [{"op": "add", "path": "/y", "value": 2}])
    assert sorted(plugin.seen) == sorted(r.id for r in records)  # type: ignore[attr-defined]
    assert raised.value.commits == [str(repo.tip())]
    assert "the change is committed" in str(raised.value) and "search server unreachable" in str(raised.value)
    assert all(Record.get_record(r.id, repo=repo)["y"] == 2 for r in records)


def test_a_plugin_that_cannot_be_imported_is_named(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry point whose module is missing made every write fail with an 'unexpected'
    ModuleNotFoundError that named neither the plugin nor its distribution."""
    import sys

    from gitrecords.errors import GitRecordsError

    dist = tmp_path / "badplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: badplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[gitrecords]\nbad = nonexistent_module_xyz\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    with pytest.raises(
        GitRecordsError, match=r"plugin 'bad' \(nonexistent_module_xyz of badplug 0.1"
    ) as raised:
        plugins.make_plugin_manager()
    assert "ModuleNotFoundError" in str(raised.value)


def test_undo_sends_the_revert_and_delete_signals(repo: Repository, recorder: Recorder, gr) -> None:
    """An undo restores records (a revert each) and soft-deletes those the commit created (a
    delete each): the same signals as single writes, so a plugin may refuse it."""
    kept = Record.create({"title": "kept"}, repo=repo)
    with repo.transaction():
        kept["title"] = "changed"
        kept.commit()
        made = Record.create({"title": "made"}, repo=repo)
    target = tip(repo)
    with registered(Veto()):
        refused = gr(repo, "undo", target)
    assert refused.exit_code == 1 and "no deletes" in refused.stderr
    assert tip(repo) == target
    recorder.calls.clear()
    recorder.records.clear()
    report = repo.undo(target)
    assert sorted(report.restored) == sorted([str(kept.id), str(made.id)])
    by_hook = {(name, str(record.id)) for name, record in zip(recorder.names, recorder.records, strict=True)}
    assert by_hook == {
        ("before_record_revert", str(kept.id)),
        ("after_record_revert", str(kept.id)),
        ("before_record_delete", str(made.id)),
        ("after_record_delete", str(made.id)),
    }
    assert Record.get_record(kept.id, repo=repo)["title"] == "kept"
    recorder.calls.clear()
    with registered(Veto()):
        assert gr(repo, "undo", tip(repo), "--no-signals").exit_code == 0
    assert recorder.calls == []
