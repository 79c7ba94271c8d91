"""The administration pages' bulk change (issue 20): "change these N records" on a search,
previewed with its diffs, applied as one commit only when confirmed, for admins only."""

from __future__ import annotations

import html
import json
import re

import pytest
from flask.testing import FlaskClient
from helpers import fsck, git

from gitrecords import Record, Repository
from gitrecords.web import create_app

WRITER = "writer-token-1234"
ADMIN = "admin-token-4567"
PATCH = json.dumps([{"op": "add", "path": "/version", "value": "2.0"}])


@pytest.fixture
def client(sample_repo: Repository) -> FlaskClient:
    app = create_app(sample_repo.path, GITRECORDS_TOKEN=WRITER, GITRECORDS_ADMIN_TOKEN=ADMIN, TESTING=True)
    return app.test_client()


def csrf(client: FlaskClient, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def sign_in(client: FlaskClient, token: str) -> None:
    response = client.post("/admin/login", data={"token": token, "csrf_token": csrf(client, "/admin/login")})
    assert response.status_code == 302


def commits(repo: Repository) -> int:
    return int(git(repo, "rev-list", "--count", "main"))


def post(client: FlaskClient, **form: str):
    return client.post("/admin/bulk", data={"csrf_token": csrf(client, "/admin/login"), **form})


def test_preview_then_confirm_changes_the_matching_records_in_one_commit(
    client: FlaskClient, sample_repo: Repository
) -> None:
    sign_in(client, ADMIN)
    listing = client.get("/admin/?q=type:Software").get_data(as_text=True)
    link = re.search(r'href="(/admin/bulk\?q=[^"]+)">Change these (\d+) records', listing)
    assert link is not None
    software = int(link.group(2))
    assert software == sample_repo.search("type:Software").total > 0
    assert "q=type:Software" in html.unescape(link.group(1)) or "q=type%3ASoftware" in link.group(1)
    # with no query, the link counts the live records (the list shows deleted ones too)
    deleted = Record.get_record(sample_repo.search("type:Software").ids[0], repo=sample_repo).delete()
    everything = client.get("/admin/").get_data(as_text=True)
    live = sample_repo.search("").total
    assert f"{live + 1} records" in everything and f"Change all {live} records" in everything
    deleted.undelete()

    before = commits(sample_repo)
    preview = post(client, q="type:Software", patch=PATCH, action="preview")
    assert preview.status_code == 200
    page = html.unescape(preview.get_data(as_text=True))
    assert f'<tr><th scope="row">Would change</th><td>{software}</td></tr>' in page
    assert '"path": "/version"' in page  # the diffs
    assert f"Change {software} records" in page
    assert commits(sample_repo) == before  # a preview writes nothing
    tip = re.search(r'name="tip" value="([0-9a-f]{40})"', page).group(1)  # type: ignore[union-attr]

    done = post(client, q="type:Software", patch=PATCH, action="apply", tip=tip, message="Version 2.0")
    assert done.status_code == 302
    assert commits(sample_repo) == before + 1
    log = git(sample_repo, "log", "-1", "--format=%B", "main")
    assert log.startswith("Version 2.0") and "Gitrecords-Query: type:Software" in log
    changed = git(sample_repo, "show", "--name-only", "--format=", "main").split()
    assert len(changed) == software
    for record_id in sample_repo.search("type:Software", size=100).ids:
        assert Record.get_record(record_id, repo=sample_repo)["version"] == "2.0"
    assert f"Changed {software} records in commit" in client.get("/admin/").get_data(as_text=True)
    fsck(sample_repo)


def test_a_change_that_would_make_records_invalid_lists_them_and_writes_nothing(
    client: FlaskClient, sample_repo: Repository
) -> None:
    sign_in(client, ADMIN)
    before = commits(sample_repo)
    bad = json.dumps([{"op": "remove", "path": "/publisher"}])  # required by the sample's schema
    response = post(client, q="type:Software", patch=bad, action="preview")
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "Nothing can be written" in page and "is a required property" in page
    assert 'value="apply"' not in page  # no confirm button
    response = post(client, q="type:Software", patch=bad, action="apply", tip=str(sample_repo.tip()))
    assert response.status_code == 422
    assert commits(sample_repo) == before


def test_a_change_that_drops_a_pid_is_refused_on_the_page_too(
    client: FlaskClient, sample_repo: Repository
) -> None:
    sign_in(client, ADMIN)
    before = commits(sample_repo)
    drop = json.dumps([{"op": "remove", "path": "/control_number"}])
    for action in ("preview", "apply"):
        response = post(client, q="recid:1", patch=drop, action=action, tip=str(sample_repo.tip()))
        assert response.status_code == 422
        assert 'the recid PID "1" cannot be removed or changed' in html.unescape(
            response.get_data(as_text=True)
        )
    assert commits(sample_repo) == before


def test_a_confirmation_of_an_old_preview_shows_the_preview_again(
    client: FlaskClient, sample_repo: Repository
) -> None:
    sign_in(client, ADMIN)
    old_tip = str(sample_repo.tip())
    Record.create({"title": "written meanwhile"}, repo=sample_repo)
    before = commits(sample_repo)
    response = post(client, q="type:Software", patch=PATCH, action="apply", tip=old_tip)
    assert response.status_code == 409
    assert "The records changed since this preview" in response.get_data(as_text=True)
    assert commits(sample_repo) == before


@pytest.mark.parametrize("token", [None, WRITER])
def test_only_admins_change_records_in_bulk(client: FlaskClient, sample_repo: Repository, token) -> None:
    if token:
        sign_in(client, token)
        assert "Change these" not in client.get("/admin/?q=type:Software").get_data(as_text=True)
    before = commits(sample_repo)
    assert client.get("/admin/bulk?q=type:Software").status_code == 403
    assert post(client, q="", patch=PATCH, action="apply", tip=str(sample_repo.tip())).status_code == 403
    assert commits(sample_repo) == before


def test_a_patch_that_is_not_json_is_a_400(client: FlaskClient) -> None:
    sign_in(client, ADMIN)
    response = post(client, q="", patch="[{", action="preview")
    assert response.status_code == 400
    assert "the JSON Patch is not valid JSON" in response.get_data(as_text=True)


def test_review_fixes_head_no_store_and_malformed_patches(
    client: FlaskClient, sample_repo: Repository
) -> None:
    """HEAD on the edit page (Flask routes it there) never saves, whatever its body; the pages are
    never cached; a patch nested too deep, or not a list, is a 400 on the bulk page."""
    sign_in(client, ADMIN)
    record_id = sample_repo.search("recid:1").ids[0]
    before = commits(sample_repo)
    data = dict(Record.get_record(record_id, repo=sample_repo), version="HEAD-WROTE-THIS")
    client.open(
        f"/admin/records/{record_id}/edit", method="HEAD", data={"data": json.dumps(data), "revision_id": "0"}
    )
    assert commits(sample_repo) == before
    assert client.get("/admin/").headers["Cache-Control"] == "no-store"
    for patch in ("[" * 10_000 + "]" * 10_000, "null"):
        response = post(client, q="recid:1", patch=patch, action="preview")
        assert response.status_code == 400
    assert commits(sample_repo) == before
