"""`gitrecords serve` as a real process on a real port, with the real git binary pushing into it."""

from __future__ import annotations

import http.client
import json
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import webserver
from click.testing import CliRunner
from helpers import SAMPLE_REPO, fsck, git
from webserver import GITRECORDS, json_request, urlopen

from gitrecords.cli import cli

FIRST = "fd297857-b8c4-43ae-930c-8e23a81b527b"


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """``serve(path, *args, env=...)`` starts a server (stopped after the test); returns its URL."""
    with ExitStack() as stack:
        yield lambda path, *args, env=None: stack.enter_context(webserver.serve(path, *args, env=env))


request = json_request


def test_the_seed_curl_example_and_a_push_while_serving(
    tmp_path: Path, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run([*GITRECORDS, "init", "--from", str(SAMPLE_REPO), str(tmp_path / "demo.git")], check=True)
    token_file = tmp_path / "token"
    token_file.write_text("a-token-from-a-file\n")
    base = serve(tmp_path / "demo.git", "--token-file", str(token_file))

    # the seed: `curl http://127.0.0.1:5000/records/1` answers with "control_number": "1"
    proc = subprocess.run(["curl", "-s", f"{base}/records/1"], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout)["metadata"]["control_number"] == "1"

    # a curator pushes a change from a clone with plain git; the running server serves it
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "demo.git"), str(clone)], check=True)
    path = next(clone.glob(f"records/*/*/{FIRST}.json"))
    data = json.loads(path.read_text())
    data["version"] = "pushed"
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    identity = ["-c", "user.name=Curator", "-c", "user.email=curator@example.org"]
    subprocess.run(["git", "-C", str(clone), *identity, "commit", "-qam", "Bump version"], check=True)
    subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", "main"], check=True)
    status, body = request(f"{base}/records/1")
    assert status == 200
    assert body["revision_id"] == 1 and body["metadata"]["version"] == "pushed"
    status, revisions = request(f"{base}/api/records/{FIRST}/revisions")
    assert revisions["revisions"][-1]["message"] == "Bump version"
    assert revisions["revisions"][-1]["author"]["name"] == "Curator"

    # and writes with the token from the file reach git
    status, created = request(f"{base}/api/records?pid_minter=", "POST", {"title": "over HTTP"})
    assert status == 401
    status, created = request(
        f"{base}/api/records?pid_minter=", "POST", {"title": "over HTTP"}, token="a-token-from-a-file"
    )
    assert status == 201, created
    assert created["id"] in git(tmp_path / "demo.git", "log", "-1", "--format=%B")


def test_read_only_without_a_token(tmp_path: Path, serve: Any) -> None:
    subprocess.run([*GITRECORDS, "init", "--from", str(SAMPLE_REPO), str(tmp_path / "demo.git")], check=True)
    base = serve(tmp_path / "demo.git")
    assert request(f"{base}/api/records?size=1")[1]["hits"]["total"] == 60
    status, body = request(f"{base}/api/records", "POST", {"title": "x"}, token="anything-at-all")
    assert status == 403 and "read-only" in body["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token-file", "missing.txt"], "--token-file missing.txt: No such file or directory"),
        (["--token-file", "short.txt"], "must have at least 8 characters"),
        (["--admin-token-file", "short.txt"], "--admin-token-file short.txt: the token on its first line"),
    ],
)
def test_serve_refuses_bad_token_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    subprocess.run([*GITRECORDS, "init", str(tmp_path / "r.git")], check=True, capture_output=True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "short.txt").write_text("short\n")
    result = CliRunner().invoke(cli, ["--repo", "r.git", "serve", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_concurrent_creates_get_distinct_control_numbers(tmp_path: Path, serve: Any) -> None:
    """Many requests at once, on the server's threads and from a second server process:
    every create lands in its own commit and every recid is minted once."""
    subprocess.run([*GITRECORDS, "init", "--from", str(SAMPLE_REPO), str(tmp_path / "demo.git")], check=True)
    token = "concurrent-token"
    first = serve(tmp_path / "demo.git", env={"GITRECORDS_TOKEN": token})
    second = serve(tmp_path / "demo.git", env={"GITRECORDS_TOKEN": token})

    def create(n: int) -> tuple[int, Any]:
        base = first if n % 2 else second
        return request(f"{base}/api/records", "POST", {"title": f"record {n}"}, token=token)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(create, range(24)))
    assert [status for status, _ in results] == [201] * 24, results
    numbers = sorted(int(body["metadata"]["control_number"]) for _, body in results)
    assert numbers == list(range(61, 85))
    assert git(tmp_path / "demo.git", "rev-list", "--count", "main").strip() == str(1 + 24)
    fsck(tmp_path / "demo.git")


def test_serve_runs_on_a_production_server(tmp_path: Path, serve: Any) -> None:
    """waitress, not werkzeug's development server: no "do not use it in production" warning right
    after docs/web.md says the server is fine for a team (issue 18, 3)."""
    repo_path = tmp_path / "demo.git"
    CliRunner().invoke(cli, ["init", "--from", str(SAMPLE_REPO), str(repo_path)], catch_exceptions=False)
    base_url = serve(repo_path)
    with urlopen(f"{base_url}/api/records?size=1", timeout=30) as response:
        assert response.headers["Server"] == "gitrecords"
    port = base_url.rsplit(":", 1)[1]
    log = (tmp_path / f"demo.git.serve-{port}.log").read_text()
    assert "Serving " in log
    assert "development server" not in log and "production" not in log


# -- HTTP framing on every server docs/web.md names: waitress, werkzeug's, gunicorn -----

SMALL_TOKEN = "framing-token-0123"
SMALL_RECORD_BYTES = 1000
#: MAX_CONTENT_LENGTH for that repository: twice the record limit plus 64 KiB
SMALL_BODY_LIMIT = 2 * SMALL_RECORD_BYTES + 64 * 1024
RUNNERS = {
    "gitrecords serve": webserver.serve,
    "flask run": webserver.flask_run,
    "gunicorn": webserver.gunicorn,
}


@pytest.fixture(scope="module", params=list(RUNNERS))
def small_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Each server (one per kind for the module) on a repository whose records may have 1000
    bytes; writes take SMALL_TOKEN. gunicorn is not a dependency: its runs skip without it."""
    if request.param == "gunicorn":
        pytest.importorskip("gunicorn")
    tmp = tmp_path_factory.mktemp(request.param.replace(" ", "-"))
    env = webserver.isolated_env(tmp / "home", GITRECORDS_TOKEN=SMALL_TOKEN)
    (tmp / "tree").mkdir()
    (tmp / "tree" / "gitrecords.json").write_text(json.dumps({"max_record_bytes": SMALL_RECORD_BYTES}))
    repo_path = tmp / "small.git"
    subprocess.run([*GITRECORDS, "init", "--from", str(tmp / "tree"), str(repo_path)], env=env, check=True)
    with RUNNERS[request.param](repo_path, env=env) as base_url:
        yield base_url


def exchange(
    base_url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request with http.client: the status, every header as sent (repeats kept), the body.
    A ``body`` that is an iterator of bytes goes chunked, without a Content-Length."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def named(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


def small_create(base_url: str, data: Any) -> str:
    headers = {"Authorization": f"Bearer {SMALL_TOKEN}", "Content-Type": "application/json"}
    status, _, body = exchange(
        base_url, "POST", "/api/records?pid_minter=", json.dumps(data).encode(), headers
    )
    assert status == 201, body
    return json.loads(body)["id"]


def test_one_date_header_per_response(small_server: str) -> None:
    """werkzeug's make_conditional added a Date to the records' answers; werkzeug's own server
    then sent it beside its own (issue 18, 18)."""
    rid = small_create(small_server, {"title": "dated"})
    for method, path, headers in [
        ("GET", f"/api/records/{rid}", {}),
        ("HEAD", f"/api/records/{rid}", {}),
        ("GET", f"/api/records/{rid}", {"If-None-Match": '"0"'}),
        ("GET", "/api/records", {}),
        ("GET", f"/api/records/{uuid.UUID(int=1)}", {}),
        ("GET", "/admin/", {}),
    ]:
        status, sent, _ = exchange(small_server, method, path, headers=headers)
        assert status in (200, 304, 404)
        assert len(named(sent, "Date")) == 1, (method, path, sent)


def test_a_204_has_no_content_type(small_server: str) -> None:
    rid = small_create(small_server, {"title": "to delete"})
    auth = {"Authorization": f"Bearer {SMALL_TOKEN}"}
    status, sent, body = exchange(small_server, "DELETE", f"/api/records/{rid}", headers=auth)
    assert (status, body) == (204, b"")
    assert named(sent, "Content-Type") == [], sent
    assert named(sent, "ETag") == ['"1"']


def test_a_form_or_text_body_is_415(small_server: str) -> None:
    """urllib (and curl -d) send a body as a form unless told otherwise: 415, nothing written."""
    auth = {"Authorization": f"Bearer {SMALL_TOKEN}"}
    req = urllib.request.Request(f"{small_server}/api/records", data=b'{"title": "a form"}', headers=auth)
    assert req.get_header("Content-type") is None  # urllib adds application/x-www-form-urlencoded
    with pytest.raises(urllib.error.HTTPError) as refused:
        urlopen(req, timeout=30)
    assert refused.value.code == 415
    assert json.loads(refused.value.read()) == {
        "status": 415,
        "message": "the record must be JSON sent as 'Content-Type: application/json', "
        "not 'application/x-www-form-urlencoded'",
    }
    text = {**auth, "Content-Type": "text/plain"}
    status, _, body = exchange(small_server, "POST", "/api/records", b'{"title": "text"}', text)
    assert status == 415 and json.loads(body)["status"] == 415
    status, _, body = exchange(small_server, "GET", "/api/records?q=title:form+OR+title:text")
    assert json.loads(body)["hits"]["total"] == 0


def test_a_chunked_body_over_the_limit_is_413(small_server: str) -> None:
    """Without a Content-Length the body was cut at the limit: 400 "not valid JSON" on werkzeug's
    server and gunicorn (waitress counts the chunks itself)."""
    headers = {"Authorization": f"Bearer {SMALL_TOKEN}", "Content-Type": "application/json"}
    body = b'{"title": "' + b"x" * SMALL_BODY_LIMIT + b'"}'
    chunks = iter([body[i : i + 16384] for i in range(0, len(body), 16384)])
    status, _, answer = exchange(small_server, "POST", "/api/records?pid_minter=", chunks, headers)
    assert (status, json.loads(answer)) == (
        413,
        {
            "status": 413,
            "message": f"the request body is larger than this server's limit of {SMALL_BODY_LIMIT} bytes",
        },
    )
    # a chunked body within the limit is read whole
    padded = b'{"title": "chunked"}' + b" " * 40_000
    chunks = iter([padded[i : i + 16384] for i in range(0, len(padded), 16384)])
    status, _, answer = exchange(small_server, "POST", "/api/records?pid_minter=", chunks, headers)
    assert status == 201 and json.loads(answer)["metadata"] == {"title": "chunked"}
