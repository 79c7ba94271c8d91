"""Property tests of the search index (issue 17, "Proof").

1. :func:`test_index_answers_as_a_scan`: on random records (nested objects and lists; strings
   with accents, mixed case and punctuation; numbers; ISO dates; booleans; nulls; some soft-deleted)
   and random queries of the language (words, prefixes, phrases, field terms on full and suffix
   paths, ranges and comparisons on numbers, dates and strings, ``_exists_``, ``OR``, ``NOT`` and
   ``-term``, parentheses), ``repo.search`` answers exactly what a brute-force scan of the records
   answers: the same ids, and the same order for field sorts. The scan (:func:`matches`) is written
   from the language's definition, not from the index's code:

   * text is normalized (NFKD, combining marks dropped, casefolded) and its words are ``\\w+``;
     a number's text is its JSON, a boolean's is ``true``/``false``;
   * a field names every leaf path (lists are transparent) that ends with its segments;
   * a word, phrase or prefix term matches a value whose words hold the term's words as one
     contiguous run (a prefix: the last word is a prefix); a bare term looks in every value;
   * a range is numeric when its bounds are numbers, and then compares values that are numbers or
     numeric strings; otherwise it compares the values' text, and an inclusive upper bound also
     takes values that start with it (``2020-12-31`` includes ``2020-12-31T10:00``);
   * ``_exists_:f`` matches a record with a non-null scalar on a path that passes through ``f``;
   * ``NOT`` is the complement among the records searched (live ones, or all with ``with_deleted``).

   Each example is a new repository and two commits made with pygit2 (records replaced by
   others): the index answers after it followed a commit it did not see, incrementally, and it
   knows field paths that no record has any more. The first bugs found are explicit examples.

2. :class:`SearchIndexMachine`: random sequences of create, update, patch, delete, undelete, revert,
   hard delete, bulk import, pull (from a clone that made commits, fast-forward or merge) and plain
   git commits; after every step the repository's search index holds exactly what an index built
   from scratch holds.

Environment: ``GITRECORDS_SEARCH_EXAMPLES`` (default 250) and ``GITRECORDS_SEARCH_STATEFUL_EXAMPLES`` /
``GITRECORDS_SEARCH_STATEFUL_STEPS`` (default 20 x 25) run longer.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pygit2
from helpers import assert_revision_index_equals_rebuild
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from pygit2.enums import ConfigLevel

from gitrecords import (
    GitRecordsError,
    NoResultFound,
    Record,
    Repository,
    ValidationError,
    _git,
    _ranker,
    layout,
    replication,
    search_index,
)
from gitrecords.query import parse
from gitrecords.search_index import SearchIndex

EXAMPLES = int(os.environ.get("GITRECORDS_SEARCH_EXAMPLES", "250"))
STATEFUL_EXAMPLES = int(os.environ.get("GITRECORDS_SEARCH_STATEFUL_EXAMPLES", "20"))
STATEFUL_STEPS = int(os.environ.get("GITRECORDS_SEARCH_STATEFUL_STEPS", "25"))
#: where the state machine's repositories go: memory when possible (teardown on a slow disk is slow)
TMP_ROOT = os.environ.get("GITRECORDS_SEARCH_TMPDIR") or (
    "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
)
ID_NAMESPACE = uuid.UUID("0b8a3f64-8f0e-4c55-9d1c-5a4f4b7e2c11")
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
MAX_VALUE_CHARS = 200  # what the index keeps of a value for sorting


# -- the reference: the language's definition, by brute force -------------------------------------


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    return re.findall(r"\w+", normalize(text))


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def number_of(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and len(value) < 40 and NUMBER.fullmatch(value):
        number = float(value)
    else:
        return None
    return number if math.isfinite(number) else None


def leaves(data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path segments, value) of every non-null scalar; lists are transparent."""
    if isinstance(data, dict):
        return [leaf for key, value in data.items() for leaf in leaves(value, (*path, key))]
    if isinstance(data, list):
        return [leaf for item in data for leaf in leaves(item, path)]
    return [] if data is None or not path else [(path, data)]


def ends_with(path: tuple[str, ...], field: str) -> bool:
    wanted = tuple(field.split("."))
    return path[-len(wanted) :] == wanted


def passes_through(path: tuple[str, ...], field: str) -> bool:
    wanted = tuple(field.split("."))
    return any(path[i : i + len(wanted)] == wanted for i in range(len(path)))


def has_run(found: list[str], wanted: list[str], prefix: bool) -> bool:
    """``wanted`` is a contiguous run of ``found`` (with ``prefix``, its last word a prefix)."""
    n = len(wanted)
    for i in range(len(found) - n + 1):
        window = found[i : i + n]
        if window[:-1] == wanted[:-1] and (
            window[-1].startswith(wanted[-1]) if prefix else window[-1] == wanted[-1]
        ):
            return True
    return False


@dataclass(frozen=True)
class Q:
    """A query as the test builds it (and renders it, :func:`render`)."""

    kind: str  # word prefix phrase range exists and or not
    field: str | None = None
    text: str = ""
    low: str | None = None
    high: str | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    style: str = ""  # range: "[]" or a comparison operator; not: "NOT" or "-"; and: "()" (parenthesized)
    items: tuple[Q, ...] = ()


def matches(q: Q, data: Any) -> bool:
    """Does the record ``data`` (None: soft-deleted, it has no values) match ``q``?"""
    if q.kind == "and":
        return all(matches(item, data) for item in q.items)
    if q.kind == "or":
        return any(matches(item, data) for item in q.items)
    if q.kind == "not":
        return not matches(q.items[0], data)
    values = leaves(data) if data is not None else []
    if q.kind == "exists":
        return any(passes_through(path, q.field or "") for path, _ in values)
    if q.field is not None:
        values = [(path, value) for path, value in values if ends_with(path, q.field)]
    if q.kind == "range":
        return any(in_range(q, value) for _, value in values)
    wanted = words(q.text)
    if not wanted:
        return False
    return any(has_run(words(text_of(value)), wanted, q.kind == "prefix") for _, value in values)


def in_range(q: Q, value: Any) -> bool:
    bounds = [b for b in (q.low, q.high) if b is not None]
    if not bounds:  # [* TO *]: any value
        return True
    if all(NUMBER.fullmatch(b) for b in bounds):
        number = number_of(value)
        if number is None:
            return False
        if q.low is not None and not (number >= float(q.low) if q.low_inclusive else number > float(q.low)):
            return False
        if q.high is not None and not (
            number <= float(q.high) if q.high_inclusive else number < float(q.high)
        ):
            return False
        return True
    text = text_of(value)
    if q.low is not None and not (text >= q.low if q.low_inclusive else text > q.low):
        return False
    if q.high is not None:
        if q.high_inclusive:
            return text <= q.high or text.startswith(q.high)
        return text < q.high
    return True


def sort_order(records: dict[uuid.UUID, Any], ids: set[uuid.UUID], field: str, descending: bool) -> list:
    """``ids`` sorted by ``field`` as the index promises: by the smallest (descending: largest)
    number among the field's values; records without a number after, by their smallest (largest)
    text; records with neither last; ties by record id, ascending."""

    def keys(record_id: uuid.UUID) -> tuple[float | None, str | None]:
        data = records[record_id]
        values = [v for path, v in (leaves(data) if data is not None else []) if ends_with(path, field)]
        numbers = [n for n in map(number_of, values) if n is not None]
        texts = [text_of(v)[:MAX_VALUE_CHARS] for v in values]
        pick = max if descending else min
        if numbers:
            return (pick(numbers), None)
        return (None, pick(texts) if texts else None)

    def compare(a: uuid.UUID, b: uuid.UUID) -> int:
        for x, y in zip(keys(a), keys(b), strict=True):
            if (x is None) != (y is None):
                return 1 if x is None else -1
            if x is not None and x != y:
                order = -1 if x < y else 1  # type: ignore[operator]
                return -order if descending else order
        return -1 if str(a) < str(b) else (1 if str(a) > str(b) else 0)

    return sorted(ids, key=functools.cmp_to_key(compare))


# -- rendering a query in the language --------------------------------------------------------------


def render(q: Q) -> str:
    if q.kind == "and":
        return " ".join(render_inside(item, "and") for item in q.items)
    if q.kind == "or":
        return " OR ".join(render_inside(item, "or") for item in q.items)
    if q.kind == "not":
        inner = render_inside(q.items[0], "not")
        return f"NOT {inner}" if q.style == "NOT" else f"-{inner}"
    field = f"{q.field}:" if q.field is not None else ""
    if q.kind == "exists":
        return f"_exists_:{q.field}"
    if q.kind == "word":
        return field + q.text
    if q.kind == "prefix":
        return f"{field}{q.text}*"
    if q.kind == "phrase":
        return f'{field}"{q.text}"'
    if q.style == "[]":
        low = "*" if q.low is None else q.low
        high = "*" if q.high is None else q.high
        return f"{field}{'[' if q.low_inclusive else '{'}{low} TO {high}{']' if q.high_inclusive else '}'}"
    return f"{field}{q.style}{q.low if q.low is not None else q.high}"


def render_inside(q: Q, parent: str) -> str:
    text = render(q)
    compound = q.kind in ("and", "or") and len(q.items) > 1
    # AND binds tighter than OR: an AND inside an OR needs no parentheses (style "()" adds them)
    if compound and not (parent == "or" and q.kind == "and" and q.style != "()"):
        return f"({text})"
    if parent == "not" and q.kind == "not":
        return f"({text})"
    return text


# -- random records ---------------------------------------------------------------------------------

#: keys, including two pairs that differ only in case or punctuation ("title"/"Title", "a_b"/"a-b")
KEYS = ["title", "Title", "name", "n", "date", "tags", "a", "b", "a_b", "a-b", "flag"]
PIECES = [
    "Sámi",
    "sami",
    "SAMI",
    "coral",
    "Coral",
    "reefs",
    "REEF",
    "naïve",
    "Naive",
    "straße",
    "STRASSE",
    "ﬁsh",  # the fi ligature: NFKD makes it "fi"
    "fish",
    "Ødegård",
    "odegard",
    "café",
    "l'été",
    "x_y",
    "2020",
    "12",
    "3.5",
]
DATES = ["2019-12-31", "2020-01-01", "2020-06-15", "2020-12-31", "2020-12-31T10:00:00Z", "2021-03", "2021"]

phrases_text = st.builds(
    lambda parts, sep: sep.join(parts),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=3),
    st.sampled_from([" ", "-", ", ", "/"]),
)
strings = (
    phrases_text
    | st.sampled_from(DATES)
    | st.just("")
    | st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), max_size=6)
)
numbers = st.integers(min_value=-5, max_value=2025) | st.sampled_from([0.5, 2.25, -1.5, 2020.0, 1e3])
scalars = strings | numbers | st.booleans() | st.none()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=8,
)
record_data = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)
#: a record, or None for a soft-deleted one
stored = st.one_of(record_data, record_data, record_data, record_data, st.none())

# -- random queries ---------------------------------------------------------------------------------

FIELDS = [*KEYS, "tags.title", "a.n", "b.date", "a.b.title", "a.tags", "missing", "x.title"]
QUERY_WORDS = [
    *PIECES,
    "sámi",
    "CORAL",
    "Straße",
    "cafe",
    "ete",
    "Sami-coral",
    "coral,reefs",
    "2020-06",
    "true",
    "false",
    "1000",
    "5",
    "nothing",
]
PREFIXES = ["cor", "Cor", "sa", "SÁ", "ree", "na", "20", "2020-1", "1", "fi", "ﬁ", "é", "x_", "str", "caf"]
BOUNDS = [
    "-1",
    "0",
    "0.5",
    "5",
    "12",
    "2020",
    "2025",
    "1e3",
    "2020-01-01",
    "2020-06",
    "2020-12-31",
    "2021",
    "c",
    "m",
    "S",
    "Z",
]

KEYWORDS = {"OR", "AND", "NOT"}


def syntax_safe(word: str) -> bool:
    """A word the language reads as one plain word, in any place a term may stand."""
    return (
        bool(word)
        and word not in KEYWORDS
        and not re.search(r'[\s()"*:\[\]{}<>=]', word)
        and not word.startswith("-")
    )


def query_strategy(records: list[Any]) -> st.SearchStrategy[Q]:
    """Queries in the language, biased to the words, values and field paths of ``records``."""
    found = [leaf for data in records if data is not None for leaf in leaves(data)]
    pool = sorted({w for _, v in found for w in re.findall(r"\w+", text_of(v)) if syntax_safe(w)})
    # runs of words as they follow each other in a record, across values too: a phrase must not
    # match words that only stand side by side because two values do
    runs = set()
    for data in records:
        if data is None:
            continue
        sequence = [w for _, v in leaves(data) for w in re.findall(r"\w+", text_of(v))]
        runs.update(" ".join(sequence[i : i + n]) for n in (2, 3) for i in range(len(sequence) - n + 1))
    run_list = st.sampled_from(sorted(runs)) if runs else st.nothing()
    word_list = st.sampled_from(sorted({*QUERY_WORDS, *pool}))
    value_bounds = {text_of(v) for _, v in found if len(text_of(v)) < 20 and syntax_safe(text_of(v))}
    bounds = st.sampled_from(sorted({*BOUNDS, *value_bounds}))
    suffixes = {".".join(path[-k:]) for path, _ in found for k in range(1, len(path) + 1)}
    fields = st.sampled_from(sorted({*FIELDS, *suffixes}))
    maybe_field = st.none() | fields
    terms = st.one_of(
        st.builds(Q, kind=st.just("word"), field=maybe_field, text=word_list),
        st.builds(Q, kind=st.just("prefix"), field=maybe_field, text=st.sampled_from(PREFIXES) | word_list),
        st.builds(
            Q,
            kind=st.just("phrase"),
            field=maybe_field,
            text=st.builds(" ".join, st.lists(word_list, min_size=1, max_size=3)) | run_list,
        ),
        st.builds(
            Q,
            kind=st.just("range"),
            field=fields,
            low=st.none() | bounds,
            high=st.none() | bounds,
            low_inclusive=st.booleans(),
            high_inclusive=st.booleans(),
            style=st.just("[]"),
        ),
        st.builds(
            lambda field, op, bound: Q(
                "range",
                field,
                low=bound if op.startswith(">") else None,
                high=None if op.startswith(">") else bound,
                low_inclusive=op == ">=",
                high_inclusive=op == "<=",
                style=op,
            ),
            fields,
            st.sampled_from([">=", ">", "<=", "<"]),
            bounds,
        ),
        st.builds(Q, kind=st.just("exists"), field=fields),
    )
    return st.recursive(
        terms,
        lambda inner: st.one_of(
            st.builds(
                lambda items, style: Q("and", items=tuple(items), style=style),
                st.lists(inner, min_size=2, max_size=3),
                st.sampled_from(["", "()"]),
            ),
            st.builds(lambda items: Q("or", items=tuple(items)), st.lists(inner, min_size=2, max_size=3)),
            st.builds(
                lambda item, style: Q("not", items=(item,), style=style), inner, st.sampled_from(["NOT", "-"])
            ),
        ),
        max_leaves=5,
    )


# -- the property -----------------------------------------------------------------------------------


def slot_id(number: int) -> uuid.UUID:
    return uuid.uuid5(ID_NAMESPACE, f"slot-{number}")


MAX_SLOTS = 8
SIGNATURE = pygit2.Signature("Property", "property@example.org", 1_700_000_000, 0)


class World:
    """A repository whose records an example replaces, one commit at a time."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="gitrecords-search-", dir=TMP_ROOT)
        self.repo = Repository.init(
            Path(self.tmp) / "data.git", durable=False, config={"facets": STATE_FACETS}
        )
        self.repo.search("")  # the index exists from now on and follows every commit

    def close(self) -> None:
        self.repo.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, records: list[Any]) -> dict[uuid.UUID, Any]:
        """Commit ``records`` (None: a tombstone) as slots 0..n-1; returns id -> data as stored."""
        git, repo = self.repo.git, self.repo
        changes: dict[str, Any] = {}
        stored: dict[uuid.UUID, Any] = {}
        for number in range(MAX_SLOTS):
            record_id = slot_id(number)
            path = repo.path_for(record_id)
            if number >= len(records):
                changes[path] = None
                continue
            data = records[number]
            content = layout.dumps(layout.tombstone(datetime.now(UTC)) if data is None else data)
            changes[path] = git.create_blob(content)
            stored[record_id] = None if data is None else layout.loads(content)
        tip = _git.tip(git, repo.ref)
        tree = _git.build_tree(git, _git.tree_of(git, tip), changes)
        git.create_commit(repo.ref, SIGNATURE, SIGNATURE, "example", tree, [tip] if tip else [])
        return stored


@dataclass(frozen=True)
class Case:
    """One example: ``before`` is committed and indexed first (so that the index answers after an
    incremental update, and knows field paths no record has any more), then ``records``; then
    each query of ``asked`` (with ``with_deleted``) is sorted by default and by ``sort_field``."""

    records: list[Any]
    asked: list[tuple[Q, bool]]
    before: list[Any] = ()  # type: ignore[assignment]
    sort_field: str = "n"


@st.composite
def cases(draw: Any) -> Case:
    before = draw(st.lists(stored, max_size=MAX_SLOTS))
    records = draw(st.lists(stored, max_size=MAX_SLOTS))
    sort_field = draw(st.sampled_from(["n", "date", "title", "tags.title", "a.n", "b"]))
    asked = draw(st.lists(st.tuples(query_strategy(records), st.booleans()), min_size=1, max_size=8))
    return Case(records, asked, before, sort_field)


def ask(text: str) -> list[tuple[Q, bool]]:
    """A hand-written query for an explicit example (parsed back into a Q: words and fields only)."""
    field, _, value = text.rpartition(":")
    kind = "phrase" if value.startswith('"') else "word"
    return [(Q(kind, field or None, value.strip('"')), False)]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
# the bugs this test found first, as explicit examples (they fail at once, without shrinking)
@example(case=Case([{"tags": ["coral", "reefs"]}], ask('tags:"coral reefs"')))  # a phrase across values
@example(case=Case([{"a": "coral", "b": "reefs"}], ask('"coral reefs"')))
@example(case=Case([{"a_b": "x"}, {"a-b": "y"}], ask("a-b:x")))  # field names that differ in punctuation
@example(case=Case([{"title": "x"}, {"Title": "y"}], ask("Title:x")))  # or in case
@example(case=Case([{"date": "2020-01-01"}, {"date": 5}], [(Q("range", "date", style="[]"), False)]))
def test_index_answers_as_a_scan(case: Case) -> None:
    world = World()
    try:
        world.write(list(case.before))
        world.repo.search("")
        check_queries(world.repo, world.write(case.records), case.asked, case.sort_field)
    finally:
        world.close()


def check_queries(repo: Repository, stored: dict[uuid.UUID, Any], asked: list, sort_field: str) -> None:
    for q, with_deleted in asked:
        text = render(q)
        searched = {i: d for i, d in stored.items() if with_deleted or d is not None}
        expected = {i for i, d in searched.items() if matches(q, d)}
        found = repo.search(text, size=10_000, with_deleted=with_deleted)
        assert (found.total, set(found.ids)) == (len(expected), expected), (text, with_deleted)
        with ranker_always():  # a full-text match is ranked by tantivy: the same records
            found = repo.search(text, size=10_000, with_deleted=with_deleted)
        assert (found.total, set(found.ids)) == (len(expected), expected), (text, with_deleted, "ranker")
        for descending in (False, True):
            sort = f"-{sort_field}" if descending else sort_field
            try:
                ordered = repo.search(text, sort=sort, size=10_000, with_deleted=with_deleted).ids
            except GitRecordsError:  # no record (of any example so far) ever had the field
                assert not any(ends_with(p, sort_field) for d in stored.values() for p, _ in leaves(d))
                continue
            assert ordered == sort_order(searched, expected, sort_field, descending), (text, sort)


@contextlib.contextmanager
def ranker_always() -> Iterator[None]:
    """The ranker (gitrecords._ranker) answers the full-text matches it can at any size."""
    saved = _ranker.MIN_RECORDS
    _ranker.MIN_RECORDS = 0
    try:
        yield
    finally:
        _ranker.MIN_RECORDS = saved


def assert_ranker_agrees(repo: Repository) -> None:
    """The ranker answers the state machine's queries with the records FTS5 answers, in pages
    that follow on from each other."""
    for q in STATE_QUERIES:
        plain = repo.search(q, size=100)
        with ranker_always():
            ranked = repo.search(q, size=100)
            pages = [repo.search(q, size=3, page=p).ids for p in (1, 2, 3)]
        assert (ranked.total, set(ranked.ids)) == (plain.total, set(plain.ids)), q
        assert [i for page in pages for i in page] == ranked.ids[:9], q


def test_reference_examples() -> None:
    """The scan itself, on the cases the issue names."""
    sami = {"creators": [{"name": "Sámi, Ánne"}], "year": 2019, "dates": [{"date": "2020-12-31T10:00"}]}
    assert matches(Q("word", text="sami"), sami)
    assert matches(Q("word", "creators.name", "SAMI"), sami)
    assert matches(Q("word", "name", "sami"), sami)
    assert not matches(Q("word", "s.name", "sami"), sami)
    assert matches(Q("phrase", "name", "sami anne"), sami)
    assert not matches(Q("phrase", None, "anne sami"), sami)
    assert matches(Q("prefix", None, "sam"), sami)
    assert matches(Q("range", "year", low="2019", high="2021", style="[]"), sami)
    assert not matches(Q("range", "year", low="2019", low_inclusive=False, style=">"), sami)
    assert matches(Q("range", "dates.date", low="2020-01-01", high="2020-12-31", style="[]"), sami)
    assert not matches(Q("range", "date", high="2020-12-31", high_inclusive=False, style="<"), sami)
    assert matches(Q("exists", "creators"), sami) and not matches(Q("exists", "title"), sami)
    assert not matches(Q("phrase", "tags", "coral reefs"), {"tags": ["coral", "reefs"]})
    rendered = render(
        Q("or", items=(Q("word", "title", "a"), Q("not", items=(Q("prefix", None, "b"),), style="-")))
    )
    assert rendered == "title:a OR -b*"
    assert parse(rendered) is not None


# -- the state machine --------------------------------------------------------------------------------

SCHEMA_FREE_TITLES = ["alpha beta", "Beta Gamma", "gámma", "delta", "Alpha-Delta", "epsilon zeta"]
STATE_QUERIES = [
    "",
    "alpha",
    "beta",
    "gamma",
    "title:alpha",
    'title:"alpha beta"',
    'tags:"beta gamma"',
    "alp*",
    "nested.title:delta",
    "n:[1 TO 5]",
    "n:>=4",
    "date:[2020-01-01 TO 2020-12-31]",
    "_exists_:tags",
    "_exists_:nested",
    "NOT alpha",
    "-title:beta (delta OR gamma)",
]
STATE_SORTS = [None, "n", "-n", "title", "-date", "created", "-updated"]
#: the facets the state machines' repositories declare
STATE_FACETS = {"tag": "tags", "number": "n", "nested": "nested.title"}

IDENTITY = {
    "GIT_AUTHOR_NAME": "Machine",
    "GIT_AUTHOR_EMAIL": "machine@example.org",
    "GIT_COMMITTER_NAME": "Machine",
    "GIT_COMMITTER_EMAIL": "machine@example.org",
}
UNSET = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GITRECORDS_REPO",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_DATE",
)


def state_id(key: int) -> uuid.UUID:
    return uuid.uuid5(ID_NAMESPACE, f"record-{key}")


state_keys = st.integers(min_value=0, max_value=7)
state_data = st.fixed_dictionaries(
    {"title": st.sampled_from(SCHEMA_FREE_TITLES)},
    optional={
        "n": st.integers(min_value=0, max_value=9),
        "date": st.sampled_from(["2019-05-01", "2020-03-01", "2020-12-31T10:00:00Z", "2021-01-01"]),
        "tags": st.lists(st.sampled_from(["alpha", "beta", "gamma", "Beta Gamma"]), max_size=3),
        "nested": st.fixed_dictionaries({"title": st.sampled_from(SCHEMA_FREE_TITLES)}),
    },
)


#: every value row of an index, those still waiting to move to ``vals`` too
ALL_VALS = "(SELECT * FROM vals UNION ALL SELECT * FROM vals_pending)"


def index_content(index: SearchIndex) -> dict[str, Any]:
    """What an index holds, independent of its private numbering (doc and path ids) and of
    whether a value row waits in ``vals_pending`` or is in ``vals``."""
    conn = index._conn
    columns = [row[1] for row in conn.execute("PRAGMA table_info(docs)") if row[1] != "doc"]
    docs = sorted(conn.execute(f"SELECT {', '.join(columns)} FROM docs"))
    vals = sorted(
        conn.execute(
            f"SELECT d.record, p.path, v.n, v.str, v.num FROM {ALL_VALS} v JOIN docs d ON d.doc = v.doc"
            " JOIN paths p ON p.id = v.path"
        )
    )
    body = sorted(conn.execute("SELECT d.record, f.body FROM fts f JOIN docs d ON d.doc = f.rowid"))
    # the field paths it knows decide what a field name means (and whether a sort is an error)
    paths = sorted(row[0] for row in conn.execute("SELECT path FROM paths"))
    # the facet counts kept as records change, against the same counted over the rebuilt index
    counts = sorted(conn.execute("SELECT path, str, docs FROM facet_counts"))
    counted = conn.execute("SELECT value FROM meta WHERE key='counted'").fetchone()
    # the number of live records, kept as records change (the total of an empty query)
    live = conn.execute("SELECT value FROM meta WHERE key='live'").fetchone()
    orphans = conn.execute(
        "SELECT (SELECT COUNT(*) FROM fts WHERE rowid NOT IN (SELECT doc FROM docs)),"
        f" (SELECT COUNT(*) FROM {ALL_VALS} WHERE doc NOT IN (SELECT doc FROM docs)),"
        " (SELECT COUNT(*) FROM vals WHERE doc IN (SELECT doc FROM vals_pending))"
    ).fetchone()
    return {
        "docs": docs,
        "vals": vals,
        "body": body,
        "paths": paths,
        "counts": counts,
        "counted": counted,
        "live": live,
        "orphans": orphans,
    }


def answers(index: SearchIndex) -> dict[tuple[str, str | None, bool], list[uuid.UUID] | str]:
    """The answers of :data:`STATE_QUERIES` (as sets: relevance ties are not ordered) and of two
    queries in every sort of :data:`STATE_SORTS` (in order)."""
    asked = [(q, None, with_deleted) for q in STATE_QUERIES for with_deleted in (False, True)]
    asked += [(q, sort, q == "") for q in ("", "alpha OR _exists_:n") for sort in STATE_SORTS[1:]]
    found: dict[tuple[str, str | None, bool], list[uuid.UUID] | str] = {}
    for q, sort, with_deleted in asked:
        try:
            hits = index.search(parse(q), sort=sort, limit=None, with_deleted=with_deleted)
        except GitRecordsError as err:  # a sort by a field no record has
            found[q, sort, with_deleted] = str(err)
            continue
        found[q, sort, with_deleted] = hits.ids if sort is not None else sorted(hits.ids)
        found[q, sort, with_deleted, "total"] = str(hits.total)
    # facet counts: of everything (kept as records change) and of a filter (counted over the hits)
    for q in ("", "alpha OR _exists_:n"):
        hits = index.search(parse(q), limit=0, facets=STATE_FACETS, aliases=STATE_FACETS)
        found[q, "facets", False] = repr(sorted(hits.facets.items()))
    return found


def assert_equals_rebuild(repo: Repository, *, search: bool = True) -> None:
    """The repository's search index, caught up, holds what a fresh build from git holds; with
    ``search``, it also answers the same (and a search moves the value rows that wait to
    ``vals``: the contents are compared before and after)."""
    live = repo.search_index
    live.catch_up()
    fresh = SearchIndex(repo.git, repo.ref, None, repo.index)
    try:
        fresh.rebuild()
        assert live.indexed_tip() == fresh.indexed_tip() == str(repo.tip())
        assert index_content(live) == index_content(fresh)
        # a field path some record holds several values at is marked so (range queries on one
        # value a record skip the counting of distinct records otherwise); the mark stays after
        # the last such value goes, so it is not compared with the rebuild's
        unmarked = live._conn.execute(
            f"SELECT DISTINCT p.path FROM {ALL_VALS} v JOIN paths p ON p.id = v.path"
            " WHERE v.n > 0 AND p.multi = 0"
        ).fetchall()
        assert unmarked == []
        if search:
            assert answers(live) == answers(fresh)
            assert live._conn.execute("SELECT COUNT(*) FROM vals_pending").fetchone() == (0,)
            assert index_content(live) == index_content(fresh)
    finally:
        fresh.close()


class _Rollback(Exception):
    """Raised inside a nested transaction to drop its writes."""


class SearchIndexMachine(RuleBasedStateMachine):
    """Random writes of every kind; after each one, the search index equals a rebuild."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="gitrecords-search-", dir=TMP_ROOT))
        names = (*IDENTITY, *UNSET, "HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM")
        self._saved_env = {name: os.environ.get(name) for name in names}
        levels = (ConfigLevel.SYSTEM, ConfigLevel.XDG, ConfigLevel.GLOBAL)
        self._saved_search = {level: pygit2.settings.search_path[level] for level in levels}
        home = self.tmp / "home"
        home.mkdir()
        for name in UNSET:
            os.environ.pop(name, None)
        os.environ.update(IDENTITY)
        os.environ.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / "gitconfig"), GIT_CONFIG_NOSYSTEM="1")
        for level in levels:
            pygit2.settings.search_path[level] = str(home)
        # a change of more than two records takes the large catch-up's ways: a build, inserts
        # without the value indexes, or new rows compared with the old ones (bulk edits)
        self._saved_bulk = search_index.BULK
        search_index.BULK = 2
        # the value rows of three records written one commit at a time move to vals together
        self._saved_pending = search_index.PENDING_RECORDS
        search_index.PENDING_RECORDS = 3
        self.repo = Repository.init(self.tmp / "data.git", durable=False, config={"facets": STATE_FACETS})
        self.repo.search("")  # the index exists: it follows every commit from now on
        self.clones = 0
        self.purged: set[int] = set()

    def teardown(self) -> None:
        try:
            try:
                self.git("fsck", "--strict", "--no-progress")
            finally:
                self.repo.close()
        finally:
            search_index.BULK = self._saved_bulk
            search_index.PENDING_RECORDS = self._saved_pending
            for level, value in self._saved_search.items():
                pygit2.settings.search_path[level] = value
            for name, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            shutil.rmtree(self.tmp, ignore_errors=True)

    def git(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ["git", "--git-dir", str(self.repo.git_dir), *args],
            input=input,
            capture_output=True,
            env=env or dict(os.environ),
        )
        assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr.decode(errors='replace')}"
        return proc.stdout.decode()

    def get(self, key: int, repo: Repository | None = None) -> Record | None:
        try:
            return Record.get_record(state_id(key), with_deleted=True, repo=repo or self.repo)
        except NoResultFound:
            return None

    def attempt(self, action: Any) -> None:
        """Run a write; the refusals the API documents are fine (the index is what is tested)."""
        try:
            action()
        except (GitRecordsError, ValidationError):
            pass

    # -- rules ---------------------------------------------------------------------------------------

    @rule(key=state_keys, data=state_data)
    def create(self, key: int, data: dict[str, Any]) -> None:
        if key not in self.purged:
            self.attempt(lambda: Record.create(data, id_=state_id(key), repo=self.repo))

    @rule(key=state_keys, data=state_data)
    def update(self, key: int, data: dict[str, Any]) -> None:
        record = self.get(key)
        if record is None or record.is_deleted:
            return
        record.clear()
        record.update(data)
        self.attempt(record.commit)

    @rule(key=state_keys, title=st.sampled_from(SCHEMA_FREE_TITLES), tag=st.sampled_from(["alpha", "gamma"]))
    def patch(self, key: int, title: str, tag: str) -> None:
        record = self.get(key)
        if record is None or record.is_deleted:
            return
        ops = [{"op": "replace" if "title" in record else "add", "path": "/title", "value": title}]
        ops.append(
            {"op": "add", "path": "/tags/-", "value": tag}
            if "tags" in record
            else {"op": "remove", "path": "/title"}
        )
        self.attempt(lambda: record.patch(ops).commit())

    @rule(key=state_keys)
    def delete(self, key: int) -> None:
        record = self.get(key)
        if record is not None and not record.is_deleted:
            self.attempt(record.delete)

    @rule(key=state_keys)
    def undelete(self, key: int) -> None:
        record = self.get(key)
        if record is not None and record.is_deleted:
            self.attempt(record.undelete)

    @rule(key=state_keys, pick=st.integers(min_value=0, max_value=9))
    def revert(self, key: int, pick: int) -> None:
        record = self.get(key)
        if record is None:
            return
        revisions = record.revisions
        self.attempt(lambda: record.revert(revisions[pick % len(revisions)].revision_id))

    @rule(
        outer=st.lists(st.tuples(state_keys, state_data), min_size=1, max_size=3),
        inner=st.lists(st.tuples(state_keys, state_data), max_size=3),
        inner_raises=st.booleans(),
        minted=st.booleans(),
    )
    def transaction(
        self,
        outer: list[tuple[int, dict[str, Any]]],
        inner: list[tuple[int, dict[str, Any]]],
        inner_raises: bool,
        minted: bool,
    ) -> None:
        """Several writes as one commit; a nested block that raises drops its own writes (a
        savepoint) and the outer ones still commit. Records created only in a dropped block
        must not exist afterwards."""

        def write(key: int, data: dict[str, Any]) -> None:
            if key in self.purged:
                return
            record = self.get(key)
            if record is None:
                minters = ["recid"] if minted and "control_number" not in data else []
                Record.create(dict(data), id_=state_id(key), repo=self.repo, pid_minters=minters)
            elif not record.is_deleted:
                record.clear()
                record.update(data)
                record.commit()

        existed = {key for key, _ in inner if self.get(key) is not None}
        outer_keys = {key for key, _ in outer}

        def run() -> None:
            with self.repo.transaction():
                for key, data in outer:
                    self.attempt(lambda key=key, data=data: write(key, data))
                if inner:
                    try:
                        with self.repo.transaction():
                            for key, data in inner:
                                self.attempt(lambda key=key, data=data: write(key, data))
                            if inner_raises:
                                raise _Rollback
                    except _Rollback:
                        pass

        self.attempt(run)
        if inner_raises:
            for key, _ in inner:
                if key not in existed and key not in outer_keys:
                    assert self.get(key) is None, f"record {key} of a rolled-back nested block exists"

    @rule(key=state_keys)
    def hard_delete(self, key: int) -> None:
        if self.get(key) is not None:
            self.attempt(lambda: self.repo.hard_delete([state_id(key)]))
            self.purged.add(key)  # its id cannot be used again

    @rule(items=st.lists(st.tuples(state_keys, state_data), min_size=1, max_size=4, unique_by=lambda i: i[0]))
    def bulk_import(self, items: list[tuple[int, dict[str, Any]]]) -> None:
        """Imports the records that do not exist (a batch with one that does is refused whole)."""
        fresh = [(state_id(k), d) for k, d in items if k not in self.purged and self.get(k) is None]
        if fresh:
            self.attempt(lambda: self.repo.import_records(fresh))

    @rule(
        edits=st.lists(
            st.tuples(state_keys, state_data | st.none()), min_size=1, max_size=3, unique_by=lambda i: i[0]
        )
    )
    def plain_git_commit(self, edits: list[tuple[int, dict[str, Any] | None]]) -> None:
        """Record files written (None: removed) by git plumbing, behind gitrecords' back."""
        env = {**os.environ, "GIT_INDEX_FILE": str(self.tmp / "plain-git-index")}
        tip = self.git("rev-parse", "--verify", self.repo.ref).strip()
        self.git("read-tree", tip, env=env)
        lines = []
        for key, data in edits:
            path = self.repo.path_for(state_id(key))
            if data is None:
                lines.append(f"0 {'0' * 40}\t{path}\n")
            else:
                content = json.dumps(data, indent=4).encode()  # not canonical: git does not care
                blob = self.git("hash-object", "-w", "--stdin", input=content).strip()
                lines.append(f"100644 {blob}\t{path}\n")
        self.git("update-index", "--index-info", input="".join(lines).encode(), env=env)
        tree = self.git("write-tree", env=env).strip()
        commit = self.git("commit-tree", tree, "-p", tip, "-m", "plain git commit").strip()
        self.git("update-ref", self.repo.ref, commit, tip)
        os.unlink(self.tmp / "plain-git-index")

    @rule(
        theirs=st.lists(st.tuples(state_keys, state_data), min_size=1, max_size=3, unique_by=lambda i: i[0]),
        ours=st.none() | st.tuples(state_keys, state_data),
    )
    def pull(self, theirs: list[tuple[int, dict[str, Any]]], ours: tuple[int, dict[str, Any]] | None) -> None:
        """A clone creates or updates records, the repository maybe writes one of its own (then the
        pull merges), and pulls."""
        self.clones += 1
        where = self.tmp / f"clone-{self.clones}.git"
        subprocess.run(
            ["git", "clone", "--quiet", "--bare", str(self.repo.git_dir), str(where)],
            check=True,
            capture_output=True,
        )
        clone = Repository(where)
        try:
            for key, data in theirs:
                record = self.get(key, clone)
                if record is None:
                    self.attempt(lambda: Record.create(data, id_=state_id(key), repo=clone))  # noqa: B023
                elif not record.is_deleted:
                    record.clear()
                    record.update(data)
                    self.attempt(record.commit)
        finally:
            clone.close()
        if ours is not None and ours[0] not in {key for key, _ in theirs}:
            self.update(*ours)
        self.attempt(lambda: replication.pull(self.repo, str(where)))
        shutil.rmtree(where, ignore_errors=True)

    @rule(back=st.integers(min_value=1, max_value=3))
    def reset(self, back: int) -> None:
        """The branch moves back by git (``git reset``, ``update-ref``, a forced fetch)."""
        found = subprocess.run(
            [
                "git",
                "--git-dir",
                str(self.repo.git_dir),
                "rev-parse",
                "--verify",
                "-q",
                f"{self.repo.ref}~{back}",
            ],
            capture_output=True,
            text=True,
        )
        if found.returncode == 0:
            self.git("update-ref", self.repo.ref, found.stdout.strip())

    @invariant()
    def index_equals_rebuild(self) -> None:
        # without a search: the value rows of records written since the last one may wait, and
        # later writes meet them (a search is a rule of its own)
        assert_equals_rebuild(self.repo, search=False)

    @rule()
    def search(self) -> None:
        assert_equals_rebuild(self.repo)
        assert_ranker_agrees(self.repo)

    @invariant()
    def no_pid_has_two_live_owners(self) -> None:
        """Only minting gives PIDs here (no rule writes a control_number by hand): never twice."""
        holders: dict[str, list[str]] = {}
        for record_id in self.repo.ids():
            value = Record.get_record(record_id, repo=self.repo).get("control_number")
            if value is not None:
                holders.setdefault(str(value), []).append(str(record_id))
        assert all(len(owners) == 1 for owners in holders.values()), holders

    @invariant()
    def revision_index_equals_rebuild(self) -> None:
        """The revision and PID index too (issue 15): the same rows as one rebuilt from git, and
        no PID with two owners unless plain git put it in two records."""
        self.repo.sync_index()
        assert_revision_index_equals_rebuild(self.repo)


SearchIndexMachine.TestCase.settings = settings(
    max_examples=STATEFUL_EXAMPLES,
    stateful_step_count=STATEFUL_STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestSearchIndexMachine = SearchIndexMachine.TestCase
