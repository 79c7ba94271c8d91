"""Search over HTTP: ``GET /api/records?q=&sort=&page=&size=&facets=1`` and the admin list page.

Through Flask's test client on the sample repository, and once against a real
``gitrecords serve`` that a plain ``git push`` changes while it runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from helpers import SAMPLE_REPO, git
from webserver import GITRECORDS, isolated_env, serve, urlopen

from gitrecords import Record, Repository, layout
from gitrecords.web import create_app

SOFTWARE = 5  # sample-repo records of type Software


@pytest.fixture
def client(sample_repo: Repository) -> FlaskClient:
    return create_app(sample_repo.path, TESTING=True).test_client()


def get(client: FlaskClient, **params: Any) -> Any:
    response = client.get("/api/records", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def hit_ids(body: dict[str, Any]) -> list[str]:
    return [hit["id"] for hit in body["hits"]["hits"]]


# -- REST --------------------------------------------------------------------------


def test_query_sort_and_pages_are_the_python_search(client: FlaskClient, sample_repo: Repository) -> None:
    seen: list[str] = []
    url: str | None = "/api/records?q=type:Dataset&sort=-year&size=20"
    while url:
        body = client.get(url).get_json()
        assert body["hits"]["total"] == 43 and body["size"] == 20
        assert "aggregations" not in body
        seen += hit_ids(body)
        url = body["links"].get("next")
        if url:
            assert "sort=-year" in url and "q=type:Dataset" in url
    assert seen == [str(i) for i in sample_repo.search("type:Dataset", sort="-year", size=43).ids]
    years = [Record.get_record(i, repo=sample_repo)["publicationYear"] for i in seen]
    assert years == sorted(years, reverse=True)
    last = get(client, q="type:Dataset", sort="-year", size=20, page=3)
    assert len(last["hits"]["hits"]) == 3 and "next" not in last["links"]
    assert last["links"]["prev"] == "/api/records?q=type:Dataset&sort=-year&page=2&size=20"
    # the query language: ranges, OR, NOT, phrases, _exists_, PIDs
    for q, total in [
        ("publicationYear:[2020 TO 2021]", 21),
        ("year:>=2023", 22),
        ("type:Software OR type:Model", 8),
        ("type:Software -year:2023", 2),
        ('"parallel corpus"', 1),
        ("_exists_:fundingReferences", sample_repo.search("_exists_:fundingReferences").total),
        ("recid:1", 1),
    ]:
        assert get(client, q=q)["hits"]["total"] == total, q


def test_aggregations_in_invenio_shape(client: FlaskClient, sample_repo: Repository) -> None:
    body = get(client, q="type:Software", facets=1, size=1)
    assert body["hits"]["total"] == SOFTWARE
    expected = sample_repo.search("type:Software", facets=True).facets
    assert body["aggregations"] == {
        name: {"buckets": [{"key": value, "doc_count": count} for value, count in counts]}
        for name, counts in expected.items()
    }
    assert body["aggregations"]["type"] == {"buckets": [{"key": "Software", "doc_count": SOFTWARE}]}
    assert sum(b["doc_count"] for b in body["aggregations"]["year"]["buckets"]) == SOFTWARE
    assert body["links"]["next"] == "/api/records?q=type:Software&page=2&size=1&facets=1"
    everything = get(client, facets="true")["aggregations"]["type"]["buckets"]
    assert everything[:2] == [{"key": "Dataset", "doc_count": 43}, {"key": "Software", "doc_count": SOFTWARE}]
    assert "aggregations" not in get(client, facets="0")


@pytest.mark.parametrize(
    ("params", "message", "parameter", "position"),
    [
        ({"q": "(coral"}, "query parameter 'q': a '(' without its ')' (at position 1)", "q", 0),
        ({"q": "coral)"}, "query parameter 'q': a ')' without its '(' (at position 6)", "q", 5),
        (
            {"q": "year:[2020 TO"},
            "query parameter 'q': a '[' without its ']' or '}' (at position 6)",
            "q",
            5,
        ),
        (
            {"sort": "nope"},
            "query parameter 'sort': cannot sort by 'nope': no record has that field",
            "sort",
            0,
        ),
    ],
)
def test_a_bad_query_or_sort_is_a_400_problem(
    client: FlaskClient, params: dict[str, str], message: str, parameter: str, position: int
) -> None:
    response = client.get("/api/records", query_string=params)
    assert response.status_code == 400
    assert response.get_json() == {
        "status": 400,
        "message": message,
        "parameter": parameter,
        "position": position,
    }


def test_bad_facets_flag_and_sql_looking_text(client: FlaskClient) -> None:
    response = client.get("/api/records?facets=maybe")
    assert response.status_code == 400
    assert response.get_json()["message"] == "query parameter 'facets' must be true or false, not 'maybe'"
    body = get(client, q='title:"x\') OR 1=1 --"')
    assert body["hits"] == {"total": 0, "hits": []}
    # a page far past the end is a 404 naming the last page, one past what SQLite can count a 400
    response = client.get("/api/records", query_string={"q": "coral", "page": 10**9})
    assert response.status_code == 404
    assert response.get_json()["message"].startswith("page 1000000000 is past the last page (")
    response = client.get("/api/records?page=100000000000000000000")
    assert response.status_code == 400
    assert response.get_json()["message"].startswith(
        "query parameter 'page' must be between 1 and 1000000000"
    )
    assert client.get("/admin/?q=coral&page=100000000000000000000").status_code == 400


# -- the admin list page ---------------------------------------------------------------


def page_text(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status
    return response.get_data(as_text=True)


def test_admin_list_facets_filter_and_sort(client: FlaskClient, sample_repo: Repository) -> None:
    html = page_text(client, "/admin/")
    assert '<p class="summary">60 records, most recently changed first.</p>' in html
    # the facet sidebar: the facets with fewer values first, counts, bars as wide as the share
    facets = re.findall(r'<section class="facet" aria-label="(\w+)">', html)
    assert facets == ["Year", "Type", "Affiliation"]
    software = re.search(
        r'<a href="([^"]+)">\s*<span class="value" title="Software">Software</span>\s*'
        r'<span class="count">5</span>\s*'
        r'<span class="bar" aria-hidden="true"><span style="width: (\d+)%"></span>',
        html,
    )
    assert software is not None
    assert software[2] == str(round(100 * 5 / 43))
    href = software[1].replace("&amp;", "&")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(href).query) == {"q": ['type:"Software"']}

    # filtering: 5 rows, the value marked active, its link takes the filter off again
    filtered = page_text(client, href)
    assert '<p class="summary">5 records matching <code>type:&#34;Software&#34;</code>' in filtered
    assert filtered.count('<tr class="">') == SOFTWARE
    active = re.search(r'<li class="bucket active">\s*<a href="([^"]+)" aria-current="true"', filtered)
    assert active is not None and active[1] == "/admin/"

    # columns from the facet paths, and their headings sort
    headings = re.findall(r'<a class="sort" href="([^"]+)">(\w+)</a>', filtered)
    assert [label for _, label in headings] == ["Title", "Creators", "Year", "Type", "Updated"]
    year_link = dict((label, link) for link, label in headings)["Year"].replace("&amp;", "&")
    by_year = page_text(client, year_link)
    assert "by Year, ascending" in by_year
    expected = sample_repo.search('type:"Software"', sort="publicationYear").ids
    assert re.findall(r'<code class="id">([0-9a-f-]{36})</code>', by_year) == [str(i) for i in expected]
    assert 'aria-sort="ascending"' in by_year
    down = page_text(client, "/admin/?q=type:Software&sort=-year")  # the facet's name sorts too
    assert "by Year, descending" in down and 'aria-sort="descending"' in down

    # a page jump form keeps the query and the sort
    jump = page_text(client, "/admin/?sort=title&page=2")
    assert '<input type="hidden" name="sort" value="title">' in jump
    assert 'name="page" min="1" max="3" value="2"' in jump


def test_admin_list_sorts_by_the_value_it_shows_and_keeps_facet_values_whole(tmp_path: Path) -> None:
    """The sorted column shows first the value a record is sorted by (the smallest of its titles,
    the largest when descending); a facet value with two spaces in a row is marked active and
    taken off again (the query's quoted text was squeezed); a page past the last says so."""
    repo = Repository.init(tmp_path / "titles.git", config={"facets": {"org": "org"}})
    Record.create({"titles": [{"title": "Banana"}, {"title": "Apple"}], "org": "Two  Spaces Org"}, repo=repo)
    Record.create({"titles": [{"title": "Cherry"}], "org": "Plain"}, repo=repo)
    client = create_app(repo.path, TESTING=True).test_client()

    def first_column(html: str) -> list[str]:
        return re.findall(r'<td class="main"><a href="[^"]+">([^<]+)</a>', html)

    assert first_column(page_text(client, "/admin/?sort=title"))[:2] == ["Apple", "Cherry"]
    assert first_column(page_text(client, "/admin/?sort=-title"))[:2] == ["Cherry", "Banana"]
    # text that reads as a number sorts as one, in the index and in the cell
    from gitrecords.web.admin import _in_sort_order

    assert _in_sort_order(["10", "9", "b", 9.5, "a"], False) == ["9", 9.5, "10", "a", "b"]
    assert _in_sort_order(["10", "9", "b", 9.5, "a"], True) == ["10", 9.5, "9", "b", "a"]

    spaced = 'org:"Two  Spaces Org"'
    html = page_text(client, "/admin/?" + urllib.parse.urlencode({"q": f"{spaced} title:banana"}))
    active = re.search(r'<li class="bucket active">\s*<a href="([^"]+)" aria-current="true"', html)
    assert active is not None
    off = urllib.parse.parse_qs(urllib.parse.urlsplit(active[1].replace("&amp;", "&")).query)
    assert off == {"q": ["title:banana"]}

    one_a_page = create_app(repo.path, TESTING=True, GITRECORDS_PAGE_SIZE=1).test_client()
    past = page_text(one_a_page, "/admin/?page=99", status=404)
    assert "Page 99 of" not in past and "the last page is" in past and "2 pages" in past


def test_admin_list_shows_a_bad_query_on_the_page(client: FlaskClient) -> None:
    html = page_text(client, "/admin/?q=%28coral", status=400)
    assert '<p class="error" role="alert">query parameter &#39;q&#39;: a &#39;(&#39; without' in html
    assert 'value="(coral"' in html  # the search box keeps the text to fix


def test_admin_list_columns_from_the_configuration(tmp_path: Path) -> None:
    config = {
        "facets": {"kind": "kind"},
        "list_columns": [
            {"name": "Name", "path": "name"},
            {"name": "Kind", "path": "kind"},
            {"name": "Size", "path": "size.bytes"},
        ],
    }
    repo = Repository.init(tmp_path / "things.git", config=config)
    for n, kind in enumerate(["tool", "tool", "part"]):
        Record.create({"name": f"thing {n}", "kind": kind, "tags": ["a", "b"]}, repo=repo)
    client = create_app(repo.path, TESTING=True).test_client()
    html = page_text(client, "/admin/")
    headings = re.findall(r'<a class="sort" href="[^"]+">(\w+)</a>', html)
    assert headings == ["Name", "Kind", "Size", "Updated"]  # configured columns show even when empty
    buckets = r'<span class="value" title="\w+">(\w+)</span>\s*<span class="count">(\d)</span>'
    assert re.findall(buckets, html) == [("tool", "2"), ("part", "1")]
    # without list_columns: the default columns that the records have (title only, here)
    plain = Repository.init(tmp_path / "plain.git")
    Record.create({"title": "Only a title"}, repo=plain)
    html = page_text(create_app(plain.path, TESTING=True).test_client(), "/admin/")
    assert re.findall(r'<a class="sort" href="[^"]+">(\w+)</a>', html) == ["Title", "Updated"]
    assert '<aside class="facets"' not in html


# -- a real server -----------------------------------------------------------------------


def fetch(url: str) -> tuple[int, Any]:
    try:
        with urlopen(url, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_a_real_server_searches_and_sees_a_push(tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    data = tmp_path / "data.git"
    subprocess.run([*GITRECORDS, "init", "--from", str(SAMPLE_REPO), str(data)], env=env, check=True)
    with serve(data, env=env) as base:
        status, body = fetch(f"{base}/api/records?q=type:Software&sort=title&facets=1")
        assert status == 200 and body["hits"]["total"] == SOFTWARE
        titles = [hit["metadata"]["titles"][0]["title"] for hit in body["hits"]["hits"]]
        assert titles == sorted(titles)
        assert body["aggregations"]["type"] == {"buckets": [{"key": "Software", "doc_count": SOFTWARE}]}

        status, body = fetch(f"{base}/api/records?q=" + urllib.parse.quote("title:(x"))
        assert status == 400 and body["parameter"] == "q" and body["position"] == 0

        # a curator pushes a new Software record with plain git: the next search finds it
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(data), str(clone)], env=env, check=True)
        [one] = list(SAMPLE_REPO.glob("records/*/*/fd297857-b8c4-43ae-930c-8e23a81b527b.json"))
        record = json.loads(one.read_text())
        record.update(control_number="61", titles=[{"title": "Pushed software"}])
        record["types"]["resourceTypeGeneral"] = "Software"
        new_id = "0a0a0a0a-1111-4222-8333-444444444444"
        target = clone / layout.path_for(new_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        who = ["-c", "user.name=Curator", "-c", "user.email=curator@example.org"]
        subprocess.run(["git", "-C", str(clone), "add", "-A"], env=env, check=True)
        subprocess.run(["git", "-C", str(clone), *who, "commit", "-qm", "Pushed"], env=env, check=True)
        subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", "main"], env=env, check=True)
        assert git(data, "log", "-1", "--format=%s", "main").strip() == "Pushed"

        status, body = fetch(f"{base}/api/records?q=type:Software&facets=1")
        assert status == 200 and body["hits"]["total"] == SOFTWARE + 1
        assert new_id in [hit["id"] for hit in body["hits"]["hits"]]
        assert body["aggregations"]["type"] == {"buckets": [{"key": "Software", "doc_count": SOFTWARE + 1}]}


@pytest.mark.parametrize(
    ("page", "status", "message"),
    [
        ("abc", 400, "query parameter &#39;page&#39; must be an integer, not &#39;abc&#39;"),
        ("\uff12", 400, "query parameter &#39;page&#39; must be an integer, not &#39;\uff12&#39;"),
        ("2_0", 400, "must be an integer, not &#39;2_0&#39;"),
        (" 2", 400, "must be an integer, not &#39; 2&#39;"),
        ("0", 400, "query parameter &#39;page&#39; must be between 1 and 1000000000, not 0"),
        ("-2", 400, "must be between 1 and 1000000000, not -2"),
        ("100000000000000000000", 400, "must be between 1 and 1000000000, not 100000000000000000000"),
        ("", 200, "60 records"),
        ("3", 200, "60 records"),
        ("4", 404, 'No records on page 4: the last page is <a href="/admin/?page=3">3</a>.'),
    ],
)
def test_admin_list_pages_answer_as_the_api(
    client: FlaskClient, page: str, status: int, message: str
) -> None:
    """``page`` that is not a page number is a 400, as in the API (it was read as page 1); a page
    past the last is a 404, as in the API, and links to the last (issue 18, 18)."""
    api = client.get("/api/records", query_string={"page": page})
    assert api.status_code == status
    html = page_text(client, f"/admin/?page={urllib.parse.quote(page)}", status=status)
    assert message in html
    if page == "4":
        assert api.get_json() == {
            "status": 404,
            "message": "page 4 is past the last page (3)",
            "links": {"last": "/api/records?page=3&size=25"},
        }
