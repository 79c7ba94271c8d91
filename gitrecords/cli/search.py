"""``gitrecords search``: records found through the derived search index.

The same engine, query language and sorts as ``repo.search()``, ``GET
/api/records?q=`` and the administration pages; ``list -q`` uses it too
(see :func:`find`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import click

from .. import query
from ..errors import InvalidRecordError, NoResultFound, QueryError
from ..record import Record
from ..repository import Repository
from ..search import facets_of
from ..search import search as index_search
from ..search_index import leaves
from ._common import DataError, UsageFailure, one_line, pass_repo
from ._output import echo_csv, echo_json, echo_nl, echo_table, note, printable, stdout_is_tty

#: ids asked of the index at a time when a command lists more than one page
CHUNK = 1000

#: the default number of hits ``search`` prints
DEFAULT_LIMIT = 25

#: facet values printed per facet in the table output (--json prints all the index returns)
FACET_LINES = 10

#: the order of a list without a query
NEWEST_FIRST = "-updated"

#: the largest --offset (SQLite's integers are 64-bit)
MAX_OFFSET = 2**62


@dataclass
class Found:
    """What a search found: ``total`` matches, the ``ids`` asked for (read from the index a chunk
    at a time) and the ``facets`` (name -> (value, count), most frequent first)."""

    total: int
    ids: Iterator[uuid.UUID]
    facets: dict[str, list[tuple[str, int]]]


def query_failure(err: QueryError, what: str) -> UsageFailure:
    """Exit 2 with one line: ``query: a '(' without its ')' (at position 7)``."""
    text = str(err)
    if what != "query":  # a sort field is wrong as a whole: its position says nothing
        text = text.removesuffix(f" (at position {err.position + 1})")
    return UsageFailure(f"{what}: {text}")


def find(
    repo: Repository,
    q: str,
    *,
    sort: str | None = None,
    offset: int = 0,
    limit: int | None = None,
    facets: bool = False,
    with_deleted: bool = False,
) -> Found:
    """The records matching ``q`` from ``offset`` on, ``limit`` of them (None: all).

    A malformed query or sort is a usage error (exit 2) naming the position. Without a query,
    most recently changed first (the search index orders records as the revision index does).
    """
    try:
        query.parse(q)
    except QueryError as err:
        raise query_failure(err, "query") from None
    first = min(limit, CHUNK) if limit is not None else CHUNK

    def page(start: int, size: int, with_facets: bool = False) -> Any:
        try:
            return index_search(
                repo, q, sort=sort, offset=start, size=size, facets=with_facets, with_deleted=with_deleted
            )
        except QueryError as err:
            raise query_failure(err, "--sort") from None

    result = page(offset, first, facets)
    ids = _chunks(lambda start, size: page(start, size).ids, result.ids, offset, limit, result.total)
    return Found(result.total, ids, result.facets)


def _chunks(
    fetch: Any, first: list[uuid.UUID], offset: int, limit: int | None, total: int
) -> Iterator[uuid.UUID]:
    done = 0
    chunk = first
    while chunk:
        yield from chunk
        done += len(chunk)
        if (limit is not None and done >= limit) or offset + done >= total:
            return
        chunk = fetch(offset + done, CHUNK if limit is None else min(CHUNK, limit - done))


# -- what a hit shows ----------------------------------------------------------


def field_values(data: Any, name: str, aliases: dict[str, str] | None = None) -> list[Any]:
    """The scalar values of field ``name`` in ``data``, in document order: a dotted path or the end
    of one, as queries read field names (``title`` is ``titles.title`` too), or a facet's name."""
    wanted = (aliases or {}).get(name, name).split(".")
    return [value for path, value in leaves(data) if path.split(".")[-len(wanted) :] == wanted]


def title_of(data: Any) -> str:
    """The first title (``title``, or DataCite's ``titles[0].title``), else the ``name``, else ''."""
    for name in ("title", "name"):
        values = [v for v in field_values(data, name) if isinstance(v, str)]
        if values:
            return printable(" ".join(values[0].split()))
    return ""


def load(repo: Repository, record_id: uuid.UUID) -> Record | str | None:
    """The record, or the reason its file cannot be read, or None if it is gone (a write since)."""
    try:
        return Record.get_record(record_id, with_deleted=True, repo=repo)
    except InvalidRecordError as err:
        return str(err)
    except NoResultFound:
        return None


def hit_json(record_id: uuid.UUID, record: Record | str, with_deleted: bool) -> dict[str, Any]:
    """``{"id", "revision_id", "metadata"}`` (and ``is_deleted`` with --deleted); a file that
    cannot be read: ``{"id", "revision_id": null, "metadata": null, "error"}``."""
    if isinstance(record, str):
        return {"id": str(record_id), "revision_id": None, "metadata": None, "error": record}
    hit: dict[str, Any] = {"id": str(record_id), "revision_id": record.revision_id, "metadata": dict(record)}
    if with_deleted:
        hit["is_deleted"] = record.is_deleted
    return hit


def csv_cell(values: list[Any]) -> str:
    """The values of a field in one cell: each once, in order, joined with "; "."""
    texts = ("true" if v is True else "false" if v is False else str(v) for v in values)
    return "; ".join(dict.fromkeys(texts))


def facets_json(facets: dict[str, list[tuple[str, int]]]) -> dict[str, list[dict[str, Any]]]:
    return {name: [{"value": v, "count": n} for v, n in counts] for name, counts in facets.items()}


# -- the command ---------------------------------------------------------------


def _fields(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("name at least one field, e.g. id,title,publicationYear")
    return names


def fields_option(default: str) -> Any:
    """``--fields A,B,C``: the columns of --csv and --table (``default`` says which they are by
    default)."""
    return click.option(
        "--fields",
        metavar="A,B,C",
        callback=_fields,
        help="The columns of --csv and --table: id, revision_id, created, updated, is_deleted, or "
        f"fields (dotted paths, facet names). {default}",
    )


def output_format(as_json: bool, nl: bool, as_csv: bool, as_table: bool, fields: list[str] | None) -> str:
    """Which of --json, --nl, --csv and --table was asked for ('' for none); refuses two, and
    --fields without --csv or --table."""
    chosen = [
        name for name, on in (("json", as_json), ("nl", nl), ("csv", as_csv), ("table", as_table)) if on
    ]
    if len(chosen) > 1:
        raise UsageFailure(
            f"use {' or '.join('--' + name for name in chosen)}, not {'both' if len(chosen) == 2 else 'all'}"
        )
    if fields is not None and chosen not in (["csv"], ["table"]):
        raise UsageFailure("--fields chooses the columns of --csv and --table: add one of them")
    return chosen[0] if chosen else ""


SORT_HELP = (
    "Relevance (the default when the query has words), updated (oldest first; -updated, "
    "newest first, is the default otherwise), created, or a field; '-' first for descending "
    "(--sort=-year)."
)


@click.command()
@click.argument("words", nargs=-1, metavar="[QUERY]")
@click.option("--sort", metavar="FIELD", help=SORT_HELP)
@click.option(
    "--limit",
    metavar="N",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Print at most N hits; 0 prints them all.",
)
@click.option("--offset", metavar="N", type=click.IntRange(min=0), default=0, help="Skip the first N hits.")
@click.option("--facets", is_flag=True, help="Count the values of the facets declared in gitrecords.json.")
@click.option("--json", "as_json", is_flag=True, help='Print one JSON object: {"total", "hits", "facets"}.')
@click.option("--nl", is_flag=True, help="Print one hit per line (JSON Lines).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: a header, then one row per hit.")
@click.option(
    "--table", "as_table", is_flag=True, help="Print a table of the --fields, cut to fit the terminal."
)
@fields_option("Default: id, title and the facets.")
@click.option("--deleted", "--with-deleted", "with_deleted", is_flag=True, help="Find deleted records too.")
@pass_repo
def search(
    repo: Repository,
    words: tuple[str, ...],
    sort: str | None,
    limit: int,
    offset: int,
    facets: bool,
    as_json: bool,
    nl: bool,
    as_csv: bool,
    as_table: bool,
    fields: list[str] | None,
    with_deleted: bool,
) -> None:
    """Find records with a QUERY; print the hits, best matches first.

    The query language (docs/search.md): words, "phrases", prefixes (cor*),
    field:value (title:coral is titles.title too; facet names work as
    fields), ranges (publicationYear:[2019 TO 2021], year:>=2020), OR, NOT
    or -term, parentheses, _exists_:field, recid:12. Without a QUERY every
    record matches. Quote the query for the shell; a query that starts with
    '-' goes after the options and '--' (search --nl -- -draft). A
    malformed query is one line naming the position (exit 2).

    By default a table of id, revision and title, then, with --facets, the
    counts of each facet's values; a note on stderr says when there are
    more hits than shown. --json prints {"total", "hits": [{"id",
    "revision_id", "metadata"}], "facets"}; --nl one hit per line; --csv
    the --fields of each hit (lists joined with "; "); --table the same
    --fields as a table, long cells cut to fit the terminal.

    \b
    Examples:
      gitrecords search 'title:coral publicationYear:>=2020'
      gitrecords search '"sea ice" OR glacier*' --sort=-year --limit 5
      gitrecords search type:Software --facets --json
      gitrecords search 'creators.name:"Smith, J"' --nl | jq -r .id
      gitrecords search --limit 0 --csv --fields id,title,year,creators.name > records.csv
      gitrecords search type:Dataset --table --fields id,year,title
    """
    q = " ".join(words)
    fmt = output_format(as_json, nl, as_csv, as_table, fields)
    if offset > MAX_OFFSET:
        raise UsageFailure(f"--offset must be at most {MAX_OFFSET}")
    found = find(
        repo,
        q,
        sort=sort,
        offset=offset,
        limit=limit or None,
        facets=facets,
        with_deleted=with_deleted,
    )
    shown = 0
    unreadable = Unreadable()

    def loaded(record_id: uuid.UUID) -> Record | str | None:
        """A hit's record; one whose file cannot be read is shown as such, and reported on
        stderr as ``list`` reports it."""
        record = load(repo, record_id)
        if isinstance(record, str):
            unreadable.report(record)
        return record

    if as_json:
        hits = []
        for record_id in found.ids:
            record = loaded(record_id)
            if record is not None:
                hits.append(hit_json(record_id, record, with_deleted))
        shown = len(hits)
        echo_json({"total": found.total, "hits": hits, "facets": facets_json(found.facets)})
    elif nl:
        for record_id in found.ids:
            record = loaded(record_id)
            if record is not None:
                echo_nl(hit_json(record_id, record, with_deleted))
                shown += 1
    elif fmt in ("csv", "table"):
        columns = fields or ["id", "title", *facets_of(repo)]
        shown = print_rows(repo, _loaded(repo, found.ids, loaded), columns, fmt)
        if fmt == "table" and facets:
            print_facets(found.facets)
    else:
        shown = print_table(repo, found.ids, loaded)
        if facets:
            print_facets(found.facets)
    if found.total == 0 and not as_json:
        note(f"No records match {q}" if q.strip() else "No records")
    elif found.total > offset + shown and not as_json:
        first = offset + 1 if shown else offset
        note(
            f"Showed {first}-{offset + shown} of {found.total} records: "
            f"--offset {offset + shown} shows the next ones, --limit 0 all of them"
        )
    unreadable.check(shown)  # a hit whose file cannot be read was shown as such; exit 1, as list does


def csv_row_value(
    record_id: uuid.UUID, record: Record | str, name: str, declared: dict[str, str], human: bool = False
) -> str:
    """The cell of column ``name`` (see --fields) for one record, or for a file that cannot be read
    (``record`` is then the reason: only ``id`` and ``error`` have a value). ``human``: times as
    ``2023-11-14 22:13:20Z``, for tables."""
    if name == "id":
        return str(record_id)
    if isinstance(record, str):
        return record if name == "error" else ""
    if name == "revision_id":
        return str(record.revision_id)
    if name == "is_deleted":
        return csv_cell([record.is_deleted])
    if name in ("created", "updated"):
        moment = getattr(record, name)
        if moment is None:
            return ""
        return moment.strftime("%Y-%m-%d %H:%M:%SZ") if human else moment.isoformat()
    return csv_cell(field_values(record, name, declared))


#: columns that are never cut to fit a table: their values are short and whole
WHOLE_COLUMNS = ("id", "revision_id", "is_deleted", "created", "updated")

#: shorter headings in a table, for narrow columns
TABLE_HEADINGS = {"revision_id": "rev", "is_deleted": "deleted"}


def print_rows(
    repo: Repository, hits: Iterable[tuple[uuid.UUID, Record | str]], columns: list[str], fmt: str
) -> int:
    """The ``columns`` of each hit as ``csv`` or as a ``table``; returns the rows printed."""
    declared = facets_of(repo)
    human = fmt == "table"
    rows = ([csv_row_value(i, r, name, declared, human) for name in columns] for i, r in hits)
    if fmt == "csv":
        return echo_csv(columns, rows)
    headings = [TABLE_HEADINGS.get(name, name) for name in columns]
    return echo_table(headings, rows, fixed={i for i, name in enumerate(columns) if name in WHOLE_COLUMNS})


class Unreadable:
    """Record files that cannot be read, met while going through many records (a file committed
    with plain git that is not valid JSON): each is one line on stderr as it is met, the command
    goes on with the other records, and :meth:`check` exits 1 at the end."""

    def __init__(self) -> None:
        self.count = 0

    def report(self, message: str) -> None:
        note(one_line(message))
        self.count += 1

    def check(self, total: int) -> None:
        if self.count:
            files = "file" if total == 1 else "files"
            raise DataError(f"{self.count} of {total} record {files} could not be read")


#: reads a hit's record (see :func:`load`)
Loader = Callable[[uuid.UUID], "Record | str | None"]


def _loaded(
    repo: Repository,
    ids: Iterable[uuid.UUID],
    loader: Loader | None = None,
) -> Iterator[tuple[uuid.UUID, Record | str]]:
    for record_id in ids:
        record = loader(record_id) if loader is not None else load(repo, record_id)
        if record is not None:
            yield record_id, record


def print_table(
    repo: Repository,
    ids: Iterable[uuid.UUID],
    loader: Loader | None = None,
) -> int:
    """``<id>  <revision>  <title>`` per hit (a header on a terminal); returns the rows printed."""
    shown = 0
    if stdout_is_tty():
        click.echo(f"{'id':36}  {'rev':>3}  title")
    for record_id in ids:
        record = loader(record_id) if loader is not None else load(repo, record_id)
        if record is None:
            continue
        if isinstance(record, str):
            click.echo(f"{record_id}  {'-':>3}  (unreadable: {record})")
        elif record.is_deleted:
            click.echo(f"{record_id}  {record.revision_id:>3}  (deleted)")
        else:
            click.echo(f"{record_id}  {record.revision_id:>3}  {title_of(record)}".rstrip())
        shown += 1
    return shown


def print_facets(facets: dict[str, list[tuple[str, int]]]) -> None:
    """Each facet's values with their counts, most frequent first, after a blank line."""
    for name, counts in facets.items():
        click.echo(f"\n{name}:")
        if not counts:
            click.echo("  (no values)")
        width = max((len(str(n)) for _, n in counts[:FACET_LINES]), default=1)
        for value, count in counts[:FACET_LINES]:
            click.echo(f"  {count:>{width}}  {printable(str(value))}")
        if len(counts) > FACET_LINES:
            click.echo(f"  ({len(counts) - FACET_LINES} more values: --json lists them)")


COMMANDS = [search]
