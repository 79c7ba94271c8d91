"""A team in a real browser (issue 19): named people of a users file edit through the form, and
the history, the blame and git name each of them; a reader can change nothing; an admin changes
records in bulk.

As tests/test_web_browser.py (whose fixtures and helpers these are): Debian's chromium driven by
Playwright against one real ``gitrecords serve``, here with ``--users-file``, on a repository made
from sample-repo/. The users file is made with the real ``gitrecords users add``, whose stdout is
each person's token. What the pages wrote is checked with the real git binary and through the REST
API; axe-core checks the bulk change page (tests/test_web_browser_form.py checks the others).

``GITRECORDS_SCREENSHOTS=1`` also rewrites docs/img/web-history-people.png, web-blame.png and
web-bulk-preview.png.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_web_browser as base
from helpers import SAMPLE_REPO, git
from test_web_browser import api, commits, csrf_of, flash, new_page, record_id, screenshot, sign_in, sign_out
from test_web_browser_form import WATCH_CSP, axe_violations, csp_violations, field, form_ready
from webserver import GITRECORDS, isolated_env, serve

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - test_web_browser's browser fixture skips or fails
    pass

# the browser of tests/test_web_browser.py, one for this module
browser = base.browser

SERVER = "Curation server <curation@example.org>"
#: the people of the users file: (name, email, role)
PEOPLE = {
    "ada": ("Ada Lovelace", "ada@example.org", "write"),
    "grace": ("Grace Hopper", "grace@example.org", "write"),
    "rita": ("Rita Reader", "rita@example.org", "read"),
    "alan": ("Alan Admin", "alan@example.org", "admin"),
}
TITLE = "Reference genome of the European hedgehog"


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An empty home, and no shared token: everyone signs in as a person of the users file."""
    return isolated_env(tmp_path_factory.mktemp("people-home"))


@pytest.fixture(scope="module")
def data_repo(tmp_path_factory: pytest.TempPathFactory, server_env: dict[str, str]) -> Path:
    path = tmp_path_factory.mktemp("people") / "sample.git"
    subprocess.run([*GITRECORDS, "init", "--from", str(SAMPLE_REPO), str(path)], env=server_env, check=True)
    return path


@pytest.fixture(scope="module")
def tokens(data_repo: Path, server_env: dict[str, str]) -> dict[str, str]:
    """``gitrecords users add`` for each person; their tokens (its stdout) by first name."""
    users = data_repo.with_name("users.json")
    found = {}
    for who, (name, email, role) in PEOPLE.items():
        add = ["users", "add", "--users-file", str(users), "--name", name, "--email", email, "--role", role]
        added = subprocess.run(
            [*GITRECORDS, *add],
            env=server_env,
            capture_output=True,
            text=True,
            check=True,
        )
        found[who] = added.stdout.strip()
        assert added.stdout == found[who] + "\n" and found[who] not in users.read_text()
    return found


@pytest.fixture(scope="module")
def server(data_repo: Path, server_env: dict[str, str], tokens: dict[str, str]) -> Iterator[str]:
    users = data_repo.with_name("users.json")
    with serve(data_repo, "--users-file", str(users), "--author", SERVER, env=server_env) as base_url:
        yield base_url


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """One tab, watched for Content-Security-Policy violations: people sign in and out of it in turn."""
    context, opened = new_page(browser, server)
    context.add_init_script(WATCH_CSP)
    yield opened
    context.close()


def person(who: str) -> str:
    """How the pages name someone signed in: "Ada Lovelace (write)"."""
    name, _, role = PEOPLE[who]
    return f"{name} ({role})"


def author(who: str) -> str:
    name, email, _ = PEOPLE[who]
    return f"{name} <{email}>"


def forged_post(page: Page, url: str, form: dict[str, str]) -> tuple[int, str]:
    """POST ``form`` to ``url`` with fetch from the page: with its cookies, as the page's script could."""
    return page.evaluate(
        """async ([url, form]) => {
          const response = await fetch(url, {method: "POST", body: new URLSearchParams(form)});
          return [response.status, await response.text()];
        }""",
        [url, form],
    )


# -- two people edit one record through the form, one after the other --------------------


def test_two_people_edit_a_record_and_history_blame_and_git_name_each(
    page: Page, server: str, data_repo: Path, tokens: dict[str, str]
) -> None:
    rid = record_id(server, "title:hedgehog")
    original = api(server, f"/api/records/{rid}")[1]["metadata"]
    before = commits(data_repo)

    # Ada changes the version in the form
    sign_in(page, tokens["ada"], person("ada"))
    expect(page.locator("nav.account")).to_contain_text(f"signed in as {person('ada')}")
    page.goto(f"/admin/records/{rid}")
    page.get_by_role("link", name="Edit").click()
    form_ready(page)
    field(page, "root.version").get_by_label("Version").fill("2.0")
    page.get_by_label("Commit message").fill("New version")
    page.get_by_role("button", name="Save").click()
    flash(page).to_have_text("Saved revision 1.")
    sign_out(page)
    page.goto(f"/admin/records/{rid}")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()

    # then Grace, in the same tab, shortens the title in the form
    sign_in(page, tokens["grace"], person("grace"))
    page.goto(f"/admin/records/{rid}")
    page.get_by_role("link", name="Edit").click()
    form_ready(page)
    expect(field(page, "root.version").get_by_label("Version")).to_have_value("2.0")  # Ada's
    field(page, "root.titles.0.title").get_by_role("textbox").fill(TITLE)
    page.get_by_label("Commit message").fill("Shorter title")
    page.get_by_role("button", name="Save").click()
    flash(page).to_have_text("Saved revision 2.")

    # each change is its own commit, by its person; the server commits both
    assert commits(data_repo) == before + 2
    assert git(data_repo, "log", "-2", "--format=%an|%cn", "main").splitlines() == [
        "Grace Hopper|Curation server",
        "Ada Lovelace|Curation server",
    ]
    assert git(data_repo, "log", "-2", "--format=%ae|%ce|%s", "main").splitlines() == [
        "grace@example.org|curation@example.org|Shorter title",
        "ada@example.org|curation@example.org|New version",
    ]
    metadata = api(server, f"/api/records/{rid}")[1]["metadata"]
    assert metadata == {**original, "version": "2.0", "titles": [{"title": TITLE}]}

    # the history page names both
    page.get_by_role("link", name="History").click()
    rows = page.locator("table.history tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("td:nth-child(2)")).to_have_text(
        [author("grace"), author("ada"), re.compile(".")]  # revision 0: whoever ran gitrecords init
    )
    expect(rows.locator("td.message")).to_have_text(["Shorter title", "New version", re.compile(".")])
    screenshot(page, "history-people")

    # the blame page: each field by the person who set it, the others by revision 0
    page.goto(f"/admin/records/{rid}")
    page.get_by_role("link", name="Blame").click()
    expect(page).to_have_url(f"{server}/admin/records/{rid}/blame")

    def blamed(pointer: str) -> list[str]:
        """(value, revision, author) of the field at ``pointer``."""
        return page.locator(f'table.blame tr[data-pointer="{pointer}"] td').all_inner_texts()[:3]

    assert blamed("/version") == ['"2.0"', "1", author("ada")]
    assert blamed("/titles/0/title") == [f'"{TITLE}"', "2", author("grace")]
    assert blamed("/publicationYear")[1] == "0"
    authors = set(page.locator("table.blame tbody tr td:nth-child(4)").all_inner_texts())
    assert len(authors) == 3 and {author("ada"), author("grace")} < authors
    # her field, then the type's, then Ada's, in the middle of the page
    page.locator('table.blame tr[data-pointer="/types/resourceType"]').evaluate(
        "row => row.scrollIntoView({block: 'center'})"
    )
    screenshot(page, "blame")
    assert csp_violations(page) == []


# -- a reader -----------------------------------------------------------------------------


def test_a_reader_sees_no_write_buttons_and_a_forged_post_is_refused(
    page: Page, server: str, data_repo: Path, tokens: dict[str, str]
) -> None:
    rid = record_id(server, "title:zebrafish")
    before = commits(data_repo)
    sign_in(page, tokens["rita"], person("rita"))
    expect(page.locator("nav.account")).to_contain_text(f"signed in as {person('rita')}")
    expect(page.locator("nav.account").get_by_role("button", name="Sign out")).to_be_visible()

    # the list: no new record, no bulk change
    page.goto("/admin/?q=title:zebrafish")
    expect(page.locator("table.records tbody tr")).to_have_count(1)
    expect(page.get_by_role("link", name="New record")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile(r"^Change (these|all)"))).to_have_count(0)

    # the record and its history: to read, with no button that writes
    page.locator("table.records tbody a").first.click()
    expect(page).to_have_url(f"{server}/admin/records/{rid}")
    expect(page.get_by_role("link", name="Blame")).to_be_visible()
    for name in ("Edit", "New record"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    for name in ("Delete", "Undelete", "Purge"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.locator("main form[method=post]")).to_have_count(0)
    page.get_by_role("link", name="History").click()
    expect(page.locator("table.history tbody tr")).to_have_count(1)
    expect(page.get_by_role("button", name=re.compile("^Revert"))).to_have_count(0)
    response = page.goto(f"/admin/records/{rid}/edit")
    assert response is not None and response.status == 403

    # the edit a writer's page would send, forged from this page with the session's form token
    page.goto(f"/admin/records/{rid}")
    data = dict(api(server, f"/api/records/{rid}")[1]["metadata"], version="forged")
    form = {"csrf_token": csrf_of(page), "revision_id": "0", "data": json.dumps(data)}
    assert form["csrf_token"]
    status, text = forged_post(page, f"/admin/records/{rid}/edit", form)
    assert status == 403 and "needs the write role" in text, (status, text)
    status, text = forged_post(page, f"/admin/records/{rid}/delete", form)
    assert status == 403
    assert commits(data_repo) == before
    assert api(server, f"/api/records/{rid}")[1]["revision_id"] == 0
    assert csp_violations(page) == []


# -- an admin changes records in bulk ---------------------------------------------------


def test_an_admin_previews_and_applies_a_bulk_change(
    page: Page, server: str, data_repo: Path, tokens: dict[str, str]
) -> None:
    query = 'type:"Software"'
    status, found = api(server, "/api/records?size=100&q=" + re.sub(" ", "+", query))
    software = {hit["id"] for hit in found["hits"]["hits"]}
    assert status == 200 and len(software) == found["hits"]["total"] == 5
    before = commits(data_repo)

    sign_in(page, tokens["alan"], person("alan"))
    search = page.get_by_role("searchbox", name="Search records")
    search.fill(query)
    search.press("Enter")
    page.get_by_role("link", name="Change these 5 records").click()
    expect(page).to_have_url(re.compile(r"/admin/bulk\?q="))
    expect(page.get_by_label("Query")).to_have_value(query)
    patch = [{"op": "add", "path": "/version", "value": "2.0-bulk"}]
    page.get_by_label("JSON Patch").fill(json.dumps(patch, indent=2))
    page.get_by_role("button", name="Preview").click()

    counts = page.get_by_role("table", name="What the change would do")
    expect(counts.locator("td")).to_have_text(["5", "5", "0", "0"])
    expect(page.locator("section pre")).to_have_count(5)  # a diff for each
    expect(page.locator("section pre").first).to_contain_text('"path": "/version"')
    assert commits(data_repo) == before  # a preview writes nothing
    assert axe_violations(page) == []
    page.get_by_label("Commit message").fill("Version 2.0 of the software")
    page.evaluate("document.activeElement.blur()")
    # the query and the patch, what they would do, the button, and the first diff
    page.locator("label[for=q]").evaluate("label => label.scrollIntoView({block: 'start'})")
    screenshot(page, "bulk-preview")

    page.get_by_role("button", name="Change 5 records").click()
    flash(page).to_have_text(re.compile(r"^Changed 5 records in commit [0-9a-f]{7}\.$"))
    expect(search).to_have_value(query)  # back to the search it started from
    assert commits(data_repo) == before + 1
    assert git(data_repo, "log", "-1", "--format=%an|%cn", "main").strip() == "Alan Admin|Curation server"
    message = git(data_repo, "log", "-1", "--format=%B", "main")
    assert message.startswith("Version 2.0 of the software\n")
    assert f"Gitrecords-Query: {query}" in message
    changed = git(data_repo, "show", "--name-only", "--format=", "main").split()
    assert sorted(Path(name).stem for name in changed) == sorted(software)
    for rid in software:
        assert api(server, f"/api/records/{rid}")[1]["metadata"]["version"] == "2.0-bulk"
    assert csp_violations(page) == []
