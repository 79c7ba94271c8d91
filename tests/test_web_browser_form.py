"""The record form, the reading view and accessibility in a real browser (issue 19).

As tests/test_web_browser.py (whose fixtures these are): Debian's chromium driven by Playwright
against a real ``gitrecords serve`` on a repository made from sample-repo/, what the pages wrote
checked with git and through the REST API. axe-core (vendored from npm in tests/data/axe-core,
for these tests only) checks every kind of page for WCAG 2.0/2.1 A and AA violations.

``GITRECORDS_SCREENSHOTS=1`` also rewrites docs/img/web-form*.png, web-new.png and web-record.png.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import test_web_browser as base
from helpers import ROOT, git
from test_web_browser import api, commits, flash, path_of, raw_json, record_id, screenshot, show_raw_json

try:
    from playwright.sync_api import Browser, Locator, Page, expect
except ImportError:  # pragma: no cover - test_web_browser's browser fixture skips or fails
    pass

# the fixtures of tests/test_web_browser.py, for a server and a browser of this module's own
browser, server_env, data_repo, server, page, signed_in = (
    base.browser,
    base.server_env,
    base.data_repo,
    base.server,
    base.page,
    base.signed_in,
)

AXE = ROOT / "tests" / "data" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

#: collects the Content-Security-Policy violations of every page (an init script runs outside the
#: page's policy)
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || ""));
});
"""


def form_ready(page: Page) -> Locator:
    """The form json-editor generated, once it is built."""
    form = page.locator("#record-form.je-ready")
    expect(form).to_be_visible()
    return form


def field(page: Page, path: str) -> Locator:
    """The container of the form's field at json-editor ``path`` (``root.version``)."""
    return page.locator(f'[data-schemapath="{path}"]')


def csp_violations(page: Page) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # evaluated by the driver: the page's CSP does not apply
    results = page.evaluate(
        """async (tags) => {
          const results = await axe.run(document, {runOnly: {type: "tag", values: tags}});
          return {passes: results.passes.length,
                  violations: results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                            nodes: v.nodes.map(n => n.target.join(" "))}))};
        }""",
        WCAG_TAGS,
    )
    assert results["passes"] > 5  # axe ran its rules here
    return results["violations"]


@pytest.fixture
def watched(signed_in: Page) -> Page:
    signed_in.context.add_init_script(WATCH_CSP)
    return signed_in


# -- editing with the form -------------------------------------------------------


def test_edit_a_record_through_the_form(watched: Page, server: str, data_repo: Path) -> None:
    page = watched
    rid = record_id(server, "title:hedgehog")
    original = api(server, f"/api/records/{rid}")[1]["metadata"]
    before = commits(data_repo)
    page.goto(f"/admin/records/{rid}")
    page.get_by_role("link", name="Edit").click()
    form_ready(page)
    expect(page.get_by_role("button", name="Form")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_label("Record JSON")).to_be_hidden()
    version = field(page, "root.version").get_by_label("Version")
    expect(version).to_have_value(original["version"])
    # the read-only fields: the schema the record names and its PID
    expect(field(page, "root.$schema").get_by_role("textbox")).not_to_be_editable()
    expect(field(page, "root.control_number").get_by_role("textbox")).not_to_be_editable()
    first_name = field(page, "root.creators.0.name").get_by_role("textbox")
    expect(first_name).to_have_value(original["creators"][0]["name"])
    screenshot(page, "form")

    version.fill("3.0-form")
    page.get_by_label("Commit message").fill("New version, through the form")
    page.get_by_role("button", name="Save").click()
    flash(page).to_have_text("Saved revision 1.")
    assert commits(data_repo) == before + 1
    # the commit changes the one field, and nothing else of the record
    stored = json.loads(git(data_repo, "show", f"main:{path_of(data_repo, rid)}"))
    assert stored == {**original, "version": "3.0-form"}
    assert git(data_repo, "log", "-1", "--format=%s").strip() == "New version, through the form"
    assert csp_violations(page) == []


def test_a_schema_error_is_shown_next_to_its_field(watched: Page, server: str, data_repo: Path) -> None:
    page = watched
    rid = record_id(server, "title:zebrafish")
    before = commits(data_repo)
    page.goto(f"/admin/records/{rid}/edit")
    form_ready(page)
    year = field(page, "root.publicationYear").get_by_role("textbox")
    year.fill("MMXX")
    with page.expect_response(f"{server}/admin/records/{rid}/edit") as answer:
        page.get_by_role("button", name="Save").click()
    assert answer.value.status == 400
    assert commits(data_repo) == before
    # in the list above the form, and next to the field, which says it is invalid
    expect(page.get_by_role("alert").locator("li")).to_have_text(
        ["/publicationYear: 'MMXX' does not match '^[0-9]{4}$'"]
    )
    form_ready(page)
    year = field(page, "root.publicationYear").get_by_role("textbox")
    expect(year).to_have_value("MMXX")  # the text as typed
    message = field(page, "root.publicationYear").locator(".field-error")
    expect(message).to_have_text("'MMXX' does not match '^[0-9]{4}$'")
    expect(year).to_have_attribute("aria-invalid", "true")
    expect(year).to_have_attribute("aria-describedby", re.compile(r"\bserver-error-0\b"))
    year.scroll_into_view_if_needed()
    screenshot(page, "form-error")
    assert axe_violations(page) == []

    # fixed in the form: the message goes when the field changes, and the save goes through
    year.fill("2020")
    year.press("Tab")
    expect(message).to_have_count(0)
    page.get_by_role("button", name="Save").click()
    flash(page).to_have_text("Saved revision 1.")
    assert api(server, f"/api/records/{rid}")[1]["metadata"]["publicationYear"] == "2020"
    assert csp_violations(page) == []


def test_the_raw_json_is_one_click_away(watched: Page, server: str, data_repo: Path) -> None:
    page = watched
    rid = record_id(server, "title:dark-matter")
    page.goto(f"/admin/records/{rid}/edit")
    form_ready(page)
    field(page, "root.publisher.name").get_by_role("textbox").fill("from the form")
    editor = raw_json(page)
    expect(editor).to_be_visible()
    expect(page.locator("#record-form")).to_be_hidden()
    expect(page.get_by_role("button", name="Raw JSON")).to_have_attribute("aria-pressed", "true")
    assert json.loads(editor.input_value())["publisher"] == {"name": "from the form"}

    # a change in the JSON shows in the form
    changed = {**json.loads(editor.input_value()), "publisher": {"name": "from the JSON"}}
    editor.fill(json.dumps(changed, indent=2))
    page.get_by_role("button", name="Form").click()
    expect(field(page, "root.publisher.name").get_by_role("textbox")).to_have_value("from the JSON")

    # JSON that does not parse cannot become a form: the page says so and keeps the text
    editor = raw_json(page)
    editor.fill('{"titles": ')
    page.get_by_role("button", name="Form").click()
    expect(page.get_by_role("status")).to_contain_text("The JSON does not parse")
    expect(editor).to_be_visible()
    expect(editor).to_have_value('{"titles": ')
    # the raw view stays chosen in this tab: the next edit page opens on it
    page.goto(f"/admin/records/{rid}/edit")
    expect(page.get_by_label("Record JSON")).to_be_visible()
    page.get_by_role("button", name="Form").click()
    form_ready(page)
    assert csp_violations(page) == []


def test_a_new_record_from_a_schema_template(watched: Page, server: str, data_repo: Path) -> None:
    page = watched
    before = commits(data_repo)
    page.get_by_role("link", name="New record").click()
    schema = page.get_by_role("combobox", name="Schema")
    expect(schema).to_have_value("https://schemas.gitrecords.org/datacite/datacite-v4.5-subset.json")
    page.get_by_role("button", name="Start from this schema").click()
    form_ready(page)
    template = json.loads(raw_json(page).input_value())
    assert template == {
        "$schema": "https://schemas.gitrecords.org/datacite/datacite-v4.5-subset.json",
        "creators": [{"name": ""}],
        "publicationYear": "",
        "publisher": {"name": ""},
        "titles": [{"title": ""}],
        "types": {"resourceTypeGeneral": "Audiovisual"},
    }
    page.get_by_role("button", name="Form").click()
    form_ready(page)
    field(page, "root.creators.0.name").get_by_role("textbox").fill("Lovelace, Ada")
    field(page, "root.publicationYear").get_by_role("textbox").fill("1843")
    field(page, "root.publisher.name").get_by_role("textbox").fill("Richard and John E. Taylor")
    field(page, "root.titles.0.title").get_by_role("textbox").fill("Notes on the Analytical Engine")
    field(page, "root.types.resourceTypeGeneral").get_by_role("combobox").select_option("Text")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "new")
    page.get_by_role("button", name="Save").click()
    flash(page).to_have_text(re.compile(r"^Created record [0-9a-f-]{36}\.$"))
    expect(page.locator("h1")).to_have_text("Notes on the Analytical Engine")
    assert commits(data_repo) == before + 1
    rid = page.locator("dl.facts dd code").first.inner_text()
    metadata = api(server, f"/api/records/{rid}")[1]["metadata"]
    assert metadata == {
        "$schema": "https://schemas.gitrecords.org/datacite/datacite-v4.5-subset.json",
        "control_number": metadata["control_number"],  # minted, as for any new record
        "creators": [{"name": "Lovelace, Ada"}],
        "publicationYear": "1843",
        "publisher": {"name": "Richard and John E. Taylor"},
        "titles": [{"title": "Notes on the Analytical Engine"}],
        "types": {"resourceTypeGeneral": "Text"},
    }
    assert metadata["control_number"].isdigit()
    assert csp_violations(page) == []


# -- reading a record ----------------------------------------------------------


def test_the_record_reads_as_a_page(page: Page, server: str) -> None:
    rid = record_id(server, "title:pollinator")
    page.goto(f"/admin/records/{rid}")
    creators = page.get_by_role("list", name="Creators")
    expect(creators.get_by_role("listitem")).to_have_count(3)
    orcid = creators.get_by_role("link", name="ORCID: 0000-0003-8167-6055")
    expect(orcid).to_have_attribute("href", "https://orcid.org/0000-0003-8167-6055")
    reading = page.get_by_role("region", name="The record")
    expect(reading.get_by_role("heading", name="Description")).to_be_visible()
    expect(reading.get_by_role("link", name="10.5281/zenodo.6970029")).to_have_attribute(
        "href", "https://doi.org/10.5281/zenodo.6970029"
    )
    expect(reading.locator("dl.dates")).to_contain_text("Issued2022-11-13")
    expect(page.get_by_label("Record JSON")).to_be_hidden()
    show_raw_json(page)
    expect(page.get_by_label("Record JSON")).to_be_visible()
    expect(page.get_by_label("Record JSON")).to_contain_text('"publicationYear": "2022"')
    # the JSON can be scrolled with the keyboard: it takes the focus
    page.get_by_label("Record JSON").focus()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Record JSON"


# -- accessibility ---------------------------------------------------------------


def test_axe_finds_no_wcag_a_or_aa_violations(watched: Page, server: str) -> None:
    page = watched
    rid = record_id(server, "title:pollinator")
    pages = {
        "list": "/admin/",
        "search": "/admin/?q=title:corpus",
        "history": f"/admin/records/{rid}/history",
        "record": f"/admin/records/{rid}",
        "blame": f"/admin/records/{rid}/blame",
        "edit": f"/admin/records/{rid}/edit",
        "new": "/admin/new",
    }
    found = {}
    for name, path in pages.items():
        page.goto(path)
        if name in ("edit", "new"):
            form_ready(page)
        if name == "record":
            show_raw_json(page)
        found[name] = axe_violations(page)
        if name == "edit":  # the raw JSON view too
            raw_json(page)
            found["edit (raw JSON)"] = axe_violations(page)
            page.get_by_role("button", name="Form").click()
    assert found == {name: [] for name in found}
    assert csp_violations(page) == []


def test_text_that_looks_like_html_is_text_in_the_form(watched: Page, server: str, data_repo: Path) -> None:
    """json-editor, without DOMPurify, parsed every string value as HTML and kept its text: an
    unchanged save lost "<i>" and "a<b and c>d", and an <img onerror> in a title became a live
    element (its handler stopped only by the Content-Security-Policy). Values are text."""
    from gitrecords import Record, Repository

    page = watched
    template = api(server, f"/api/records/{record_id(server, 'title:hedgehog')}")[1]["metadata"]
    data = {key: value for key, value in template.items() if key != "control_number"}
    data["titles"] = [
        {"title": "Growth of <i>Homo sapiens</i> cells at p <0.05 <img src=x onerror=alert(1)>"}
    ]
    data["descriptions"] = [
        {"description": "Uses the <sup>14</sup>C method; a<b and c>d.", "descriptionType": "Abstract"}
    ]
    rid = str(Record.create(data, repo=Repository(data_repo), pid_minters=[]).id)
    before = commits(data_repo)
    page.goto(f"/admin/records/{rid}/edit")
    form_ready(page)
    assert page.locator("#record-form img").count() == 0
    expect(field(page, "root.titles.0.title").get_by_role("textbox")).to_have_value(
        data["titles"][0]["title"]
    )
    page.get_by_role("button", name="Save").click()
    flash(page).to_have_text("Nothing changed: no new revision was written.")
    assert commits(data_repo) == before
    assert api(server, f"/api/records/{rid}")[1]["metadata"] == data
    assert csp_violations(page) == []


def test_the_form_round_trips_every_sample_record(signed_in: Page, server: str) -> None:
    """Opened in the form and turned back into JSON, each of the 60 sample records is unchanged:
    saving a record without touching the form changes nothing."""
    page = signed_in
    status, body = api(server, "/api/records?size=100")
    assert status == 200 and body["hits"]["total"] == len(body["hits"]["hits"]) >= 60
    changed = []
    for hit in body["hits"]["hits"]:
        page.goto(f"/admin/records/{hit['id']}/edit")
        form_ready(page)
        text = raw_json(page).input_value()  # the form's value, written into the textarea
        page.get_by_role("button", name="Form").click()
        if json.loads(text) != api(server, f"/api/records/{hit['id']}")[1]["metadata"]:
            changed.append(hit["id"])
    assert changed == []


def test_without_javascript_the_page_is_the_textarea(browser: Browser, server: str, data_repo: Path) -> None:
    """The form is JavaScript's; without it the raw JSON is the page, and saving works as before."""
    context = browser.new_context(base_url=server, java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        base.sign_in(page)
        rid = record_id(server, "recid:5")
        page.goto(f"/admin/records/{rid}/edit")
        expect(page.get_by_role("button", name="Raw JSON")).to_be_hidden()
        expect(page.locator("#record-form")).to_be_hidden()
        editor = page.get_by_label("Record JSON")
        expect(editor).to_be_visible()
        before = commits(data_repo)
        editor.fill(base.edited(editor.input_value(), version="no script"))
        page.get_by_role("button", name="Save").click()
        flash(page).to_have_text("Saved revision 1.")
        assert commits(data_repo) == before + 1
        assert api(server, f"/api/records/{rid}")[1]["metadata"]["version"] == "no script"
    finally:
        context.close()
