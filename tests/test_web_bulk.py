"""POST /api/bulk: repo.update_records over HTTP for admins, checked with the git binary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from helpers import fsck, git

from gitrecords import Record, Repository
from gitrecords.web import create_app

WRITER = "writer-token-0123"
ADMIN = "admin-token-4567"
SERVER = "Bulk Server <server@example.org>"
TITLE_SCHEMA = {
    "type": "object",
    "required": ["title"],
    "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
}


def auth(token: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def titled(tmp_path: Path) -> tuple[Repository, FlaskClient]:
    """20 records {title, year}, year 2000..2004, under a default schema; a client of a server with
    both tokens and an author."""
    repo = Repository.init(tmp_path / "titled.git", config={"default_schema": "title.json"})
    repo.put_schema("title.json", TITLE_SCHEMA)
    repo.import_records({"title": f"Record {i}", "year": 2000 + i % 5} for i in range(20))
    app = create_app(
        repo.path,
        GITRECORDS_TOKEN=WRITER,
        GITRECORDS_ADMIN_TOKEN=ADMIN,
        GITRECORDS_AUTHOR=SERVER,
        TESTING=True,
    )
    return repo, app.test_client()


def bulk(client: FlaskClient, body: Any, token: str = ADMIN) -> Any:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/bulk", data=data, headers=auth(token))


def tip(repo: Repository) -> str:
    return git(repo, "rev-parse", "main").strip()


ADD_PUBLISHER = [{"op": "add", "path": "/publisher", "value": "ACME"}]


def test_a_dry_run_answers_the_report_and_writes_nothing(titled: tuple[Repository, FlaskClient]) -> None:
    repo, client = titled
    before = tip(repo)
    response = bulk(client, {"query": "year:2001", "patch": ADD_PUBLISHER, "dry_run": True})
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert (report["dry_run"], report["matched"], report["changed"], report["invalid"]) == (True, 4, 4, 0)
    assert report["commits"] == [] and len(report["diffs"]) == 4
    assert report["diffs"][0]["patch"] == [{"op": "add", "path": "/publisher", "value": "ACME"}]
    assert tip(repo) == before


def test_a_bulk_change_is_one_commit_by_the_servers_author(titled: tuple[Repository, FlaskClient]) -> None:
    repo, client = titled
    before = tip(repo)
    body = {"query": "year:2001", "patch": ADD_PUBLISHER, "dry_run": False, "message": "Add the publisher"}
    response = bulk(client, body)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert (report["dry_run"], report["changed"], report["selection"]) == (False, 4, "year:2001")
    assert report["commits"] == [tip(repo)]
    assert git(repo, "rev-parse", "main~1").strip() == before
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip() == f"{SERVER}|{SERVER}"
    text = git(repo, "log", "-1", "--format=%B")
    assert text.startswith("Add the publisher\n")
    assert "Gitrecords-Query: year:2001" in text and "Gitrecords-Change: patch " in text
    changed = git(repo, "diff", "--name-only", before, "main").split()
    assert len(changed) == 4 and all(p.startswith("records/") for p in changed)
    assert {Record.get_record(i, repo=repo)["publisher"] for i in repo.search("year:2001").ids} == {"ACME"}
    fsck(repo)
    # again: nothing changes, nothing is written
    again = bulk(client, body).get_json()
    assert (again["changed"], again["unchanged"], again["commits"]) == (0, 4, [])
    assert tip(repo) == report["commits"][0]


def test_records_that_would_be_invalid_are_a_400_and_nothing_is_written(
    titled: tuple[Repository, FlaskClient],
) -> None:
    repo, client = titled
    before = tip(repo)
    patch = [{"op": "replace", "path": "/year", "value": "soon"}]
    response = bulk(client, {"query": "year:2002", "patch": patch, "dry_run": False})
    assert response.status_code == 400
    body = response.get_json()
    assert body["message"] == "4 problems in 4 of 4 records; nothing was written"
    assert [(e["pointer"], e["message"]) for e in body["errors"]] == [
        ("/year", "'soon' is not of type 'integer'")
    ] * 4
    assert {e["id"] for e in body["errors"]} == set(map(str, repo.search("year:2002").ids))
    assert (body["report"]["invalid"], body["report"]["commits"]) == (4, [])
    assert tip(repo) == before
    # a dry run answers 200: the report says what would be wrong
    preview = bulk(client, {"query": "year:2002", "patch": patch, "dry_run": True})
    assert preview.status_code == 200 and preview.get_json()["invalid"] == 4
    # a patch that does not apply is a problem of the record, too
    response = bulk(client, {"query": "year:2002", "patch": [{"op": "remove", "path": "/nope"}]})
    assert response.status_code == 400 and len(response.get_json()["errors"]) == 4
    assert tip(repo) == before


def test_a_bulk_change_keeps_every_pid_as_put_and_patch_do(tmp_path: Path) -> None:
    """A PID survives every write over HTTP: a bulk change that removes or changes a record's
    ``control_number`` is a problem of that record (400, nothing written); the Python API may."""
    repo = Repository.init(tmp_path / "pids.git", config={"pids": {"recid": "control_number"}})
    for n in range(3):
        Record.create({"title": f"Record {n}"}, repo=repo, pid_minters=["recid"])
    client = create_app(repo.path, GITRECORDS_ADMIN_TOKEN=ADMIN, TESTING=True).test_client()
    before = tip(repo)
    for patch in (
        [{"op": "remove", "path": "/control_number"}],
        [{"op": "replace", "path": "/control_number", "value": "7000"}],
    ):
        for dry_run in (True, False):
            response = bulk(client, {"query": "recid:2", "patch": patch, "dry_run": dry_run})
            body = response.get_json()
            found = body["errors"] if not dry_run else body["problems"]
            assert response.status_code == (200 if dry_run else 400), body
            assert [(e["pointer"], e["message"]) for e in found] == [
                ("/control_number", 'the recid PID "2" cannot be removed or changed')
            ]
    added = bulk(client, {"query": "recid:2", "patch": ADD_PUBLISHER})
    assert added.status_code == 200 and added.get_json()["changed"] == 1  # other fields still change
    assert git(repo, "rev-list", "--count", f"{before}..main").strip() == "1"
    assert repo.update_records("recid:2", [{"op": "remove", "path": "/control_number"}]).changed == 1


def test_a_bulk_change_over_http_cannot_remove_the_schema(tmp_path: Path) -> None:
    """Removing $schema would switch validation off for the records: a problem of each one."""
    repo = Repository.init(tmp_path / "schema.git")
    repo.put_schema("title.json", {"type": "object", "properties": {"title": {"type": "string"}}})
    Record.create({"$schema": "title.json", "title": "one"}, repo=repo)
    client = create_app(repo.path, GITRECORDS_ADMIN_TOKEN=ADMIN, TESTING=True).test_client()
    before = tip(repo)
    response = bulk(client, {"query": "", "patch": [{"op": "remove", "path": "/$schema"}]})
    assert response.status_code == 400
    assert [(e["pointer"], e["message"]) for e in response.get_json()["errors"]] == [
        ("/$schema", "the record's $schema cannot be removed")
    ]
    assert tip(repo) == before


def test_the_server_forks_no_worker_processes(
    titled: tuple[Repository, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server process may run other requests in threads: a bulk change made through it runs in
    the request's thread (a process forked while another thread holds a lock of libgit2's would
    wait for it forever), however many records it changes."""
    import gitrecords.bulk

    monkeypatch.setattr(gitrecords.bulk, "PARALLEL_THRESHOLD", 1)
    forked = []
    monkeypatch.setattr(gitrecords.bulk, "ordered_map", lambda *args, **kwargs: forked.append(args))
    repo, client = titled
    assert bulk(client, {"query": "", "patch": ADD_PUBLISHER, "dry_run": True}).status_code == 200
    assert bulk(client, {"query": "", "patch": ADD_PUBLISHER}).status_code == 200
    assert forked == []
    assert repo.search("publisher:acme").total == 20


def test_a_move_to_another_schema(titled: tuple[Repository, FlaskClient]) -> None:
    repo, client = titled
    repo.put_schema("title-v2.json", {**TITLE_SCHEMA, "$id": "https://example.org/title-v2.json"})
    response = bulk(client, {"query": "", "schema": "title-v2.json", "dry_run": False})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["changed"] == 20
    assert "Gitrecords-Change: schema https://example.org/title-v2.json" in git(
        repo, "log", "-1", "--format=%B"
    )


def test_bulk_changes_need_the_admin_token(titled: tuple[Repository, FlaskClient], tmp_path: Path) -> None:
    repo, client = titled
    before = tip(repo)
    body = {"query": "", "patch": ADD_PUBLISHER}
    assert client.post("/api/bulk", data=json.dumps(body)).status_code == 401
    refused = bulk(client, body, WRITER)
    assert refused.status_code == 403
    assert (
        refused.get_json()["message"] == "a bulk change needs the admin token or a person with the admin role"
    )
    assert bulk(client, body, "wrong-token-000000").status_code == 401
    writer_only = create_app(repo.path, GITRECORDS_TOKEN=WRITER, TESTING=True).test_client()
    refused = bulk(writer_only, body, WRITER)
    assert refused.status_code == 403
    assert refused.get_json()["message"] == (
        "bulk changes are disabled: the server was started without an admin token"
    )
    read_only = create_app(repo.path, TESTING=True).test_client()
    assert bulk(read_only, body).status_code == 403
    assert tip(repo) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"[]", "request body must be a JSON object, not list"),
        ({"patch": ADD_PUBLISHER}, '/query: a search query string is needed ("" selects every live record)'),
        ({"query": 3, "patch": ADD_PUBLISHER}, "/query: a search query string is needed"),
        ({"query": "year:(", "patch": ADD_PUBLISHER}, "/query: "),
        ({"query": ""}, "/patch: a JSON Patch (a list of operations) is needed"),
        ({"query": "", "patch": {"op": "add"}}, "/patch: a JSON Patch must be a list of operations"),
        ({"query": "", "patch": [{"op": "add"}]}, "JSON Patch operation 0 needs 'op' and 'path'"),
        ({"query": "", "patch": ADD_PUBLISHER, "dry_run": "yes"}, "/dry_run: must be true or false"),
        ({"query": "", "patch": ADD_PUBLISHER, "dryrun": True}, "/dryrun: unknown member"),
        ({"query": "", "patch": ADD_PUBLISHER, "message": 1}, "/message: must be a string"),
        ({"query": "", "schema": "nope.json"}, "schema 'nope.json' is not in the schema store"),
    ],
)
def test_a_malformed_body_or_query_is_a_400(
    titled: tuple[Repository, FlaskClient], body: Any, message: str
) -> None:
    repo, client = titled
    before = tip(repo)
    response = bulk(client, body)
    assert response.status_code == 400, response.get_json()
    assert message in response.get_json()["message"]
    assert tip(repo) == before


def test_a_form_is_a_415(titled: tuple[Repository, FlaskClient]) -> None:
    _repo, client = titled
    response = client.post("/api/bulk", data={"query": ""}, headers=auth())
    assert response.status_code == 415


def test_a_person_with_the_admin_role_is_the_commits_author(
    titled: tuple[Repository, FlaskClient], tmp_path: Path
) -> None:
    from gitrecords.users import UsersFile

    repo, _client = titled
    users = tmp_path / "users.json"
    _ada, ada_token = UsersFile(users).add("Ada Admin", "ada@example.org", "admin")
    _wil, wil_token = UsersFile(users).add("Wil Writer", "wil@example.org", "write")
    client = create_app(
        repo.path, GITRECORDS_USERS_FILE=str(users), GITRECORDS_AUTHOR=SERVER, TESTING=True
    ).test_client()
    body = {"query": "year:2003", "patch": ADD_PUBLISHER}
    refused = bulk(client, body, wil_token)
    assert refused.status_code == 403
    assert "admin role" in refused.get_json()["message"]
    response = bulk(client, body, ada_token)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["commits"] == [tip(repo)]
    assert (
        git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip()
        == f"Ada Admin <ada@example.org>|{SERVER}"
    )
