"""``pattern`` and ``patternProperties`` in Python's dialect, never on a backtracking engine
without a time limit.

A pattern is parsed by ``re``'s own parser and rewritten for RE2, which matches in
time linear in the input; the few constructs RE2 has no equivalent for run on the
``regex`` module under a time limit per validation (:data:`BACKTRACKING_TIME_LIMIT`).
:func:`with_safe_patterns` gives a jsonschema validator class these keywords; see
docs/reliability.md for the dialect.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from functools import cache, lru_cache
from re import _constants as sre  # re's own parser: the dialect stays Python's
from re import _parser as sre_parser
from typing import Any

import jsonschema
import re2
import regex
from jsonschema.exceptions import ValidationError
from referencing.jsonschema import lookup_recursive_ref

from .errors import SchemaError

# -- patterns ----------------------------------------------------------------
#
# A pattern is parsed by re's own parser (so the dialect, and what check_schema accepts, stay
# Python's) and written out in RE2's syntax with Python's meaning: every character, class and
# category (\d, \s, \w as Python's str patterns define them) becomes explicit code point ranges.
# What has no RE2 equivalent (lookaround, backreferences, conditional, atomic and possessive groups,
# \b and \B outside ASCII mode, a non-multiline $ that is not at the end, ASCII-only case folding,
# what RE2 refuses to compile such as counts above 1000) runs on the regex module, which
# backtracks, under BACKTRACKING_TIME_LIMIT per validation.

#: seconds the patterns that need backtracking may take, in all, while one value is validated
BACKTRACKING_TIME_LIMIT = 1.0

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is not an error: it runs on the regex module


class PatternTimeoutError(ValidationError):
    """A value whose pattern needs backtracking could not be checked within the time limit."""


class TooSlow(Exception):
    """A match that ran out of time."""


class _NoRE2(Exception):
    """A construct RE2 cannot express with Python's meaning."""


_local = threading.local()


class _Budget:
    """The time left for backtracking matches in one validation, and the matches that ran out."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.timeouts: list[tuple[str, str, bool]] = []  # (pattern, text, text is a property name)


@contextlib.contextmanager
def pattern_budget() -> Iterator[_Budget]:
    budget: _Budget | None = getattr(_local, "budget", None)
    if budget is not None:  # a validation inside a validation shares its budget
        yield budget
        return
    _local.budget = budget = _Budget()
    try:
        yield budget
    finally:
        _local.budget = None


#: (pattern, digest of the string) -> found, for backtracking matches that took over a millisecond:
#: data validated before the write lock is taken and again under it (a create that mints PIDs, the
#: CLI's checks then writes) does not run a slow match twice
_SLOW_MATCHES: dict[tuple[str, bytes], bool] = {}
_SLOW_MATCHES_LOCK = threading.Lock()
_SLOW_MATCHES_KEPT = 1024


#: the linear engine's answers kept per pattern, for strings up to this long: values repeat from
#: record to record (years, languages, types, the value a bulk edit sets), and a dict lookup is
#: 50 times cheaper than a call into RE2
_SEEN_KEPT = 4096
_SEEN_LENGTH = 256


class _Matcher:
    """``re.search(pattern, text)``'s answer, from RE2 or, when it cannot, from a bounded backtracker."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        try:
            syntax = translate(pattern, linear=True)
        except (re.error, OverflowError, RecursionError) as err:
            raise SchemaError(f"pattern {pattern!r} is not a valid regular expression: {err}") from None
        self.linear: Any = None
        self.backtracking: Any = None
        self.seen: dict[str, bool] = {}  # the linear engine's answers for short strings
        if syntax is not None:
            with contextlib.suppress(re2.error):  # e.g. a count above 1000, or too large a program
                self.linear = re2.compile(syntax, _RE2_OPTIONS)
        if self.linear is None:
            try:
                self.backtracking = regex.compile(translate(pattern, linear=False), regex.VERSION0)
            except (regex.error, OverflowError, RecursionError) as err:
                raise SchemaError(f"pattern {pattern!r} cannot be checked: {err}") from None

    def search(self, text: str, key: bool = False) -> bool:
        """Whether the pattern matches in ``text``; raises TooSlow when that was not found in time."""
        if self.linear is not None:
            found = self.seen.get(text)
            if found is None:
                found = self.linear.search(text) is not None
                if len(text) <= _SEEN_LENGTH:
                    if len(self.seen) >= _SEEN_KEPT:
                        self.seen.clear()
                    self.seen[text] = found
            return found
        seen = (self.pattern, hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest())
        found = _SLOW_MATCHES.get(seen)
        if found is not None:
            return found
        start = time.monotonic()
        found = self._backtrack(text, key, start)
        if time.monotonic() - start > 0.001:
            with _SLOW_MATCHES_LOCK:
                if len(_SLOW_MATCHES) >= _SLOW_MATCHES_KEPT:
                    del _SLOW_MATCHES[next(iter(_SLOW_MATCHES))]
                _SLOW_MATCHES[seen] = found
        return found

    def _backtrack(self, text: str, key: bool, now: float) -> bool:
        budget: _Budget | None = getattr(_local, "budget", None)
        left = BACKTRACKING_TIME_LIMIT
        if budget is not None:
            if budget.deadline is None:
                budget.deadline = now + BACKTRACKING_TIME_LIMIT
            left = budget.deadline - now
        try:
            if left > 0:  # concurrent: other threads run meanwhile
                return self.backtracking.search(text, timeout=left, concurrent=True) is not None
        except TimeoutError:
            pass
        if budget is not None:
            budget.timeouts.append((self.pattern, text, key))
        raise TooSlow


@lru_cache(maxsize=256)
def matcher(pattern: str) -> _Matcher:
    return _Matcher(pattern)


def _timeout_error(pattern: str, text: str, key: bool, path: Iterable[Any] = ()) -> PatternTimeoutError:
    shown = text if len(text) <= 40 else text[:37] + "..."
    what = f"property name {shown!r}" if key else repr(shown)
    return PatternTimeoutError(
        f"{what} could not be checked against the pattern {pattern!r} within "
        f"{BACKTRACKING_TIME_LIMIT:g} s (a pattern that needs backtracking has a time limit)",
        validator="pattern" if not key else "patternProperties",
        validator_value=pattern,
        instance=text,
        path=list(path),
    )


def first_timeout(errors: Iterable[ValidationError]) -> ValidationError | None:
    for error in errors:
        if isinstance(error, PatternTimeoutError):
            return error
        found = first_timeout(error.context or ())
        if found is not None:
            return found
    return None


def swallowed_timeout(data: Any, pattern: str, text: str, key: bool) -> PatternTimeoutError:
    """The error for a timeout that ``not``, ``anyOf``... swallowed, at the first place holding ``text``."""
    return _timeout_error(pattern, text, key, _place_of(data, text, key) or ())


def _place_of(value: Any, text: str, key: bool) -> list[Any] | None:
    if isinstance(value, str):
        return [] if value == text and not key else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for name, item in items:
        if key and name == text:
            return [name]
        found = _place_of(item, text, key)
        if found is not None:
            return [name, *found]
    return None


# The keywords that run patterns, as jsonschema 4 writes them, with the matcher instead of re.search.


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string"):
        try:
            if not matcher(pattern).search(instance):
                yield ValidationError(f"{instance!r} does not match {pattern!r}")
        except TooSlow:
            yield _timeout_error(pattern, instance, False)


def _pattern_properties(
    validator: Any, patterns: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            try:
                matched = matcher(pattern).search(key, key=True)
            except TooSlow:
                yield _timeout_error(pattern, key, True, [key])
                continue
            if matched:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _matches_any(patterns: Iterable[str], key: str, slow: list[tuple[str, str]]) -> bool:
    for pattern in patterns:
        try:
            if matcher(pattern).search(key, key=True):
                return True
        except TooSlow:
            slow.append((pattern, key))
            return True  # reported as not checked, not also as unexpected
    return False


def _additional_properties(validator: Any, aP: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    slow: list[tuple[str, str]] = []
    extras = {key for key in instance if key not in properties and not _matches_any(patterns, key, slow)}
    for pattern, key in slow:
        yield _timeout_error(pattern, key, True, [key])
    if validator.is_type(aP, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], aP, path=extra)
    elif not aP and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            listed = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")
        else:
            yield ValidationError(f"Additional properties are not allowed ({_extras(extras)} unexpected)")


def _evaluated_keys(validator: Any, instance: Any, schema: Any, legacy: bool, slow: list[Any]) -> list[Any]:
    """jsonschema's ``find_evaluated_property_keys_by_schema`` (draft 2020-12, or the draft 2019-09
    one when ``legacy``), with the matcher for ``patternProperties``."""
    if validator.is_type(schema, "boolean"):
        return []
    keys: list[Any] = []

    def descend(sub_validator: Any, subschema: Any) -> None:
        keys.extend(_evaluated_keys(sub_validator, instance, subschema, legacy, slow))

    refs = [validator._resolver.lookup(schema["$ref"])] if schema.get("$ref") is not None else []
    if legacy and "$recursiveRef" in schema:
        refs.append(lookup_recursive_ref(validator._resolver))
    if not legacy and schema.get("$dynamicRef") is not None:
        refs.append(validator._resolver.lookup(schema["$dynamicRef"]))
    for resolved in refs:
        descend(validator.evolve(schema=resolved.contents, _resolver=resolved.resolver), resolved.contents)
    if legacy:
        for keyword in ("properties", "additionalProperties", "unevaluatedProperties"):
            value = schema.get(keyword)
            if validator.is_type(value, "boolean") and value:
                keys += instance.keys()
            elif validator.is_type(value, "object"):
                keys += [name for name in value if name in instance]
    else:
        properties = schema.get("properties")
        if validator.is_type(properties, "object"):
            keys += properties.keys() & instance.keys()
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            if (subschema := schema.get(keyword)) is not None:
                keys += [
                    k for k, v in instance.items() if next(validator.descend(v, subschema), None) is None
                ]
    if "patternProperties" in schema:
        keys += [key for key in instance if _matches_any(schema["patternProperties"], key, slow)]
    for name, subschema in schema.get("dependentSchemas", {}).items():
        if name in instance:
            descend(validator, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if next(validator.descend(instance, subschema), None) is None:
                descend(validator, subschema)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            descend(validator, schema["if"])
            if "then" in schema:
                descend(validator, schema["then"])
        elif "else" in schema:
            descend(validator, schema["else"])
    return keys


def _unevaluated_properties_for(legacy: bool) -> Callable[..., Iterator[ValidationError]]:
    def unevaluated_properties(
        validator: Any, uP: Any, instance: Any, schema: Any
    ) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "object"):
            return
        slow: list[tuple[str, str]] = []
        evaluated = _evaluated_keys(validator, instance, schema, legacy, slow)
        for pattern, key in slow:
            yield _timeout_error(pattern, key, True, [key])
        unevaluated = [  # a key once per error, as jsonschema lists them
            key
            for key in instance
            if key not in evaluated
            for _error in validator.descend(instance[key], uP, path=key, schema_path=key)
        ]
        if unevaluated and uP is False:
            yield ValidationError(
                f"Unevaluated properties are not allowed ({_extras(unevaluated)} unexpected)"
            )
        elif unevaluated:
            yield ValidationError(
                "Unevaluated properties are not valid under the given schema "
                f"({_extras(unevaluated, sort=False)} unevaluated and invalid)"
            )

    return unevaluated_properties


def _extras(extras: Iterable[Any], sort: bool = True) -> str:
    """jsonschema's words for extra properties: "'a', 'b' were"."""
    listed = sorted(extras, key=str) if sort else list(extras)
    return ", ".join(repr(each) for each in listed) + (" was" if len(listed) == 1 else " were")


#: jsonschema's keyword functions that run patterns -> the same with the matcher
_SAFE_KEYWORDS: dict[Any, Any] = {
    jsonschema.Draft202012Validator.VALIDATORS["pattern"]: _pattern,
    jsonschema.Draft202012Validator.VALIDATORS["patternProperties"]: _pattern_properties,
    jsonschema.Draft202012Validator.VALIDATORS["additionalProperties"]: _additional_properties,
    jsonschema.Draft202012Validator.VALIDATORS["unevaluatedProperties"]: _unevaluated_properties_for(False),
    jsonschema.Draft201909Validator.VALIDATORS["unevaluatedProperties"]: _unevaluated_properties_for(True),
}
#: validator class with safe patterns -> the class it extends
SAFE_BASES: dict[Any, Any] = {}


@cache
def with_safe_patterns(cls: Any) -> Any:
    """``cls`` with the keywords that run patterns replaced (those a custom class overrides stay)."""
    keywords = {k: _SAFE_KEYWORDS[f] for k, f in cls.VALIDATORS.items() if f in _SAFE_KEYWORDS}
    if not keywords:
        return cls
    safe = jsonschema.validators.extend(cls, keywords)
    SAFE_BASES[safe] = cls
    return safe


# Python's pattern syntax -> RE2's


def translate(pattern: str, linear: bool) -> str | None:
    """``pattern`` (Python's ``re`` syntax) with Python's meaning, in RE2's syntax (``linear``; None
    where RE2 has no equivalent) or in the ``regex`` module's. Raises ``re.error`` for a pattern
    Python refuses."""
    parsed = sre_parser.parse(pattern)
    try:
        return _sequence(parsed, parsed.state.flags, True, linear)
    except _NoRE2:
        return None


def _sequence(items: Any, flags: int, tail: bool, linear: bool) -> str:
    last = len(items) - 1
    return "".join(_item(op, av, flags, tail and i == last, linear) for i, (op, av) in enumerate(items))


def _item(op: Any, av: Any, flags: int, tail: bool, linear: bool) -> str:
    """One node of re's parse tree. ``tail``: nothing can follow it (so ``$`` may consume a newline)."""
    if op in (sre.LITERAL, sre.NOT_LITERAL, sre.IN):
        items = [(sre.LITERAL, av)] if op is not sre.IN else av
        return _class(items, op is sre.NOT_LITERAL, flags, linear)
    if op is sre.ANY:
        return "(?s:.)" if flags & sre.SRE_FLAG_DOTALL else "[^\\n]"
    if op is sre.BRANCH:
        return "(?:" + "|".join(_sequence(branch, flags, tail, linear) for branch in av[1]) + ")"
    if op is sre.SUBPATTERN:
        group, add, remove, items = av
        inner = _sequence(items, (flags | add) & ~remove, tail, linear)
        return f"({inner})" if group is not None and not linear else f"(?:{inner})"
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) or (op is sre.POSSESSIVE_REPEAT and not linear):
        low, high, items = av
        upper = "" if high == sre.MAXREPEAT else str(high)
        kind = {sre.MAX_REPEAT: "", sre.MIN_REPEAT: "?"}.get(op, "+")
        return f"(?:{_sequence(items, flags, tail and high <= 1, linear)}){{{low},{upper}}}{kind}"
    if op is sre.AT:
        return _at(av, flags, tail, linear)
    if linear:
        raise _NoRE2  # lookaround, backreferences, conditional, atomic and possessive groups
    if op is sre.GROUPREF:
        return f"(?i:\\g<{av}>)" if flags & sre.SRE_FLAG_IGNORECASE else f"(?:\\g<{av}>)"
    if op is sre.GROUPREF_EXISTS:
        group, yes, no = av
        no_text = "" if no is None else "|" + _sequence(no, flags, tail, linear)
        return f"(?({group}){_sequence(yes, flags, tail, linear)}{no_text})"
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        direction, items = av
        kind = ("=" if op is sre.ASSERT else "!") if direction == 1 else ("<=" if op is sre.ASSERT else "<!")
        return f"(?{kind}{_sequence(items, flags, False, linear)})"
    if op is sre.ATOMIC_GROUP:
        return f"(?>{_sequence(av, flags, False, linear)})"
    raise SchemaError(f"pattern construct {op} cannot be checked")


def _at(code: Any, flags: int, tail: bool, linear: bool) -> str:
    if code is sre.AT_BEGINNING_STRING or (code is sre.AT_BEGINNING and not flags & sre.SRE_FLAG_MULTILINE):
        return "\\A"
    if code is sre.AT_BEGINNING:
        return "(?m:^)"  # at the start or after a newline, in both
    if code is sre.AT_END_STRING:
        return "\\z" if linear else "\\Z"
    if code is sre.AT_END and flags & sre.SRE_FLAG_MULTILINE:
        return "(?m:$)"  # at the end or before a newline, in both
    if code is sre.AT_END and (tail or not linear):
        return "(?:\\n?\\z)" if linear else "(?=\\n?\\Z)"  # Python's $ also matches before a final newline
    if code is sre.AT_BOUNDARY and flags & sre.SRE_FLAG_ASCII and linear:
        return "\\b"
    if code in (sre.AT_BOUNDARY, sre.AT_NON_BOUNDARY) and not linear:
        # Python's, with its \w (never between two non-word characters; neither in an empty string)
        word = _class([(sre.CATEGORY, sre.CATEGORY_WORD)], False, flags, linear)
        if code is sre.AT_BOUNDARY:
            return f"(?:(?<={word})(?!{word})|(?<!{word})(?={word}))"
        return f"(?:(?<={word})(?={word})|(?<!{word})(?!{word})(?:(?<=(?s:.))|(?=(?s:.))))"
    raise _NoRE2


_CATEGORIES = {
    sre.CATEGORY_DIGIT: ("d", False),
    sre.CATEGORY_NOT_DIGIT: ("d", True),
    sre.CATEGORY_SPACE: ("s", False),
    sre.CATEGORY_NOT_SPACE: ("s", True),
    sre.CATEGORY_WORD: ("w", False),
    sre.CATEGORY_NOT_WORD: ("w", True),
}


def _class(items: Any, negate: bool, flags: int, linear: bool) -> str:
    """A character, or a set of them, as explicit code points: neither RE2's nor the regex
    module's case folding and Unicode tables are Python's, so neither is used."""
    ascii_only = bool(flags & sre.SRE_FLAG_ASCII)
    ranges: list[tuple[int, int]] = []
    python = []  # the same set in Python's syntax
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            ranges.append((av, av))
            python.append(f"\\U{av:08x}")
        elif op is sre.RANGE:
            ranges.append(av)
            python.append(f"\\U{av[0]:08x}-\\U{av[1]:08x}")
        elif op is sre.CATEGORY and av in _CATEGORIES:
            name, complement = _CATEGORIES[av]
            found = _category(name, ascii_only)
            ranges.extend(_complement(found) if complement else found)
            python.append("\\" + (name.upper() if complement else name))
        else:
            raise SchemaError(f"pattern construct {op} cannot be checked")
    if flags & sre.SRE_FLAG_IGNORECASE:  # the set Python's case-insensitive matching gives
        literals = [av for op, av in items if op is sre.LITERAL]
        quick = None
        # (CPython's re does not match a cased character past U+FFFF in a class with others, case-
        # insensitively: such a class is left to the scan, which has that behaviour)
        if not negate and not ascii_only and len(literals) == len(items):
            if len(literals) == 1 or max(literals) <= 0xFFFF:
                quick = _folded_literals(tuple(literals))
        if quick is not None:
            ranges = list(quick)
        else:
            ranges, negate = list(_folded("[^" if negate else "[", "".join(python), ascii_only)), False
    code = "\\x{{{:x}}}" if linear else "\\U{:08x}"
    merged = _merged(ranges)
    upper = merged[0][0] if merged else 0
    if linear and not negate and 65 <= upper <= 90 and merged == [(upper, upper), (upper + 32, upper + 32)]:
        # RE2 turns [Kk] into a case-folded k, which in an alternation also matches the Kelvin sign
        return f"(?:[{code.format(merged[0][0])}]|[{code.format(merged[1][0])}])"
    body = "".join(code.format(a) if a == b else code.format(a) + "-" + code.format(b) for a, b in merged)
    if not body:  # an empty class: neither has []
        return "(?s:.)" if negate else "[^" + code.format(0) + "-" + code.format(0x10FFFF) + "]"
    return f"[^{body}]" if negate else f"[{body}]"


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _complement(ranges: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    out, next_low = [], 0
    for low, high in ranges:
        if low > next_low:
            out.append((next_low, low - 1))
        next_low = high + 1
    if next_low <= 0x10FFFF:
        out.append((next_low, 0x10FFFF))
    return out


@cache
def _category(name: str, ascii_only: bool) -> tuple[tuple[int, int], ...]:
    """The code points ``\\d``, ``\\s`` or ``\\w`` match in Python (its Unicode tables), as ranges:
    shipped in :mod:`gitrecords._unicode_classes` for the Unicode version they were made with
    (asking ``re`` about every code point took 106 ms of each process that checks a pattern)."""
    from . import _unicode_classes

    if _unicode_classes.UNIDATA_VERSION == unicodedata.unidata_version:
        return _unicode_classes.CLASSES[name, ascii_only]
    return _asked_category(name, ascii_only)


def _asked_category(name: str, ascii_only: bool) -> tuple[tuple[int, int], ...]:
    return _matched(f"\\{name}", "a" if ascii_only else "")


def unicode_classes_source() -> str:
    """The text of ``gitrecords/_unicode_classes.py`` for this Python's Unicode tables."""
    lines = [
        'r"""The code points Python\'s ``re`` matches with ``\\d``, ``\\s`` and ``\\w`` (and with the ASCII',
        "flag), as ranges, for one version of Unicode; made by ``_patterns.unicode_classes_source()``:",
        "",
        "    python -c 'from gitrecords._patterns import *; print(unicode_classes_source(), end=\"\")' \\",
        "        > gitrecords/_unicode_classes.py && ruff format gitrecords/_unicode_classes.py",
        '"""',
        "",
        f"UNIDATA_VERSION = {unicodedata.unidata_version!r}",
        "",
        "CLASSES: dict[tuple[str, bool], tuple[tuple[int, int], ...]] = {",
    ]
    for name in "dsw":
        for ascii_only in (False, True):
            ranges = ", ".join(f"({a}, {b})" for a, b in _asked_category(name, ascii_only))
            lines.append(f"    ({name!r}, {ascii_only}): ({ranges},),")
    lines.append("}")
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=1024)
def _folded(opening: str, body: str, ascii_only: bool) -> tuple[tuple[int, int], ...]:
    """The code points the class ``opening + body + "]"`` matches case-insensitively in Python."""
    return _matched(opening + body + "]", "ai" if ascii_only else "i")


def _folded_literals(codes: tuple[int, ...]) -> tuple[tuple[int, int], ...] | None:
    """What ``_folded`` gives for a class of literal characters, from the case tables Python's
    ``re`` itself matches with (``_sre.unicode_tolower``, ``re._casefix``), not from a scan of
    every code point (28 ms each: a pattern of 1,000 distinct characters took 28 s to check);
    None where this Python does not have those tables. A character matches a cased literal
    when its lowercase is the literal's, or one of the extra cases of the literal's."""
    tables = _case_tables()
    if tables is None:
        return None
    tolower, iscased, inverse, extra = tables
    found: set[int] = set()
    for code in codes:
        if not iscased(code):
            found.add(code)
            continue
        low = tolower(code)
        targets = {low, *extra.get(low, ())}
        # a character whose lowercase is a target: a target itself, or one that lowercases to it
        for target in targets:
            for candidate in (target, *inverse.get(target, ())):
                if tolower(candidate) in targets:
                    found.add(candidate)
    return tuple((code, code) for code in sorted(found))


@cache
def _case_tables() -> tuple[Callable[[int], int], Callable[[int], bool], dict[int, list[int]], Any] | None:
    """(lowercase, is cased, the code points whose lowercase is each code point, extra cases) as
    Python's ``re`` has them (private to it: None where they are missing). Built once (0.2 s)."""
    try:
        import _sre
        from re import _casefix  # type: ignore[attr-defined]

        tolower, iscased, extra = _sre.unicode_tolower, _sre.unicode_iscased, _casefix._EXTRA_CASES
    except (ImportError, AttributeError):
        return None
    inverse: dict[int, list[int]] = {}
    for code in range(0x110000):
        low = tolower(code)
        if low != code:
            inverse.setdefault(low, []).append(code)
    return tolower, iscased, inverse, extra


def _matched(text: str, flags: str) -> tuple[tuple[int, int], ...]:
    """The code points Python's ``re`` matches with the one-character pattern ``text``, as ranges."""
    pattern = f"(?{flags}:{text})+" if flags else f"(?:{text})+"
    return tuple((m.start(), m.end() - 1) for m in re.finditer(pattern, _every_character()))


@lru_cache(maxsize=1)
def _every_character() -> str:
    """Every code point, in order (UTF-32 built a plane at a time: 30 ms, not 150 ms for chr())."""
    words = array.array("H", bytes(4 * 0x110000))
    for plane in range(17):
        start = plane * 0x20000
        words[start : start + 0x20000 : 2] = array.array("H", range(0x10000))
        words[start + 1 : start + 0x20000 : 2] = array.array("H", [plane]) * 0x10000
    return words.tobytes().decode("utf-32-le", "surrogatepass")
