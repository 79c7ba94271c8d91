"""CLI: list, export and history go on past a record file broken by hand (invalid JSON committed
with plain git): one line on stderr names it, the other records are printed, the exit code is 1."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import git

from gitrecords import Repository

BROKEN = b'{"title": "half a rec'


@pytest.fixture
def broken(gr, repo: Repository, tmp_path: Path) -> tuple[Repository, list[str], str]:
    """Three records, the second of which a curator broke with plain git (clone, edit, push)."""
    ids = gr(
        repo, "create", input='[{"title": "first"}, {"title": "second"}, {"title": "third"}]'
    ).stdout.split()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.path), str(clone)], check=True)
    (clone / repo.path_for(ids[1])).write_bytes(BROKEN)
    identity = ["-c", "user.name=Curator", "-c", "user.email=curator@example.org"]
    subprocess.run(["git", "-C", str(clone), *identity, "commit", "-qam", "break it"], check=True)
    subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", "HEAD:main"], check=True)
    assert git(repo, "show", f"main:{repo.path_for(ids[1])}").encode() == BROKEN
    return repo, ids, ids[1]


def problem_line(record_id: str, repo: Repository) -> str:
    return f"record {record_id} ({repo.path_for(record_id)} in commit "


def assert_reported(stderr: str, repo: Repository, bad: str, total: int = 3) -> None:
    lines = stderr.splitlines()
    (problem,) = [line for line in lines if line.startswith(problem_line(bad, repo))]
    assert problem.endswith("is not valid JSON: Unterminated string starting at (line 1 column 11)"), stderr
    assert lines[-1] == f"Error: 1 of {total} record files could not be read"


@pytest.mark.parametrize("fmt", [[], ["--with-deleted"], ["-q", ""], ["--limit", "10"]])
def test_list_goes_on_past_a_broken_file(gr, broken, fmt):
    repo, ids, bad = broken
    result = gr(repo, "list", *fmt)
    assert result.exit_code == 1
    listed = dict(line.split("  ", 1) for line in result.stdout.splitlines())
    assert listed == {ids[0]: "first", bad: "(unreadable)", ids[2]: "third"}
    assert_reported(result.stderr, repo, bad)


def test_list_json_nl_csv_and_table_go_on_past_a_broken_file(gr, broken):
    repo, ids, bad = broken
    as_json = gr(repo, "list", "--json")
    assert as_json.exit_code == 1
    rows = {row["id"]: row for row in json.loads(as_json.stdout)}
    assert rows[ids[0]]["summary"] == "first" and rows[ids[2]]["summary"] == "third"
    assert rows[bad]["revision_id"] is None
    assert rows[bad]["error"].startswith(problem_line(bad, repo))
    assert_reported(as_json.stderr, repo, bad)

    nl = gr(repo, "list", "--nl")
    assert nl.exit_code == 1
    assert [json.loads(line) for line in nl.stdout.splitlines()] == json.loads(as_json.stdout)

    as_csv = gr(repo, "list", "--csv", "--fields", "id,title,error")
    assert as_csv.exit_code == 1
    lines = as_csv.stdout.splitlines()
    assert lines[0] == "id,title,error"
    assert f"{ids[0]},first," in lines and f"{ids[2]},third," in lines
    assert any(line.startswith(f'{bad},,"record {bad}') for line in lines)
    assert_reported(as_csv.stderr, repo, bad)

    table = gr(repo, "list", "--table", "--fields", "id,title")
    assert table.exit_code == 1
    assert f"{ids[0]}  first" in table.stdout.splitlines()
    assert_reported(table.stderr, repo, bad)


def test_export_goes_on_past_a_broken_file(gr, broken, tmp_path):
    repo, ids, bad = broken
    result = gr(repo, "export")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["id"]: line["data"] for line in lines} == {
        ids[0]: {"title": "first"},
        ids[2]: {"title": "third"},
    }
    assert_reported(result.stderr, repo, bad)

    out = tmp_path / "out.jsonl"
    to_file = gr(repo, "export", "-o", str(out))
    assert to_file.exit_code == 1
    assert out.read_text() == result.stdout  # the file is kept, with the records that could be read
    assert to_file.stderr.splitlines()[-2] == f"Exported 2 records to {out}"

    snapshot = tmp_path / "snapshot"
    to_dir = gr(repo, "export", "--dir", str(snapshot))
    assert to_dir.exit_code == 1
    assert sorted(p.stem for p in (snapshot / "records").rglob("*.json")) == sorted([ids[0], ids[2]])
    assert_reported(to_dir.stderr, repo, bad)


def test_history_of_a_broken_record_lists_its_revisions(gr, broken):
    repo, _, bad = broken
    result = gr(repo, "history", bad)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("create 3 records") and lines[1].endswith("Curator  break it")
    assert result.stderr.startswith(f"Error: {problem_line(bad, repo)}")
    assert result.stderr.count("\n") == 1

    as_json = gr(repo, "history", bad, "--json")
    assert as_json.exit_code == 1
    rows = json.loads(as_json.stdout)
    assert [row["message"] for row in rows][-1] == "break it"
    log = git(repo, "log", "--format=%H", "--", repo.path_for(bad)).split()
    assert [row["commit"] for row in rows] == list(reversed(log))


def test_the_records_around_a_broken_one_are_fine(gr, broken):
    repo, ids, _ = broken
    result = gr(repo, "history", ids[0])
    assert result.exit_code == 0, result.stderr
    assert gr(repo, "get", ids[2]).exit_code == 0


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--nl"], ["--csv"], ["--table"]])
def test_search_goes_on_past_a_broken_file_and_exits_1_as_list_does(gr, broken, fmt):
    repo, ids, bad = broken
    result = gr(repo, "search", "", *fmt)
    assert result.exit_code == 1
    for record_id in ids:
        assert record_id in result.stdout
    assert_reported(result.stderr, repo, bad)


def test_the_revisions_before_a_broken_file_stay_readable_and_revert_repairs_it(gr, broken):
    """get -r/--at, diff of two earlier revisions and revert read only the revisions they name:
    the broken latest file does not stand in the way of the repair."""
    repo, _ids, bad = broken
    assert json.loads(gr(repo, "get", bad, "-r", "0", "--json").stdout)["data"] == {"title": "second"}
    assert json.loads(gr(repo, "get", bad, "--at", "0").stdout) == {"title": "second"}
    assert json.loads(gr(repo, "diff", bad, "0", "0").stdout) == []
    latest = gr(repo, "get", bad)
    assert latest.exit_code == 1 and "is not valid JSON" in latest.stderr
    assert gr(repo, "diff", bad).exit_code == 1  # the latest revision is the one compared
    reverted = gr(repo, "revert", bad, "0")
    assert reverted.exit_code == 0, reverted.stderr
    assert json.loads(gr(repo, "get", bad).stdout) == {"title": "second"}
    assert [r["revision_id"] for r in json.loads(gr(repo, "history", bad, "--json").stdout)] == [0, 1, 2]
    missing = gr(repo, "get", "00000000-0000-4000-8000-000000000000", "-r", "0")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
