"""gitrecords.checks: validating a tree or a range from git objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ci_helpers import A, B, C, D, E, clone, commit_all, make_server, write
from ci_helpers import run as run_command
from helpers import TITLE_SCHEMA, git
from hypothesis import given, settings
from hypothesis import strategies as st

from gitrecords import Record, Repository, _checkfile, checks, layout
from gitrecords.errors import RepositoryError


def run(cwd: Path, *args: str) -> str:
    return run_command(cwd, *args).stdout


def found(report: checks.Report) -> set[tuple[str, int | None, str, str | None]]:
    return {(p.path, p.line, p.check, p.pointer) for p in report.problems}


@pytest.fixture
def server(tmp_path: Path) -> Repository:
    return make_server(tmp_path / "server.git")


@pytest.fixture
def work(server: Repository, tmp_path: Path) -> Path:
    return clone(server, tmp_path / "work")


def open_clone(work: Path) -> Repository:
    return Repository(work)


def validate_range(
    repo: Repository, base: str = "origin/main", head: str = "HEAD", **kw: Any
) -> checks.Report:
    return checks.validate(repo, head, checks.range_base(repo, base, head), **kw)


# -- whole trees ------------------------------------------------------------------


def test_a_clean_tree_is_valid(server: Repository) -> None:
    report = checks.validate(server)
    assert report.ok and report.full
    assert (report.checked, report.files, report.problems) == (3, 3, [])
    assert report.head == str(server.tip())
    assert report.summary() == "3 records valid"


def test_sample_repo_is_valid(sample_repo: Repository) -> None:
    report = checks.validate(sample_repo)
    assert report.ok, report.problems
    assert report.checked == 60


def test_every_check_names_file_line_id_and_pointer(work: Path) -> None:
    a, b = layout.path_for(A), layout.path_for(B)
    (work / a).write_text(json.dumps({"title": 5, "control_number": "1"}, indent=4) + "\n")
    write(work, layout.path_for(D), {"title": "new", "control_number": "3"})
    write(work, "records/notes.txt", b"notes\n", raw=True)
    write(work, f"records/00/00/{E}.json", {"title": "misplaced"})
    write(work, layout.path_for(E.replace("13cf", "23cf")), b'{\n  "title": "x",\n}\n', raw=True)
    (work / b).unlink()
    commit_all(work)
    repo = open_clone(work)
    report = validate_range(repo)
    bad_json = layout.path_for(E.replace("13cf", "23cf"))
    assert found(report) == {
        (a, 2, "canonical", None),
        (a, 2, "schema", "/title"),
        (b, None, "removed", None),
        (layout.path_for(D), 2, "pid", "/control_number"),
        ("records/notes.txt", None, "stray", None),
        (f"records/00/00/{E}.json", None, "layout", None),
        (bad_json, 3, "json", None),
    }
    by_check = {p.check: p for p in report.problems}
    assert by_check["schema"].message == "5 is not of type 'string'"
    assert by_check["schema"].record_id == A
    assert by_check["pid"].message == f"PID recid:3 is also used by record {C}"
    assert (
        by_check["layout"].message
        == f"this is not where record {E} belongs: git mv it to {layout.path_for(E)}"
    )
    assert by_check["json"].message.startswith("the file is not valid JSON: Expecting property name")
    assert by_check["removed"].record_id == B
    assert str(by_check["schema"]) == f"{a}:2: [schema] /title: 5 is not of type 'string'"
    # 7 problems in 6 files: the range checked A, D and the invalid JSON file
    assert report.summary() == "7 problems in 6 files (3 records checked)"
    # the whole tree: no removal rule, but both holders of recid:3 are blamed
    whole = checks.validate(repo)
    assert (layout.path_for(C), 2, "pid", "/control_number") in found(whole)
    assert (b, None, "removed", None) not in found(whole)


def test_a_record_with_a_schema_problem_lists_every_error(server: Repository) -> None:
    strict = {**TITLE_SCHEMA, "required": ["title", "year"], "additionalProperties": False}
    server.put_schema("title.json", strict)
    report = checks.validate(server)
    assert report.checked == 3
    problems = [(p.record_id, p.pointer, p.line, p.message) for p in report.problems if p.record_id == A]
    assert problems == [
        (A, "/", 1, "'year' is a required property"),
        (A, "/", 1, "Additional properties are not allowed ('control_number' was unexpected)"),
    ]
    assert report.summary() == "6 problems in 3 of 3 records"


def test_missing_schema_points_at_dollar_schema(work: Path) -> None:
    write(work, layout.path_for(D), {"$schema": "nope.json", "title": "x"})
    commit_all(work)
    report = validate_range(open_clone(work))
    (problem,) = report.problems
    assert (problem.check, problem.pointer, problem.line) == ("schema", "/$schema", 2)
    assert "schema 'nope.json' is not in the schema store" in problem.message


def test_record_checks(work: Path) -> None:
    write(work, layout.path_for(D), ["not", "an", "object"])
    write(work, layout.path_for(E), {"$gitrecords": {"x": 1}, "title": "reserved"})
    commit_all(work)
    report = validate_range(open_clone(work))
    assert {(p.record_id, p.check, p.pointer, p.message) for p in report.problems} == {
        (D, "record", "/", "a record must be a JSON object, not an array"),
        (E, "record", "/$gitrecords", "this top-level key is reserved for tombstones"),
    }


def test_size_limit_and_encoding(work: Path) -> None:
    config = json.loads((work / "gitrecords.json").read_text())
    write(work, "gitrecords.json", {**config, "max_record_bytes": 100})
    write(work, layout.path_for(D), {"title": "x" * 200})
    write(work, layout.path_for(E), b'{\n  "title": "\xff"\n}\n', raw=True)
    commit_all(work)
    report = validate_range(open_clone(work))
    assert report.full  # gitrecords.json changed: every record is checked again
    assert {(p.record_id, p.check, p.line, p.message) for p in report.problems} == {
        (D, "record", None, "218 bytes is larger than the limit of 100 bytes (max_record_bytes)"),
        (E, "json", 2, "not valid UTF-8 (byte 14)"),
    }


# -- ranges -------------------------------------------------------------------------


def test_a_range_checks_only_what_it_changes(work: Path) -> None:
    # an invalid record already on the branch is not the range's problem
    (work / layout.path_for(A)).write_bytes(layout.dumps({"title": 1}))
    commit_all(work, "broken before")
    run(work, "git", "push", "-q", "origin", "HEAD:main")
    run(work, "git", "fetch", "-q")
    (work / layout.path_for(B)).write_bytes(layout.dumps({"title": "better", "control_number": "2"}))
    commit_all(work, "the pull request")
    repo = open_clone(work)
    report = validate_range(repo)
    assert report.ok and not report.full
    assert (report.checked, report.summary()) == (1, "1 record valid")
    assert not checks.validate(repo).ok


def test_range_from_the_merge_base(work: Path, server: Repository) -> None:
    """Records added to main after the branch forked are not 'removed' by the branch."""
    run(work, "git", "checkout", "-qb", "feature")
    write(work, layout.path_for(D), {"title": "on the branch"})
    commit_all(work)
    with server:
        Record.create({"title": "on main meanwhile"}, id_=E)
    run(work, "git", "fetch", "-q")
    repo = open_clone(work)
    report = validate_range(repo)
    assert report.ok, report.problems
    assert report.checked == 1
    naive = checks.validate(repo, "HEAD", "origin/main")  # a two-dot tree diff would blame the branch
    assert {(p.check, p.record_id) for p in naive.problems} == {("removed", E)}


def test_soft_delete_and_undelete_are_fine_plain_removal_is_not(work: Path, server: Repository) -> None:
    with server:
        Record.get_record(A).delete()
    run(work, "git", "pull", "-q")
    path = work / layout.path_for(A)
    assert layout.is_tombstone(json.loads(path.read_text()))
    repo = open_clone(work)
    assert checks.validate(repo).checked == 2  # tombstones are checked, not counted
    path.write_bytes(layout.dumps({"title": "back", "control_number": "1"}))  # undelete by hand
    commit_all(work, "undelete")
    assert validate_range(repo).ok
    run(work, "git", "reset", "-q", "--hard", "origin/main")
    path.unlink()  # a tombstone removed by hand
    commit_all(work, "drop the tombstone")
    report = validate_range(repo)
    assert [(p.check, p.record_id) for p in report.problems] == [("removed", A)]


def test_hard_deleted_ids_cannot_come_back(server: Repository, tmp_path: Path) -> None:
    server.hard_delete([A])
    run(tmp_path, "git", "clone", "-q", f"file://{server.path}", "fresh")
    work = tmp_path / "fresh"
    # the id, then the PIDs it held, which stay reserved (docs/format.md)
    assert (work / "purged.txt").read_text() == f"{A} recid:1\n"
    write(work, layout.path_for(A), {"title": "resurrected"})
    (work / "purged.txt").write_text("")
    commit_all(work)
    repo = open_clone(work)
    report = validate_range(repo)
    messages = {p.path: p.message for p in report.problems if p.check == "purged"}
    assert messages == {
        layout.path_for(A): f"record {A} was hard-deleted (it is listed in purged.txt) and cannot come "
        "back: remove this file, or create a record with a new id",
        "purged.txt": f"1 hard-deleted id no longer listed ({A}): ids stay in purged.txt",
    }
    assert checks.validate(repo).ok  # purged.txt no longer lists A at head: only the range can tell
    (work / "purged.txt").write_text(f"{A}\n")
    commit_all(work, "list it again")
    assert {p.path for p in checks.validate(repo).problems} == {layout.path_for(A)}


def test_a_removal_listed_in_purged_txt_by_hand_is_not_a_hard_delete(work: Path) -> None:
    """A hard delete rewrites the history: a range that removes a record's file and lists its id
    in purged.txt is a removal by hand, its content still in the history (a whole-branch check
    would then refuse that history for good); refused, with what to do instead."""
    (work / layout.path_for(A)).unlink()
    (work / "purged.txt").write_text(f"{A}\n")
    commit_all(work, "hard delete by hand")
    report = validate_range(open_clone(work))
    assert [(p.check, p.record_id) for p in report.problems] == [("removed", A)]
    assert "listed in purged.txt by hand" in report.problems[0].message
    assert "gitrecords delete --force" in report.problems[0].message


def test_schema_changes_check_every_record_and_the_schemas(work: Path) -> None:
    stricter = {**TITLE_SCHEMA, "required": ["title", "year"]}
    write(work, "schemas/title.json", stricter)
    (work / "schemas/broken.json").write_text('{\n  "type": "nope"\n}\n')
    (work / "schemas/notjson.json").write_text("{")
    commit_all(work)
    report = validate_range(open_clone(work))
    assert report.full and report.checked == 3
    schema_problems = {(p.path, p.line, p.pointer) for p in report.problems if p.check == "schema-store"}
    assert schema_problems == {("schemas/broken.json", 2, "/type"), ("schemas/notjson.json", 1, None)}
    assert {p.record_id for p in report.problems if p.check == "schema"} == {A, B, C}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "there is no gitrecords.json: this is not a gitrecords data repository"),
        (b"[]\n", "gitrecords.json must hold a JSON object"),
        (b'{\n  "format": 2\n}\n', "format 2 is not supported (this gitrecords reads format 1)"),
        (b'{\n  "records": "../x"\n}\n', "'records' must name a folder at the top of the tree, not '../x'"),
    ],
)
def test_configuration_problems(work: Path, config: bytes | None, message: str) -> None:
    if config is None:
        (work / "gitrecords.json").unlink()
    else:
        (work / "gitrecords.json").write_bytes(config)
    commit_all(work)
    report = checks.validate(open_clone(work))
    assert [(p.path, p.check, p.message) for p in report.problems] == [("gitrecords.json", "config", message)]


# -- PIDs ----------------------------------------------------------------------------


def test_pids_from_the_index_when_it_is_at_the_base(
    server: Repository, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(work, "git", "checkout", "-qb", "feature")
    write(work, layout.path_for(D), {"title": "clash", "control_number": "2"})
    write(work, layout.path_for(E), {"title": "fine", "control_number": "4"})
    commit_all(work)
    run(work, "git", "push", "-q", "origin", "feature")
    reads: list[bytes] = []
    original = checks.pids_of
    monkeypatch.setattr(checks, "pids_of", lambda raw, fields: reads.append(raw) or original(raw, fields))
    # on the server, main's tip is the base and the index follows main: no scan
    report = validate_range(server, "main", "feature")
    assert [(p.record_id, p.check, p.message) for p in report.problems] == [
        (D, "pid", f"PID recid:2 is also used by record {B}")
    ]
    assert len(reads) == 1  # B's file, to confirm it still holds the PID
    # in the clone, the index is not at origin/main: every other record is scanned
    reads.clear()
    assert found(validate_range(open_clone(work))) == found(report)
    assert len(reads) == 3


def test_a_deleted_record_does_not_hold_its_pid(server: Repository, work: Path) -> None:
    with server:
        Record.get_record(B).delete()
    run(work, "git", "pull", "-q")
    write(work, layout.path_for(D), {"title": "reuses 2", "control_number": "2"})
    commit_all(work)
    run(work, "git", "push", "-q", "origin", "HEAD:refs/heads/feature")
    assert validate_range(open_clone(work)).ok
    assert validate_range(server, "main", "feature").ok


def test_pids_of_reads_canonical_files_without_parsing() -> None:
    fields = {"recid": "control_number", "doi": "doi"}
    data = {"control_number": 7, "doi": 'a"b', "nested": {"control_number": "9"}}
    assert checks.pids_of(layout.dumps(data), fields) == {"recid": "7", "doi": 'a"b'}
    assert checks.pids_of(b'{"control_number": "5"}', fields) == {"recid": "5"}
    assert checks.pids_of(layout.dumps({"control_number": 1.5}), fields) == {}
    assert checks.pids_of(layout.dumps({"control_number": ["x"]}), fields) == {}


# -- scale: workers and progress ----------------------------------------------------


def test_workers_give_the_same_report(work: Path) -> None:
    for n in range(30):
        record_id = f"{n:08x}-0000-4000-8000-000000000000"
        data = {"title": n if n % 7 == 0 else f"r{n}", "control_number": str(100 + n % 25)}
        write(work, layout.path_for(record_id), data)
    commit_all(work)
    repo = open_clone(work)
    calls: list[tuple[int, int]] = []
    serial = checks.validate(repo, workers=1, progress=lambda done, total: calls.append((done, total)))
    parallel = checks.validate(repo, workers=2)
    assert serial.problems == parallel.problems
    assert serial.total_problems == 5 + 10  # 5 titles that are numbers, 5 PIDs used twice
    assert calls[0] == (0, 33) and calls[-1] == (33, 33)


def test_problems_are_capped_but_counted(server: Repository) -> None:
    server.put_schema("title.json", {**TITLE_SCHEMA, "required": ["title", "year"]})
    report = checks.validate(server, max_problems=2)
    assert (len(report.problems), report.total_problems) == (2, 3)
    assert report.summary().endswith("; the first 2 are listed")


# -- revisions, bare and shallow repositories --------------------------------------


def test_unknown_revisions(server: Repository) -> None:
    with pytest.raises(RepositoryError, match=r"unknown revision 'origin/nope' \(is it fetched\?\)"):
        checks.validate(server, "origin/nope")
    with pytest.raises(RepositoryError, match="unknown revision"):
        checks.range_base(server, "nope", "HEAD")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("a..b", ("a", "b")),
        ("a...b", ("a", "b")),
        ("origin/main..", ("origin/main", "HEAD")),
        ("..b", ("HEAD", "b")),
        ("main", None),
    ],
)
def test_split_range(spec: str, expected: tuple[str, str] | None) -> None:
    assert checks.split_range(spec) == expected


def test_a_tree_can_be_validated(work: Path) -> None:
    """pre-commit checks the staged tree, which is no commit yet."""
    write(work, layout.path_for(D), {"title": 4})
    run(work, "git", "add", "-A")
    tree = run(work, "git", "write-tree").strip()
    repo = open_clone(work)
    report = checks.validate(repo, tree, "HEAD")
    assert report.head == tree
    assert [(p.record_id, p.pointer) for p in report.problems] == [(D, "/title")]


def test_shallow_ci_clone(server: Repository, work: Path, tmp_path: Path) -> None:
    """A CI checkout of depth 1 with the base fetched at depth 1: no merge base to be found."""
    run(work, "git", "checkout", "-qb", "feature")
    write(work, layout.path_for(D), {"title": 4})
    commit_all(work)
    run(work, "git", "push", "-q", "origin", "feature")
    run(tmp_path, "git", "clone", "-q", "--depth", "1", "--branch", "feature", f"file://{server.path}", "ci")
    ci = tmp_path / "ci"
    run(ci, "git", "fetch", "-q", "--depth", "1", "origin", "main:refs/remotes/origin/main")
    assert (ci / ".git" / "shallow").exists()
    repo = Repository(ci, allow_shallow=True)  # validating a CI checkout needs no whole history
    report = validate_range(repo)
    assert report.base == git(server, "rev-parse", "main").strip()
    assert [(p.record_id, p.check) for p in report.problems] == [(D, "schema")]
    assert report.checked == 1


# -- line numbers --------------------------------------------------------------------


def test_line_of() -> None:
    text = layout.dumps({"a": [1, {"b~/c": None}], "d": "x"}).decode()
    assert checks.line_of(text, "/") == 1
    assert checks.line_of(text, "/a") == 2
    assert checks.line_of(text, "/a/1/b~0~1c") == 5
    assert checks.line_of(text, "/d") == 8
    assert checks.line_of(text, "/a/7") is None
    assert checks.line_of(text, "/nope") is None
    assert checks.line_of('{"a": {"b": 1}}', "/a/b") == 1
    assert checks.line_of("{\n  broken", "/a") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


def _leaves(value: Any, pointer: str = "") -> list[str]:
    if isinstance(value, dict) and value:
        return [
            p
            for key, item in value.items()
            for p in _leaves(item, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
        ]
    if isinstance(value, list) and value:
        return [p for index, item in enumerate(value) for p in _leaves(item, f"{pointer}/{index}")]
    return [pointer]


def _replace(value: Any, parts: list[str], marker: str) -> Any:
    if not parts:
        return marker
    key = parts[0].replace("~1", "/").replace("~0", "~")
    if isinstance(value, list):
        copy = list(value)
        copy[int(key)] = _replace(copy[int(key)], parts[1:], marker)
        return copy
    return {**value, key: _replace(value[key], parts[1:], marker)}


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=4), json_values, max_size=5))
def test_line_of_finds_every_value_of_canonical_json(data: dict[str, Any]) -> None:
    text = layout.dumps(data).decode()
    for pointer in _leaves(data):
        if pointer == "":
            continue
        marker = "@@marker@@"
        marked = layout.dumps(_replace(data, pointer.split("/")[1:], marker)).decode()
        expected = next(n for n, line in enumerate(marked.split("\n"), 1) if marker in line)
        assert checks.line_of(text, pointer) == expected, pointer


# -- fmt ------------------------------------------------------------------------------


def test_fmt(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(layout.dumps({"a": 1}))
    ugly = tmp_path / "ugly.json"
    ugly.write_text('{"b": 1, "a": "é"}')
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": 1,\n}')
    checked = list(checks.fmt([good, ugly, broken], check=True))
    assert [(r.changed, r.error is not None, r.line) for r in checked] == [
        (False, False, None),
        (True, False, None),
        (False, True, 2),
    ]
    assert ugly.read_text() == '{"b": 1, "a": "é"}'
    list(checks.fmt([ugly]))
    assert ugly.read_bytes() == layout.dumps({"a": "é", "b": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json", "good.json", "ugly.json"]


def test_many_blobs_are_read_through_git_cat_file(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(work, layout.path_for(D), {"title": 4, "control_number": "2"})
    write(work, layout.path_for(E), b"\xff\n", raw=True)
    commit_all(work)
    repo = open_clone(work)
    expected = found(checks.validate(repo))
    monkeypatch.setattr(_checkfile, "CAT_FILE_THRESHOLD", 0)
    with _checkfile.BlobReader(repo, 1) as reader:
        assert reader.proc is not None
        blob = repo.git.revparse_single(f"HEAD:{layout.path_for(E)}").id
        assert reader.read([blob, blob]) == [b"\xff\n", b"\xff\n"]
        with pytest.raises(
            RepositoryError, match=f"git cat-file cannot read blob {'0' * 39}1: {'0' * 39}1 missing"
        ):
            reader.read(["0" * 39 + "1"])
    assert found(checks.validate(repo)) == expected
    assert found(validate_range(repo)) <= expected


def test_a_range_that_moves_the_records_folder_must_move_the_records(work: Path) -> None:
    """Changing "records" in gitrecords.json alone hides every record (the range check passed it,
    the whole-tree check did not); with the files moved too, the range is fine."""
    config = json.loads((work / layout.CONFIG_FILE).read_text())
    config["records"] = "data"
    (work / layout.CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    commit_all(work, "records folder: data")
    report = checks.validate(open_clone(work), "HEAD", "HEAD~1")
    removed = {p.record_id for p in report.problems if p.check == "removed"}
    assert removed == {A, B, C}
    assert {p.check for p in report.problems} == {"removed", "layout"}
    run(work, "git", "mv", "records", "data")
    commit_all(work, "the files move too")
    assert checks.validate(open_clone(work), "HEAD", "HEAD~2").ok


def test_a_gitlink_in_the_records_folder_is_stray(work: Path) -> None:
    head = run(work, "git", "rev-parse", "HEAD").strip()
    link = "records/aa/bb/not-a-record.json"
    run(work, "git", "update-index", "--add", "--cacheinfo", f"160000,{head},{link}")
    run(work, "git", "-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-qm", "a gitlink")
    for base in ("HEAD~1", None):
        report = checks.validate(open_clone(work), "HEAD", base)
        assert [(p.path, p.check) for p in report.problems] == [(link, "stray")]
        assert "a gitlink (a submodule entry)" in report.problems[0].message


def test_a_symbolic_link_in_the_records_folder_is_named_as_one(work: Path) -> None:
    """A record path that is a symbolic link was reported as invalid JSON (its content is the
    path it points to): it is now named as a link, with what to do."""
    path = layout.path_for(D)
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).symlink_to("../../../elsewhere.json")
    commit_all(work, "a link where a record goes")
    for base in ("HEAD~1", None):
        [problem] = [p for p in checks.validate(open_clone(work), "HEAD", base).problems if p.path == path]
        assert problem.check == "json" and problem.line is None and problem.pointer is None
        assert problem.message.startswith("a symbolic link, not a file: a record is a file of JSON")
        assert f"git rm --cached {path}" in problem.message


@pytest.mark.parametrize(
    ("text", "line", "pointer"),
    [
        ('{\n  "title": "a",\n  "control_number": "3",\n  "control_number": "4"\n}\n', 4, "/control_number"),
        ('{\n  "title": "a",\n  "n": [1, NaN]\n}\n', 3, "/n/1"),
        ('{\n  "title": "a",\n  "n": {"x)": -0}\n}\n', 3, "/n/x)"),
    ],
)
def test_a_value_the_strict_reader_refuses_is_named_by_line_and_pointer(
    work: Path, text: str, line: int, pointer: str
) -> None:
    """A duplicate key, NaN or -0 is refused with its line and JSON pointer in the message; the
    problem carries them too (text output path:line:, --format github's line=), as for a
    syntax error."""
    path = layout.path_for(D)
    write(work, path, text.encode(), raw=True)
    commit_all(work, "a refused value")
    [problem] = [p for p in validate_range(open_clone(work)).problems if p.path == path]
    assert (problem.check, problem.line, problem.pointer) == ("json", line, pointer)


def test_purged_txt_must_be_a_file(work: Path) -> None:
    """purged.txt as a folder is read as no file (an empty purge log), and a hard delete would
    write its own file over it: refused (gitrecords.json as one is refused as missing)."""
    (work / "purged.txt").mkdir()
    (work / "purged.txt" / "keep").write_text("x\n")
    commit_all(work, "purged.txt as a folder")
    for base in ("HEAD~1", None):
        report = checks.validate(open_clone(work), "HEAD", base)
        assert [(p.path, p.check) for p in report.problems] == [("purged.txt", "purged")]
        assert report.problems[0].message == (
            "purged.txt must be a file, and here it is a folder: 'git rm -r --cached purged.txt'"
        )


def test_a_range_that_lists_a_live_record_in_purged_txt_checks_every_record(work: Path) -> None:
    """purged.txt bears on records and PIDs the range does not touch: a live record's id or a
    PID listed there by hand was accepted by a range check, then refused by every whole check."""
    with (work / "purged.txt").open("a") as out:
        out.write(f"{B}\n")
    commit_all(work, "purged.txt edited by hand")
    report = validate_range(open_clone(work))
    assert report.full
    assert ("purged", B) in {(p.check, p.record_id) for p in report.problems}


def test_a_file_name_with_a_newline_is_shown_on_one_line() -> None:
    problem = checks.Problem("records/evil\nsecond line.json", "stray", "a file that is not a record")
    assert str(problem) == '"records/evil\\nsecond line.json": [stray] a file that is not a record'
    assert str(checks.Problem("records/a.json", "stray", "x")) == "records/a.json: [stray] x"


def test_a_range_whose_middle_commit_breaks_a_record_file_is_refused(work: Path) -> None:
    """Every commit on the branch is a revision: one that leaves a record file unreadable, fixed
    by the next, became a revision that get --revision, diff and revert could not read."""
    good = (work / layout.path_for(A)).read_bytes()
    (work / layout.path_for(A)).write_text('{"title": \n')
    commit_all(work, "broken")
    write(work, layout.path_for(A), {**json.loads(good), "title": "fixed"})
    commit_all(work, "fixed")
    report = validate_range(open_clone(work))
    assert [(p.check, p.record_id) for p in report.problems] == [("revision", A)]
    assert "every commit on the branch is a revision" in report.problems[0].message
    # squashed into one commit, the same change is fine
    run(work, "git", "reset", "-q", "--soft", "HEAD~2")
    commit_all(work, "fixed, squashed")
    assert validate_range(open_clone(work)).ok


def test_a_tombstone_carries_no_data(work: Path) -> None:
    """Any object with a "deleted" key under $gitrecords read as a tombstone, so data could ride
    along in one, past every check."""
    write(work, layout.path_for(A), {"$gitrecords": {"deleted": None, "payload": "anything"}})
    commit_all(work, "a tombstone with a payload")
    report = validate_range(open_clone(work))
    assert [(p.check, p.record_id, p.pointer) for p in report.problems] == [("record", A, "/$gitrecords")]
    assert "not the keys 'payload'" in report.problems[0].message
    write(work, layout.path_for(A), {"$gitrecords": {"deleted": "2026-11-26T07:18:31Z"}})
    commit_all(work, "a plain tombstone")
    assert validate_range(open_clone(work)).ok
