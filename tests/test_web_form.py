"""The record form and the reading view, without a browser (issue 19): the schema handed to the
form ($refs resolved in the store only), the template of a new record, errors as form paths, the
reading view's links, the view hook, and the vendored files (tests/test_web_browser_form.py runs
them in chromium)."""

from __future__ import annotations

import html
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from helpers import ROOT

from gitrecords import Record, Repository, hookimpl, plugins
from gitrecords.errors import RefResolutionError, SchemaError
from gitrecords.schema import SchemaStore
from gitrecords.web import create_app, forms, reading

TOKEN = "form-test-token"
DATACITE = "https://schemas.gitrecords.org/datacite/datacite-v4.5-subset.json"
STATIC = ROOT / "gitrecords" / "web" / "static"


@pytest.fixture
def client(sample_repo: Repository) -> FlaskClient:
    client = create_app(sample_repo.git_dir, GITRECORDS_TOKEN=TOKEN, TESTING=True).test_client()
    client.post("/admin/login", data={"token": TOKEN, "csrf_token": csrf(client, "/admin/login")})
    return client


def csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def data_block(page: str, block_id: str) -> Any:
    """The JSON of a ``<script type="application/json" id=...>`` data block of the page."""
    found = re.search(rf'<script type="application/json" id="{block_id}">(.*?)</script>', page, re.S)
    assert found, block_id
    return json.loads(found.group(1))


# -- the schema of the form ------------------------------------------------------


def test_dereferenced_inlines_every_ref_from_the_store(sample_repo: Repository) -> None:
    schema = sample_repo.schema_store().dereferenced(DATACITE)
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema
    creator = schema["properties"]["creators"]["items"]
    assert creator["required"] == ["name"]
    # a $ref into another schema of the store (common-v1.json), its sibling description kept
    assert schema["properties"]["publicationYear"] == {
        "description": "Year when the resource was or will be made publicly available.",
        "pattern": "^[0-9]{4}$",
        "type": "string",
    }


def test_dereferenced_recursion_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
        "$ref": "#/$defs/node",
    }
    store = SchemaStore(
        {"tree.json": tree, "remote.json": {"properties": {"a": {"$ref": "https://example.org/a.json"}}}},
        allow_remote_refs=True,
    )
    assert store.dereferenced("tree.json") == {
        "type": "object",
        "properties": {"kids": {"type": "array", "items": {}}},
    }

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the form's schema must never be fetched")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    # remote references may be allowed for validation, never for the form
    with pytest.raises(RefResolutionError, match=r"cannot resolve \$ref 'https://example.org/a.json'"):
        store.dereferenced("remote.json")
    with pytest.raises(SchemaError, match="not in the schema store"):
        store.dereferenced("missing.json")


def test_the_form_schema_keeps_schema_and_pids_read_only(sample_repo: Repository) -> None:
    schema = forms.form_schema(sample_repo, {"$schema": DATACITE})
    assert schema is not None
    properties = schema["properties"]
    assert properties["$schema"]["readOnly"] is True and properties["control_number"]["readOnly"] is True
    assert properties["publicationYear"]["title"] == "Publication year"
    assert properties["creators"]["items"]["title"] == "Creator"
    assert forms.form_schema(sample_repo, {"$schema": "nowhere.json"}) is None
    assert forms.form_schema(sample_repo, {}) is None  # the sample has no default_schema


def test_template_of_the_required_fields(sample_repo: Repository) -> None:
    [choice] = [c for c in forms.schema_choices(sample_repo) if c.ref == DATACITE]
    assert forms.new_record(sample_repo, choice) == {
        "$schema": DATACITE,
        "creators": [{"name": ""}],
        "publicationYear": "",
        "publisher": {"name": ""},
        "titles": [{"title": ""}],
        "types": {"resourceTypeGeneral": "Audiovisual"},
    }
    schema = {
        "type": "object",
        "required": ["n", "flag", "kind", "tags"],
        "properties": {
            "n": {"type": ["integer", "null"]},
            "flag": {"type": "boolean", "default": True},
            "kind": {"const": "k"},
            "tags": {"type": "array", "minItems": 2, "items": {"type": "string"}},
        },
        "allOf": [{"required": ["extra"], "properties": {"extra": {"type": "number"}}}],
    }
    assert forms.template(schema) == {"n": 0, "flag": True, "kind": "k", "tags": ["", ""], "extra": 0}


def test_schema_choices_default_first(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "choices.git", config={"default_schema": "b.json"})
    repo.put_schema("a.json", {"$id": "https://example.org/a.json", "title": "A", "properties": {}})
    repo.put_schema("b.json", {"title": "B", "properties": {}})
    repo.put_schema("defs.json", {"$defs": {}})
    choices = forms.schema_choices(repo)
    assert [(c.ref, c.default) for c in choices] == [
        ("b.json", True),
        ("https://example.org/a.json", False),
        ("defs.json", False),
    ]
    assert choices[1].label == "A (a.json)"


@pytest.mark.parametrize(
    ("pointer", "path"),
    [
        ("", "root"),
        ("/", "root"),
        ("/creators/0/name", "root.creators.0.name"),
        ("/a~1b/c~0d", "root.a/b.c~d"),
    ],
)
def test_editor_path(pointer: str, path: str) -> None:
    assert forms.editor_path(pointer) == path


# -- the pages -----------------------------------------------------------------


def test_the_edit_page_hands_the_schema_to_the_form_as_data(
    client: FlaskClient, sample_repo: Repository
) -> None:
    record = Record.get_record(sample_repo.lookup_pid("recid", "1"), repo=sample_repo)
    page = client.get(f"/admin/records/{record.id}/edit").get_data(as_text=True)
    schema = data_block(page, "record-schema")
    assert schema == forms.form_schema(sample_repo, dict(record))
    assert data_block(page, "record-errors") == []
    # the scripts are files of this server; the only <script> elements with content are data
    assert re.findall(r"<script src=\"([^\"]+)\"", page) == [
        "/static/confirm.js",
        "/static/vendor/jsoneditor.js",
        "/static/record-form.js",
    ]
    assert all('type="application/json"' in tag for tag in re.findall(r"<script[^>]*>(?=[^<])", page))
    # the textarea the server reads is still the form's field: saving works without JavaScript
    assert '<textarea id="data" name="data"' in page


def test_schema_errors_carry_the_form_path(client: FlaskClient, sample_repo: Repository) -> None:
    record = Record.get_record(sample_repo.lookup_pid("recid", "1"), repo=sample_repo)
    data = {**dict(record), "publicationYear": 2021, "creators": [{"name": ""}]}
    path = f"/admin/records/{record.id}/edit"
    response = client.post(
        path, data={"data": json.dumps(data), "revision_id": "0", "csrf_token": csrf(client, path)}
    )
    assert response.status_code == 400
    errors = data_block(response.get_data(as_text=True), "record-errors")
    assert [(e["pointer"], e["path"]) for e in errors] == [
        ("/creators/0/name", "root.creators.0.name"),
        ("/publicationYear", "root.publicationYear"),
    ]
    assert errors[1]["message"] == "2021 is not of type 'string'"


def test_the_new_page_starts_from_a_template(client: FlaskClient) -> None:
    page = client.get("/admin/new").get_data(as_text=True)
    options = re.findall(r'<option value="([^"]+)"( selected)?>', page)
    assert options == [
        (DATACITE, " selected"),
        ("https://schemas.gitrecords.org/datacite/common-v1.json", ""),
    ]
    text = html.unescape(page[page.index('name="data"') :].split(">", 1)[1].split("</textarea>")[0])
    assert json.loads(text)["$schema"] == DATACITE and json.loads(text)["titles"] == [{"title": ""}]
    assert data_block(page, "record-schema")["properties"]["titles"]["minItems"] == 1
    # a schema that describes no record: a template with its $schema only, and no form
    other = client.get("/admin/new?schema=https://schemas.gitrecords.org/datacite/common-v1.json")
    page = other.get_data(as_text=True)
    assert 'id="record-schema"' not in page and "jsoneditor.js" not in page


# -- the reading view ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "scheme", "href"),
    [
        ("0000-0002-1825-0097", "ORCID", "https://orcid.org/0000-0002-1825-0097"),
        ("0000-0002-1825-0097", None, "https://orcid.org/0000-0002-1825-0097"),
        ("https://ror.org/02mhbdp94", "ROR", "https://ror.org/02mhbdp94"),
        ("02mhbdp94", "ROR", "https://ror.org/02mhbdp94"),
        ("10.5281/zenodo.1234", "DOI", "https://doi.org/10.5281/zenodo.1234"),
        ("doi:10.5281/zenodo.1234", "doi", "https://doi.org/10.5281/zenodo.1234"),
        ("10.1000/a b", None, None),
        ('10.1000/x"><script>', "DOI", "https://doi.org/10.1000/x%22%3E%3Cscript%3E"),
        ("javascript:alert(1)", "URL", None),
        ("JAVASCRIPT:alert(1)", None, None),
        ("ftp://example.org/file", None, None),
        ("http://example.org/x", None, "http://example.org/x"),
        ("https://", None, None),
        ("cc-by-4.0", "SPDX", None),
    ],
)
def test_identifier_links(value: str, scheme: str | None, href: str | None) -> None:
    assert reading.identifier_link(value, scheme) == href


def test_the_record_page_reads_as_a_page(client: FlaskClient, sample_repo: Repository) -> None:
    record = Record.get_record(sample_repo.lookup_pid("recid", "1"), repo=sample_repo)
    page = client.get(f"/admin/records/{record.id}").get_data(as_text=True)
    view = page[page.index('<section class="reading"') : page.index('<details class="raw">')]
    assert '<a href="https://orcid.org/0000-0003-8167-6055">ORCID: 0000-0003-8167-6055</a>' in view
    assert '<a href="https://doi.org/10.5281/zenodo.6970029">10.5281/zenodo.6970029</a>' in view
    assert "<dt>Publication year</dt><dd>2022</dd>" in view and "<dt>Issued</dt><dd>2022-11-13</dd>" in view
    assert "<dt>Rights URI</dt>" in view and "<h2>Description</h2>" in view
    # the JSON as stored is one click away, and reachable by keyboard
    assert '<pre class="json" tabindex="0" aria-label="Record JSON">' in page


def test_the_reading_view_escapes_and_links_only_http(client: FlaskClient, sample_repo: Repository) -> None:
    hostile = Record.create(
        {
            "title": "<img src=x onerror=alert(1)>",
            "creators": [
                {
                    "name": "<b>Mallory</b>",
                    "nameIdentifiers": [
                        {"nameIdentifier": "javascript:alert(1)", "nameIdentifierScheme": "URL"}
                    ],
                }
            ],
            "homepage": "javascript:alert(2)",
            "site": 'https://example.org/"onmouseover="alert(3)',
        },
        repo=sample_repo,
    )
    page = client.get(f"/admin/records/{hostile.id}").get_data(as_text=True)
    view = page[page.index('<section class="reading"') : page.index('<details class="raw">')]
    assert "<img" not in page and "<b>Mallory" not in page and "&lt;b&gt;Mallory&lt;/b&gt;" in view
    assert re.findall(r'href="([^"]*)"', view) == ["https://example.org/&#34;onmouseover=&#34;alert(3)"]


def test_a_plugin_shows_its_schemas_records_its_own_way(client: FlaskClient, sample_repo: Repository) -> None:
    seen: list[Any] = []

    class View:
        @hookimpl
        def gitrecords_record_view(self, repo: Any, record: Any, schema: Any) -> str | None:
            seen.append(schema is not None and "$ref" not in json.dumps(schema))
            return '<p class="mine">mine</p>' if record.get("control_number") == "1" else None

    plugin = View()
    plugins.register(plugin)
    try:
        first = Record.get_record(sample_repo.lookup_pid("recid", "1"), repo=sample_repo)
        second = Record.get_record(sample_repo.lookup_pid("recid", "2"), repo=sample_repo)
        page = client.get(f"/admin/records/{first.id}").get_data(as_text=True)
        assert '<p class="mine">mine</p>' in page and 'class="creators"' not in page
        assert 'aria-label="Record JSON"' in page  # the raw JSON stays
        page = client.get(f"/admin/records/{second.id}").get_data(as_text=True)
        assert "mine" not in page and 'class="creators"' in page  # not its record: the built-in view
        assert seen == [True, True]
    finally:
        plugins.unregister(plugin)


# -- what is vendored ----------------------------------------------------------


def test_json_editor_is_vendored_with_its_licence_and_version() -> None:
    vendor = STATIC / "vendor"
    version = (vendor / "jsoneditor.version").read_text().splitlines()
    assert version[0] == "@json-editor/json-editor 2.17.2"
    assert '@version "2.17.2"' in (vendor / "jsoneditor.js.LICENSE.txt").read_text()
    assert "MIT License" in (vendor / "jsoneditor.LICENSE").read_text()
    assert (vendor / "jsoneditor.js").stat().st_size > 100_000
    # nothing at run time comes from elsewhere: the pages load only this server's files
    for name in ("record-form.js", "confirm.js"):
        assert "http" not in (STATIC / name).read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"static/vendor/*"' in pyproject


def test_axe_core_is_vendored_for_the_tests_only() -> None:
    axe = ROOT / "tests" / "data" / "axe-core"
    assert (axe / "axe.version").read_text().startswith("axe-core 4.14.1\n")
    assert "Mozilla Public License" in (axe / "axe.LICENSE").read_text()
    assert not list((ROOT / "gitrecords").rglob("axe*"))


def test_the_pages_refuse_what_the_api_refuses(client: FlaskClient, sample_repo: Repository) -> None:
    """A 400 with the page, not a 500, for JSON nested past the limit on the new record page and
    for a NUL in the commit message; a revert that would drop the record's PID is refused."""
    before = sample_repo.tip()
    deep = client.post(
        "/admin/new", data={"data": "[" * 5000 + "]" * 5000, "csrf_token": csrf(client, "/admin/new")}
    )
    assert deep.status_code == 400 and "nested too deeply" in deep.get_data(as_text=True)
    record = Record.get_record(sample_repo.lookup_pid("recid", "1"), repo=sample_repo)
    path = f"/admin/records/{record.id}/edit"
    data = {**dict(record), "version": "page"}
    nul = client.post(
        path,
        data={
            "data": json.dumps(data),
            "revision_id": "0",
            "message": "x\x00y",
            "csrf_token": csrf(client, path),
        },
    )
    assert nul.status_code == 400 and "NUL character" in nul.get_data(as_text=True)
    assert sample_repo.tip() == before
    # a record whose PID came in its second revision: reverting to the first would drop it
    bare = {k: v for k, v in dict(record).items() if k != "control_number"}
    new = Record.create(bare, repo=sample_repo, pid_minters=[])
    new["control_number"] = "777777"
    new = new.commit()
    history = f"/admin/records/{new.id}/history"
    reverted = client.post(
        f"/admin/records/{new.id}/revert",
        data={"target": "0", "revision_id": "1", "csrf_token": csrf(client, history)},
    )
    assert reverted.status_code == 400 and "/control_number" in reverted.get_data(as_text=True)
    assert sample_repo.lookup_pid("recid", "777777") == new.id
