"""CLI: history and diff."""

from __future__ import annotations

import json

import jsonpatch
import pytest
from helpers import git

SEED_ID = "deadbeef-9fe4-43d3-a08f-38c2b309afba"


@pytest.fixture
def edited(gr, repo):
    """A record with four revisions: created, updated, patched, soft-deleted."""
    ada = "Ada <ada@example.org>"
    gr(repo, "create", "-i", SEED_ID, "-m", "first", "--author", ada, input='{"title": "a"}')
    gr(repo, "update", "-i", SEED_ID, "-m", "second\n\nwith a body", input='{"title": "b", "year": 1}')
    gr(repo, "patch", "-i", SEED_ID, input='[{"op": "remove", "path": "/year"}]')
    gr(repo, "delete", "-i", SEED_ID)
    return repo


def test_history_json_matches_git_log(gr, edited):
    result = gr(edited, "history", SEED_ID, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    log = git(edited, "log", "--format=%H", "--", edited.path_for(SEED_ID)).split()
    assert [r["commit"] for r in rows] == list(reversed(log))
    assert [r["revision_id"] for r in rows] == [0, 1, 2, 3]
    assert [r["is_deleted"] for r in rows] == [False, False, False, True]
    assert (rows[0]["author_name"], rows[0]["author_email"]) == ("Ada", "ada@example.org")
    assert rows[0]["message"].split("\n")[0] == "first"
    assert rows[1]["message"].startswith("second\n\nwith a body")
    assert rows[3]["message"].startswith(f"delete record {SEED_ID}")
    keys = {"revision_id", "commit", "time", "author_name", "author_email", "message", "is_deleted"}
    assert set(rows[0]) == keys


def test_history_for_people(gr, edited):
    result = gr(edited, "history", SEED_ID)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    path = edited.path_for(SEED_ID)
    commit0 = git(edited, "log", "--reverse", "--format=%h", "--abbrev=7", "--", path).split()[0]
    assert lines[0].split()[:2] == ["0", commit0]
    assert lines[0].endswith("  Ada  first")  # the name only: the email is in --json
    assert lines[1].endswith("  second")
    assert lines[3].endswith("(deleted)")
    assert "@" not in result.stdout


def test_history_limit_and_newest_first(gr, edited):
    every = json.loads(gr(edited, "history", SEED_ID, "--json").stdout)
    last_two = json.loads(gr(edited, "history", SEED_ID, "-n", "2", "--json").stdout)
    assert [r["revision_id"] for r in last_two] == [2, 3]
    newest = json.loads(gr(edited, "history", SEED_ID, "--limit", "3", "--newest-first", "--json").stdout)
    assert [r["revision_id"] for r in newest] == [3, 2, 1]
    assert every[0]["author_email"] == "ada@example.org"
    text = gr(edited, "history", SEED_ID, "-r", "-n", "1").stdout.splitlines()
    assert len(text) == 1 and text[0].split()[0] == "3"


def test_history_unknown_record(gr, repo):
    result = gr(repo, "history", SEED_ID)
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {SEED_ID} does not exist\n"


def test_diff_default_is_previous_against_latest(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "a", "keep": 1}')
    gr(repo, "update", "-i", SEED_ID, input='{"title": "b", "keep": 1, "new": true}')
    result = gr(repo, "diff", SEED_ID)
    assert result.exit_code == 0, result.stderr
    ops = json.loads(result.stdout)
    assert jsonpatch.apply_patch({"title": "a", "keep": 1}, ops) == {"title": "b", "keep": 1, "new": True}
    assert sorted(op["op"] for op in ops) == ["add", "replace"]


def test_diff_between_revisions_and_deleted(gr, edited):
    ops = json.loads(gr(edited, "diff", SEED_ID, "0", "1").stdout)
    assert jsonpatch.apply_patch({"title": "a"}, ops) == {"title": "b", "year": 1}
    # A only: against the latest, which is a tombstone ({})
    ops = json.loads(gr(edited, "diff", SEED_ID, "1").stdout)
    assert jsonpatch.apply_patch({"title": "b", "year": 1}, ops) == {}
    assert json.loads(gr(edited, "diff", SEED_ID, "0", "2").stdout) == [
        {"op": "replace", "path": "/title", "value": "b"}
    ]


def test_diff_first_revision_against_nothing(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "a"}')
    assert json.loads(gr(repo, "diff", SEED_ID).stdout) == [{"op": "add", "path": "/title", "value": "a"}]


def test_diff_unified(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "a"}')
    gr(repo, "update", "-i", SEED_ID, input='{"title": "b"}')
    result = gr(repo, "diff", SEED_ID, "--format", "unified")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"--- {SEED_ID}@0",
        f"+++ {SEED_ID}@1",
        "@@ -1,3 +1,3 @@",
        " {",
        '-  "title": "a"',
        '+  "title": "b"',
        " }",
    ]


def test_diff_errors(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "a"}')
    result = gr(repo, "diff", SEED_ID, "0", "3")
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {SEED_ID} has no revision 3 (it has revision 0 only)\n"
    assert gr(repo, "diff", SEED_ID, "--format", "xml").exit_code == 2
    assert gr(repo, "diff").exit_code == 2


def test_control_characters_in_data_never_reach_the_terminal(gr, repo):
    """A title, a commit message or an author name holding ESC or CR (anyone who can push can
    write one) is shown with escapes in listings and tables: it cannot set the terminal's title
    or write over a line. JSON output carries the text as it is."""
    title = "safe\x1b]0;pwned\x07 title"
    record_id = gr(repo, "create", input=json.dumps({"title": title})).stdout.strip()
    patched = gr(
        repo,
        "patch",
        "-i",
        record_id,
        "-m",
        "\x1b]0;pwned\x07\rspoofed",
        "--author",
        "Ev\x1bil <e@example.org>",
        input='[{"op": "add", "path": "/x", "value": 1}]',
    )
    assert patched.exit_code == 0, patched.stderr
    outputs = [
        gr(repo, "list").stdout,
        gr(repo, "list", "--table", "--fields", "id,title").stdout,
        gr(repo, "search", "safe").stdout,
        gr(repo, "history", record_id).stdout,
        gr(repo, "blame", record_id).stdout,
    ]
    for out in outputs:
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out, out
    assert "safe\\x1b]0;pwned\\x07 title" in outputs[0]
    assert "\\x1b]0;pwned\\x07\\x0dspoofed" in outputs[3] and "Ev\\x1bil" in outputs[3]
    assert json.loads(gr(repo, "get", record_id).stdout)["title"] == title
