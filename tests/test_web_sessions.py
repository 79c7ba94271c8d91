"""Signing out and changing the token end a pages session, even for a captured cookie and a fixed
SECRET_KEY (issue 16): a real HTTP server on a real port, cookies replayed by hand."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from webserver import gunicorn, isolated_env, threaded

from gitrecords import Record, Repository
from gitrecords.web import create_app

SECRET_KEY = "a fixed key, as docs/web.md suggests for restarts"
TOKEN = "the-first-write-token"
NEW_TOKEN = "the-second-write-token"


@contextmanager
def running(repo: Repository, token: str, secret_key: str | None = SECRET_KEY) -> Iterator[str]:
    """A server on a free port; ``secret_key=None``: the one of the environment, else random."""
    config = {} if secret_key is None else {"SECRET_KEY": secret_key}
    with threaded(create_app(repo.path, GITRECORDS_TOKEN=token, **config)) as base:
        yield base


class Browser:
    """A cookie jar and no redirects followed, so each answer's status is seen."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def call(self, url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(url, data=data, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def csrf(self, url: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.call(url)[1])
        assert found is not None
        return found[1]

    def sign_in(self, base: str, token: str) -> None:
        status, _ = self.call(
            f"{base}/admin/login", {"token": token, "csrf_token": self.csrf(f"{base}/admin/login")}
        )
        assert status == 302

    def cookies(self) -> list[http.cookiejar.Cookie]:
        return list(self.jar)


def delete_form(browser: Browser, base: str, record: Record) -> tuple[int, str]:
    csrf = browser.csrf(f"{base}/admin/login")  # the session's form token (every page shows it)
    return browser.call(
        f"{base}/admin/records/{record.id}/delete",
        {"csrf_token": csrf, "revision_id": str(record.revision_id)},
    )


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository.init(tmp_path / "data.git")


def test_a_captured_cookie_stops_working_when_its_owner_signs_out(repo: Repository) -> None:
    record = Record.create({"title": "keep me"}, repo=repo)
    with running(repo, TOKEN) as base:
        owner = Browser()
        owner.sign_in(base, TOKEN)
        thief = Browser()
        for cookie in owner.cookies():  # the cookie is copied while it works
            thief.jar.set_cookie(cookie)
        csrf = thief.csrf(f"{base}/admin/records/{record.id}")
        status, _ = owner.call(f"{base}/admin/logout", {"csrf_token": owner.csrf(f"{base}/admin/")})
        assert status == 302
        status, body = thief.call(
            f"{base}/admin/records/{record.id}/delete", {"csrf_token": csrf, "revision_id": "0"}
        )
        assert status == 403 and "sign in" in body
    assert not Record.get_record(record.id, repo=repo).is_deleted


def test_changing_the_token_ends_sessions_opened_with_the_old_one(repo: Repository) -> None:
    record = Record.create({"title": "keep me"}, repo=repo)
    browser = Browser()
    with running(repo, TOKEN) as base:
        browser.sign_in(base, TOKEN)
    with running(repo, NEW_TOKEN) as base:  # the same SECRET_KEY: the cookie still verifies
        status, body = delete_form(browser, base, record)
        assert status == 403 and "sign in" in body
        browser.sign_in(base, NEW_TOKEN)  # signing in with the new token works
        status, _ = delete_form(browser, base, Record.get_record(record.id, repo=repo))
        assert status == 302
    assert Record.get_record(record.id, with_deleted=True, repo=repo).is_deleted


def test_processes_share_sign_ins_through_GITRECORDS_SECRET_KEY(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes serving one repository (gunicorn -w 2) sign cookies with the key from the
    environment: a sign-in and a form from one are good on the other. Each used to pick its own
    random key, so a form shown by one worker was refused by the next (docs/web.md)."""
    monkeypatch.setenv("GITRECORDS_SECRET_KEY", "one key for every worker process")
    records = [Record.create({"title": f"record {n}"}, repo=repo) for n in range(2)]
    browser = Browser()
    with running(repo, TOKEN, secret_key=None) as first, running(repo, TOKEN, secret_key=None) as second:
        browser.sign_in(first, TOKEN)
        assert delete_form(browser, second, records[0])[0] == 302
        csrf = browser.csrf(f"{second}/admin/")
        status, _ = browser.call(
            f"{first}/admin/records/{records[1].id}/delete", {"csrf_token": csrf, "revision_id": "0"}
        )
        assert status == 302
    assert all(Record.get_record(r.id, with_deleted=True, repo=repo).is_deleted for r in records)


def test_signed_in_across_gunicorn_workers(tmp_path: Path) -> None:
    """docs/web.md's gunicorn deployment: four workers, the tokens and the key from the
    environment; every request comes on a new connection, to any worker."""
    pytest.importorskip("gunicorn")
    repo = Repository.init(tmp_path / "data.git")
    records = [Record.create({"title": f"record {n}"}, repo=repo) for n in range(6)]
    env = isolated_env(tmp_path / "home", GITRECORDS_TOKEN=TOKEN, GITRECORDS_SECRET_KEY="a key for all four")
    browser = Browser()
    with gunicorn(repo.path, workers=4, env=env) as base:
        browser.sign_in(base, TOKEN)
        assert [delete_form(browser, base, record)[0] for record in records] == [302] * 6
    assert all(Record.get_record(r.id, with_deleted=True, repo=repo).is_deleted for r in records)
