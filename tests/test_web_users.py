"""Named people and roles (issue 19): the users file and its CLI, each person the git author of
their writes with the server as committer, roles in the REST API and the pages, the trusted proxy
header, and two people editing at once through gunicorn's worker processes."""

from __future__ import annotations

import json
import os
import stat
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask.testing import FlaskClient
from helpers import SAMPLE_REPO, git
from test_web_sessions import Browser
from webserver import gunicorn, isolated_env, serve, threaded, urlopen

from gitrecords import Record, Repository
from gitrecords.users import UsersFile
from gitrecords.web import create_app

SERVER = "Curation server <curation@example.org>"
ADA = ("Ada Lovelace", "ada@example.org")
GRACE = ("Grace Hopper", "grace@example.org")
LOG = "--format=%an <%ae>|%cn <%ce>"


def add_user(gr: Any, users: Path, name: str, email: str, role: str) -> str:
    """``gitrecords users add``; returns the token it printed."""
    result = gr(
        None, "users", "add", "--users-file", str(users), "--name", name, "--email", email, "--role", role
    )
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


@pytest.fixture
def people(gr: Any, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A users file with a reader, two writers and an admin; their tokens by role or name."""
    users = tmp_path / "users.json"
    tokens = {
        "read": add_user(gr, users, "Rita Reader", "rita@example.org", "read"),
        "ada": add_user(gr, users, *ADA, "write"),
        "grace": add_user(gr, users, *GRACE, "write"),
        "admin": add_user(gr, users, "Alan Admin", "alan@example.org", "admin"),
    }
    return users, tokens


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def last_commits(repo: Repository, count: int) -> list[str]:
    """``author|committer`` of the branch's last commits, newest first, from the real git."""
    return git(repo, "log", f"-{count}", LOG, "main").splitlines()


# -- the users file and its CLI --------------------------------------------------


def test_users_add_prints_the_token_once_and_keeps_only_its_hash(gr: Any, tmp_path: Path) -> None:
    users = tmp_path / "secret" / "users.json"
    result = gr(
        None,
        "users",
        "add",
        "--users-file",
        str(users),
        "--name",
        ADA[0],
        "--email",
        ADA[1],
        "--role",
        "write",
    )
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # stdout: the token and nothing else
    assert token not in result.stderr and "Ada Lovelace <ada@example.org> (write)" in result.stderr
    token_id, _, secret = token.partition(".")
    assert len(secret) >= 40
    text = users.read_text()
    assert secret not in text and token not in text
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    stored = json.loads(text)
    assert stored["format"] == "gitrecords-users 1"
    [person] = stored["users"]
    assert (person["name"], person["email"], person["role"], person["token_id"]) == (*ADA, "write", token_id)
    hashed = person["token_hash"]
    assert (hashed["algorithm"], hashed["n"], hashed["r"], hashed["p"]) == ("scrypt", 2**14, 8, 1)
    assert len(bytes.fromhex(hashed["salt"])) == 16 and len(bytes.fromhex(hashed["hash"])) == 32
    assert sorted(os.listdir(users.parent)) == ["users.json"]  # no temporary file left behind

    # the token is checked against the hash, and nothing else is
    file = UsersFile(users)
    assert file.authenticate(token) is not None and file.authenticate(token).email == ADA[1]
    assert file.authenticate(f"{token_id}.{'x' * len(secret)}") is None
    assert file.authenticate(secret) is None and file.authenticate("") is None


def test_users_list_and_remove(gr: Any, people: tuple[Path, dict[str, str]]) -> None:
    users, tokens = people
    listed = gr(None, "users", "list", "--users-file", str(users), "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [(r["email"], r["role"], r["name"]) for r in rows] == [
        ("rita@example.org", "read", "Rita Reader"),
        ("ada@example.org", "write", "Ada Lovelace"),
        ("grace@example.org", "write", "Grace Hopper"),
        ("alan@example.org", "admin", "Alan Admin"),
    ]
    assert all(set(r) == {"name", "email", "role", "added"} for r in rows)  # no hash, no token id
    text = gr(None, "users", "list", "--users-file", str(users))
    assert text.stdout.splitlines()[1] == "ada@example.org\twrite\tAda Lovelace"
    assert "scrypt" not in text.output and "scrypt" not in listed.output

    removed = gr(None, "users", "remove", "--users-file", str(users), "ADA@example.org")
    assert removed.exit_code == 0 and removed.stdout == ""
    assert "Removed Ada Lovelace <ada@example.org>" in removed.stderr
    assert UsersFile(users).authenticate(tokens["ada"]) is None
    assert [p.email for p in UsersFile(users).users()] == [
        "rita@example.org",
        "grace@example.org",
        "alan@example.org",
    ]
    assert stat.S_IMODE(users.stat().st_mode) == 0o600

    again = gr(None, "users", "remove", "--users-file", str(users), "ada@example.org")
    assert (again.exit_code, again.stderr) == (1, f"Error: ada@example.org is not in {users}\n")


def test_users_add_refuses_a_second_entry_unless_replace(
    gr: Any, people: tuple[Path, dict[str, str]]
) -> None:
    users, tokens = people
    argv = [
        "users",
        "add",
        "--users-file",
        str(users),
        "--name",
        ADA[0],
        "--email",
        ADA[1],
        "--role",
        "admin",
    ]
    twice: Result = gr(None, *argv)
    assert twice.exit_code == 1 and "use --replace" in twice.stderr and twice.stdout == ""
    replaced = gr(None, *argv, "--replace")
    assert replaced.exit_code == 0
    file = UsersFile(users)
    assert file.authenticate(tokens["ada"]) is None  # the old token stops working
    assert file.authenticate(replaced.stdout.strip()).role == "admin"
    assert len(file.users()) == 4
    bad = gr(
        None, "users", "add", "--users-file", str(users), "--name", "X", "--email", "x@y", "--role", "root"
    )
    assert bad.exit_code == 2 and "'root' is not one of 'read', 'write', 'admin'" in bad.stderr
    bad = gr(
        None, "users", "add", "--users-file", str(users), "--name", "X", "--email", "nope", "--role", "read"
    )
    assert bad.exit_code == 2
    assert bad.stderr.endswith(
        "Error: Invalid value for '--email': email 'nope' must look like someone@example.org\n"
    )
    person = ["--name", "X <x>", "--email", "x@y.org", "--role", "read"]
    bad = gr(None, "users", "add", "--users-file", str(users), *person)
    assert bad.exit_code == 2
    assert bad.stderr.endswith(
        "Error: Invalid value for '--name': name 'X <x>' must not be empty nor hold '<', '>' or a line "
        "break\n"
    )
    assert len(UsersFile(users).users()) == 4


# -- REST: each person is the author, the server the committer -------------------


@pytest.fixture
def app_client(sample_repo: Repository, people: tuple[Path, dict[str, str]]) -> FlaskClient:
    users, _ = people
    app = create_app(
        sample_repo.path, GITRECORDS_USERS_FILE=str(users), GITRECORDS_AUTHOR=SERVER, TESTING=True
    )
    return app.test_client()


def test_rest_writes_by_two_people_name_each_as_author(
    sample_repo: Repository, people: tuple[Path, dict[str, str]]
) -> None:
    users, tokens = people
    env = isolated_env(Path(str(sample_repo.path) + "-home"))
    with serve(sample_repo.path, "--users-file", str(users), "--author", SERVER, env=env) as base:
        created = []
        for who in ("ada", "grace"):
            request = urllib.request.Request(
                f"{base}/api/records?pid_minter=",
                data=json.dumps(record_data(who)).encode(),
                headers=bearer(tokens[who], **{"Content-Type": "application/json"}),
                method="POST",
            )
            with urlopen(request) as response:
                assert response.status == 201
                created.append(json.load(response)["id"])
        request = urllib.request.Request(
            f"{base}/api/records/{created[0]}", headers=bearer(tokens["grace"]), method="DELETE"
        )
        with urlopen(request) as response:
            assert response.status == 204
        with urlopen(f"{base}/api/records/{created[0]}/revisions") as response:
            revisions = json.load(response)["revisions"]
    assert last_commits(sample_repo, 3) == [
        f"Grace Hopper <grace@example.org>|{SERVER}",
        f"Grace Hopper <grace@example.org>|{SERVER}",
        f"Ada Lovelace <ada@example.org>|{SERVER}",
    ]
    assert [r["author"] for r in revisions] == [
        {"name": "Ada Lovelace", "email": "ada@example.org"},
        {"name": "Grace Hopper", "email": "grace@example.org"},
    ]


def record_data(who: str) -> dict[str, Any]:
    """A record that passes the sample repository's DataCite subset schema."""
    data = json.loads(next((SAMPLE_REPO / "records").glob("*/*/*.json")).read_text())
    data.pop("control_number", None)
    data["titles"] = [{"title": f"A record by {who}"}]
    return data


def test_history_shows_the_person(
    gr: Any, app_client: FlaskClient, people: Any, sample_repo: Repository
) -> None:
    _, tokens = people
    record = app_client.get("/records/1").get_json()
    record["metadata"]["version"] = "2.0"
    response = app_client.put(
        f"/api/records/{record['id']}",
        json=record["metadata"],
        headers=bearer(tokens["ada"], **{"If-Match": '"0"'}),
    )
    assert response.status_code == 200
    history = gr(sample_repo, "history", record["id"], "--json")
    last = json.loads(history.stdout)[-1]
    assert (last["author_name"], last["author_email"]) == ADA
    page = app_client.get(f"/admin/records/{record['id']}/history").get_data(as_text=True)
    assert "Ada Lovelace" in page


# -- roles in REST -----------------------------------------------------------------


def test_rest_roles(app_client: FlaskClient, people: Any, sample_repo: Repository) -> None:
    _, tokens = people
    record = app_client.get("/records/1").get_json()
    url = f"/api/records/{record['id']}"
    changed = {**record["metadata"], "version": "3.0"}

    assert app_client.get(url).status_code == 200  # anonymous reads, as today
    anonymous = app_client.put(url, json=changed)
    assert anonymous.status_code == 401
    refused = app_client.put(url, json=changed, headers=bearer(tokens["read"]))
    assert refused.status_code == 403
    assert refused.get_json()["message"] == (
        "Rita Reader (read) may read but not change records: writes need the write role"
    )
    wrong = app_client.put(url, json=changed, headers=bearer(tokens["read"] + "x"))
    assert wrong.status_code == 401
    assert app_client.put(url, json=changed, headers=bearer(tokens["ada"])).status_code == 200
    hard = app_client.delete(f"{url}?hard=true", headers=bearer(tokens["ada"]))
    assert hard.status_code == 403
    assert hard.get_json()["message"] == "a hard delete needs the admin token or a person with the admin role"
    assert app_client.delete(url, headers=bearer(tokens["read"])).status_code == 403
    assert app_client.delete(f"{url}?hard=true", headers=bearer(tokens["admin"])).status_code == 204
    assert app_client.get(url).status_code == 404
    assert git(sample_repo, "log", "-1", LOG, "main").strip() == f"Alan Admin <alan@example.org>|{SERVER}"


def test_the_shared_tokens_still_work_beside_the_users_file(sample_repo: Repository, people: Any) -> None:
    users, _ = people
    app = create_app(
        sample_repo.path, GITRECORDS_USERS_FILE=str(users), GITRECORDS_TOKEN="the-shared-token", TESTING=True
    )
    client = app.test_client()
    record = client.get("/records/1").get_json()
    changed = {**record["metadata"], "version": "4.0"}
    assert (
        client.put(
            f"/api/records/{record['id']}", json=changed, headers=bearer("the-shared-token")
        ).status_code
        == 200
    )
    # the shared token has no name: the server (the repository's default) is author and committer
    assert last_commits(sample_repo, 1) == [
        "gitrecords <gitrecords@localhost>|gitrecords <gitrecords@localhost>"
    ]


def test_private_reads_need_a_token(sample_repo: Repository, people: Any) -> None:
    users, tokens = people
    app = create_app(
        sample_repo.path, GITRECORDS_USERS_FILE=str(users), GITRECORDS_PRIVATE=True, TESTING=True
    )
    client = app.test_client()
    refused = client.get("/records/1")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/records").status_code == 401
    assert client.get("/records/1", headers=bearer(tokens["read"])).status_code == 200
    page = client.get("/admin/")
    assert page.status_code == 302 and page.headers["Location"].endswith("/admin/login")
    assert client.get("/admin/login").status_code == 200


# -- the pages ---------------------------------------------------------------------


@contextmanager
def running(repo: Repository, **config: Any) -> Iterator[str]:
    """create_app on a real HTTP server (a thread, a free port)."""
    with threaded(create_app(repo.path, SECRET_KEY="a fixed key for the test", **config)) as base:
        yield base


def edit_form(browser: Browser, base: str, record: Record, data: dict[str, Any]) -> tuple[int, str]:
    csrf = browser.csrf(f"{base}/admin/login")  # the session's form token (every form carries it)
    return browser.call(
        f"{base}/admin/records/{record.id}/edit",
        {"csrf_token": csrf, "revision_id": str(record.revision_id), "data": json.dumps(data)},
    )


def test_pages_sign_in_as_a_person_and_edit_as_them(repo: Repository, people: Any) -> None:
    users, tokens = people
    record = Record.create({"title": "before"}, repo=repo)
    with running(repo, GITRECORDS_USERS_FILE=str(users), GITRECORDS_AUTHOR=SERVER) as base:
        for who, title in (("grace", "by Grace"), ("ada", "by Ada")):
            browser = Browser()
            browser.sign_in(base, tokens[who])
            status, page = browser.call(f"{base}/admin/records/{record.id}")
            assert status == 200 and ">Edit</a>" in page
            record = Record.get_record(record.id, repo=repo)
            assert edit_form(browser, base, record, {"title": title})[0] == 302
        _, history = browser.call(f"{base}/admin/records/{record.id}/history")
        assert "Ada Lovelace" in history and "Grace Hopper" in history
    assert last_commits(repo, 2) == [
        f"Ada Lovelace <ada@example.org>|{SERVER}",
        f"Grace Hopper <grace@example.org>|{SERVER}",
    ]


def test_a_reader_sees_no_write_buttons_and_a_forged_post_is_refused(repo: Repository, people: Any) -> None:
    users, tokens = people
    record = Record.create({"title": "keep me"}, repo=repo)
    with running(repo, GITRECORDS_USERS_FILE=str(users)) as base:
        reader = Browser()
        reader.sign_in(base, tokens["read"])
        _, page = reader.call(f"{base}/admin/records/{record.id}")
        assert "signed in as Rita Reader (read)" in page
        for button in (">Edit</a>", ">Delete</button>", ">Purge</button>", "New record"):
            assert button not in page
        _, history = reader.call(f"{base}/admin/records/{record.id}/history")
        assert "Revert to" not in history
        # the forms a writer would see, posted by hand with the reader's session and form token
        status, body = edit_form(reader, base, record, {"title": "forged"})
        assert status == 403 and "needs the write role" in body
        csrf = reader.csrf(f"{base}/admin/records/{record.id}")
        form = {"csrf_token": csrf, "revision_id": "0"}
        assert reader.call(f"{base}/admin/records/{record.id}/delete", form)[0] == 403
        assert reader.call(f"{base}/admin/new", {**form, "data": '{"title": "x"}'})[0] == 403

        writer = Browser()
        writer.sign_in(base, tokens["ada"])
        _, page = writer.call(f"{base}/admin/records/{record.id}")
        assert ">Edit</a>" in page and ">Delete</button>" in page and ">Purge</button>" not in page
        purge = {**form, "csrf_token": writer.csrf(f"{base}/admin/"), "hard": "1", "confirm": str(record.id)}
        status, body = writer.call(f"{base}/admin/records/{record.id}/delete", purge)
        assert status == 403 and "needs the admin role" in body
    current = Record.get_record(record.id, repo=repo)
    assert dict(current) == {"title": "keep me"} and current.revision_id == 0


def test_users_remove_ends_a_persons_session(gr: Any, repo: Repository, people: Any) -> None:
    users, tokens = people
    record = Record.create({"title": "keep me"}, repo=repo)
    with running(repo, GITRECORDS_USERS_FILE=str(users)) as base:
        browser = Browser()
        browser.sign_in(base, tokens["ada"])
        assert "signed in as Ada Lovelace" in browser.call(f"{base}/admin/")[1]
        assert gr(None, "users", "remove", "--users-file", str(users), "ada@example.org").exit_code == 0
        status, body = edit_form(browser, base, record, {"title": "too late"})
        assert status == 403 and "sign in" in body
    assert Record.get_record(record.id, repo=repo).revision_id == 0


# -- the trusted proxy header --------------------------------------------------------


def put_as(base: str, record: Record, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"{base}/api/records/{record.id}",
        data=json.dumps({"title": f"after {record.revision_id}"}).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="PUT",
    )
    try:
        with urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_trusted_header_is_honoured_only_from_allowed_addresses(repo: Repository, people: Any) -> None:
    users, _ = people
    record = Record.create({"title": "before"}, repo=repo)
    header = {"X-Forwarded-User": "grace@example.org"}
    env = isolated_env(Path(str(repo.path) + "-home"))
    args = ["--users-file", str(users), "--author", SERVER, "--trusted-user-header", "X-Forwarded-User"]
    # a proxy elsewhere: the header from loopback (this test) is ignored
    with serve(repo.path, *args, "--trusted-proxy", "192.0.2.0/24", env=env) as base:
        assert put_as(base, record, header) == 401
    # no header configured: ignored too
    with serve(repo.path, "--users-file", str(users), env=env) as base:
        assert put_as(base, record, header) == 401
    assert last_commits(repo, 1) == ["gitrecords <gitrecords@localhost>|gitrecords <gitrecords@localhost>"]
    # loopback (the default) names the person; an email nobody has names nobody
    with serve(repo.path, *args, env=env) as base:
        assert put_as(base, record, {"X-Forwarded-User": "mallory@example.org"}) == 401
        assert put_as(base, record, header) == 200
        with urlopen(urllib.request.Request(f"{base}/admin/", headers=header)) as response:
            assert "signed in as Grace Hopper (write)" in response.read().decode()
    assert last_commits(repo, 1) == [f"Grace Hopper <grace@example.org>|{SERVER}"]


def test_trusted_header_from_a_non_loopback_peer_is_ignored(repo: Repository, people: Any) -> None:
    users, _ = people
    record = Record.create({"title": "before"}, repo=repo)
    config = {"GITRECORDS_USERS_FILE": str(users), "GITRECORDS_TRUSTED_USER_HEADER": "X-Forwarded-User"}
    header = {"X-Forwarded-User": "grace@example.org"}
    client = create_app(repo.path, **config).test_client()
    far = {"REMOTE_ADDR": "203.0.113.9"}
    assert (
        client.put(
            f"/api/records/{record.id}", json={"title": "x"}, headers=header, environ_base=far
        ).status_code
        == 401
    )
    listed = create_app(repo.path, **config, GITRECORDS_TRUSTED_PROXIES=["203.0.113.0/28"]).test_client()
    assert (
        listed.put(
            f"/api/records/{record.id}", json={"title": "x"}, headers=header, environ_base=far
        ).status_code
        == 200
    )
    with pytest.raises(ValueError, match="set GITRECORDS_USERS_FILE"):
        create_app(repo.path, GITRECORDS_TRUSTED_USER_HEADER="X-Forwarded-User")


def test_a_browsers_cross_site_write_gets_no_trusted_identity(repo: Repository, people: Any) -> None:
    """Behind a proxy that authenticates the browser by what it sends by itself (an SSO cookie, a
    client certificate), another site's page could POST JSON with no Content-Type: the trusted
    header names nobody for such a write (401); the same write from this site, or a read, works."""
    users, _ = people
    record = Record.create({"title": "before"}, repo=repo)
    config = {"GITRECORDS_USERS_FILE": str(users), "GITRECORDS_TRUSTED_USER_HEADER": "X-Forwarded-User"}
    client = create_app(repo.path, **config).test_client()
    header = {"X-Forwarded-User": "grace@example.org"}
    body = b'{"title": "from another site"}'
    for extra in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}, {"Origin": "null"}):
        assert client.post("/api/records", data=body, headers={**header, **extra}).status_code == 401, extra
    for extra in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://localhost"}, {}):
        put = client.put(
            f"/api/records/{record.id}", json={"title": "same site"}, headers={**header, **extra}
        )
        assert put.status_code == 200, extra
        record = Record.get_record(record.id, repo=repo)
    assert (
        client.get(
            f"/api/records/{record.id}", headers={**header, "Sec-Fetch-Site": "cross-site"}
        ).status_code
        == 200
    )


# -- gunicorn: two workers, two people at once -----------------------------------------


def test_two_people_edit_at_once_through_gunicorn_workers(tmp_path: Path, people: Any) -> None:
    """The issue's deployment test: gunicorn with two worker processes, two people writing the same
    record through REST at once, each with If-Match. A stale write gets 412 and is retried on the
    new revision, so no update is lost, and each commit names the person who made it."""
    users, tokens = people
    repo = Repository.init(tmp_path / "data.git")
    record = Record.create({"title": "shared", "edits": []}, repo=repo)
    env = isolated_env(tmp_path / "home", GITRECORDS_USERS_FILE=str(users), GITRECORDS_AUTHOR=SERVER)
    rounds = 6
    url_of = "/api/records/" + str(record.id)

    def call(base: str, who: str, method: str, data: Any = None, **headers: str) -> tuple[int, Any, str]:
        request = urllib.request.Request(
            base + url_of,
            data=None if data is None else json.dumps(data).encode(),
            headers=bearer(tokens[who], **headers, **({"Content-Type": "application/json"} if data else {})),
            method=method,
        )
        try:
            with urlopen(request, timeout=60) as response:
                return response.status, json.load(response), response.headers["ETag"]
        except urllib.error.HTTPError as err:
            return err.code, json.load(err), ""

    with gunicorn(repo.path, workers=2, env=env) as base:
        # both read revision 0, both write: the second is stale
        _, first, etag = call(base, "ada", "GET")
        _, _, same = call(base, "grace", "GET")
        assert etag == same == '"0"'
        assert (
            call(base, "ada", "PUT", {**first["metadata"], "edits": ["ada-start"]}, **{"If-Match": etag})[0]
            == 200
        )
        stale = call(
            base, "grace", "PUT", {**first["metadata"], "edits": ["grace-start"]}, **{"If-Match": same}
        )
        assert stale[0] == 412 and "someone else changed it" in stale[1]["message"]

        statuses: dict[str, list[int]] = {"ada": [], "grace": []}

        def person(who: str) -> None:
            for n in range(rounds):
                while True:
                    status, body, etag = call(base, who, "GET")
                    assert status == 200
                    data = {**body["metadata"], "edits": [*body["metadata"]["edits"], f"{who}-{n}"]}
                    status = call(
                        base, who, "PUT", data, **{"If-Match": etag, "X-Commit-Message": f"{who}-{n}"}
                    )[0]
                    statuses[who].append(status)
                    if status == 200:
                        break
                    assert status == 412

        threads = [threading.Thread(target=person, args=(who,)) for who in ("ada", "grace")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _, final, _ = call(base, "ada", "GET")

    edits = final["metadata"]["edits"]
    assert sorted(edits) == sorted(
        ["ada-start"] + [f"{who}-{n}" for who in ("ada", "grace") for n in range(rounds)]
    )
    for who in ("ada", "grace"):  # each person's edits in their order: nothing lost, nothing twice
        assert [e for e in edits if e.startswith(f"{who}-") and e != f"{who}-start"] == [
            f"{who}-{n}" for n in range(rounds)
        ]
        assert statuses[who].count(200) == rounds
    log = git(repo, "log", f"-{2 * rounds}", "--format=%an <%ae>|%cn <%ce>|%s", "main").splitlines()
    names = {"ada": "Ada Lovelace <ada@example.org>", "grace": "Grace Hopper <grace@example.org>"}
    assert sorted(log) == sorted(f"{names[who]}|{SERVER}|{who}-{n}" for who in names for n in range(rounds))
