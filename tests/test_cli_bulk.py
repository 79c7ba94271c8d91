"""CLI: list, export, import, validate, reindex, and progress bars."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
from pathlib import Path

import pytest
from helpers import SAMPLE_REPO, TITLE_SCHEMA, git

import gitrecords.bulk
import gitrecords.cli.bulk
from gitrecords import Record, Repository, layout
from gitrecords.cli import _output
from gitrecords.cli.bulk import count_records, summary


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", repo.branch).strip()


def commits(repo: Repository) -> int:
    return int(git(repo, "rev-list", "--count", repo.branch).strip())


def git_ids(repo: Repository) -> list[str]:
    """Record ids in the branch tip, read with the real git binary."""
    names = git(repo, "ls-tree", "-r", "--name-only", repo.branch, "records/").split()
    return [Path(name).stem for name in names]


# -- list --------------------------------------------------------------------


def test_list_sample(gr, sample_repo):
    result = gr(sample_repo, "list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 60
    assert {line.split("  ", 1)[0] for line in lines} == set(git_ids(sample_repo))
    record_id, title = lines[0].split("  ", 1)
    data = json.loads(git(sample_repo, "show", f"main:{sample_repo.path_for(record_id)}"))
    assert title == data["titles"][0]["title"]
    assert gr(sample_repo, "list", "--count").stdout == "60\n"


def test_list_json_nl_and_deleted(gr, repo):
    ids = gr(repo, "create", input='[{"title": "a"}, {"name": "b"}, {"n": 1}]').stdout.split()
    gr(repo, "delete", "-i", ids[2])
    rows = json.loads(gr(repo, "list", "--json").stdout)
    assert {r["id"]: r["summary"] for r in rows} == {ids[0]: "a", ids[1]: "b"}
    assert all(set(r) == {"id", "revision_id", "is_deleted", "summary"} for r in rows)
    lines = gr(repo, "list", "--nl", "--with-deleted").stdout.splitlines()
    rows = {row["id"]: row for row in map(json.loads, lines)}
    assert rows[ids[2]] == {"id": ids[2], "revision_id": 1, "is_deleted": True, "summary": None}
    assert gr(repo, "list", "--count", "--with-deleted").stdout == "3\n"
    assert f"{ids[2]}  (deleted)" in gr(repo, "list", "--with-deleted").stdout
    result = gr(repo, "list", "--json", "--nl")
    assert result.exit_code == 2
    assert result.stderr == "Error: use --json or --nl, not both\n"


def test_an_edit_with_a_malformed_pointer_is_a_usage_error(gr, sample_repo):
    for option, value in (("--unset", "/~2x"), ("--set", "/a~/b=1")):
        result = gr(sample_repo, "edit", option, value, "--dry-run")
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith(
            f"Error: '{value.split('=')[0]}' is not a JSON pointer: Found invalid escape"
        )


def test_summary():
    assert summary({"title": "T", "titles": [{"title": "U"}]}) == "T"
    assert summary({"titles": [{"title": "U", "lang": "en"}]}) == "U"
    assert summary({"$schema": "s", "control_number": "1", "name": "N"}, {"control_number"}) == "N"
    assert summary({"n": 1}) is None


# -- export ------------------------------------------------------------------


def test_export_json_lines(gr, sample_repo, tmp_path):
    result = gr(sample_repo, "export")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 60
    assert sorted(r["id"] for r in rows) == sorted(git_ids(sample_repo))
    first = rows[0]
    assert set(first) == {"id", "revision_id", "data"}
    assert first["data"] == json.loads(git(sample_repo, "show", f"main:{sample_repo.path_for(first['id'])}"))

    out = tmp_path / "out.jsonl"
    result = gr(sample_repo, "export", "-o", str(out))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert out.read_text("utf-8").splitlines() == [json.dumps(r, ensure_ascii=False) for r in rows]


def test_export_skips_deleted(gr, repo):
    ids = gr(repo, "create", input='[{"title": "a"}, {"title": "b"}]').stdout.split()
    gr(repo, "delete", "-i", ids[0])
    rows = [json.loads(line) for line in gr(repo, "export").stdout.splitlines()]
    assert rows == [{"id": ids[1], "revision_id": 0, "data": {"title": "b"}}]


def test_export_dir(gr, sample_repo, tmp_path):
    target = tmp_path / "snapshot"
    result = gr(sample_repo, "export", "--dir", str(target))
    assert result.exit_code == 0, result.stderr
    files = sorted((target / "records").rglob("*.json"))
    assert len(files) == 60
    for file in files[:5]:
        rel = file.relative_to(target).as_posix()
        assert rel == sample_repo.path_for(file.stem)
        assert file.read_bytes() == git(sample_repo, "show", f"main:{rel}").encode("utf-8")
    result = gr(sample_repo, "export", "--dir", str(target))
    assert result.exit_code == 2
    assert "already exists and is not empty" in result.stderr
    assert gr(sample_repo, "export", "--dir", str(tmp_path / "x"), "-o", "f").exit_code == 2


def test_export_writes_into_a_fifo_instead_of_replacing_it(gr, sample_repo, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = gr(sample_repo, "export", "-o", str(fifo))
    reader.join(timeout=10)
    assert result.exit_code == 0, result.stderr
    assert fifo.is_fifo()
    assert len(received[0].splitlines()) == 60


def test_export_replaces_a_file_and_keeps_its_symlink_and_mode(gr, repo, tmp_path):
    gr(repo, "create", input='{"title": "a"}')
    out = tmp_path / "out"
    out.mkdir()
    real = out / "real.jsonl"
    real.write_text("old\n")
    real.chmod(0o640)
    link = out / "link.jsonl"
    link.symlink_to("real.jsonl")
    assert gr(repo, "export", "-o", str(link)).exit_code == 0
    assert link.is_symlink()
    assert json.loads(real.read_text())["data"] == {"title": "a"}
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in out.iterdir()) == ["link.jsonl", "real.jsonl"]


def test_export_into_a_missing_folder_names_the_path_given(gr, repo, tmp_path):
    target = tmp_path / "missing" / "out.jsonl"
    result = gr(repo, "export", "-o", str(target))
    assert result.exit_code == 2
    assert result.stderr == f"Error: -o {target}: No such file or directory\n"


# -- import ------------------------------------------------------------------


@pytest.fixture
def schemas_only(tmp_path: Path) -> Repository:
    """A data repository with sample-repo's configuration and schemas but no records."""
    source = tmp_path / "schemas-only"
    shutil.copytree(SAMPLE_REPO, source, ignore=shutil.ignore_patterns("records"))
    return Repository.init(tmp_path / "empty.git", from_dir=source)


def test_export_then_import_round_trip_is_one_commit(gr, sample_repo, schemas_only, tmp_path):
    repo = schemas_only
    dump = tmp_path / "dump.jsonl"
    gr(sample_repo, "export", "-o", str(dump))
    before = commits(repo)
    result = gr(repo, "import", str(dump))
    assert result.exit_code == 0, result.stderr
    assert commits(repo) == before + 1
    assert sorted(git_ids(repo)) == sorted(git_ids(sample_repo))
    assert result.stdout.split() == [json.loads(line)["id"] for line in dump.read_text().splitlines()]
    assert git(repo, "log", "-1", "--format=%s").strip() == "import 60 records from dump.jsonl"
    some = git_ids(sample_repo)[7]
    path = sample_repo.path_for(some)
    assert git(repo, "show", f"main:{path}") == git(sample_repo, "show", f"main:{path}")

    # again: the ids exist now
    again = gr(repo, "import", str(dump))
    assert again.exit_code == 1  # a conflict with the data (as create's), not a misuse
    assert again.stderr.startswith("Error: 60 records already exist (")
    # with --force nothing changes, since the data is the same
    forced = gr(repo, "import", "--force", str(dump))
    assert forced.exit_code == 0, forced.stderr
    assert commits(repo) == before + 1


def test_import_plain_data_lines_from_stdin(gr, repo):
    result = gr(repo, "import", "-", "--pid-minter", "recid", input='{"title": "a"}\n{"title": "b"}\n')
    assert result.exit_code == 0, result.stderr
    ids = result.stdout.split()
    assert len(ids) == 2
    assert [Record.get_record(i, repo=repo)["control_number"] for i in ids] == ["1", "2"]
    assert result.stderr == f"Imported 2 records (commit {tip(repo)[:7]})\n"


def test_import_reports_every_invalid_record_and_writes_nothing(gr, title_repo, tmp_path):
    lines = [
        {"title": "ok"},
        {"id": "deadbeef-9fe4-43d3-a08f-38c2b309afba", "data": {"year": 1}},
        {"title": 3},
        {"id": "not-an-id", "data": {"title": "x"}},
    ]
    file = tmp_path / "in.jsonl"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = tip(title_repo)
    result = gr(title_repo, "import", str(file))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{file} line 2: record deadbeef-9fe4-43d3-a08f-38c2b309afba: /: 'title' is a required property",
        f"{file} line 3: new record: /title: 3 is not of type 'string'",
        f"{file} line 4: /id: 'not-an-id' is not a valid record id (a UUID)",
        "Error: 3 problems in 3 of 4 records; nothing was written",
    ]
    lines[3]["id"] = None
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = gr(title_repo, "import", str(file))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{file} line 2: record deadbeef-9fe4-43d3-a08f-38c2b309afba: /: 'title' is a required property",
        f"{file} line 3: new record: /title: 3 is not of type 'string'",
        "Error: 2 problems in 2 of 4 records; nothing was written",
    ]
    assert tip(title_repo) == before


def test_import_invalid_json_line(gr, repo, tmp_path):
    file = tmp_path / "in.jsonl"
    file.write_text('{"title": "a"}\n{"title": "b",}\n')
    result = gr(repo, "import", str(file))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {file} line 2 is not valid JSON")


def test_import_counts_each_invalid_json_line_as_a_record(gr, repo, tmp_path):
    """Lines that are not JSON were all counted as one record: "3 problems in 1 of 4 records"."""
    file = tmp_path / "in.jsonl"
    file.write_text('{"a": 1}\n{"a":\n{"b":\n{"c":\n')
    for source, label, given in ((str(file), str(file), None), ("-", "stdin", file.read_bytes())):
        result = gr(repo, "import", source, input=given)
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        assert [line.split(" is not valid JSON")[0] for line in lines[:3]] == [
            f"{label} line {n}" for n in (2, 3, 4)
        ]
        assert lines[3:] == ["Error: 3 problems in 3 of 4 records; nothing was written"]


def test_import_gives_the_position_in_a_bad_line_without_its_newline(gr, repo, tmp_path):
    """The fast path parsed each line with its newline: "(line 2 column 1)" for a one-line
    record, where the record-by-record path said "(line 1 column 6)"."""
    file = tmp_path / "in.jsonl"
    file.write_text('{"a": 1}\n{"a":\n')
    envelope = tmp_path / "envelope.jsonl"
    envelope.write_text('{"a": 1}\n{"data":\n')  # parsed by the CLI, not by the import
    expected = "line 2 is not valid JSON: Expecting value ({}); nothing was written\n"
    for args, given, label, place in (
        ((str(file),), None, str(file), "line 1 column 6"),
        (("-",), file.read_bytes(), "stdin", "line 1 column 6"),
        ((str(envelope),), None, str(envelope), "line 1 column 9"),
    ):
        result = gr(repo, "import", *args, input=given)
        assert result.exit_code == 1
        assert result.stderr == f"Error: {label} " + expected.format(place)
    minted = gr(repo, "import", "--pid-minter=recid", str(file))
    assert minted.stderr == f"Error: {file} line 2 is not valid JSON: Expecting value (line 1 column 6)\n"


def test_import_reports_the_same_from_a_file_and_from_stdin(gr, title_repo, tmp_path):
    """Lines of a file that cannot be envelopes are parsed by the import, not by the CLI first;
    the report must not change (stdin is parsed line by line before the import)."""
    lines = [
        '{"title": "ok"}',
        '{"title": "b",}',  # not JSON
        '{"title": "a", "title": "b"}',  # a duplicate key
        '["a list"]',
        '{"title": 3}',
        '{"\\u0074itle": "escaped key"}',
        '{"id": "deadbeef-9fe4-43d3-a08f-38c2b309afba", "data": {"year": 1}}',
        '{"title": NaN}',
        '{"title": "x", "$gitrecords": {}}',
        "\ufeff" + '{"title": "after a byte order mark"}',
        '{"title": "\\ud800"}',  # an unpaired surrogate escape
        '{"title": "deep", "x": ' + "[" * 2000 + "]" * 2000 + "}",
    ]
    file = tmp_path / "in.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from_file = gr(title_repo, "import", str(file))
    from_stdin = gr(title_repo, "import", "-", input=file.read_bytes())
    assert from_file.exit_code == from_stdin.exit_code == 1
    assert from_file.stderr.replace(str(file), "stdin") == from_stdin.stderr
    assert "stdin line 2 is not valid JSON" in from_stdin.stderr
    assert "duplicate key 'title'" in from_stdin.stderr


def test_import_refuses_an_envelope_whose_data_is_not_an_object_on_both_paths(gr, repo, tmp_path):
    """The record-by-record path (--force, minting) took such a line as a new record's data."""
    file = tmp_path / "env.jsonl"
    file.write_text('{"title": "a"}\n{"id": "00000000-0000-4000-8000-0000000000aa", "data": "hello"}\n')
    before = repo.tip()
    fast = gr(repo, "import", str(file))
    assert fast.exit_code == 1
    assert "a record must be a JSON object" in fast.stderr
    for option in ("--force", "--pid-minter=recid"):
        result = gr(repo, "import", option, str(file))
        assert result.exit_code == 1, option
        assert result.stderr == (
            f"Error: {file} line 2: /data: a record must be a JSON object, not a string; "
            "nothing was written\n"
        )
    assert repo.tip() == before


def test_minting_import_lists_a_purged_pid_with_the_other_problems(gr, sample_repo, tmp_path):
    """The record-by-record path found a hard-deleted record's PID only at write time, naming a
    random new id instead of the input line, and not at all when another problem was listed."""
    gone = str(sample_repo.lookup_pid("recid", "44"))
    taken = str(sample_repo.lookup_pid("recid", "45"))
    assert gr(sample_repo, "delete", "--force", "--yes", "-i", gone).exit_code == 0
    file = tmp_path / "in.jsonl"
    file.write_text('{"title": "b", "control_number": "44"}\n{"title": "c", "control_number": "45"}\n')
    before = sample_repo.tip()
    result = gr(sample_repo, "import", str(file))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{file} line 1: new record: /control_number: PID recid:44 belonged to hard-deleted record "
        f"{gone} and stays reserved",
        f"{file} line 2: new record: /control_number: PID recid:45 is already used by record {taken}",
        "Error: 2 problems in 2 of 2 records; nothing was written",
    ]
    assert sample_repo.tip() == before


def test_import_force_lists_a_hard_deleted_id_with_the_other_problems(gr, repo, tmp_path):
    gone = gr(repo, "create", input='{"title": "a"}').stdout.strip()
    assert gr(repo, "delete", "--force", "--yes", "-i", gone).exit_code == 0
    other = "00000000-0000-4000-8000-0000000000aa"
    file = tmp_path / "in.jsonl"
    file.write_text(
        f'{{"id": "{gone}", "data": {{"title": "b"}}}}\n{{"id": "{other}", "data": {{"$gitrecords": 1}}}}\n'
    )
    before = repo.tip()
    result = gr(repo, "import", "--force", str(file))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{file} line 1: record {gone} was hard-deleted (it is listed in purged.txt); "
        "its id cannot be used again",
        f"{file} line 2: record {other}: /$gitrecords: this top-level key is reserved for tombstones",
        "Error: 2 problems in 2 of 2 records; nothing was written",
    ]
    assert repo.tip() == before


def test_import_force_counts_the_records_written_not_every_input_record(gr, sample_repo, tmp_path):
    """The summary and the commit message said "60 records" when one got a new revision."""
    lines = gr(sample_repo, "export").stdout.splitlines()
    changed = json.loads(lines[0])
    changed["data"]["version"] = "9.9"
    file = tmp_path / "changed.jsonl"
    file.write_text("\n".join([json.dumps(changed), *lines[1:]]) + "\n")
    result = gr(sample_repo, "import", "--force", str(file))
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.split()) == 60  # every input record's id, in input order
    assert result.stderr == f"Imported 1 record, 59 unchanged (commit {tip(sample_repo)[:7]})\n"
    assert git(sample_repo, "log", "-1", "--format=%s").strip() == "import 1 record from changed.jsonl"
    assert git(sample_repo, "diff", "--name-only", "HEAD~1", "HEAD").split() == [
        sample_repo.path_for(changed["id"])
    ]
    again = gr(sample_repo, "import", "--force", str(file))
    assert again.stderr == "No changes: the records already had that data\n"


def test_import_of_one_json_document_advises_without_naming_nl(gr, sample_repo, tmp_path):
    """The record-by-record path (the sample mints recid) gave create's hint, "leave out --nl",
    an option import does not have."""
    file = tmp_path / "rec.json"
    file.write_text(json.dumps({"title": "a", "year": 1}, indent=2) + "\n")
    before = sample_repo.tip()
    result = gr(sample_repo, "import", str(file))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: 4 lines of {file} are not valid JSON; {file} holds one JSON document: "
        "import reads JSON Lines, one record per line ('create' reads a document)"
    )
    assert "--nl" not in result.stderr
    assert sample_repo.tip() == before


def _feed_fifo(fifo: Path, data: bytes, done: threading.Event) -> threading.Thread:
    """Write ``data`` into ``fifo`` once; if the reader is not ``done`` within 10 s (it opened
    the FIFO a second time and waits for a writer), open it once more to let it go on."""

    def feed() -> None:
        fifo.write_bytes(data)
        if not done.wait(timeout=10):
            with open(fifo, "wb"):
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    return writer


def test_import_from_a_fifo_reports_a_bad_line_without_reading_it_again(gr, repo, tmp_path):
    """A FIFO can be read once: the messages of the lines the import parsed are not made by
    opening FILE again (which waited forever for a writer)."""
    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    done = threading.Event()
    before = repo.tip()
    writer = _feed_fifo(fifo, b'{"title": "a"}\n{"title":\n', done)
    result = gr(repo, "import", str(fifo))
    done.set()
    writer.join(timeout=10)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {fifo} line 2 is not valid JSON: Expecting value")
    assert repo.tip() == before


def test_import_total_does_not_open_a_fifo(gr, repo, tmp_path, monkeypatch):
    """The progress bar's total is counted on a terminal only from a regular file: a FIFO
    opened for the count would lose its input to it."""
    monkeypatch.setattr(_output, "stderr_is_tty", lambda: True)
    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    done = threading.Event()
    writer = _feed_fifo(fifo, b'{"title": "a"}\n{"title": "b"}\n', done)
    result = gr(repo, "import", str(fifo))
    done.set()
    writer.join(timeout=10)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.split()) == 2


# -- validate ----------------------------------------------------------------


def test_validate_sample_is_clean(gr, sample_repo):
    result = gr(sample_repo, "validate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == "60 records valid\n"
    out = json.loads(gr(sample_repo, "validate", "--json").stdout)
    assert out == {
        "valid": True,
        "head": str(sample_repo.tip()),
        "base": None,
        "checked": 60,
        "invalid": 0,
        "problems": [],
    }


def test_validate_reports_every_problem(gr, title_repo):
    ids = gr(
        title_repo, "create", input='[{"title": "a"}, {"title": "b", "year": 2}, {"title": "c"}]'
    ).stdout.split()
    stricter = {**TITLE_SCHEMA, "required": ["title", "year"]}
    title_repo.put_schema("title.json", stricter)
    result = gr(title_repo, "validate")
    assert result.exit_code == 1
    assert sorted(result.stdout.splitlines()) == sorted(
        f"{layout.path_for(i)}:1: [schema] /: 'year' is a required property" for i in (ids[0], ids[2])
    )
    assert result.stderr == "Error: 2 problems in 2 of 3 records\n"
    result = gr(title_repo, "validate", "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert (out["valid"], out["checked"], out["invalid"]) == (False, 3, 2)
    assert {p["id"] for p in out["problems"]} == {ids[0], ids[2]}
    assert out["problems"][0]["pointer"] == "/"
    only = gr(title_repo, "validate", ids[1])
    assert only.exit_code == 0
    assert only.stderr == "1 record valid\n"


def test_validate_missing_schema(gr, repo):
    gr(repo, "create", "-i", "deadbeef-9fe4-43d3-a08f-38c2b309afba", input='{"title": "a"}')
    # a record naming a schema the store does not have can only come from outside the API
    result = gr(repo, "create", input='{"$schema": "nope.json"}')
    assert result.exit_code == 1
    assert "/$schema: schema 'nope.json' is not in the schema store" in result.stderr


# -- reindex -----------------------------------------------------------------


def test_reindex_prints_revision_count(gr, repo):
    ids = gr(repo, "create", input='[{"title": "a"}, {"title": "b"}]').stdout.split()
    gr(repo, "update", "-i", ids[0], input='{"title": "A"}')
    result = gr(repo, "reindex")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "3\n"
    assert result.stderr == "Indexed 3 revisions\n"


# -- progress ----------------------------------------------------------------


def test_progress_on_a_terminal_only(gr, sample_repo, monkeypatch):
    quiet = gr(sample_repo, "export")
    assert "\r" not in quiet.stderr
    monkeypatch.setattr(_output, "stderr_is_tty", lambda: True)
    shown = gr(sample_repo, "validate")
    assert shown.exit_code == 0
    last = shown.stderr.split("\r")[-1]
    assert last.startswith("Validating  60/60  100%")
    assert "/s  in 0:00:0" in last
    assert shown.stderr.endswith("60 records valid\n")


def test_no_export_progress_between_records_on_a_terminal(gr, sample_repo, tmp_path, monkeypatch):
    monkeypatch.setattr(_output, "stderr_is_tty", lambda: True)
    monkeypatch.setattr(_output, "stdout_is_tty", lambda: True)
    on_screen = gr(sample_repo, "export")
    assert on_screen.exit_code == 0
    assert on_screen.stderr == ""
    assert len(on_screen.stdout.splitlines()) == 60
    to_file = gr(sample_repo, "export", "-o", str(tmp_path / "out.jsonl"))
    assert to_file.stderr.split("\r")[-1].startswith("Exporting  60/60  100%")
    monkeypatch.setattr(_output, "stdout_is_tty", lambda: False)
    redirected = gr(sample_repo, "export")
    assert redirected.stderr.split("\r")[-1].startswith("Exporting  60/60  100%")


def test_no_export_progress_between_records_written_to_dev_stdout(gr, sample_repo, tmp_path, monkeypatch):
    """``-o /dev/stdout`` is stdout, as open_output knows: on a terminal the bar was drawn
    between the records all the same."""
    stdout = tmp_path / "stdout"  # stands for the terminal: the runner's stdout has no descriptor
    stdout.touch()
    monkeypatch.setattr(gitrecords.cli.bulk, "_stdout_stat", lambda: os.stat(stdout))
    monkeypatch.setattr(_output, "stderr_is_tty", lambda: True)
    monkeypatch.setattr(_output, "stdout_is_tty", lambda: True)
    result = gr(sample_repo, "export", "-o", str(stdout))
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 60
    assert "Exporting" not in result.stderr


def test_progress_line_has_count_rate_and_eta():
    bar = _output.Progress("Importing", total=200, enabled=False)
    bar._start = 0.0
    bar.update(50)
    assert bar.render(now=1.0) == "Importing  50/200   25%  50/s  ETA 0:00:03"
    bar.update(200)
    assert bar.render(now=4.0) == "Importing  200/200  100%  50/s  in 0:00:04"
    unknown = _output.Progress("Purging", enabled=False)
    unknown._start = 0.0
    unknown.update(10)
    assert unknown.render(now=2.0) == "Purging  10  5/s"


def test_import_progress_shows_total_percent_and_eta(gr, repo, tmp_path, monkeypatch):
    source = tmp_path / "records.jsonl"
    source.write_text("".join(f'{{"title": "r{i}"}}\n' for i in range(5)) + "\n")  # a blank line too
    monkeypatch.setattr(_output, "stderr_is_tty", lambda: True)
    monkeypatch.setattr(_output.Progress, "interval", 0)  # draw every update
    monkeypatch.setattr(gitrecords.bulk, "CHUNK", 2)  # updates after 2, 4 and 5 records
    result = gr(repo, "import", str(source))
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.split()) == 5
    frames = [frame.removesuffix("\x1b[K") for frame in result.stderr.split("\r")[1:]]
    assert [frame.split()[1:3] for frame in frames[:3]] == [["2/5", "40%"], ["4/5", "80%"], ["5/5", "100%"]]
    assert re.fullmatch(r"Importing  2/5   40%  [\d,]+/s  ETA \d:\d\d:\d\d", frames[0])
    assert re.fullmatch(
        r"Importing  5/5  100%  [\d,]+/s  in \d:\d\d:\d\d\nImported 5 records \(commit \w+\)\n", frames[-1]
    )

    monkeypatch.setattr(_output, "stderr_is_tty", lambda: False)
    quiet = gr(repo, "import", str(source))
    assert "\r" not in quiet.stderr and "Importing" not in quiet.stderr


def test_count_records_for_the_import_total(tmp_path, monkeypatch):
    source = tmp_path / "records.jsonl"
    source.write_bytes(b'{"a": 1}\n\n  \r\n{"a": 2}\r\n{"a": 3}')  # blank lines, CRLF, no final newline
    assert count_records(str(source)) == 3
    with open(source, "rb", buffering=0) as stdin:  # import - < records.jsonl, one line read
        os.lseek(stdin.fileno(), 9, os.SEEK_SET)
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(stdin))
        assert count_records("-") == 2  # from where stdin is, which stays there
        assert os.lseek(stdin.fileno(), 0, os.SEEK_CUR) == 9
    read, write = os.pipe()
    with os.fdopen(read, "rb") as pipe, os.fdopen(write, "wb") as writer:
        writer.write(b'{"a": 1}\n')
        writer.flush()
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(pipe))
        assert count_records("-") is None  # a pipe: the total is not known
    assert count_records(str(tmp_path / "missing.jsonl")) is None


def test_hard_delete_progress_callback(gr, repo, monkeypatch):
    monkeypatch.setattr(_output, "stderr_is_tty", lambda: True)
    record_id = gr(repo, "create", input='{"title": "a"}').stdout.strip()
    result = gr(repo, "delete", "--force", "--yes", "-i", record_id)
    assert result.exit_code == 0, result.stderr
    assert "Purging  " in result.stderr
    assert layout.path_for(record_id) not in git(repo, "log", "--all", "--name-only")


@pytest.mark.parametrize("command", ["export", "validate", "list"])
def test_read_commands_need_a_data_repository(gr, tmp_path, command):
    result = gr(tmp_path / "nowhere", command)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1


def test_a_json_string_line_is_not_a_record(gr, repo):
    """A line holding a JSON string (of a JSON object) was parsed twice and imported; create
    refuses it, and so does import now, from stdin, a file or an envelope."""
    for text in [
        '"{\\"title\\": \\"x\\"}"',
        '{"id": "22222222-2222-4222-8222-222222222222", "data": "{}"}',
        '"plain"',
    ]:
        result = gr(repo, "import", "-", input=text + "\n")
        assert result.exit_code == 1, text
        assert "a record must be a JSON object, not a string" in result.stderr, text
    assert list(repo.ids()) == []


def test_a_duplicate_in_one_import_names_the_other_by_its_line(gr, repo, tmp_path):
    """The other record was named by its 0-based place in the input ("also at 0")."""
    same = "11111111-1111-4111-8111-111111111111"
    lines = [
        "",
        f'{{"id": "{same}", "data": {{"title": "a"}}}}',
        f'{{"id": "{same}", "data": {{"title": "b"}}}}',
    ]
    (tmp_path / "dup.jsonl").write_text("\n".join(lines) + "\n")
    result = gr(repo, "import", str(tmp_path / "dup.jsonl"))
    assert result.exit_code == 1
    assert "dup.jsonl line 3:" in result.stderr and "(also at line 2)" in result.stderr
    (tmp_path / "pid.jsonl").write_text(
        '{"title": "a", "control_number": "7"}\n\n{"title": "b", "control_number": "7"}\n'
    )
    result = gr(repo, "import", str(tmp_path / "pid.jsonl"))
    assert "pid.jsonl line 3:" in result.stderr and "is also used by the record at line 1" in result.stderr
