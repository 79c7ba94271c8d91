"""CLI: create, get, update, patch, delete, undelete, revert (in-process, checked with real git)."""

from __future__ import annotations

import json
import uuid

import pytest
from helpers import fsck, git

from gitrecords import Record, Repository, layout
from gitrecords.cli import _output

SEED_ID = "deadbeef-9fe4-43d3-a08f-38c2b309afba"


def commits(repo: Repository) -> int:
    return int(git(repo, "rev-list", "--count", repo.branch).strip())


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", repo.branch).strip()


def show(repo: Repository, record_id: str, rev: str | None = None) -> dict:
    return json.loads(git(repo, "show", f"{rev or repo.branch}:{repo.path_for(record_id)}"))


def changed_paths(repo: Repository, rev: str | None = None) -> list[str]:
    out = git(repo, "show", "--name-only", "--format=", rev or repo.branch)
    return [line for line in out.splitlines() if line]


# -- create ------------------------------------------------------------------


def test_create_from_stdin_prints_the_new_id(gr, repo):
    before = commits(repo)
    result = gr(repo, "create", input='{"title": "New record"}')
    assert result.exit_code == 0, result.stderr
    record_id = result.stdout.strip()
    assert str(uuid.UUID(record_id)) == record_id
    assert commits(repo) == before + 1
    assert show(repo, record_id) == {"title": "New record"}
    raw = git(repo, "show", f"main:{repo.path_for(record_id)}")
    assert raw.encode() == layout.dumps({"title": "New record"})
    fsck(repo)


def test_create_list_is_one_commit_with_ids_in_input_order(gr, repo):
    before = commits(repo)
    result = gr(repo, "create", input='[{"title": "1st"}, {"title": "2nd"}, {"title": "3rd"}]')
    assert result.exit_code == 0, result.stderr
    ids = result.stdout.split()
    assert len(ids) == 3
    assert commits(repo) == before + 1
    assert [show(repo, i)["title"] for i in ids] == ["1st", "2nd", "3rd"]
    assert sorted(changed_paths(repo)) == sorted(repo.path_for(i) for i in ids)
    assert "Created 3 records" in result.stderr


def test_create_from_several_files_and_json_lines(gr, repo, tmp_path):
    one = tmp_path / "one.json"
    one.write_text('{"title": "a"}')
    many = tmp_path / "many.json"
    many.write_text('[{"title": "b"}, {"title": "c"}]')
    before = commits(repo)
    result = gr(repo, "create", str(one), str(many))
    assert result.exit_code == 0, result.stderr
    ids = result.stdout.split()
    assert [show(repo, i)["title"] for i in ids] == ["a", "b", "c"]
    assert commits(repo) == before + 1

    lines = tmp_path / "records.jsonl"
    lines.write_text('{"title": "d"}\n\n{"title": "e"}\n')
    result = gr(repo, "create", "--nl", str(lines))
    assert result.exit_code == 0, result.stderr
    assert [show(repo, i)["title"] for i in result.stdout.split()] == ["d", "e"]
    assert commits(repo) == before + 2


def test_create_with_ids_pairs_them_in_order(gr, repo):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    result = gr(repo, "create", "-i", a, "-i", b, input='[{"title": "A"}, {"title": "B"}]')
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == [a, b]
    assert show(repo, a) == {"title": "A"}
    assert show(repo, b) == {"title": "B"}


def test_create_id_count_mismatch_is_exit_1_and_writes_nothing(gr, repo):
    before = tip(repo)
    result = gr(repo, "create", "-i", SEED_ID, input='[{"title": "A"}, {"title": "B"}]')
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the input holds 2 records but 1 id was given with -i: "
        "give one id per record, in input order\n"
    )
    assert tip(repo) == before


def test_create_of_a_purged_id_gives_no_force_hint(gr, repo):
    assert gr(repo, "create", "-i", SEED_ID, input='{"title": "x"}').exit_code == 0
    repo.hard_delete([SEED_ID])
    for extra in ([], ["--force"]):
        result = gr(repo, "create", *extra, "-i", SEED_ID, input='{"title": "y"}')
        assert result.exit_code == 1
        assert "was hard-deleted" in result.stderr and "--force" not in result.stderr


def test_create_existing_id_needs_force(gr, repo):
    assert gr(repo, "create", "-i", SEED_ID, input='{"title": "x", "keep": "no"}').exit_code == 0
    before = tip(repo)
    result = gr(repo, "create", "-i", SEED_ID, input='{"title": "y"}')
    assert result.exit_code == 1  # a data conflict, not a usage error (issue 18, 11)
    assert result.stderr == f"Error: record {SEED_ID} already exists: use --force to write a new revision\n"
    assert tip(repo) == before

    result = gr(repo, "create", "--force", "-i", SEED_ID, input='{"title": "y"}')
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == SEED_ID
    assert show(repo, SEED_ID) == {"title": "y"}  # the full replacement: "keep" is gone
    assert show(repo, SEED_ID, "main~1") == {"title": "x", "keep": "no"}
    assert len(Record.get_record(SEED_ID, repo=repo).revisions) == 2


def test_create_force_brings_a_soft_deleted_record_back(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "x"}')
    assert gr(repo, "delete", "-i", SEED_ID).exit_code == 0
    result = gr(repo, "create", "--force", "-i", SEED_ID, "--json", input='{"title": "back"}')
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["records"] == [{"id": SEED_ID, "revision_id": 2, "is_deleted": False}]
    assert out["commit"] == tip(repo)
    assert show(repo, SEED_ID) == {"title": "back"}


def test_batch_with_schema_violations_reports_every_one_and_writes_nothing(gr, title_repo):
    before = tip(title_repo)
    batch = [{"year": 2020}, {"title": "fine"}, {"title": 5, "year": "x"}]
    result = gr(title_repo, "create", input=json.dumps(batch))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        "stdin[0]: new record: /: 'title' is a required property",
        "stdin[2]: new record: /title: 5 is not of type 'string'",
        "stdin[2]: new record: /year: 'x' is not of type 'integer'",
        "Error: 3 problems in 2 of 3 records; nothing was written",
    ]
    assert tip(title_repo) == before
    assert list(title_repo.ids()) == []


def test_one_invalid_record_is_one_error_line_with_id(gr, title_repo):
    gr(title_repo, "create", "-i", SEED_ID, input='{"title": "ok"}')
    result = gr(title_repo, "create", "--force", "-i", SEED_ID, input='{"year": 1}')
    assert result.exit_code == 1
    assert result.stderr == f"Error: stdin: record {SEED_ID}: /: 'title' is a required property\n"


def test_invalid_json_names_the_input_and_suggests_nl(gr, repo, tmp_path):
    result = gr(repo, "create", input='{"title": "a"}\n{"title": "b"}\n')
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: stdin is not valid JSON: Extra data (line 2 column 1); it looks like JSON Lines: use --nl\n"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"title": }')
    result = gr(repo, "create", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {bad} is not valid JSON: Expecting value")
    assert "--nl" not in result.stderr


def test_invalid_json_line_names_the_line(gr, repo):
    before = tip(repo)
    result = gr(repo, "create", "--nl", input='{"title": "a"}\n{"title": \n')
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: stdin line 2 is not valid JSON")
    assert tip(repo) == before


def test_input_must_hold_objects(gr, repo):
    result = gr(repo, "create", input='"just a string"')
    assert result.exit_code == 1
    assert result.stderr == "Error: stdin: expected a JSON object or a list of objects, not a string\n"
    result = gr(repo, "create", input='[{"title": "a"}, 3]')
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: stdin[1]: new record: /: a record must be a JSON object, not a number; nothing was written\n"
    )


def test_message_and_author_are_the_commits(gr, repo):
    author = "Ada Lovelace <ada@example.org>"
    result = gr(repo, "create", "-m", "Add the record", "--author", author, input="{}")
    assert result.exit_code == 0, result.stderr
    log = git(repo, "log", "-1", "--format=%an|%ae|%s", repo.branch).strip()
    assert log == "Ada Lovelace|ada@example.org|Add the record"


def test_bad_author_is_a_usage_error(gr, repo):
    result = gr(repo, "create", "--author", "nobody", input="{}")
    assert result.exit_code == 2
    assert "must look like 'Name <email>'" in result.stderr


def test_pid_minter_recid(gr, repo):
    result = gr(repo, "create", "--pid-minter", "recid", input='[{"title": "a"}, {"title": "b"}]')
    assert result.exit_code == 0, result.stderr
    first, second = result.stdout.split()
    assert show(repo, first)["control_number"] == "1"
    assert show(repo, second)["control_number"] == "2"
    data = '{"title": "New record with PID"}'
    result = gr(repo, "create", "-i", SEED_ID, "--pid-minter", "recid", input=data)
    assert result.exit_code == 0, result.stderr
    assert show(repo, SEED_ID) == {"control_number": "3", "title": "New record with PID"}

    got = gr(repo, "get", "--pid", "recid:2", "--json")
    assert got.exit_code == 0, got.stderr
    assert json.loads(got.stdout)["id"] == second


def test_minted_pid_is_there_before_validation(gr, tmp_path):
    """A schema that requires control_number accepts records whose PID is minted by the batch."""
    repo = Repository.init(tmp_path / "pids.git", config={"default_schema": "s.json"})
    repo.put_schema("s.json", {"type": "object", "required": ["control_number"]})
    result = gr(repo, "create", "--pid-minter", "recid", input="[{}, {}]")
    assert result.exit_code == 0, result.stderr
    assert sorted(show(repo, i)["control_number"] for i in result.stdout.split()) == ["1", "2"]
    result = gr(repo, "create", input="{}")
    assert result.exit_code == 1
    assert result.stderr == "Error: stdin: new record: /: 'control_number' is a required property\n"


def test_unknown_pid_minter_lists_the_known_ones(gr, repo):
    result = gr(repo, "create", "--pid-minter", "doi", input="{}")
    assert result.exit_code == 2
    assert "unknown PID minter 'doi'; known minters: recid" in result.stderr


def test_pid_already_present_is_reported(gr, repo):
    result = gr(repo, "create", "--pid-minter", "recid", input='{"control_number": "7"}')
    assert result.exit_code == 1
    assert "already has a control_number ('7')" in result.stderr


def test_create_json_output(gr, repo):
    result = gr(repo, "create", "--json", input='[{"title": "a"}, {"title": "b"}]')
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["commit"] == tip(repo)
    assert [r["revision_id"] for r in out["records"]] == [0, 0]
    assert [show(repo, r["id"])["title"] for r in out["records"]] == ["a", "b"]


def test_duplicate_ids_in_one_batch(gr, repo):
    result = gr(repo, "create", "-i", SEED_ID, "-i", SEED_ID, input="[{}, {}]")
    assert result.exit_code == 1
    assert "appears twice in the input" in result.stderr


def test_bad_id_is_a_usage_error(gr, repo):
    result = gr(repo, "create", "-i", "../../etc/passwd", input="{}")
    assert result.exit_code == 2
    assert "is not a valid record id" in result.stderr


# -- get ---------------------------------------------------------------------


def test_get_prints_canonical_json(gr, sample_repo):
    record_id = "6796d85a-8a58-419c-a937-84aef33e9d18"
    result = gr(sample_repo, "get", record_id)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == git(sample_repo, "show", f"main:{sample_repo.path_for(record_id)}")


def test_get_json_wrapper_and_revisions(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "v0"}')
    gr(repo, "update", "-i", SEED_ID, input='{"title": "v1"}')
    out = json.loads(gr(repo, "get", SEED_ID, "--json").stdout)
    assert set(out) == {"id", "revision_id", "created", "updated", "is_deleted", "data"}
    assert out["id"] == SEED_ID
    assert out["revision_id"] == 1
    assert out["data"] == {"title": "v1"}
    assert out["is_deleted"] is False
    first = json.loads(gr(repo, "get", SEED_ID, "--revision", "0", "--json").stdout)
    assert (first["revision_id"], first["data"]) == (0, {"title": "v0"})
    last = json.loads(gr(repo, "get", SEED_ID, "-r", "-1", "--json").stdout)
    assert last["revision_id"] == 1

    result = gr(repo, "get", SEED_ID, "--revision", "5")
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {SEED_ID} has no revision 5 (it has revisions 0 to 1)\n"


def test_get_unknown_id_is_exit_1(gr, repo):
    result = gr(repo, "get", SEED_ID)
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {SEED_ID} does not exist\n"
    result = gr(repo, "get", "--pid", "recid:99")
    assert result.exit_code == 1
    assert result.stderr == "Error: no record with PID recid:99\n"


def test_get_needs_an_id_or_a_pid(gr, repo):
    assert gr(repo, "get").exit_code == 2
    assert gr(repo, "get", SEED_ID, "--pid", "recid:1").exit_code == 2
    result = gr(repo, "get", "--pid", "recid")
    assert result.exit_code == 2
    assert "is not TYPE:VALUE" in result.stderr


def test_get_deleted_record(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "x"}')
    gr(repo, "delete", "-i", SEED_ID)
    result = gr(repo, "get", SEED_ID)
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {SEED_ID} is deleted (use --with-deleted to show it)\n"
    out = json.loads(gr(repo, "get", SEED_ID, "--with-deleted", "--json").stdout)
    assert (out["is_deleted"], out["data"], out["revision_id"]) == (True, {}, 1)
    old = json.loads(gr(repo, "get", SEED_ID, "--revision", "0", "--json").stdout)
    assert old["data"] == {"title": "x"}


# -- update / patch ----------------------------------------------------------


def test_update_replaces_data_in_one_commit(gr, title_repo):
    ids = gr(title_repo, "create", input='[{"title": "a"}, {"title": "b"}]').stdout.split()
    before = commits(title_repo)
    data = '[{"title": "A"}, {"title": "B", "year": 1}]'
    result = gr(title_repo, "update", "-i", ids[0], "-i", ids[1], input=data)
    assert result.exit_code == 0, result.stderr
    assert commits(title_repo) == before + 1
    assert show(title_repo, ids[0]) == {"title": "A"}
    assert show(title_repo, ids[1]) == {"title": "B", "year": 1}
    assert result.stderr == f"Updated 2 records (commit {tip(title_repo)[:7]})\n"


def test_update_errors(gr, title_repo):
    record_id = gr(title_repo, "create", input='{"title": "a"}').stdout.strip()
    before = tip(title_repo)
    result = gr(title_repo, "update", "-i", SEED_ID, input='{"title": "x"}')
    assert result.exit_code == 1
    assert result.stderr == f"Error: stdin: record {SEED_ID} does not exist\n"
    result = gr(title_repo, "update", "-i", record_id, input='{"title": ""}')
    assert result.exit_code == 1
    assert result.stderr == f"Error: stdin: record {record_id}: /title: '' should be non-empty\n"
    assert gr(title_repo, "update", input="{}").exit_code == 2  # -i is required
    assert tip(title_repo) == before
    gr(title_repo, "delete", "-i", record_id)
    result = gr(title_repo, "update", "-i", record_id, input='{"title": "x"}')
    assert result.exit_code == 1
    assert "is deleted: undelete it first" in result.stderr


def test_update_with_same_data_writes_nothing(gr, repo):
    record_id = gr(repo, "create", input='{"title": "a"}').stdout.strip()
    before = tip(repo)
    result = gr(repo, "update", "-i", record_id, input='{"title": "a"}')
    assert result.exit_code == 0
    assert "No changes" in result.stderr
    assert tip(repo) == before


def test_patch_several_records_in_one_commit(gr, title_repo):
    ids = gr(title_repo, "create", input='[{"title": "a"}, {"title": "b"}]').stdout.split()
    before = commits(title_repo)
    ops = json.dumps(
        [{"op": "replace", "path": "/title", "value": "Patched"}, {"op": "add", "path": "/year", "value": 2}]
    )
    result = gr(title_repo, "patch", "-i", ids[0], "-i", ids[1], "-m", "patch both", input=ops)
    assert result.exit_code == 0, result.stderr
    assert commits(title_repo) == before + 1
    assert all(show(title_repo, i) == {"title": "Patched", "year": 2} for i in ids)
    assert git(title_repo, "log", "-1", "--format=%s").strip() == "patch both"


def test_patch_from_file(gr, repo, tmp_path):
    record_id = gr(repo, "create", input='{"title": "a"}').stdout.strip()
    patch_file = tmp_path / "p.json"
    patch_file.write_text('[{"op": "remove", "path": "/title"}]')
    assert gr(repo, "patch", "-i", record_id, str(patch_file)).exit_code == 0
    assert show(repo, record_id) == {}


def test_patch_errors_write_nothing(gr, title_repo):
    ids = gr(title_repo, "create", input='[{"title": "a"}, {"title": "b"}]').stdout.split()
    before = tip(title_repo)
    result = gr(title_repo, "patch", "-i", ids[0], input='[{"op": "remove", "path": "/nope"}]')
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: record {ids[0]}: ")
    result = gr(title_repo, "patch", "-i", ids[0], "-i", ids[1], input='[{"op": "remove", "path": "/title"}]')
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"record {ids[0]}: /: 'title' is a required property",
        f"record {ids[1]}: /: 'title' is a required property",
        "Error: 2 problems in 2 of 2 records; nothing was written",
    ]
    result = gr(title_repo, "patch", "-i", ids[0], input='{"op": "remove"}')
    assert result.exit_code == 1
    assert "must be a list of operations" in result.stderr
    result = gr(title_repo, "patch", "-i", ids[0], "-i", SEED_ID, input="[]")
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {SEED_ID} does not exist; nothing was written\n"
    # one line naming the operation and its pointer: no Python types, no copy of the record
    cases = {
        '[{"op": "test", "path": "/title", "value": "z"}]': '(test /title): the value at /title is not "z"',
        '[{"op": "add", "path": "/nosuch/x", "value": 1}]': "(add /nosuch/x): member 'nosuch' not found",
        '[{"op": "move", "from": "/x", "path": "/y"}]': "(move /y from /x): 'x' not found",
    }
    for ops, said in cases.items():
        result = gr(title_repo, "patch", "-i", ids[0], input=ops)
        assert result.exit_code == 1
        assert result.stderr == f"Error: record {ids[0]}: JSON Patch operation 0 {said}\n"
        edited = gr(title_repo, "edit", f"id:{ids[0]}", "--patch", "-", input=ops)
        assert edited.exit_code == 1 and f"JSON Patch operation 0 {said}" in edited.stderr
    assert tip(title_repo) == before


# -- delete / undelete / revert ----------------------------------------------


def test_soft_delete_several_in_one_commit_and_undelete(gr, repo):
    ids = gr(repo, "create", input='[{"title": "a"}, {"title": "b"}]').stdout.split()
    before = commits(repo)
    result = gr(repo, "delete", "-i", ids[0], "-i", ids[1], "--json")
    assert result.exit_code == 0, result.stderr
    assert commits(repo) == before + 1
    assert all(layout.is_tombstone(show(repo, i)) for i in ids)
    assert [r["is_deleted"] for r in json.loads(result.stdout)["records"]] == [True, True]
    assert list(repo.ids()) == []

    result = gr(repo, "delete", "-i", ids[0])
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {ids[0]} is deleted\n"

    result = gr(repo, "undelete", ids[0], "-i", ids[1])
    assert result.exit_code == 0, result.stderr
    assert commits(repo) == before + 2
    assert [show(repo, i)["title"] for i in ids] == ["a", "b"]
    result = gr(repo, "undelete", ids[0])
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {ids[0]} is not deleted\n"
    assert gr(repo, "undelete").exit_code == 2


def test_delete_unknown_id_is_exit_1(gr, repo):
    result = gr(repo, "delete", "-i", SEED_ID)
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {SEED_ID} does not exist\n"
    assert gr(repo, "delete").exit_code == 2


def test_hard_delete_refuses_without_yes_when_not_on_a_terminal(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "secret"}')
    before = tip(repo)
    result = gr(repo, "delete", "--force", "-i", SEED_ID, input="y\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: delete --force purges 1 record from the whole history")
    assert "add --yes" in result.stderr
    assert tip(repo) == before


def test_hard_delete_with_yes_purges_history(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "secret"}')
    gr(repo, "update", "-i", SEED_ID, input='{"title": "secret 2"}')
    path = repo.path_for(SEED_ID)
    result = gr(repo, "delete", "--force", "--yes", "-i", SEED_ID)
    assert result.exit_code == 0, result.stderr
    assert git(repo, "log", "--all", "--format=%H", "--", path) == ""
    assert "secret" not in git(repo, "log", "--all", "-p")
    assert result.stderr.startswith("Purged 1 record from the history")
    fsck(repo)


@pytest.mark.parametrize(("answer", "code"), [("y\n", 0), ("n\n", 1)])
def test_hard_delete_asks_on_a_terminal(gr, repo, monkeypatch, answer, code):
    monkeypatch.setattr("gitrecords.cli.records.stdin_is_tty", lambda: True)
    gr(repo, "create", "-i", SEED_ID, input='{"title": "x"}')
    result = gr(repo, "delete", "--force", "-i", SEED_ID, input=answer)
    assert result.exit_code == code
    assert "This cannot be undone [y/N]" in result.stderr
    assert (git(repo, "log", "--all", "--format=%H", "--", repo.path_for(SEED_ID)) == "") == (code == 0)


def test_revert(gr, repo):
    gr(repo, "create", "-i", SEED_ID, input='{"title": "v0"}')
    gr(repo, "update", "-i", SEED_ID, input='{"title": "v1"}')
    result = gr(repo, "revert", SEED_ID, "0", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["records"] == [{"id": SEED_ID, "revision_id": 2, "is_deleted": False}]
    assert show(repo, SEED_ID) == {"title": "v0"}
    assert git(repo, "log", "-1", "--format=%s").strip() == f"revert record {SEED_ID} to revision 0"
    result = gr(repo, "revert", SEED_ID, "7")
    assert result.exit_code == 1
    assert result.stderr == f"Error: record {SEED_ID} has no revision 7 (it has revisions 0 to 2)\n"
    assert gr(repo, "revert", SEED_ID).exit_code == 2


def test_progress_is_silent_when_stderr_is_not_a_terminal(gr, repo, monkeypatch):
    result = gr(repo, "create", input="[{}, {}]")
    assert "\r" not in result.stderr
    assert not _output.stderr_is_tty()


def test_pid_clashes_are_reported_before_writing(gr, repo):
    first = gr(repo, "create", "--pid-minter", "recid", input='{"title": "one"}').stdout.strip()
    before = tip(repo)
    batch = '[{"control_number": "1"}, {"control_number": "9"}, {"control_number": "9"}]'
    result = gr(repo, "create", input=batch)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"stdin[0]: new record: /control_number: PID recid:1 is already used by record {first}"
    assert lines[1].startswith(
        "stdin[2]: new record: /control_number: PID recid:9 is already used by record "
    )
    assert lines[2] == "Error: 2 problems in 2 of 3 records; nothing was written"
    assert tip(repo) == before
    # a record keeps its own PID when it is replaced
    result = gr(repo, "create", "--force", "-i", first, input='{"title": "uno", "control_number": "1"}')
    assert result.exit_code == 0, result.stderr


def test_import_progress_on_a_terminal(gr, repo, monkeypatch):
    monkeypatch.setattr(_output, "stderr_is_tty", lambda: True)
    result = gr(repo, "import", "-", input='{"title": "a"}\n{"title": "b"}\n')
    assert result.exit_code == 0, result.stderr
    assert "Importing  2  " in result.stderr  # count and rate: a stream has no known total
    assert "/s" in result.stderr
    assert len(result.stdout.split()) == 2
    result = gr(repo, "import", "--force", "-", input='{"title": "c"}\n{"title": "d"}\n')
    assert "Checking  2/2  100%" in result.stderr
    assert "Writing  2/2  100%" in result.stderr
