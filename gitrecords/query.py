"""The search query language: parsing a query string into a tree.

``title:lovelace "coral reefs" cor* -draft (type:Dataset OR type:Software)
publicationYear:[2019 TO 2021] dates.date:>=2020-01-01 _exists_:fundingReferences recid:12``

Terms are joined by AND unless ``OR`` stands between them; ``NOT`` or a leading
``-`` negates; parentheses group. A term is a word, a prefix (``cor*``), a
phrase in double quotes, or ``field:`` followed by one of those, a range
(``[a TO b]``, ``{a TO b}`` excludes the bounds, ``*`` is open) or a
comparison (``>=``, ``>``, ``<=``, ``<``). :func:`parse` raises
:class:`QueryError` with the position of the first problem. The tree is
evaluated by :mod:`gitrecords.search_index`; nothing here touches SQL.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from .errors import QueryError

__all__ = ["WORD", "And", "Not", "Or", "QueryError", "Term", "normalize", "parse", "words"]

#: a word as the index keeps it (after :func:`normalize`)
WORD = re.compile(r"\w+")


def normalize(text: str) -> str:
    """Case- and accent-insensitive form of ``text``: ``Sámi`` and ``SAMI`` are both ``sami``."""
    if text.isascii():  # nothing to decompose, and casefold() is lower() on ASCII: 5x faster
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The words of ``text`` as the index keeps them (normalized, split at non-word characters)."""
    return WORD.findall(normalize(text))


@dataclass(frozen=True)
class Term:
    """One term. ``kind`` is word, prefix, phrase, range, compare or exists."""

    kind: str
    field: str | None = None
    text: str = ""
    low: str | None = None
    high: str | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    position: int = 0


@dataclass(frozen=True)
class And:
    items: tuple[object, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Or:
    items: tuple[object, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Not:
    item: object


Node = Term | And | Or | Not


def parse(query: str) -> Node | None:
    """The tree of ``query``; None for an empty query (everything)."""
    parser = _Parser(query)
    node = parser.expression()
    parser.skip_space()
    if parser.pos < len(query):
        if query[parser.pos] == ")":
            raise QueryError("a ')' without its '('", parser.pos)
        raise QueryError(f"unexpected {query[parser.pos]!r}", parser.pos)  # pragma: no cover
    return node


_FIELD = re.compile(r"([^\s:()\"\[\]{}<>=*]+):")
#: parentheses and negations a query may nest (each is a subquery in SQL, whose parser stops at
#: about a dozen: "parser stack overflow")
MAX_DEPTH = 8
#: terms in one query
MAX_TERMS = 1_000


def _wordless(node: object) -> bool:
    """A bare term with no word to search for (``&``, ``-`` pasted with a title), or its negation:
    left out of the query, as a search engine's analyser leaves it."""
    if isinstance(node, Not):
        return _wordless(node.item)
    return (
        isinstance(node, Term)
        and node.field is None
        and node.kind in ("word", "prefix", "phrase")
        and not words(node.text)
    )


_COMPARE = re.compile(r"(>=|<=|>|<)")


def _flat(kind: type, items: list[Node]) -> list[Node]:
    """``a OR (b OR c)`` as ``a OR b OR c`` (and the same for AND): one level, not two."""
    out: list[Node] = []
    for item in items:
        out.extend(item.items if isinstance(item, kind) else [item])  # type: ignore[attr-defined]
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.terms = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def keyword(self, word: str) -> bool:
        self.skip_space()
        end = self.pos + len(word)
        if self.text.startswith(word, self.pos) and (end == len(self.text) or self.text[end] in " \t\n()"):
            self.pos = end
            return True
        return False

    def expression(self) -> Node | None:
        items = [self.conjunction()]
        while self.keyword("OR"):
            start = self.pos
            item = self.conjunction()
            if item is None:
                raise QueryError("OR needs a term after it", start)
            items.append(item)
        present = [i for i in items if i is not None]
        if not present:
            return None
        if len(items) > 1 and len(present) < len(items):
            raise QueryError("OR needs a term before it", 0)
        return present[0] if len(present) == 1 else Or(tuple(_flat(Or, present)))

    def conjunction(self) -> Node | None:
        items: list[Node] = []
        wordless: list[int] = []  # where the terms with no word were
        while True:
            self.skip_space()
            if self.pos >= len(self.text) or self.text[self.pos] == ")":
                break
            if self.text.startswith("OR", self.pos) and self.keyword_ahead("OR"):
                break
            if self.keyword("AND"):
                if not items and not wordless:
                    raise QueryError("AND needs a term before it", self.pos - 3)
                self.skip_space()
                if self.pos >= len(self.text) or self.text[self.pos] == ")" or self.keyword_ahead("OR"):
                    raise QueryError("AND needs a term after it", self.pos)
                continue
            start = self.pos
            item = self.unary()
            if _wordless(item):
                wordless.append(start)
                continue
            items.append(item)
        if not items:
            if wordless:
                raise QueryError("nothing to search for: no letters or digits", wordless[0])
            return None
        return items[0] if len(items) == 1 else And(tuple(_flat(And, items)))

    def keyword_ahead(self, word: str) -> bool:
        end = self.pos + len(word)
        return self.text.startswith(word, self.pos) and (end == len(self.text) or self.text[end] in " \t\n()")

    def unary(self) -> Node:
        self.skip_space()
        start = self.pos
        if self.keyword("NOT"):
            self.skip_space()
            if self.pos >= len(self.text) or self.text[self.pos] == ")":
                raise QueryError("NOT needs a term after it", start)
            return self.negated(start)
        if self.text.startswith("-", self.pos) and self.pos + 1 < len(self.text):
            following = self.text[self.pos + 1]
            if not following.isspace() and following != ")":
                self.pos += 1
                return self.negated(start)
        if self.text.startswith("(", self.pos):
            self.pos += 1
            self.deeper(start)
            inner = self.expression()
            self.depth -= 1
            self.skip_space()
            if self.pos >= len(self.text) or self.text[self.pos] != ")":
                raise QueryError("a '(' without its ')'", start)
            self.pos += 1
            if inner is None:
                raise QueryError("empty parentheses", start)
            return inner
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(f"a query has at most {MAX_TERMS} terms", start)
        return self.term()

    def deeper(self, start: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"a query nests parentheses and negations at most {MAX_DEPTH} deep", start)

    def negated(self, start: int) -> Node:
        """``NOT x`` or ``-x``; ``NOT NOT x`` is ``x``."""
        self.deeper(start)
        item = self.unary()
        self.depth -= 1
        return item.item if isinstance(item, Not) else Not(item)

    def term(self) -> Term:
        start = self.pos
        match = _FIELD.match(self.text, self.pos)
        name = None
        if match:
            name = match[1]
            self.pos = match.end()
            if self.pos >= len(self.text) or self.text[self.pos].isspace() or self.text[self.pos] == ")":
                raise QueryError(f"{name}: needs a value", start)
        if name == "_exists_":
            target = self.word(start)
            return Term("exists", field=target.rstrip("*"), position=start)
        char = self.text[self.pos]
        if char == '"':
            return Term("phrase", field=name, text=self.quoted(), position=start)
        if char in "[{" and name is not None:
            return self.range(name, start)
        compare = _COMPARE.match(self.text, self.pos) if name is not None else None
        if compare:
            self.pos = compare.end()
            if self.pos >= len(self.text) or self.text[self.pos].isspace():
                raise QueryError(f"{compare[1]} needs a value", start)
            value = self.quoted() if self.text[self.pos] == '"' else self.word(start)
            op = compare[1]
            if op.startswith(">"):
                return Term("range", field=name, low=value, low_inclusive=op == ">=", position=start)
            return Term("range", field=name, high=value, high_inclusive=op == "<=", position=start)
        value = self.word(start)
        if value.endswith("*") and len(value) > 1:
            return Term("prefix", field=name, text=value[:-1], position=start)
        if value == "*":
            if name is None:
                raise QueryError("'*' alone matches nothing; leave the query empty for everything", start)
            return Term("exists", field=name, position=start)
        return Term("word", field=name, text=value, position=start)

    def word(self, start: int) -> str:
        begin = self.pos
        while (
            self.pos < len(self.text)
            and not self.text[self.pos].isspace()
            and self.text[self.pos] not in "()"
        ):
            if self.text[self.pos] == '"':
                raise QueryError("a '\"' inside a word; quote the whole phrase", self.pos)
            self.pos += 1
        if self.pos == begin:
            raise QueryError("a term is missing", start)
        return self.text[begin : self.pos]

    def quoted(self) -> str:
        start = self.pos
        end = self.text.find('"', self.pos + 1)
        if end < 0:
            raise QueryError("a '\"' without its closing '\"'", start)
        self.pos = end + 1
        return self.text[start + 1 : end]

    def range(self, name: str, start: int) -> Term:
        opening = self.text[self.pos]
        close = min(
            (i for i in (self.text.find("]", self.pos), self.text.find("}", self.pos)) if i >= 0), default=-1
        )
        if close < 0:
            raise QueryError(f"a '{opening}' without its ']' or '}}'", self.pos)
        inside = self.text[self.pos + 1 : close]
        parts = re.split(r"\s+TO\s+", inside.strip())
        if len(parts) != 2 or not all(parts):
            raise QueryError("a range looks like [low TO high] ('*' for an open end)", self.pos)
        low, high = (p.strip('"') for p in parts)
        self.pos = close + 1
        return Term(
            "range",
            field=name,
            low=None if low == "*" else low,
            high=None if high == "*" else high,
            low_inclusive=opening == "[",
            high_inclusive=self.text[close] == "]",
            position=start,
        )
