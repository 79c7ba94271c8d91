"""Blame and time travel over HTTP: ``/api/records/<id>/blame``, ``?at=`` and the blame page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from helpers import git

from gitrecords import Repository
from gitrecords.web import create_app

WRITER = "writer-token-0123"
RID = "deadbeef-9fe4-43d3-a08f-38c2b309afba"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
DAY = 86_400


def auth(**headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {WRITER}", **headers}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Repository, FlaskClient]:
    """Revision 0 on day 0 by Ann (created over REST), 1 on day 2 by Bob (a PATCH), 2 on day 4 (a
    soft delete), 3 on day 6 (undelete); each write names its author."""
    repo = Repository.init(tmp_path / "data.git")
    app = create_app(repo.path, GITRECORDS_TOKEN=WRITER, GITRECORDS_PID_MINTERS=(), TESTING=True)
    client = app.test_client()

    def dated(day: int, name: str) -> None:
        for var in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
            monkeypatch.setenv(var, f"{T0 + day * DAY} +0000")
        app.config["GITRECORDS_AUTHOR"] = f"{name} <{name.lower()}@example.org>"

    dated(0, "Ann")
    body = {"title": "a", "creators": [{"name": "x"}], "a/b": {}}
    created = client.post(f"/api/records?id={RID}", data=json.dumps(body), headers=auth())
    assert created.status_code == 201, created.get_json()
    dated(2, "Bob")
    patch = [{"op": "replace", "path": "/title", "value": "b"}]
    patched = client.patch(
        f"/api/records/{RID}", data=json.dumps(patch), headers=auth(**{"X-Commit-Message": "Retitle"})
    )
    assert patched.status_code == 200
    dated(4, "Eve")
    assert client.delete(f"/api/records/{RID}", headers=auth()).status_code == 204
    dated(6, "Fay")
    assert client.post(f"/api/records/{RID}/undelete", headers=auth()).status_code == 200
    for var in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.delenv(var)
    app.config["GITRECORDS_AUTHOR"] = None
    return repo, client


def commits(repo: Repository) -> list[str]:
    """The record's commits, oldest first, as the git binary lists them."""
    return git(repo, "log", "--reverse", "--format=%H", "--", repo.path_for(RID)).split()


def test_blame_over_rest(site: tuple[Repository, FlaskClient]) -> None:
    repo, client = site
    response = client.get(f"/api/records/{RID}/blame")
    assert response.status_code == 200
    body = response.get_json()
    made = commits(repo)
    assert body == {
        "id": RID,
        "blame": [
            {
                "pointer": "/a~1b",
                "revision_id": 0,
                "commit": made[0],
                "author": {"name": "Ann", "email": "ann@example.org"},
                "time": "2023-11-14T22:13:20Z",
                "message": f"create record {RID}",
            },
            {
                "pointer": "/creators/0/name",
                "revision_id": 0,
                "commit": made[0],
                "author": {"name": "Ann", "email": "ann@example.org"},
                "time": "2023-11-14T22:13:20Z",
                "message": f"create record {RID}",
            },
            {
                "pointer": "/title",
                "revision_id": 1,
                "commit": made[1],
                "author": {"name": "Bob", "email": "bob@example.org"},
                "time": "2023-11-16T22:13:20Z",
                "message": "Retitle",
            },
        ],
    }
    old = client.get(f"/api/records/{RID}/blame?at=2023-11-15").get_json()["blame"]
    assert [(b["pointer"], b["revision_id"]) for b in old] == [
        ("/a~1b", 0),
        ("/creators/0/name", 0),
        ("/title", 0),
    ]


def problem(response: Any) -> tuple[int, str]:
    return response.status_code, response.get_json()["message"]


def test_blame_404_410_and_400(site: tuple[Repository, FlaskClient]) -> None:
    _, client = site
    missing = "0e5c1b4e-5f32-4bd8-9d0c-3b0e8d3c9a11"
    assert client.get(f"/api/records/{missing}/blame").status_code == 404
    assert client.get("/api/records/not-a-uuid/blame").status_code == 404
    status, text = problem(client.get(f"/api/records/{RID}/blame?at=2023-11-19"))
    assert (status, text) == (410, f"record {RID} was deleted at 2023-11-19 (revision 2)")
    assert client.get(f"/api/records/{RID}/blame?at=garbage").status_code == 400
    assert client.delete(f"/api/records/{RID}", headers=auth()).status_code == 204
    deleted = client.get(f"/api/records/{RID}/blame")
    assert deleted.status_code == 410 and deleted.get_json()["revision_id"] == 4
    # its past can still be blamed
    assert client.get(f"/api/records/{RID}/blame?at=3").status_code == 200


@pytest.mark.parametrize(
    ("at", "revision", "title"),
    [
        ("0", 0, "a"),
        ("1", 1, "b"),
        ("2023-11-14", 0, "a"),  # a date alone: the end of that day, UTC
        ("2023-11-16T22:13:19Z", 0, "a"),
        ("2023-11-16T22:13:20Z", 1, "b"),
        ("2023-11-17", 1, "b"),
        ("2099-01-01", 3, "b"),
        ("main~3", 0, "a"),
    ],
)
def test_get_at(site: tuple[Repository, FlaskClient], at: str, revision: int, title: str) -> None:
    _, client = site
    response = client.get(f"/api/records/{RID}", query_string={"at": at})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["revision_id"], body["metadata"]["title"]) == (revision, title)
    assert body["links"]["revision"] == f"/api/records/{RID}/revisions/{revision}"
    assert response.headers["ETag"] == f'"{revision}"'


def test_get_at_a_commit(site: tuple[Repository, FlaskClient]) -> None:
    repo, client = site
    for revision, commit in enumerate(commits(repo)):
        for name in (commit, commit[:9]):
            response = client.get(f"/api/records/{RID}?at={name}")
            if revision == 2:  # the soft delete
                assert response.status_code == 410
                continue
            assert response.get_json()["revision_id"] == revision


def test_get_at_errors(site: tuple[Repository, FlaskClient]) -> None:
    _, client = site
    assert problem(client.get(f"/api/records/{RID}?at=2023-11-13")) == (
        404,
        f"record {RID} did not exist yet at 2023-11-13: it was created at 2023-11-14T22:13:20+00:00",
    )
    assert problem(client.get(f"/api/records/{RID}?at=7")) == (
        404,
        f"record {RID} has no revision 7 (it has revisions 0 to 3)",
    )
    status, text = problem(client.get(f"/api/records/{RID}?at=2023-02-30"))
    assert status == 400 and text.startswith(
        "query parameter 'at': '2023-02-30' is not a valid ISO 8601 date"
    )
    status, text = problem(client.get(f"/api/records/{RID}?at=no-such-ref"))
    assert (status, text) == (
        400,
        "query parameter 'at': 'no-such-ref' is not a revision id, an ISO 8601 date or a commit "
        "of this repository",
    )
    assert client.get(f"/api/records/{RID}?at=2023-11-19").status_code == 410
    missing = "0e5c1b4e-5f32-4bd8-9d0c-3b0e8d3c9a11"
    assert client.get(f"/api/records/{missing}?at=0").status_code == 404


def test_blame_page(site: tuple[Repository, FlaskClient]) -> None:
    _, client = site
    record_page = client.get(f"/admin/records/{RID}").get_data(as_text=True)
    assert f'href="/admin/records/{RID}/blame"' in record_page
    response = client.get(f"/admin/records/{RID}/blame")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert "<script>" not in page and "onclick=" not in page
    assert "<caption>" in page and '<th scope="col">Field</th>' in page
    rows = re.findall(r'<tr data-pointer="([^"]*)">(.*?)</tr>', page, re.S)
    assert [pointer for pointer, _ in rows] == ["/a~1b", "/creators/0/name", "/title"]
    title_row = rows[2][1]
    assert '<th scope="row"><code>/title</code></th>' in title_row
    assert "Bob &lt;bob@example.org&gt;" in title_row and "Retitle" in title_row
    assert f'href="/admin/records/{RID}/revisions/1"' in title_row
    assert "<code>&#34;b&#34;</code>" in title_row or "<code>&quot;b&quot;</code>" in title_row

    assert client.delete(f"/api/records/{RID}", headers=auth()).status_code == 204
    deleted = client.get(f"/admin/records/{RID}/blame")
    assert deleted.status_code == 200 and "This record is deleted" in deleted.get_data(as_text=True)
    assert "/blame" not in client.get(f"/admin/records/{RID}").get_data(as_text=True)
