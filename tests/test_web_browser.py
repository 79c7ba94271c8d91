"""The administration pages in a real browser, against a real ``gitrecords serve``.

One chromium (Debian's, driven by Playwright) and one server per module, on a
bare repository made from sample-repo/ by ``gitrecords init``. Each test works
on its own record, so the tests do not depend on each other's writes; what the
pages wrote is checked with the real git binary and through the REST API.

``GITRECORDS_SCREENSHOTS=1 pytest tests/test_web_browser.py`` also rewrites the
screenshots in docs/img/. ``GITRECORDS_CHROMIUM`` names another chromium build.
Without a browser the tests are skipped, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, SAMPLE_REPO, git
from webserver import GITRECORDS, isolated_env, serve, urlopen

try:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Locator,
        LocatorAssertions,
        Page,
        expect,
        sync_playwright,
    )
except ImportError:  # pragma: no cover - the test extra installs it; the browser fixture says so
    sync_playwright = None  # type: ignore[assignment]

TOKEN = "browser-test-token"
AUTHOR_NAME, AUTHOR_EMAIL = "Web Curator", "curator@example.org"
VIEWPORT = {"width": 1200, "height": 800}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("GITRECORDS_SCREENSHOTS", "") not in ("", "0")
DOCS_IMG = ROOT / "docs" / "img"


def unavailable(reason: str) -> None:
    """Skip on a workstation without a browser; fail in CI, which must run these tests."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: .ci/run installs Debian's chromium)", pytrace=False)
    pytest.skip(reason)


def chromium_executable() -> str:
    """$GITRECORDS_CHROMIUM, else Debian's chromium (Playwright's own download is never used)."""
    chosen = os.environ.get("GITRECORDS_CHROMIUM")
    if chosen:
        found = shutil.which(chosen)
    else:
        found = shutil.which("chromium") or shutil.which("/usr/bin/chromium")
    if found is None:
        unavailable(f"no browser at {chosen}" if chosen else "no chromium: apt-get install chromium")
    return str(found)


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    executable = chromium_executable()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The server's environment: an empty home and a write token."""
    return isolated_env(tmp_path_factory.mktemp("server-home"), GITRECORDS_TOKEN=TOKEN)


@pytest.fixture(scope="module")
def data_repo(tmp_path_factory: pytest.TempPathFactory, server_env: dict[str, str]) -> Path:
    path = tmp_path_factory.mktemp("browser") / "sample.git"
    subprocess.run([*GITRECORDS, "init", "--from", str(SAMPLE_REPO), str(path)], env=server_env, check=True)
    return path


@pytest.fixture(scope="module")
def server(data_repo: Path, server_env: dict[str, str]) -> Iterator[str]:
    with serve(data_repo, "--author", f"{AUTHOR_NAME} <{AUTHOR_EMAIL}>", env=server_env) as base_url:
        yield base_url


def new_page(browser: Browser, base_url: str) -> tuple[BrowserContext, Page]:
    """A page in a fresh context: its own cookies, as if another person opened the site."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    return context, context.new_page()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    context, opened = new_page(browser, server)
    yield opened
    context.close()


@pytest.fixture
def signed_in(page: Page) -> Page:
    sign_in(page)
    return page


def sign_in(page: Page, token: str = TOKEN, person: str | None = None) -> None:
    """Sign in with a shared token, or with the token of ``person`` of a users file, named as the
    page names them ("Ada Lovelace (write)")."""
    page.goto("/admin/login")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    signed = f"Signed in as {person}." if person else re.compile(r"^Signed in \((write|admin)\)\.$")
    expect(page.locator(".flash")).to_have_text(signed)


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".flash")).to_have_text("Signed out.")


# -- helpers -------------------------------------------------------------------


def api(server: str, path: str) -> tuple[int, dict[str, Any]]:
    """GET a REST API path: (status, JSON body)."""
    try:
        with urlopen(server + path, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def record_id(server: str, q: str) -> str:
    """The id of the one record matching the search ``q``."""
    status, body = api(server, "/api/records?q=" + urllib.parse.quote(q))
    assert status == 200 and body["hits"]["total"] == 1, body
    return body["hits"]["hits"][0]["id"]


def commits(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "main"))


def path_of(repo: Path, rid: str) -> str:
    """Where the record's file is in the tree of main, as git lists it."""
    names = git(repo, "ls-tree", "-r", "--name-only", "main").splitlines()
    [found] = [name for name in names if name.endswith(f"/{rid}.json")]
    return found


def raw_json(page: Page) -> Locator:
    """The edit page's JSON textarea, in view: the page opens on the form generated from the
    schema, and the raw JSON is one click away (and stays chosen in this tab)."""
    toggle = page.get_by_role("button", name="Raw JSON")
    expect(toggle).to_be_visible()  # record-form.js has run
    if toggle.get_attribute("aria-pressed") != "true":
        toggle.click()
    return page.get_by_label("Record JSON")


def show_raw_json(page: Page) -> Locator:
    """The record page's JSON as stored, unfolded (it is one click below the reading view)."""
    page.locator("details.raw summary").click()
    return page.get_by_label("Record JSON")


def csrf_of(page: Page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value") or ""


def edited(text: str, **changes: Any) -> str:
    """The record JSON ``text`` with top-level keys set, pretty-printed as a person might leave it."""
    return json.dumps({**json.loads(text), **changes}, indent=2, ensure_ascii=False)


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=DOCS_IMG / f"web-{name}.png", full_page=False)


def flash(page: Page) -> LocatorAssertions:
    """Assertions on the message the last action left at the top of the page."""
    return expect(page.locator(".flash"))


# -- reading -------------------------------------------------------------------


def test_list_search_and_pages(page: Page) -> None:
    page.goto("/admin/")
    expect(page.locator("p.summary")).to_have_text("60 records, most recently changed first.")
    seen: set[str] = set()
    for number, rows in ((1, 25), (2, 25), (3, 10)):
        expect(page.locator("nav.pages span")).to_have_text(f"Page {number} of 3")
        expect(page.locator("table.records tbody tr")).to_have_count(rows)
        seen.update(page.locator("table.records tbody td code").all_inner_texts())
        if number < 3:
            page.get_by_role("link", name="Next").click()
    expect(page.get_by_role("link", name="Next")).to_have_count(0)
    assert len(seen) == 60
    page.get_by_role("link", name="Previous").click()
    expect(page.locator("nav.pages span")).to_have_text("Page 2 of 3")
    page.goto("/admin/?page=9")  # past the end (an old link): Previous leads back to the last page
    expect(page.locator("table.records tbody")).to_have_text("No records on page 9: the last page is 3.")
    page.get_by_role("link", name="Previous").click()
    expect(page.locator("nav.pages span")).to_have_text("Page 3 of 3")
    page.goto("/admin/?page=9")  # so does the link in the message
    page.locator("table.records tbody").get_by_role("link", name="3").click()
    expect(page.locator("nav.pages span")).to_have_text("Page 3 of 3")
    page.goto("/admin/?page=abc")  # not a page number: a 400, as in the API
    expect(page.locator("main")).to_contain_text("query parameter 'page' must be an integer, not 'abc'")

    # a field name matches at any depth: title: finds titles[].title
    search = page.get_by_role("searchbox", name="Search records")
    search.fill("title:pollinator")
    search.press("Enter")
    expect(page.locator("p.summary")).to_have_text(
        "1 record matching title:pollinator, most recently changed first."
    )
    expect(page.locator("table.records tbody a")).to_have_text(re.compile("^Pollinator visitation networks"))
    expect(page.locator("nav.pages")).to_have_count(0)
    expect(search).to_have_value("title:pollinator")

    search.fill("title:corpus")
    search.press("Enter")
    expect(page.locator("p.summary")).to_have_text(re.compile(r"^3 records matching title:corpus"))

    search.fill('creators.name:"no such person"')
    search.press("Enter")
    expect(page.locator("table.records tbody")).to_have_text(
        'No records match creators.name:"no such person".'
    )


def test_facets_filter_sort_and_page_jump(page: Page) -> None:
    page.goto("/admin/")
    rows = page.locator("table.records tbody tr")
    expect(rows).to_have_count(25)
    types = page.get_by_role("complementary", name="Facets").get_by_role("region", name="Type")
    software = types.get_by_role("link", name=re.compile(r"^Software\b"))
    expect(software.locator(".count")).to_have_text("5")
    # the bars: as wide as each value's share of the largest count (Dataset, 43)
    widths = types.locator(".bar > span").evaluate_all(
        "spans => spans.map(s => s.getBoundingClientRect().width)"
    )
    assert widths[0] > 0 and abs(widths[1] / widths[0] - 5 / 43) < 0.02, widths
    screenshot(page, "list")

    software.click()
    expect(page.locator("p.summary")).to_have_text(
        '5 records matching type:"Software", most recently changed first.'
    )
    expect(rows).to_have_count(5)
    expect(page.locator("nav.pages")).to_have_count(0)
    expect(page.get_by_role("searchbox", name="Search records")).to_have_value('type:"Software"')
    for row in rows.all():
        expect(row.locator("td").nth(3)).to_have_text("Software")

    # the column headings sort: Year ascending, then descending
    page.get_by_role("link", name="Year", exact=True).click()
    expect(page.locator("p.summary")).to_contain_text("by Year, ascending")
    years = [int(y) for y in rows.locator("td:nth-child(3)").all_inner_texts()]
    assert years == sorted(years) and len(years) == 5
    page.get_by_role("link", name="Year", exact=True).click()
    expect(page.locator("p.summary")).to_contain_text("by Year, descending")
    years = [int(y) for y in rows.locator("td:nth-child(3)").all_inner_texts()]
    assert years == sorted(years, reverse=True)

    # the active value takes the filter off again; the sort stays
    types.get_by_role("link", name=re.compile(r"^Software\b")).click()
    expect(page.locator("p.summary")).to_have_text("60 records, by Year, descending.")
    expect(rows).to_have_count(25)

    # the page jump
    page.get_by_label("Go to page").fill("3")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("nav.pages span")).to_have_text("Page 3 of 3")
    expect(rows).to_have_count(10)
    years = [int(y) for y in rows.locator("td:nth-child(3)").all_inner_texts()]
    assert years == sorted(years, reverse=True)


def test_record_page_is_read_only_when_signed_out(page: Page, server: str, data_repo: Path) -> None:
    rid = record_id(server, "title:hedgehog")
    page.goto("/admin/?q=title:hedgehog")
    page.get_by_role("link", name=re.compile("European hedgehog")).click()
    expect(page).to_have_url(f"{server}/admin/records/{rid}")
    shown = show_raw_json(page).inner_text()
    metadata = api(server, f"/api/records/{rid}")[1]["metadata"]
    # pretty-printed with sorted keys, as stored
    assert shown.strip() == json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False)
    assert git(data_repo, "show", f"main:{path_of(data_repo, rid)}") == shown.strip() + "\n"
    expect(page.locator("dl.facts")).to_contain_text(f"Id{rid}")
    expect(page.locator("dl.facts")).to_contain_text("PID recid")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()

    before = commits(data_repo)
    response = page.goto(f"/admin/records/{rid}/edit")
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_have_text("sign in with the token to change records")
    # a form with a valid CSRF token but no signed-in session is still refused
    page.goto("/admin/login")
    form = {"csrf_token": csrf_of(page), "revision_id": "0"}
    for action in ("delete", "revert", "edit"):
        response = page.request.post(f"/admin/records/{rid}/{action}", form={**form, "target": "0"})
        assert response.status == 403, (action, response.text())
    assert commits(data_repo) == before


def test_sign_in(page: Page) -> None:
    page.goto("/admin/")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Token").fill("not-the-token")
    with page.expect_response(re.compile("/admin/login$")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("That token is not this server's token.")
    expect(page.locator("nav.account")).not_to_contain_text("signed in")
    page.get_by_label("Token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    flash(page).to_have_text("Signed in (write).")
    expect(page.locator("nav.account")).to_contain_text("signed in (write)")
    page.get_by_role("button", name="Sign out").click()
    flash(page).to_have_text("Signed out.")
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()


# -- the scenario of the issue: edit, schema error, fix, history, revert ----------


def test_edit_schema_error_fix_history_and_revert(signed_in: Page, server: str, data_repo: Path) -> None:
    page = signed_in
    rid = record_id(server, "title:pollinator")
    original = api(server, f"/api/records/{rid}")[1]["metadata"]
    assert original["publicationYear"] == "2022"
    before = commits(data_repo)

    page.get_by_role("searchbox").fill("title:pollinator")
    page.get_by_role("searchbox").press("Enter")
    page.get_by_role("link", name=re.compile("^Pollinator visitation")).click()
    screenshot(page, "record")
    page.get_by_role("link", name="Edit").click()
    editor = raw_json(page)
    text = editor.input_value()
    assert json.loads(text) == original

    # two schema errors: both shown, with their JSON pointers; the person's text is kept
    broken = text.replace('"publicationYear": "2022"', '"publicationYear": 2021')
    broken = broken.replace('"version": "1.1"', '"version": 1.2')
    editor.fill(broken)
    page.get_by_label("Commit message").fill("Correct the publication year")
    with page.expect_response(f"{server}/admin/records/{rid}/edit") as answer:
        page.get_by_role("button", name="Save").click()
    assert answer.value.status == 400
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Not saved: 2 problems.")
    expect(alert.locator("li")).to_have_text(
        [re.compile(r"^/publicationYear: 2021 is not of type 'string'"), re.compile(r"^/version: 1.2 is not")]
    )
    expect(alert.locator("li code")).to_have_text(["/publicationYear", "/version"])
    expect(editor).to_have_value(broken)
    expect(page.get_by_label("Commit message")).to_have_value("Correct the publication year")
    assert commits(data_repo) == before
    editor.evaluate("e => e.scrollTop = 0")
    screenshot(page, "edit-error")

    # not JSON at all: refused, text kept
    editor.fill(broken + "}")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Not saved: 1 problem.")
    expect(editor).to_have_value(broken + "}")
    assert commits(data_repo) == before

    # fix and save: revision 1, committed with the message (kept since the first try) and the server's author
    editor.fill(text.replace('"publicationYear": "2022"', '"publicationYear": "2021"'))
    page.get_by_role("button", name="Save").click()
    flash(page).to_have_text("Saved revision 1.")
    expect(page).to_have_url(f"{server}/admin/records/{rid}")
    expect(page.get_by_label("Record JSON")).to_contain_text('"publicationYear": "2021"')
    expect(page.locator("dl.facts")).to_contain_text("Revision1")
    assert commits(data_repo) == before + 1
    assert git(data_repo, "log", "-1", "--format=%an <%ae>%n%s").splitlines() == [
        f"{AUTHOR_NAME} <{AUTHOR_EMAIL}>",
        "Correct the publication year",
    ]
    changed = git(data_repo, "diff-tree", "--no-commit-id", "--name-only", "-r", "main").split()
    assert changed == [path_of(data_repo, rid)]

    # history: both revisions with author, time and message
    page.get_by_role("link", name="History").click()
    rows = page.locator("table.history tbody tr")
    expect(rows).to_have_count(2)
    newest = rows.nth(0)
    expect(newest.locator("td").nth(0)).to_have_text("1")
    expect(newest.locator("td").nth(1)).to_have_text(f"{AUTHOR_NAME} <{AUTHOR_EMAIL}>")
    expect(newest.locator("td").nth(2)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    expect(newest.locator("td.message")).to_have_text("Correct the publication year")
    expect(rows.nth(1).locator("td").nth(0)).to_have_text("0")

    # compare: the selected pair is 0 -> 1 by default
    page.get_by_role("button", name="Compare selected revisions").click()
    expect(page).to_have_url(re.compile(rf"/admin/records/{rid}/diff\?"))
    expect(page.get_by_label("From revision")).to_have_value("0")
    expect(page.get_by_label("to revision")).to_have_value("1")
    diff = page.get_by_label("Differences")
    expect(diff.locator("span.del")).to_have_text(['-  "publicationYear": "2022",'])
    expect(diff.locator("span.add")).to_have_text(['+  "publicationYear": "2021",'])
    expect(diff.locator("span.file")).to_have_text(["--- revision 0", "+++ revision 1"])
    screenshot(page, "diff")

    # revert to revision 0: a new revision 2 holding the old data
    page.get_by_role("link", name="History").click()
    page.get_by_role("button", name="Revert to 0").click()
    flash(page).to_have_text("Reverted to revision 0: that is now revision 2.")
    assert commits(data_repo) == before + 2
    status, body = api(server, f"/api/records/{rid}")
    assert (status, body["revision_id"], body["metadata"]) == (200, 2, original)
    blob = git(data_repo, "show", f"main:{path_of(data_repo, rid)}")
    assert json.loads(blob) == original

    page.get_by_role("link", name="History").click()
    expect(page.locator("table.history tbody tr")).to_have_count(3)
    expect(page.get_by_role("button", name=re.compile("^Revert to"))).to_have_text(
        ["Revert to 1", "Revert to 0"]
    )
    screenshot(page, "history")


# -- deleting, forms and concurrent edits -------------------------------------


def test_delete_and_undelete(signed_in: Page, server: str, data_repo: Path) -> None:
    page = signed_in
    rid = record_id(server, "title:zebrafish")
    original = api(server, f"/api/records/{rid}")[1]["metadata"]
    before = commits(data_repo)
    page.goto(f"/admin/records/{rid}")

    # the browser asks first; saying no deletes nothing
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("button", name="Delete")).to_be_visible()
    assert commits(data_repo) == before

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    flash(page).to_have_text("Deleted (revision 1); undelete brings it back.")
    expect(page.locator("h1 .badge")).to_have_text("deleted")
    expect(page.get_by_label("Record JSON")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    assert commits(data_repo) == before + 1
    status, body = api(server, f"/api/records/{rid}")
    assert (status, body["revision_id"]) == (410, 1)
    assert path_of(data_repo, rid)  # the file stays, as a tombstone
    page.goto(f"/admin/?q=id:{rid}")
    expect(page.locator("table.records tbody tr")).to_have_class("deleted")

    page.goto(f"/admin/records/{rid}")
    page.get_by_role("button", name="Undelete").click()
    flash(page).to_have_text("Undeleted (revision 2).")
    expect(page.locator("h1 .badge")).to_have_count(0)
    assert commits(data_repo) == before + 2
    status, body = api(server, f"/api/records/{rid}")
    assert (status, body["revision_id"], body["metadata"]) == (200, 2, original)


def test_forms_without_the_csrf_token_are_refused(signed_in: Page, server: str, data_repo: Path) -> None:
    page = signed_in
    rid = record_id(server, "title:hedgehog")
    page.goto(f"/admin/records/{rid}/edit")
    data = edited(page.get_by_label("Record JSON").input_value(), version="csrf")
    before = commits(data_repo)
    form = {"data": data, "revision_id": "0"}
    # the session cookie alone (as a cross-site form would send it) is not enough
    for sent in ({}, {"csrf_token": ""}, {"csrf_token": "forged"}):
        for action, fields in (("edit", form), ("delete", {"revision_id": "0"})):
            response = page.request.post(f"/admin/records/{rid}/{action}", form={**fields, **sent})
            assert response.status == 400, (action, sent)
            assert "the form has expired or did not come from this site" in response.text()
    assert commits(data_repo) == before
    assert api(server, f"/api/records/{rid}")[1]["revision_id"] == 0

    # the same request with the page's token goes through: the token was the only thing missing
    response = page.request.post(f"/admin/records/{rid}/edit", form={**form, "csrf_token": csrf_of(page)})
    assert response.ok
    assert commits(data_repo) == before + 1
    assert api(server, f"/api/records/{rid}")[1]["metadata"]["version"] == "csrf"


def test_a_stale_edit_is_refused(browser: Browser, server: str, data_repo: Path) -> None:
    rid = record_id(server, "title:dark-matter")
    people = [new_page(browser, server) for _ in range(2)]
    try:
        (_, alice), (_, bob) = people
        for person in (alice, bob):
            sign_in(person)
            person.goto(f"/admin/records/{rid}/edit")
        before = commits(data_repo)

        alice_text = edited(raw_json(alice).input_value(), version="alice")
        alice.get_by_label("Record JSON").fill(alice_text)
        alice.get_by_role("button", name="Save").click()
        flash(alice).to_have_text("Saved revision 1.")

        editor = raw_json(bob)
        bob_text = edited(editor.input_value(), keywords=["bob"])
        editor.fill(bob_text)
        with bob.expect_response(f"{server}/admin/records/{rid}/edit") as answer:
            bob.get_by_role("button", name="Save").click()
        assert answer.value.status == 412
        expect(bob.get_by_role("alert").locator("li")).to_have_text(
            f"record {rid} is at revision 1, not 0: someone else changed it; reload and try again"
        )
        expect(editor).to_have_value(bob_text)  # Bob's work is still there to copy
        assert commits(data_repo) == before + 1
        assert api(server, f"/api/records/{rid}")[1]["metadata"]["version"] == "alice"

        # reloading shows Alice's change; Bob's change on top of it is revision 2 with both
        bob.goto(f"/admin/records/{rid}/edit")
        editor.fill(edited(editor.input_value(), keywords=["bob"]))
        bob.get_by_role("button", name="Save").click()
        flash(bob).to_have_text("Saved revision 2.")
        metadata = api(server, f"/api/records/{rid}")[1]["metadata"]
        assert (metadata["version"], metadata["keywords"]) == ("alice", ["bob"])
        assert commits(data_repo) == before + 2
    finally:
        for context, _ in people:
            context.close()


def test_a_server_without_token_is_read_only(
    browser: Browser, data_repo: Path, server_env: dict[str, str]
) -> None:
    env = {k: v for k, v in server_env.items() if k != "GITRECORDS_TOKEN"}
    with serve(data_repo, env=env) as base_url:
        context, page = new_page(browser, base_url)
        try:
            page.goto("/admin/")
            expect(page.locator("nav.account")).to_have_text("read-only server")
            expect(page.get_by_role("link", name="Sign in")).to_have_count(0)
            page.locator("table.records tbody a").first.click()
            expect(show_raw_json(page)).to_be_visible()
            expect(page.get_by_role("link", name="Edit")).to_have_count(0)
            expect(page.locator("form[method=post]")).to_have_count(0)
            page.get_by_role("link", name="History").click()
            expect(page.get_by_role("button", name=re.compile("^Revert"))).to_have_count(0)
            page.goto("/admin/login")
            expect(page.locator("main")).to_contain_text("This server is read-only")
            expect(page.get_by_label("Token")).to_have_count(0)
        finally:
            context.close()


def test_create_and_purge_with_the_admin_token(
    browser: Browser, tmp_path: Path, server_env: dict[str, str]
) -> None:
    """A new record, then a hard delete: on a repository of its own, as both change the record count."""
    admin_token = "browser-admin-token"
    env = {**server_env, "GITRECORDS_ADMIN_TOKEN": admin_token}
    repo_path = tmp_path / "admin.git"
    subprocess.run([*GITRECORDS, "init", "--from", str(SAMPLE_REPO), str(repo_path)], env=env, check=True)
    with serve(repo_path, env=env) as base_url:
        context, page = new_page(browser, base_url)
        try:
            template = api(base_url, f"/api/records/{record_id(base_url, 'title:hedgehog')}")[1]["metadata"]
            sign_in(page, TOKEN)
            page.goto("/admin/records/" + record_id(base_url, "title:hedgehog"))
            expect(page.get_by_role("button", name="Purge")).to_have_count(0)  # the write token may not
            page.get_by_role("button", name="Sign out").click()
            sign_in(page, admin_token)
            expect(page.locator("nav.account")).to_contain_text("signed in (admin)")

            # a new record: checked against its schema, then created with a minted recid
            page.get_by_role("link", name="New record").click()
            data = {k: v for k, v in template.items() if k != "control_number"}
            data["titles"] = [{"title": "Hedgehogs of the browser tests"}]
            raw_json(page).fill(json.dumps({**data, "publisher": "nobody"}, indent=2))
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_role("alert").locator("li code")).to_have_text(["/publisher"])
            assert commits(repo_path) == 1
            page.get_by_label("Record JSON").fill(json.dumps(data, indent=2))
            page.get_by_role("button", name="Save").click()
            flash(page).to_have_text(re.compile(r"^Created record [0-9a-f-]{36}\.$"))
            rid = page.locator("dl.facts dd code").first.inner_text()
            expect(page.locator("h1")).to_have_text("Hedgehogs of the browser tests")
            expect(page.locator("dl.facts")).to_contain_text("PID recid61")
            assert commits(repo_path) == 2
            assert api(base_url, "/records/61")[1]["id"] == rid

            # purging needs the id typed in; then the record is gone from every revision
            page.get_by_role("button", name="Purge").click()
            flash(page).to_have_text("Not purged: type the record's id to confirm.")
            page.get_by_label(re.compile("^Purge from every revision")).fill(rid)
            page.get_by_role("button", name="Purge").click()
            flash(page).to_have_text(f"Purged record {rid} from every revision.")
            expect(page.locator("p.summary")).to_have_text(re.compile("^60 records"))
            assert api(base_url, f"/api/records/{rid}")[0] == 404
            assert rid not in git(repo_path, "log", "--all", "--name-only", "--format=")
        finally:
            context.close()
