"""CLI: ``gitrecords search`` and ``list -q/--sort/--limit``, on the sample repository.

The output is parsed (``--json``, ``--nl``, CSV) and compared with ``repo.search()`` and with
the record files as the real git binary shows them.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from helpers import git

from gitrecords import Record, Repository
from gitrecords.cli import _output


def search_json(gr: Any, repo: Repository, *args: str) -> dict[str, Any]:
    result = gr(repo, "search", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def ids(body: dict[str, Any]) -> list[str]:
    return [hit["id"] for hit in body["hits"]]


def test_json_is_the_python_search(gr, sample_repo):
    body = search_json(gr, sample_repo, "title:corpus")
    found = sample_repo.search("title:corpus")
    assert body["total"] == found.total == 3
    assert ids(body) == [str(i) for i in found.ids]
    assert body["facets"] == {}
    for hit in body["hits"]:
        assert set(hit) == {"id", "revision_id", "metadata"}
        assert hit["revision_id"] == 0
        stored = git(sample_repo, "show", f"main:{sample_repo.path_for(hit['id'])}")
        assert hit["metadata"] == json.loads(stored)
        assert "corpus" in hit["metadata"]["titles"][0]["title"].lower()


def test_facets_in_json_and_in_the_table(gr, sample_repo):
    body = search_json(gr, sample_repo, "--facets", "--limit", "1")
    assert body["total"] == 60 and len(body["hits"]) == 1
    expected = sample_repo.search(facets=True).facets
    assert set(body["facets"]) == {"affiliation", "type", "year"}
    for name, counts in expected.items():
        assert body["facets"][name] == [{"value": v, "count": n} for v, n in counts]
    assert body["facets"]["type"][:2] == [
        {"value": "Dataset", "count": 43},
        {"value": "Software", "count": 5},
    ]

    narrowed = search_json(gr, sample_repo, "type:Software", "--facets")
    assert narrowed["total"] == 5
    assert narrowed["facets"]["type"] == [{"value": "Software", "count": 5}]
    assert sum(c["count"] for c in narrowed["facets"]["year"]) == 5

    result = gr(sample_repo, "search", "type:Software", "--facets")
    assert result.exit_code == 0, result.stderr
    rows, _, facets = result.stdout.partition("\n\n")
    assert len(rows.splitlines()) == 5
    assert facets.splitlines()[facets.splitlines().index("type:") + 1] == "  5  Software"
    assert result.stderr == ""


def test_table_nl_and_the_note_about_more_hits(gr, sample_repo):
    result = gr(sample_repo, "search", "--limit", "3")
    assert result.exit_code == 0, result.stderr
    expected = [str(i) for i in sample_repo.latest_ids(limit=3)]  # without a query: newest first
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines] == expected
    record = json.loads(git(sample_repo, "show", f"main:{sample_repo.path_for(expected[0])}"))
    assert lines[0] == f"{expected[0]}    0  {record['titles'][0]['title']}"
    assert (
        result.stderr == "Showed 1-3 of 60 records: --offset 3 shows the next ones, --limit 0 all of them\n"
    )

    nl = gr(sample_repo, "search", "pollinator", "--nl")
    hits = [json.loads(line) for line in nl.stdout.splitlines()]
    assert hits == search_json(gr, sample_repo, "pollinator")["hits"]
    assert len(hits) == 1 and hits[0]["metadata"]["control_number"] == "1"
    assert nl.stderr == ""

    nothing = gr(sample_repo, "search", "creators.name:nobody")
    assert (nothing.exit_code, nothing.stdout, nothing.stderr) == (
        0,
        "",
        "No records match creators.name:nobody\n",
    )


def test_sort_limit_and_offset_page_through_everything(gr, sample_repo):
    everything = search_json(gr, sample_repo, "--sort=-year", "--limit", "0")
    assert everything["total"] == len(everything["hits"]) == 60
    years = [int(hit["metadata"]["publicationYear"]) for hit in everything["hits"]]
    assert years == sorted(years, reverse=True)
    assert ids(everything) == [str(i) for i in sample_repo.search(sort="-year", size=60).ids]
    pages = [
        ids(search_json(gr, sample_repo, "--sort", "-year", "--limit", "25", "--offset", str(start)))
        for start in (0, 25, 50)
    ]
    assert [len(p) for p in pages] == [25, 25, 10]
    assert [i for page in pages for i in page] == ids(everything)
    # a field path sorts too; - for descending
    titles = [
        hit["metadata"]["publisher"]["name"]
        for hit in search_json(gr, sample_repo, "--sort", "publisher.name", "--limit", "0")["hits"]
    ]
    assert titles == sorted(titles)


def test_csv_with_chosen_and_default_fields(gr, sample_repo):
    result = gr(
        sample_repo, "search", "type:Software", "--sort", "title", "--csv",
        "--fields", "id,title,year,creators.name,revision_id",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["id", "title", "year", "creators.name", "revision_id"]
    assert len(rows) == 6
    for row in rows[1:]:
        data = json.loads(git(sample_repo, "show", f"main:{sample_repo.path_for(row[0])}"))
        assert row[1] == "; ".join(t["title"] for t in data["titles"])
        assert row[2] == data["publicationYear"]
        assert row[3] == "; ".join(c["name"] for c in data["creators"])
        assert row[4] == "0"
    assert [row[0] for row in rows[1:]] == [
        str(i) for i in sample_repo.search("type:Software", sort="title").ids
    ]

    default = list(csv.reader(io.StringIO(gr(sample_repo, "search", "pollinator", "--csv").stdout)))
    assert default[0] == ["id", "title", "affiliation", "type", "year"]
    assert default[1][2:] == [
        "Universidad de Granada; Spanish National Research Council; ETH Zürich",  # each value once
        "Dataset",
        "2022",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["(coral"], "Error: query: a '(' without its ')' (at position 1)\n"),
        (["coral)"], "Error: query: a ')' without its '(' (at position 6)\n"),
        (["year:[2020 TO"], "Error: query: a '[' without its ']' or '}' (at position 6)\n"),
        (["climate AND"], "Error: query: AND needs a term after it (at position 12)\n"),
        (["& -"], "Error: query: nothing to search for: no letters or digits (at position 1)\n"),
        (
            ["--", "------------climate"],
            "Error: query: a query nests parentheses and negations at most 8 deep (at position 9)\n",
        ),
        (["--sort", "nope", "coral"], "Error: --sort: cannot sort by 'nope': no record has that field\n"),
        (["--json", "--nl"], "Error: use --json or --nl, not both\n"),
        (["--csv", "--table", "--nl"], "Error: use --nl or --csv or --table, not all\n"),
        (["--fields", "id"], "Error: --fields chooses the columns of --csv and --table: add one of them\n"),
        (
            ["--fields", "id", "--json"],
            "Error: --fields chooses the columns of --csv and --table: add one of them\n",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(gr, sample_repo, args, message):
    result = gr(sample_repo, "search", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)


def test_a_malformed_list_query_exits_2(gr, sample_repo):
    result = gr(sample_repo, "list", "-q", "title:(x")
    assert (result.exit_code, result.stderr) == (2, "Error: query: a term is missing (at position 1)\n")
    result = gr(sample_repo, "list", "--sort", "nope")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: --sort: cannot sort by 'nope': no record has that field\n",
    )


def test_large_and_deep_queries_answer_or_exit_2(gr, sample_repo):
    """A query of 600 PIDs (more than one SQL compound SELECT holds) answers; 1,001 terms and a
    ninth level of parentheses are refused in one line; nesting is linear, not exponential."""
    many = " OR ".join(f"recid:{n}" for n in range(1, 601))
    assert search_json(gr, sample_repo, many, "--limit", "1")["total"] == 60
    assert search_json(gr, sample_repo, " OR ".join(['recid:"12"', "recid:13"]))["total"] == 2

    def nest(depth: int) -> str:
        return "".join(f"(recid:{n} OR " for n in range(1, depth + 1)) + "recid:60" + ")" * depth

    assert search_json(gr, sample_repo, nest(8))["total"] == 9
    for query, text in (
        (" OR ".join(f"recid:{n}" for n in range(1, 1002)), "a query has at most 1000 terms"),
        (nest(9), "a query nests parentheses and negations at most 8 deep"),
    ):
        result = gr(sample_repo, "search", "--", query)
        assert result.exit_code == 2 and text in result.stderr and result.stderr.count("\n") == 1


def test_a_term_with_no_word_is_left_out(gr, sample_repo):
    """``&`` or a lone ``-`` pasted with a title is no term (a search engine's analyser drops it)."""
    plain = search_json(gr, sample_repo, "Swahili English corpus")["total"]
    assert plain == 1
    for query in ("Swahili & English corpus", "Swahili - English corpus", "(Swahili &) -- English corpus"):
        assert search_json(gr, sample_repo, query)["total"] == plain, query


def test_query_text_never_reaches_sql(gr, sample_repo):
    body = search_json(gr, sample_repo, 'title:"x\') OR 1=1 --"')
    assert body == {"total": 0, "hits": [], "facets": {}}


def test_deleted_records_only_when_asked_and_new_writes_are_found(gr, sample_repo):
    [hit] = search_json(gr, sample_repo, "title:hedgehog")["hits"]
    assert gr(sample_repo, "delete", "-i", hit["id"]).exit_code == 0
    assert search_json(gr, sample_repo, "hedgehog")["total"] == 0
    with_deleted = search_json(gr, sample_repo, "--deleted")
    assert with_deleted["total"] == 60
    deleted = [h for h in with_deleted["hits"] if h["id"] == hit["id"]]
    assert deleted == [{"id": hit["id"], "revision_id": 1, "metadata": {}, "is_deleted": True}]
    table = gr(sample_repo, "search", "--with-deleted", f"id:{hit['id']}")
    assert table.stdout == f"{hit['id']}    1  (deleted)\n"

    new_id = gr(sample_repo, "create", input='{"titles": [{"title": "Hedgehogs again"}]}').stdout.strip()
    assert ids(search_json(gr, sample_repo, "hedgehog*")) == [new_id]


def test_list_with_query_sort_and_limit(gr, sample_repo):
    result = gr(sample_repo, "list", "-q", "type:Software", "--sort", "title")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        str(i) for i in sample_repo.search("type:Software", sort="title").ids
    ]
    titles = [line.split("  ", 1)[1] for line in lines]
    assert titles == sorted(titles)
    assert gr(sample_repo, "list", "--query", "type:Software", "--count").stdout == "5\n"
    assert gr(sample_repo, "list", "-q", "year:>=2024", "--count").stdout == "5\n"
    # --count counts what list would list: at most --limit (it printed every match)
    assert gr(sample_repo, "list", "-q", "type:Software", "--limit", "3", "--count").stdout == "3\n"
    assert gr(sample_repo, "list", "-q", "type:Software", "--limit", "30", "--count").stdout == "5\n"
    assert gr(sample_repo, "list", "--limit", "7", "--count").stdout == "7\n"

    rows = json.loads(gr(sample_repo, "list", "--limit", "2", "--json").stdout)
    assert [r["id"] for r in rows] == [str(i) for i in sample_repo.latest_ids(limit=2)]
    assert all(set(r) == {"id", "revision_id", "is_deleted", "summary"} for r in rows)
    nl = gr(sample_repo, "list", "-q", "pollinator", "--nl").stdout.splitlines()
    assert [json.loads(line)["summary"] for line in nl] == [
        "Pollinator visitation networks in Mediterranean scrubland, Sierra Nevada, 2019\u20132021"
    ]


def test_the_newest_change_comes_first_within_one_second(gr, sample_repo):
    """Without a query the order is the commits' order, even for commits made in the same second."""
    [hit] = search_json(gr, sample_repo, "title:hedgehog")["hits"]
    patch = '[{"op": "replace", "path": "/version", "value": "2"}]'
    assert gr(sample_repo, "patch", "-i", hit["id"], input=patch).exit_code == 0
    assert ids(search_json(gr, sample_repo, "--limit", "1")) == [hit["id"]]
    assert gr(sample_repo, "list", "--limit", "1").stdout.split("  ")[0] == hit["id"]


# -- --csv and --table, for search and list ------------------------------------


def test_search_table_has_a_header_a_rule_and_the_fields(gr, sample_repo, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # a pipe: nothing is cut
    result = gr(
        sample_repo, "search", "type:Software", "--sort", "title", "--table", "--fields", "id,year,title"
    )
    assert result.exit_code == 0, result.stderr
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["id", "year", "title"]
    assert rule.split() == ["-" * 36, "----", "-" * max(len(row[44:]) for row in rows)]
    expected = [
        f"{h['id']}  {h['metadata']['publicationYear']}  {h['metadata']['titles'][0]['title']}"
        for h in search_json(gr, sample_repo, "type:Software", "--sort", "title")["hits"]
    ]
    assert rows == expected
    as_csv = gr(
        sample_repo, "search", "type:Software", "--sort", "title", "--csv", "--fields", "id,year,title"
    )
    assert [line.split(",")[0] for line in as_csv.stdout.splitlines()[1:]] == [r.split()[0] for r in rows]


def test_search_table_defaults_to_the_csv_columns_and_prints_facets(gr, sample_repo):
    result = gr(sample_repo, "search", "type:Software", "--table", "--facets", "--limit", "2")
    header = result.stdout.splitlines()[0]
    assert header.split() == ["id", "title", "affiliation", "type", "year"]
    assert "\ntype:\n  5  Software\n" in result.stdout
    assert result.stderr.startswith("Showed 1-2 of 5 records")


def test_list_csv_and_table_default_columns(gr, repo, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    ids = gr(repo, "create", input='[{"title": "a"}, {"title": "b\\nc", "year": 2}]').stdout.split()
    gr(repo, "update", "-i", ids[0], input='{"title": "A, again"}')
    rows = list(csv.DictReader(io.StringIO(gr(repo, "list", "--csv").stdout)))
    assert [list(row) for row in rows] == [["id", "revision_id", "updated", "title"]] * 2
    by_id = {row["id"]: row for row in rows}
    assert by_id[ids[0]]["revision_id"] == "1" and by_id[ids[0]]["title"] == "A, again"
    assert by_id[ids[1]]["title"] == "b\nc"
    record = Record.get_record(ids[0], repo=repo)
    assert by_id[ids[0]]["updated"] == record.updated.isoformat()

    table = gr(repo, "list", "--table").stdout.splitlines()
    assert table[0].split() == ["id", "rev", "updated", "title"]
    when = record.updated.strftime("%Y-%m-%d %H:%M:%SZ")
    assert f"{ids[0]}    1  {when}  A, again" in table
    assert any(line.startswith(ids[1]) and line.endswith("  b c") for line in table)  # one line per row

    gr(repo, "delete", "-i", ids[1])
    deleted = list(csv.DictReader(io.StringIO(gr(repo, "list", "--csv", "--with-deleted").stdout)))
    assert {row["id"]: row["is_deleted"] for row in deleted} == {ids[0]: "false", ids[1]: "true"}
    fields = gr(repo, "list", "-q", "title:again", "--csv", "--fields", "title,revision_id")
    assert fields.stdout == 'title,revision_id\n"A, again",1\n'


def test_list_table_fits_the_terminal(gr, repo, monkeypatch):
    long = "A very long title " * 10
    record_id = gr(repo, "create", input=json.dumps({"title": long, "note": "x" * 50})).stdout.strip()
    monkeypatch.setenv("COLUMNS", "80")
    lines = gr(repo, "list", "--table", "--fields", "id,revision_id,title,note").stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    row = lines[2]
    assert row.startswith(f"{record_id}    0  A very long")  # ids and revisions are never cut
    assert row.split("  ")[-1].endswith("\u2026")
    assert "\u2026" in row.split("  ")[-2]
    monkeypatch.setenv("COLUMNS", "300")
    wide = gr(repo, "list", "--table", "--fields", "id,title").stdout.splitlines()
    assert wide[2] == f"{record_id}  {long.strip()}"


def test_table_cells_and_widths():
    assert _output.cut("abcdef", 4) == "abc\u2026"
    assert _output.cut("abcd", 4) == "abcd"
    assert _output.text_width("東京") == 4 and _output.cut("東京大学", 5) == "東京\u2026"
    assert _output.text_width("e\u0301") == 1
    # the widest flexible columns give up room first, never below MIN_CELL; fixed ones keep theirs
    assert _output.column_widths([36, 50, 10], 80, fixed={0}) == [36, 30, 10]
    assert _output.column_widths([36, 50, 40], 80, fixed={0}) == [36, 20, 20]
    assert _output.column_widths([36, 50, 40], 40, fixed={0}) == [36, 8, 8]
    assert _output.column_widths([36, 50], None, fixed={0}) == [36, 50]
