"""One set of PID defaults (issue 18, item 4): the repository's ``mint`` setting decides which
minters run for a new record, from the Python API, the CLI, REST and the pages alike, and each
entry point can override it."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from helpers import fsck, git

from gitrecords import Record, Repository
from gitrecords.errors import RepositoryError
from gitrecords.web import create_app

TOKEN = "secret-writer-token"


@pytest.fixture
def minting(tmp_path: Path) -> Repository:
    """A repository whose new records get a recid by default."""
    return Repository.init(tmp_path / "minting.git", config={"mint": ["recid"]})


@pytest.fixture
def plain(tmp_path: Path) -> Repository:
    """A repository that mints nothing by default (no "mint" setting)."""
    return Repository.init(tmp_path / "plain.git")


def stored(repo: Repository, record_id: str) -> dict:
    return json.loads(git(repo, "show", f"main:{repo.path_for(record_id)}"))


def test_the_python_api_follows_the_setting(minting: Repository, plain: Repository) -> None:
    assert Record.create({"title": "a"}, repo=minting)["control_number"] == "1"
    assert "control_number" not in Record.create({"title": "b"}, repo=plain)
    # an explicit choice wins either way
    assert "control_number" not in Record.create({"title": "c"}, repo=minting, pid_minters=())
    assert Record.create({"title": "d"}, repo=plain, pid_minters=["recid"])["control_number"] == "1"
    # a record that brings its own number keeps it (and it is still checked for uniqueness)
    assert Record.create({"title": "e", "control_number": "77"}, repo=minting)["control_number"] == "77"
    assert Record.create({"title": "f"}, repo=minting)["control_number"] == "78"
    fsck(minting)


def test_the_cli_follows_the_setting_and_prints_the_pids(gr, minting: Repository, plain: Repository) -> None:
    result = gr(minting, "create", "--json", input='{"title": "a"}')
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)["records"][0]
    assert created["pids"] == {"recid": "1"}
    assert stored(minting, created["id"])["control_number"] == "1"

    result = gr(minting, "create", "--no-pid-minters", input='{"title": "b"}')
    assert result.exit_code == 0, result.stderr
    assert "control_number" not in stored(minting, result.stdout.strip())

    result = gr(plain, "create", "--json", input='{"title": "c"}')
    assert "pids" not in json.loads(result.stdout)["records"][0]
    result = gr(plain, "create", "--pid-minter", "recid", input='{"title": "d"}')
    assert stored(plain, result.stdout.strip())["control_number"] == "1"

    result = gr(minting, "create", "--pid-minter", "recid", "--no-pid-minters", input="{}")
    assert result.exit_code == 2
    assert "give --pid-minter or --no-pid-minters, not both" in result.stderr


def test_the_cli_import_follows_the_setting(gr, minting: Repository, tmp_path: Path) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"title": "x"}\n{"title": "y", "control_number": "40"}\n')
    result = gr(minting, "import", str(lines))
    assert result.exit_code == 0, result.stderr
    numbers = [stored(minting, i).get("control_number") for i in result.stdout.split()]
    assert numbers == ["1", "40"]
    lines.write_text('{"title": "z"}\n')
    result = gr(minting, "import", "--no-pid-minters", str(lines))
    assert result.exit_code == 0, result.stderr
    assert "control_number" not in stored(minting, result.stdout.strip())


def client_for(repo: Repository, **config) -> object:
    app = create_app(repo.path, GITRECORDS_TOKEN=TOKEN, TESTING=True, **config)
    return app.test_client()


def post(client, query: str = "") -> dict:
    response = client.post(
        f"/api/records{query}", json={"title": "posted"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_rest_follows_the_setting(minting: Repository, plain: Repository) -> None:
    assert post(client_for(minting))["metadata"]["control_number"] == "1"
    assert "control_number" not in post(client_for(plain))["metadata"]
    assert "control_number" not in post(client_for(minting), "?pid_minter=")["metadata"]
    assert post(client_for(plain), "?pid_minter=recid")["metadata"]["control_number"] == "1"
    # the server's own setting overrides the repository's
    assert "control_number" not in post(client_for(minting, GITRECORDS_PID_MINTERS=()))["metadata"]


def test_the_new_record_page_follows_the_setting(minting: Repository, plain: Repository) -> None:
    for repo, expected in ((minting, "1"), (plain, None)):
        client = client_for(repo)
        page = client.get("/admin/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        assert client.post("/admin/login", data={"token": TOKEN, "csrf_token": csrf}).status_code == 302
        page = client.get("/admin/new").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        response = client.post("/admin/new", data={"data": '{"title": "paged"}', "csrf_token": csrf})
        assert response.status_code == 302, response.get_data(as_text=True)
        (record_id,) = [str(i) for i in repo.ids()]
        assert stored(repo, record_id).get("control_number") == expected


def test_a_mint_setting_that_is_not_a_list_of_names_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match='"mint" must be a list of PID minter names'):
        Repository.init(tmp_path / "bad.git", config={"mint": "recid"})


def test_a_new_revision_from_the_cli_keeps_the_pids_its_input_leaves_out(gr, minting: Repository) -> None:
    """`update` and `create --force` replace a record's data; like a REST PUT, an input without the
    PID field keeps the PID the record holds (an input that names it may still change it)."""
    record_id = gr(minting, "create", input='{"title": "a"}').stdout.strip()
    assert stored(minting, record_id)["control_number"] == "1"
    for args in (["update", "-i", record_id], ["create", "--force", "-i", record_id]):
        result = gr(minting, *args, input='{"title": "replaced"}')
        assert result.exit_code == 0, result.stderr
        assert stored(minting, record_id) == {"title": "replaced", "control_number": "1"}
    result = gr(minting, "update", "-i", record_id, input='{"title": "renumbered", "control_number": "9"}')
    assert result.exit_code == 0, result.stderr
    assert stored(minting, record_id)["control_number"] == "9"
    assert minting.lookup_pid("recid", "9") == uuid.UUID(record_id)
