"""The REST API through Flask's test client, checked against the real repository with git."""

from __future__ import annotations

import html
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from helpers import SAMPLE_REPO, TITLE_SCHEMA, fsck, git

from gitrecords import Record, Repository
from gitrecords.errors import GitRecordsError, RepositoryError
from gitrecords.web import create_app

WRITER = "writer-token-0123"
ADMIN = "admin-token-4567"
FIRST = "fd297857-b8c4-43ae-930c-8e23a81b527b"  # sample-repo's record with control_number "1"


def auth(token: str = WRITER, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def commits(repo: Repository) -> int:
    return int(git(repo, "rev-list", "--count", "main").strip())


@pytest.fixture
def client(sample_repo: Repository) -> FlaskClient:
    app = create_app(sample_repo.path, GITRECORDS_TOKEN=WRITER, GITRECORDS_ADMIN_TOKEN=ADMIN, TESTING=True)
    return app.test_client()


@pytest.fixture
def titles(tmp_path: Path) -> tuple[Repository, FlaskClient]:
    """A repository whose default schema requires a string title, and a client with the writer token."""
    repo = Repository.init(tmp_path / "titles.git", config={"default_schema": "title.json"})
    repo.put_schema("title.json", TITLE_SCHEMA)
    app = create_app(
        repo.path,
        GITRECORDS_TOKEN=WRITER,
        GITRECORDS_ADMIN_TOKEN=ADMIN,
        GITRECORDS_PID_MINTERS=(),
        TESTING=True,
    )
    return repo, app.test_client()


def create(client: FlaskClient, data: Any, **headers: str) -> Any:
    return client.post("/api/records", data=json.dumps(data), headers=auth(**headers))


# -- reading -------------------------------------------------------------------


def test_record_by_control_number_as_in_the_seed(client: FlaskClient) -> None:
    response = client.get("/records/1")
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == FIRST
    assert body["metadata"]["control_number"] == "1"
    assert body["revision_id"] == 0
    assert response.headers["ETag"] == '"0"'
    assert client.get("/records/999").status_code == 404


def test_get_record_and_conditional_get(client: FlaskClient) -> None:
    response = client.get(f"/api/records/{FIRST}")
    assert response.status_code == 200
    assert response.get_json()["links"]["revisions"] == f"/api/records/{FIRST}/revisions"
    assert client.get(f"/api/records/{FIRST}", headers={"If-None-Match": '"0"'}).status_code == 304
    # uppercase and braces: any form uuid.UUID accepts names the same record
    assert client.get(f"/api/records/{FIRST.upper()}").get_json()["id"] == FIRST


@pytest.mark.parametrize(
    "path",
    ["/api/records/" + str(uuid.UUID(int=1)), "/api/records/not-a-uuid", "/api/nothing-here"],
)
def test_unknown_is_404_json(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    body = response.get_json()
    assert body["status"] == 404 and body["message"]


def test_list_pages_through_every_record(client: FlaskClient, sample_repo: Repository) -> None:
    seen: list[str] = []
    url: str | None = "/api/records?size=25"
    while url:
        body = client.get(url).get_json()
        assert body["hits"]["total"] == 60
        seen += [hit["id"] for hit in body["hits"]["hits"]]
        url = body["links"].get("next")
    assert len(seen) == 60 and set(seen) == {str(i) for i in sample_repo.ids()}
    last = client.get("/api/records?size=25&page=3").get_json()
    assert len(last["hits"]["hits"]) == 10 and "prev" in last["links"]


def test_list_is_newest_first(client: FlaskClient) -> None:
    record = client.get(f"/api/records/{FIRST}").get_json()["metadata"]
    record["version"] = "9.9"
    assert client.put(f"/api/records/{FIRST}", data=json.dumps(record), headers=auth()).status_code == 200
    assert client.get("/api/records?size=1").get_json()["hits"]["hits"][0]["id"] == FIRST


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("title:pollinator", {FIRST}),  # titles[].title, at any depth
        ("titles.title:POLLINATOR", {FIRST}),
        ('creators.name:"Hernández-García, José"', {FIRST}),
        ("pollinator publicationYear:2022", {FIRST}),
        (f"id:{FIRST[:8]}", {FIRST}),
        ("title:pollinator publicationYear:1999", set()),
    ],
)
def test_search(client: FlaskClient, q: str, expected: set[str]) -> None:
    body = client.get("/api/records", query_string={"q": q}).get_json()
    assert {hit["id"] for hit in body["hits"]["hits"]} == expected
    assert body["hits"]["total"] == len(expected)


@pytest.mark.parametrize("query", ["page=0", "page=x", "size=0", "size=501", "size=-3"])
def test_bad_paging_is_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/records?{query}")
    assert response.status_code == 400
    assert "query parameter" in response.get_json()["message"]


def test_revisions_list_and_one_revision(titles: tuple[Repository, FlaskClient]) -> None:
    repo, client = titles
    rid = create(client, {"title": "one"}, **{"X-Commit-Message": "first version"}).get_json()["id"]
    headers = auth(**{"If-Match": '"0"', "X-Commit-Message": "better title"})
    client.put(f"/api/records/{rid}", data=json.dumps({"title": "two"}), headers=headers)
    revisions = client.get(f"/api/records/{rid}/revisions").get_json()["revisions"]
    assert [r["revision_id"] for r in revisions] == [0, 1]
    assert [r["message"] for r in revisions] == ["first version", "better title"]
    assert [r["operation"] for r in revisions] == ["create", "update"]
    assert revisions[1]["commit"] == git(repo, "rev-parse", "main").strip()
    assert revisions[1]["author"]["name"]
    one = client.get(f"/api/records/{rid}/revisions/0").get_json()
    assert one["metadata"] == {"title": "one"} and one["revision_id"] == 0
    assert client.get(f"/api/records/{rid}/revisions/2").status_code == 404


# -- tokens ----------------------------------------------------------------------


def test_writes_need_the_token(client: FlaskClient, sample_repo: Repository) -> None:
    before = commits(sample_repo)
    missing = client.post("/api/records", data="{}")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/api/records", data="{}", headers=auth("wrong-token-000")).status_code == 401
    assert client.delete(f"/api/records/{FIRST}").status_code == 401
    assert commits(sample_repo) == before


def test_without_a_token_the_server_is_read_only(sample_repo: Repository) -> None:
    client = create_app(sample_repo.path, TESTING=True).test_client()
    response = client.post("/api/records", data="{}", headers=auth())
    assert response.status_code == 403
    assert "read-only" in response.get_json()["message"]
    assert client.get("/records/1").status_code == 200


def test_tokens_come_from_the_environment(sample_repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITRECORDS_REPO", str(sample_repo.path))
    monkeypatch.setenv("GITRECORDS_TOKEN", WRITER)
    client = create_app(TESTING=True).test_client()
    assert client.delete(f"/api/records/{FIRST}", headers=auth()).status_code == 204


def test_create_app_refuses_a_missing_repository_and_short_tokens(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="no such directory"):
        create_app(tmp_path / "nothing")
    with pytest.raises(RepositoryError, match="no repository"):
        create_app()
    Repository.init(tmp_path / "r.git")
    with pytest.raises(ValueError, match="too short"):
        create_app(tmp_path / "r.git", GITRECORDS_TOKEN="short")


# -- writing ---------------------------------------------------------------------


def test_create_mints_a_control_number(client: FlaskClient, sample_repo: Repository) -> None:
    data = json.loads((SAMPLE_REPO / "records").rglob("*.json").__next__().read_text())
    del data["control_number"]
    response = create(client, data)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["metadata"]["control_number"] == "61"
    assert response.headers["Location"].endswith(f"/api/records/{body['id']}")
    assert response.headers["ETag"] == '"0"'
    assert client.get("/records/61").get_json()["id"] == body["id"]
    # the commit is an ordinary git commit with the canonical file
    path = sample_repo.path_for(body["id"])
    shown = json.loads(git(sample_repo, "show", f"main:{path}"))
    assert shown["control_number"] == "61"
    fsck(sample_repo)


def test_create_with_an_id_and_no_minter(titles: tuple[Repository, FlaskClient]) -> None:
    _, client = titles
    rid = str(uuid.uuid4())
    response = client.post(
        "/api/records", query_string={"id": rid, "pid_minter": ""}, data='{"title": "x"}', headers=auth()
    )
    assert response.status_code == 201
    assert response.get_json()["metadata"] == {"title": "x"}
    again = client.post("/api/records", query_string={"id": rid}, data='{"title": "y"}', headers=auth())
    assert again.status_code == 409
    assert rid in again.get_json()["message"]


def test_invalid_record_lists_every_error_and_writes_nothing(titles: tuple[Repository, FlaskClient]) -> None:
    repo, client = titles
    before = commits(repo)
    response = create(client, {"title": 5, "year": "MMXXVI"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == 400
    assert [e["pointer"] for e in body["errors"]] == ["/title", "/year"]
    assert "is not of type 'string'" in body["errors"][0]["message"]
    assert commits(repo) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"title": "x",}', "record is not valid JSON"),
        (b'{"title": "x", "title": "y"}', "duplicate key"),
        (b'["title"]', "must be a JSON object"),
        (b'{"title": NaN}', "NaN"),
        (b"\xff", "not valid UTF-8"),
    ],
)
def test_malformed_json_is_400(titles: tuple[Repository, FlaskClient], body: bytes, message: str) -> None:
    repo, client = titles
    before = commits(repo)
    response = client.post("/api/records", data=body, headers=auth())
    assert response.status_code == 400
    assert message in response.get_json()["message"]
    assert commits(repo) == before


def test_oversized_bodies_and_records_are_413(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "small.git", config={"max_record_bytes": 1000})
    client = create_app(repo.path, GITRECORDS_TOKEN=WRITER, TESTING=True).test_client()
    assert client.application.config["MAX_CONTENT_LENGTH"] == 2 * 1000 + 64 * 1024
    huge = client.post("/api/records", data=b" " * 70_000, headers=auth())
    assert huge.status_code == 413
    assert huge.get_json()["status"] == 413
    too_large = create(client, {"text": "x" * 1500})
    assert too_large.status_code == 413
    assert "larger than the limit of 1000 bytes" in too_large.get_json()["message"]


def test_put_with_if_match(titles: tuple[Repository, FlaskClient]) -> None:
    repo, client = titles
    rid = create(client, {"title": "one"}).get_json()["id"]
    ok = client.put(f"/api/records/{rid}", data='{"title": "two"}', headers=auth(**{"If-Match": '"0"'}))
    assert ok.status_code == 200 and ok.headers["ETag"] == '"1"'
    before = commits(repo)
    stale = client.put(f"/api/records/{rid}", data='{"title": "three"}', headers=auth(**{"If-Match": '"0"'}))
    assert stale.status_code == 412
    assert stale.get_json()["revision_id"] == 1
    assert "someone else changed it" in stale.get_json()["message"]
    assert commits(repo) == before
    unchanged = client.put(f"/api/records/{rid}", data='{"title": "two"}', headers=auth())
    assert unchanged.status_code == 200 and unchanged.headers["ETag"] == '"1"'  # nothing to write
    assert commits(repo) == before


def test_a_write_racing_another_writer_gets_412(titles: tuple[Repository, FlaskClient]) -> None:
    """If-Match passed, but another writer commits before this one: the compare-and-swap refuses it."""
    repo, client = titles
    rid = create(client, {"title": "one"}).get_json()["id"]
    original = Record.commit

    def commit_after_someone_else(self: Record, *args: Any, **kwargs: Any) -> Record:
        other = Repository(repo.path)
        theirs = Record.get_record(self.id, repo=other)
        theirs["title"] = "theirs"
        original(theirs)
        other.close()
        return original(self, *args, **kwargs)

    Record.commit = commit_after_someone_else  # type: ignore[method-assign]
    try:
        response = client.put(
            f"/api/records/{rid}", data='{"title": "mine"}', headers=auth(**{"If-Match": '"0"'})
        )
    finally:
        Record.commit = original  # type: ignore[method-assign]
    assert response.status_code == 412
    assert client.get(f"/api/records/{rid}").get_json()["metadata"] == {"title": "theirs"}


def test_patch(titles: tuple[Repository, FlaskClient]) -> None:
    _, client = titles
    rid = create(client, {"title": "one"}).get_json()["id"]
    ops = [{"op": "add", "path": "/year", "value": 2026}]
    ok = client.patch(f"/api/records/{rid}", data=json.dumps(ops), headers=auth())
    assert ok.status_code == 200
    assert ok.get_json()["metadata"] == {"title": "one", "year": 2026}
    failed = [{"op": "test", "path": "/title", "value": "nope"}]
    assert client.patch(f"/api/records/{rid}", data=json.dumps(failed), headers=auth()).status_code == 409
    bad = [{"op": "remove", "path": "/missing"}]
    response = client.patch(f"/api/records/{rid}", data=json.dumps(bad), headers=auth())
    assert response.status_code == 400
    assert "operation 0" in response.get_json()["message"]
    invalid = [{"op": "replace", "path": "/year", "value": "soon"}]
    response = client.patch(f"/api/records/{rid}", data=json.dumps(invalid), headers=auth())
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["pointer"] == "/year"


def test_soft_delete_410_undelete_and_revert(titles: tuple[Repository, FlaskClient]) -> None:
    _, client = titles
    rid = create(client, {"title": "one"}).get_json()["id"]
    client.put(f"/api/records/{rid}", data='{"title": "two"}', headers=auth())
    deleted = client.delete(f"/api/records/{rid}", headers=auth(**{"If-Match": '"1"'}))
    assert deleted.status_code == 204 and deleted.headers["ETag"] == '"2"'
    gone = client.get(f"/api/records/{rid}")
    assert gone.status_code == 410
    assert gone.get_json() == {"status": 410, "message": f"record {rid} is deleted", "revision_id": 2}
    assert client.put(f"/api/records/{rid}", data='{"title": "x"}', headers=auth()).status_code == 410
    assert client.delete(f"/api/records/{rid}", headers=auth()).status_code == 410
    assert len(client.get(f"/api/records/{rid}/revisions").get_json()["revisions"]) == 3
    back = client.post(f"/api/records/{rid}/undelete", headers=auth())
    assert back.status_code == 200 and back.get_json()["metadata"] == {"title": "two"}
    assert client.post(f"/api/records/{rid}/undelete", headers=auth()).status_code == 409
    reverted = client.post(f"/api/records/{rid}/revert", data='{"revision_id": 0}', headers=auth())
    assert reverted.status_code == 200
    assert reverted.get_json()["revision_id"] == 4 and reverted.get_json()["metadata"] == {"title": "one"}
    missing = client.post(f"/api/records/{rid}/revert", data='{"revision_id": 9}', headers=auth())
    assert missing.status_code == 404
    bad = client.post(f"/api/records/{rid}/revert", data='{"revision": 0}', headers=auth())
    assert bad.status_code == 400


def test_hard_delete_needs_the_admin_token(titles: tuple[Repository, FlaskClient]) -> None:
    repo, client = titles
    rid = create(client, {"title": "secret"}).get_json()["id"]
    blob = git(repo, "rev-parse", f"main:{repo.path_for(rid)}").strip()
    refused = client.delete(f"/api/records/{rid}?hard=true", headers=auth())
    assert refused.status_code == 403
    assert "admin token" in refused.get_json()["message"]
    assert client.delete(f"/api/records/{rid}?hard=true", headers=auth(ADMIN)).status_code == 204
    assert client.get(f"/api/records/{rid}").status_code == 404
    assert client.get(f"/api/records/{rid}/revisions").status_code == 404
    assert git(repo, "cat-file", "-e", blob, check=False) == ""
    assert "secret" not in git(repo, "log", "-p", "--all")
    fsck(repo)


def test_hard_delete_is_off_without_an_admin_token(sample_repo: Repository) -> None:
    client = create_app(sample_repo.path, GITRECORDS_TOKEN=WRITER, TESTING=True).test_client()
    response = client.delete(f"/api/records/{FIRST}?hard=1", headers=auth())
    assert response.status_code == 403
    assert "disabled" in response.get_json()["message"]


def test_sees_commits_made_by_other_processes(client: FlaskClient, sample_repo: Repository) -> None:
    assert client.get("/records/1").get_json()["revision_id"] == 0
    other = Repository(sample_repo.path)  # another writer, as a push would be
    record = Record.get_record(FIRST, repo=other)
    record["version"] = "2.0"
    record.commit()
    body = client.get("/records/1").get_json()
    assert body["revision_id"] == 1 and body["metadata"]["version"] == "2.0"


def test_serves_a_working_clone_and_updates_its_files(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "clone", bare=False)
    client = create_app(repo.path, GITRECORDS_TOKEN=WRITER, TESTING=True).test_client()
    response = create(client, {"title": "on disk"})
    assert response.status_code == 201
    path = tmp_path / "clone" / repo.path_for(response.get_json()["id"])
    assert json.loads(path.read_text())["title"] == "on disk"
    assert git(repo, "--work-tree", str(tmp_path / "clone"), "status", "--porcelain") == ""


def test_flask_app_option_finds_the_factory(sample_repo: Repository) -> None:
    """``flask --app 'gitrecords.web:create_app("PATH")' run`` works: check with ``flask routes``."""
    app = f'gitrecords.web:create_app("{sample_repo.path}")'
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", app, "routes"], capture_output=True, text=True, check=True
    )
    assert "/records/<control_number>" in proc.stdout
    assert "/api/records/<record_id>/revisions" in proc.stdout


def test_search_finds_values_written_with_escapes(titles: tuple[Repository, FlaskClient]) -> None:
    """The search skips files that do not contain a term's text; values the file escapes still match."""
    _, client = titles
    ids = {
        create(client, {"title": title}).get_json()["id"]: title
        for title in ["back\\slash", 'a "quoted" word', "Straße", "tab\there", "plain"]
    }
    by_title = {title: rid for rid, title in ids.items()}

    def search(q: str) -> set[str]:
        return {
            hit["id"] for hit in client.get("/api/records", query_string={"q": q}).get_json()["hits"]["hits"]
        }

    assert search("title:back\\slash") == {by_title["back\\slash"]}
    assert search("title:quoted") == {by_title['a "quoted" word']}
    assert search("title:STRASSE") == {by_title["Straße"]}  # casefolded on both sides
    assert search("tab\there") == {by_title["tab\there"]}
    assert search("title:nowhere") == set()


def test_a_write_over_http_cannot_drop_or_change_a_pid(client: FlaskClient, sample_repo: Repository) -> None:
    before = commits(sample_repo)
    data = client.get("/records/1").get_json()["metadata"]
    for response in (
        client.put(f"/api/records/{FIRST}", json={**data, "control_number": "7"}, headers=auth()),
        client.patch(
            f"/api/records/{FIRST}", json=[{"op": "remove", "path": "/control_number"}], headers=auth()
        ),
    ):
        assert response.status_code == 400
        body = response.get_json()
        assert body["errors"] == [
            {"pointer": "/control_number", "message": 'the recid PID "1" cannot change'}
        ]
        assert body["message"].startswith(f'/control_number: record {FIRST} has the recid PID "1"')
    assert commits(sample_repo) == before
    assert client.get("/records/1").get_json()["id"] == FIRST


def test_a_write_over_http_cannot_drop_the_schema_to_skip_validation(
    client: FlaskClient, sample_repo: Repository
) -> None:
    """Dropping $schema switched validation off (the sample names no default schema): a PUT
    without it saved an invalid value, and a PATCH that removed it too. A PUT or edit that
    leaves it out keeps it; removing it is a 400 naming /$schema."""
    before = commits(sample_repo)
    data = client.get("/records/1").get_json()["metadata"]
    schema = data.pop("$schema")
    response = client.put(
        f"/api/records/{FIRST}", json={**data, "publicationYear": "not a year"}, headers=auth()
    )
    assert response.status_code == 400 and "publicationYear" in response.get_data(as_text=True)
    response = client.patch(
        f"/api/records/{FIRST}",
        json=[
            {"op": "remove", "path": "/$schema"},
            {"op": "replace", "path": "/publicationYear", "value": "x"},
        ],
        headers=auth(),
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"pointer": "/$schema", "message": "the record's $schema cannot be removed"}
    ]
    assert commits(sample_repo) == before
    response = client.put(f"/api/records/{FIRST}", json={**data, "publicationYear": "2001"}, headers=auth())
    assert response.status_code == 200
    assert Record.get_record(FIRST, repo=Repository(sample_repo.path))["$schema"] == schema


def test_a_full_replace_that_leaves_the_pid_out_keeps_it(
    client: FlaskClient, sample_repo: Repository
) -> None:
    """PUT without control_number keeps the server-minted PID: a client need not echo back fields
    it never set (issue 18, 5)."""
    data = client.get("/records/1").get_json()["metadata"]
    dropped = {k: v for k, v in data.items() if k != "control_number"}
    dropped["version"] = "9.9"
    response = client.put(f"/api/records/{FIRST}", json=dropped, headers=auth())
    assert response.status_code == 200, response.get_json()
    kept = client.get("/records/1").get_json()
    assert kept["id"] == FIRST
    assert kept["metadata"]["control_number"] == "1" and kept["metadata"]["version"] == "9.9"


def test_a_record_brought_with_its_control_number_keeps_it(client: FlaskClient) -> None:
    taken = create(client, {"control_number": "1"})
    assert taken.status_code == 409
    assert taken.get_json()["message"].endswith(f"PID recid:1 is already used by record {FIRST}")
    kept = create(client, {"control_number": "500"})
    assert kept.status_code == 201
    assert client.get("/records/500").get_json()["id"] == kept.get_json()["id"]


def test_a_hand_broken_file_is_listed_as_such(tmp_path: Path) -> None:
    """A file pushed broken past the checks does not take the list down with it."""
    repo = Repository.init(tmp_path / "clone", bare=False)
    client = create_app(
        repo.path, GITRECORDS_TOKEN=WRITER, GITRECORDS_PID_MINTERS=(), TESTING=True
    ).test_client()
    good = create(client, {"title": "fine"}).get_json()["id"]
    broken = create(client, {"title": "soon broken"}).get_json()["id"]
    path = tmp_path / "clone" / repo.path_for(broken)
    path.write_text('{"title": "a", "title": "b"}\n')
    identity = ["-c", "user.name=Hand", "-c", "user.email=hand@example.org"]
    subprocess.run(["git", "-C", str(tmp_path / "clone"), *identity, "commit", "-qam", "by hand"], check=True)

    hits = client.get("/api/records").get_json()["hits"]["hits"]
    assert hits[0]["id"] == broken and "duplicate key 'title'" in hits[0]["error"]
    assert hits[1]["id"] == good and hits[1]["metadata"] == {"title": "fine"}
    assert [h["id"] for h in client.get(f"/api/records?q=id:{broken[:8]}").get_json()["hits"]["hits"]] == [
        broken
    ]
    assert client.get("/api/records?q=soon").get_json()["hits"]["total"] == 0

    page = client.get("/admin/")
    assert page.status_code == 200
    assert b"(unreadable file)" in page.data and b"duplicate key" in page.data
    one = client.get(f"/api/records/{broken}")
    assert one.status_code == 400
    assert one.get_json()["message"].startswith(f"record {broken} ({repo.path_for(broken)} in commit ")


def test_a_soft_deleted_records_page_keeps_its_title(client: FlaskClient) -> None:
    """The heading is the last live title, marked deleted, not "(deleted)" (issue 18, 20)."""
    title = client.get("/records/1").get_json()["metadata"]["titles"][0]["title"]
    assert client.delete(f"/api/records/{FIRST}", headers=auth()).status_code == 204
    page = client.get(f"/admin/records/{FIRST}").get_data(as_text=True)
    heading = page[page.index("<h1>") : page.index("</h1>")]
    assert html.escape(title, quote=False) in heading and "deleted" in heading


@pytest.mark.parametrize("path", ["/api/records", "/admin/", f"/admin/records/{FIRST}", "/admin/login"])
def test_security_headers_on_every_response(client: FlaskClient, path: str) -> None:
    """No inline script, no framing, no sniffing, no referrer to other sites (issue 18, 19)."""
    headers = client.get(path).headers
    policy = headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in policy
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_the_pages_have_no_inline_script(client: FlaskClient) -> None:
    page = client.get(f"/admin/records/{FIRST}").get_data(as_text=True)
    assert "onsubmit=" not in page and "onclick=" not in page
    assert "<script>" not in page


@pytest.mark.parametrize(
    "headers", [{}, {"If-None-Match": '"0"'}, {"If-Match": '"0"'}], ids=["plain", "not-modified", "if-match"]
)
def test_the_app_leaves_the_date_header_to_the_server(client: FlaskClient, headers: dict[str, str]) -> None:
    """make_conditional added a Date that servers sent beside their own (issue 18, 18; the real
    servers are checked in test_web_server.py)."""
    for path in (f"/api/records/{FIRST}", "/records/1"):
        response = client.get(path, headers=headers)
        assert response.status_code in (200, 304)
        assert "Date" not in response.headers


def test_a_204_has_no_content_type(titles: tuple[Repository, FlaskClient]) -> None:
    """Soft delete, a revert to a deleted revision and a hard delete answer 204 without a body,
    and so without a Content-Type (issue 18, 18)."""
    _, client = titles
    rid = create(client, {"title": "one"}).get_json()["id"]
    deleted = client.delete(f"/api/records/{rid}", headers=auth())
    client.post(f"/api/records/{rid}/undelete", headers=auth())
    reverted = client.post(f"/api/records/{rid}/revert", data='{"revision_id": 1}', headers=auth())
    purged = client.delete(f"/api/records/{rid}?hard=true", headers=auth(ADMIN))
    for response in (deleted, reverted, purged):
        assert response.status_code == 204
        assert response.data == b""
        assert "Content-Type" not in response.headers
    assert reverted.headers["ETag"] == '"3"'


# -- what a body may be: JSON, and no larger than MAX_CONTENT_LENGTH however it is sent ---


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body", "message"),
    [
        ("POST", "", "application/x-www-form-urlencoded", "title=x", "the record must be JSON"),
        ("POST", "", "multipart/form-data; boundary=x", "--x--", "the record must be JSON"),
        ("POST", "", "text/plain", '{"title": "x"}', "not 'text/plain'"),
        ("PUT", "/{rid}", "text/plain; charset=utf-8", '{"title": "x"}', "the record must be JSON"),
        ("PATCH", "/{rid}", "application/x-www-form-urlencoded", "op=remove", "the JSON Patch must be"),
        ("PATCH", "/{rid}", "application/merge-patch+json", '{"title": "x"}', "not a merge patch"),
        ("POST", "/{rid}/revert", "text/plain", '{"revision_id": 0}', "the request body must be JSON"),
    ],
)
def test_a_body_that_is_not_json_is_415(
    titles: tuple[Repository, FlaskClient], method: str, path: str, content_type: str, body: str, message: str
) -> None:
    """A form or text sent to the API is refused by its Content-Type, not parsed (issue 18, 18)."""
    repo, client = titles
    rid = create(client, {"title": "one"}).get_json()["id"]
    before = commits(repo)
    response = client.open(
        "/api/records" + path.format(rid=rid),
        method=method,
        data=body,
        headers=auth(**{"Content-Type": content_type}),
    )
    assert response.status_code == 415
    answer = response.get_json()
    assert set(answer) == {"status", "message"} and answer["status"] == 415
    assert message in answer["message"]
    if method == "PATCH":
        assert response.headers["Accept-Patch"] == "application/json-patch+json, application/json"
    assert commits(repo) == before


def test_json_bodies_by_any_json_type_or_none(titles: tuple[Repository, FlaskClient]) -> None:
    """application/json (with a charset), any application/...+json, and no Content-Type at all
    (requests.post(url, data=...), Flask's test client) are read as JSON."""
    _, client = titles
    typed = auth(**{"Content-Type": "application/json; charset=utf-8"})
    rid = client.post("/api/records", data='{"title": "one"}', headers=typed).get_json()["id"]
    untyped = client.put(f"/api/records/{rid}", data='{"title": "two"}', headers=auth())
    assert untyped.status_code == 200 and untyped.get_json()["revision_id"] == 1
    for content_type, title in [("application/json-patch+json", "three"), ("application/json", "four")]:
        operations = json.dumps([{"op": "replace", "path": "/title", "value": title}])
        headers = auth(**{"Content-Type": content_type})
        patched = client.patch(f"/api/records/{rid}", data=operations, headers=headers)
        assert patched.status_code == 200 and patched.get_json()["metadata"] == {"title": title}
    vendor = auth(**{"Content-Type": "application/vnd.example+json"})
    assert client.put(f"/api/records/{rid}", data='{"title": "five"}', headers=vendor).status_code == 200


def test_a_chunked_body_over_the_limit_is_413(tmp_path: Path) -> None:
    """A body without a Content-Length (chunked) was cut at MAX_CONTENT_LENGTH without a word:
    the rest of the JSON was missing (400 "not valid JSON"), or, past the end of the JSON,
    silently dropped (issue 18, 18). The real servers: test_web_server.py."""
    repo = Repository.init(tmp_path / "small.git", config={"max_record_bytes": 1000})
    client = create_app(
        repo.path, GITRECORDS_TOKEN=WRITER, GITRECORDS_PID_MINTERS=(), TESTING=True
    ).test_client()
    limit = 2 * 1000 + 64 * 1024

    def chunked(body: bytes) -> Any:
        return client.post(
            "/api/records",
            input_stream=io.BytesIO(body),
            headers=auth(**{"Content-Type": "application/json", "Transfer-Encoding": "chunked"}),
            environ_overrides={"wsgi.input_terminated": True},
        )

    record = b'{"title": "x"}'
    too_large = {
        "status": 413,
        "message": f"the request body is larger than this server's limit of {limit} bytes",
    }
    before = commits(repo)
    for body in (
        b'{"title": "' + b"x" * limit + b'"}',
        record + b" " * (limit + 1 - len(record)),  # still JSON when cut at the limit
    ):
        response = chunked(body)
        assert (response.status_code, response.get_json()) == (413, too_large)
    assert commits(repo) == before
    at_the_limit = chunked(record + b" " * (limit - len(record)))
    assert at_the_limit.status_code == 201, at_the_limit.get_json()
    # with a Content-Length, werkzeug refuses it before reading: the same answer
    assert client.post("/api/records", data=b" " * (limit + 1), headers=auth()).get_json() == too_large


def test_review_fixes_commit_message_allow_and_unknown_minter(titles: tuple[Repository, FlaskClient]) -> None:
    """A UTF-8 X-Commit-Message is the commit's message as sent (WSGI gives header bytes as
    Latin-1); a 405 says what is allowed; an unknown pid_minter is a bad parameter (400)."""
    repo, client = titles
    text = "Müller corrigé ✓"
    created = client.post(
        "/api/records?pid_minter=",
        json={"title": "x"},
        headers=auth(**{"X-Commit-Message": text.encode().decode("latin-1")}),
    )
    assert created.status_code == 201, created.get_json()
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == text
    not_utf8 = client.post(
        "/api/records", json={"title": "y"}, headers=auth(**{"X-Commit-Message": "caf\xe9"})
    )
    assert not_utf8.status_code == 400 and "UTF-8" in not_utf8.get_json()["message"]
    refused = client.delete("/api/records")
    assert refused.status_code == 405 and set(refused.headers["Allow"].replace(" ", "").split(",")) >= {
        "GET",
        "POST",
    }
    unknown = client.post("/api/records?pid_minter=nosuch", json={"title": "z"}, headers=auth())
    assert unknown.status_code == 400 and "unknown PID minter 'nosuch'" in unknown.get_json()["message"]


def test_a_revert_over_http_cannot_drop_a_pid(client: FlaskClient, sample_repo: Repository) -> None:
    """A revert to a revision from before the record had its PID would free the PID: refused, as
    PUT and PATCH refuse it; a revert to a deletion is a delete (the tombstone keeps the PID)."""
    data = client.get("/records/1").get_json()["metadata"]
    bare = {k: v for k, v in data.items() if k != "control_number"}
    made = client.post("/api/records", query_string={"pid_minter": ""}, json=bare, headers=auth())
    rid = made.get_json()["id"]
    assert (
        client.put(
            f"/api/records/{rid}", json={**bare, "control_number": "777777"}, headers=auth()
        ).status_code
        == 200
    )
    before = commits(sample_repo)
    refused = client.post(f"/api/records/{rid}/revert", json={"revision_id": 0}, headers=auth())
    assert refused.status_code == 400
    assert refused.get_json()["errors"][0]["pointer"] == "/control_number"
    assert commits(sample_repo) == before
    assert client.get("/records/777777").get_json()["id"] == rid
    assert client.delete(f"/api/records/{rid}", headers=auth()).status_code == 204
    # deleted, the record keeps its PID with its tombstone: a revert to revision 0 still drops it
    deleted = client.post(f"/api/records/{rid}/revert", json={"revision_id": 0}, headers=auth())
    assert deleted.status_code == 400 and deleted.get_json()["errors"][0]["pointer"] == "/control_number"
    assert (
        client.post(f"/api/records/{rid}/revert", json={"revision_id": 1}, headers=auth()).status_code == 200
    )
    assert client.get("/records/777777").get_json()["id"] == rid


def test_if_match_compares_strongly(client: FlaskClient, sample_repo: Repository) -> None:
    """RFC 9110: If-Match uses the strong comparison, so a weak tag never matches (412)."""
    patch = [{"op": "add", "path": "/version", "value": "2"}]
    weak = client.patch(f"/api/records/{FIRST}", json=patch, headers=auth(**{"If-Match": 'W/"0"'}))
    assert weak.status_code == 412
    both = client.patch(f"/api/records/{FIRST}", json=patch, headers=auth(**{"If-Match": 'W/"0", "0"'}))
    assert both.status_code == 200


def test_a_commit_message_with_a_nul_is_a_400(client: FlaskClient, sample_repo: Repository) -> None:
    before = commits(sample_repo)
    patch = [{"op": "add", "path": "/version", "value": "n1"}]
    body = {"query": "recid:3", "patch": patch, "message": "fix\u0000"}
    bulk = client.post("/api/bulk", json=body, headers=auth(ADMIN))
    assert bulk.status_code == 400 and "NUL" in bulk.get_json()["message"]
    assert commits(sample_repo) == before
    with pytest.raises(GitRecordsError, match="NUL character"):
        Record.create({"title": "x"}, repo=sample_repo, message="a\x00b")
    with pytest.raises(GitRecordsError, match="NUL character"):
        sample_repo.import_records([{"title": "y"}], message="a\x00b")
    assert commits(sample_repo) == before


def test_every_setting_comes_from_the_environment(
    sample_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server started by gunicorn with GITRECORDS_PRIVATE=true is private (it was public)."""
    monkeypatch.setenv("GITRECORDS_PRIVATE", "true")
    monkeypatch.setenv("GITRECORDS_PAGE_SIZE", "3")
    monkeypatch.setenv("GITRECORDS_TOKEN", WRITER)
    client = create_app(sample_repo.path, TESTING=True).test_client()
    assert client.get("/records/1").status_code == 401
    assert len(client.get("/api/records", headers=auth()).get_json()["hits"]["hits"]) == 3
    # a keyword argument still wins
    assert (
        create_app(sample_repo.path, GITRECORDS_PRIVATE=False, TESTING=True)
        .test_client()
        .get("/records/1")
        .status_code
        == 200
    )
    monkeypatch.setenv("GITRECORDS_PRIVATE", "maybe")
    with pytest.raises(RepositoryError, match="GITRECORDS_PRIVATE='maybe': give true or false"):
        create_app(sample_repo.path)
    monkeypatch.setenv("GITRECORDS_PRIVATE", "false")
    bad = [
        ("GITRECORDS_FOLLOW_INTERVAL", "nan"),
        ("GITRECORDS_FOLLOW_INTERVAL", "inf"),
        ("GITRECORDS_PAGE_SIZE", "0"),
    ]
    for name, value in bad:
        monkeypatch.setenv(name, value)
        with pytest.raises(RepositoryError, match=f"{name}='{value}': give a number above 0"):
            create_app(sample_repo.path)
        monkeypatch.delenv(name)
