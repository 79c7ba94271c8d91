"""A slow regular expression cannot stall the store (issue 16, item 2).

``pattern`` and ``patternProperties`` keep Python's dialect but run on RE2
(linear time); what RE2 cannot express runs on the regex module under a time
limit. Validation of a create happens before the write lock is taken, so a
writer checking a hostile pattern never blocks an unrelated writer. Inline
``$schema`` objects can be refused with the ``inline_schemas`` setting.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import git

from gitrecords import Record, Repository, ValidationError
from gitrecords import _patterns as schema_module
from gitrecords.errors import BatchValidationError, SchemaError
from gitrecords.schema import INLINE_SCHEMAS_REFUSED, PatternTimeoutError, SchemaStore, pointer

#: exponential for a backtracking engine: 2**n steps for "a" * n + "!" (18 s at n = 28 before the fix)
NESTED = "^(a+)+$"
#: exponential for a backtracking engine too, and RE2 cannot run it (a lookahead)
NESTED_LOOKAHEAD = "^(?=a)(a|aa)+$"
#: the longest a test waits for something that must finish in well under a second
CAP = 20.0


def inline(pattern: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"t": {"type": "string", "pattern": pattern}}}


def within(seconds: float, call: Any) -> Any:
    """``call()`` in a thread; fails the test if it has not returned after ``seconds``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as err:  # handed back to the test
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# -- linear time --------------------------------------------------------------------


@pytest.mark.parametrize("minters", [(), ("recid",)])
def test_a_nested_quantifier_is_checked_in_linear_time(repo: Repository, minters: tuple[str, ...]) -> None:
    schema = inline(NESTED)
    with pytest.raises(ValidationError) as info:
        within(
            CAP,
            lambda: Record.create({"$schema": schema, "t": "a" * 39 + "!"}, repo=repo, pid_minters=minters),
        )
    assert info.value.message == f"{'a' * 39 + '!'!r} does not match {NESTED!r}"
    assert pointer(info.value) == "/t"
    record = within(
        CAP, lambda: Record.create({"$schema": schema, "t": "a" * 40}, repo=repo, pid_minters=minters)
    )
    assert Record.get_record(record.id, repo=repo)["t"] == "a" * 40


def test_a_megabyte_against_a_nested_quantifier(repo: Repository) -> None:
    schema = inline(NESTED)
    with pytest.raises(ValidationError):
        within(CAP, lambda: Record.create({"$schema": schema, "t": "a" * 1_000_000 + "!"}, repo=repo))


def test_pattern_properties_and_additional_properties_in_linear_time(repo: Repository) -> None:
    schema = {
        "type": "object",
        "properties": {"$schema": {}},
        "patternProperties": {NESTED: {"type": "integer"}},
        "additionalProperties": False,
    }
    key = "a" * 40 + "!"
    with pytest.raises(ValidationError) as info:
        within(CAP, lambda: Record.create({"$schema": schema, key: 1}, repo=repo))
    assert info.value.message == f"{key!r} does not match any of the regexes: {NESTED!r}"
    with pytest.raises(ValidationError) as info:
        within(CAP, lambda: Record.create({"$schema": schema, "a" * 40: "one"}, repo=repo))
    assert info.value.message == "'one' is not of type 'integer'"
    within(CAP, lambda: Record.create({"$schema": schema, "a" * 40: 1}, repo=repo))


def test_unevaluated_properties_in_linear_time(repo: Repository) -> None:
    schema = {
        "type": "object",
        "properties": {"$schema": {}},
        "allOf": [{"patternProperties": {NESTED: {"type": "integer"}}}],
        "unevaluatedProperties": False,
    }
    key = "a" * 40 + "!"
    with pytest.raises(ValidationError) as info:
        within(CAP, lambda: Record.create({"$schema": schema, key: 1}, repo=repo))
    assert info.value.message == f"Unevaluated properties are not allowed ({key!r} was unexpected)"
    within(CAP, lambda: Record.create({"$schema": schema, "a" * 40: 1}, repo=repo))


def test_a_bulk_import_checks_store_patterns_in_linear_time(repo: Repository) -> None:
    """Bulk imports decide validity with jsonschema-rs, whose "pattern" is the same matcher."""
    repo.put_schema("t.json", inline(NESTED))
    items = [{"$schema": "t.json", "t": "a" * 40}, {"$schema": "t.json", "t": "a" * 40 + "!"}]
    with pytest.raises(BatchValidationError) as info:
        within(CAP, lambda: repo.import_records(items, workers=1))
    assert [(p[0], p[2]) for p in info.value.problems] == [(1, "/t")]


def test_answers_kept_per_pattern_are_re2_s_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A matcher keeps RE2's answers for short strings (values repeat from record to record), at
    most _SEEN_KEPT of them; every answer is re.search's, before and after it is kept."""
    monkeypatch.setattr(schema_module, "_SEEN_KEPT", 50)
    pattern = r"^[0-9]{4}(-[0-9]{2})?$"
    found = schema_module.matcher(pattern)
    rng = random.Random(7)
    texts = [rng.choice(["2020", "2020-01", "20x0", "1999-1", "0000-00", "x" * 300]) for _ in range(200)]
    texts += [f"{n:04d}" for n in range(120)] + [str(n) for n in range(120)]
    for text in texts + texts:
        assert found.search(text) == (re.search(pattern, text) is not None)
        assert len(found.seen) <= 50
    assert "x" * 300 not in found.seen  # long strings are not kept


def test_jsonschema_rs_alone_is_linear_for_a_nested_quantifier() -> None:
    """jsonschema-rs's own regex engine (not used for "pattern" by gitrecords) is not slow here either."""
    import jsonschema_rs

    validator = jsonschema_rs.Draft202012Validator(inline(NESTED))
    assert within(CAP, lambda: validator.is_valid({"t": "a" * 40 + "!"})) is False


# -- the time limit for patterns that need backtracking ------------------------------


def test_a_lookahead_still_works_for_normal_input(repo: Repository) -> None:
    schema = inline("^(?=.*[0-9])[a-z0-9]+$")
    assert schema_module.matcher("^(?=.*[0-9])[a-z0-9]+$").linear is None  # RE2 refuses it
    Record.create({"$schema": schema, "t": "abc1"}, repo=repo)
    with pytest.raises(ValidationError) as info:
        Record.create({"$schema": schema, "t": "abc"}, repo=repo)
    assert info.value.message == "'abc' does not match '^(?=.*[0-9])[a-z0-9]+$'"


def test_a_backreference_still_works_for_normal_input(repo: Repository) -> None:
    schema = inline(r"^(?P<c>\w)(?P=c)$")
    Record.create({"$schema": schema, "t": "éé"}, repo=repo)
    with pytest.raises(ValidationError):
        Record.create({"$schema": schema, "t": "ab"}, repo=repo)


@pytest.mark.parametrize("minters", [(), ("recid",)])
def test_a_pattern_not_checked_in_time_is_a_validation_error(
    repo: Repository, minters: tuple[str, ...]
) -> None:
    value = "a" * 40 + "!"
    started = time.monotonic()
    with pytest.raises(PatternTimeoutError) as info:
        within(
            CAP,
            lambda: Record.create(
                {"$schema": inline(NESTED_LOOKAHEAD), "t": value}, repo=repo, pid_minters=minters
            ),
        )
    assert time.monotonic() - started < CAP
    assert isinstance(info.value, ValidationError)
    assert pointer(info.value) == "/t"
    assert info.value.message == (
        f"{value[:37] + '...'!r} could not be checked against the pattern {NESTED_LOOKAHEAD!r} "
        "within 1 s (a pattern that needs backtracking has a time limit)"
    )
    assert git(repo, "rev-list", "--count", "main").strip() == "1"  # nothing was written


def test_the_cli_names_the_field_and_the_pattern(repo: Repository, gr: Any) -> None:
    data = {"$schema": inline(NESTED_LOOKAHEAD), "t": "a" * 40 + "!"}
    result = gr(repo, "create", input=json.dumps(data))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: stdin: new record: /t: ")
    assert f"could not be checked against the pattern {NESTED_LOOKAHEAD!r} within 1 s" in result.stderr


def test_a_timeout_under_not_is_still_reported() -> None:
    """A check that ran out of time is never read as "did not match" (which ``not`` would accept)."""
    store = SchemaStore({})
    schema = {"properties": {"list": {"items": {"not": {"pattern": NESTED_LOOKAHEAD}}}}}
    errors = within(CAP, lambda: list(store.iter_errors({"list": ["fine", "a" * 40 + "!"]}, schema)))
    assert [(type(e), pointer(e)) for e in errors] == [(PatternTimeoutError, "/list/1")]


def test_the_time_limit_is_shared_by_one_validation() -> None:
    store = SchemaStore({})
    schema = {"type": "array", "items": {"pattern": NESTED_LOOKAHEAD}}
    started = time.monotonic()
    errors = within(CAP, lambda: list(store.iter_errors(["a" * 40 + "!"] * 20, schema)))
    assert len(errors) == 20 and all(isinstance(e, PatternTimeoutError) for e in errors)
    # one limit for the twenty values, not twenty of them (CPU time: give a loaded machine room)
    assert time.monotonic() - started < 10


def test_a_slow_match_is_not_run_again_under_the_lock(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With minting, the data is validated before the lock and again under it: a slow match is
    remembered between the two."""
    calls: list[str] = []
    backtrack = schema_module._Matcher._backtrack

    def counted(self: Any, text: str, key: bool, now: float) -> bool:
        calls.append(text)
        time.sleep(0.01)  # a slow match
        return backtrack(self, text, key, now)

    monkeypatch.setattr(schema_module._Matcher, "_backtrack", counted)
    monkeypatch.setattr(schema_module, "_SLOW_MATCHES", {})
    schema = inline("^(?=x)|b$")
    Record.create({"$schema": schema, "t": "ab"}, repo=repo, pid_minters=["recid"])
    assert calls == ["ab"]


# -- a concurrent writer -------------------------------------------------------------

WRITER = """
import sys, time
import gitrecords._patterns
from gitrecords import Record, Repository

gitrecords._patterns.BACKTRACKING_TIME_LIMIT = 120  # this writer may take its time: others must not wait
repo = Repository(sys.argv[1])
schema = {"properties": {"t": {"not": {"pattern": %(pattern)r}}}}
print("validating", flush=True)
started = time.monotonic()
Record.create({"$schema": schema, "t": "a" * int(sys.argv[2]) + "!"}, repo=repo, pid_minters=["recid"])
print(f"done {time.monotonic() - started:.2f}", flush=True)
"""


def calibrated_length(seconds: float) -> int:
    """The length of "a"...! that NESTED_LOOKAHEAD takes about ``seconds`` of CPU to refuse."""
    matcher = schema_module._Matcher(NESTED_LOOKAHEAD)
    n = 20
    while True:
        started = time.thread_time()
        matcher.backtracking.search("a" * n + "!")
        took = time.thread_time() - started
        if took > 0.05 or n >= 40:
            break
        n += 2
    growth = (1 + math.sqrt(5)) / 2  # the steps grow like the Fibonacci numbers
    return min(48, n + max(0, math.ceil(math.log(seconds / max(took, 1e-6), growth))))


def test_a_writer_checking_a_slow_pattern_does_not_block_another(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "shared.git")
    length = calibrated_length(6.0)
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER % {"pattern": NESTED_LOOKAHEAD}))
    slow = subprocess.Popen(
        [sys.executable, str(script), str(repo.path), str(length)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert slow.stdout is not None
        assert slow.stdout.readline().strip() == "validating"
        time.sleep(0.5)  # the slow writer is validating now
        started = time.monotonic()
        other = Record.create({"title": "unrelated"}, repo=repo, pid_minters=["recid"])
        waited = time.monotonic() - started
        still_validating = slow.poll() is None
        out, _ = slow.communicate(timeout=120)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    assert slow.returncode == 0, out
    slow_took = float(out.split()[-1])
    assert still_validating, f"the slow writer finished first ({slow_took} s): nothing was measured"
    # before the fix the other writer waited for the whole validation (the old cost: slow_took)
    assert waited < 3.0 and waited < slow_took / 2, (waited, slow_took)
    assert other["control_number"] == "1"
    assert git(repo, "rev-list", "--count", "main").strip() == "3"  # init, the other, the slow one


# -- inline schemas ------------------------------------------------------------------


def test_inline_schemas_are_allowed_by_default(repo: Repository) -> None:
    assert repo.config["inline_schemas"] is True
    Record.create({"$schema": {"type": "object"}, "title": "x"}, repo=repo)


def test_the_setting_refuses_an_inline_schema(tmp_path: Path, gr: Any) -> None:
    repo = Repository.init(tmp_path / "shared.git", config={"inline_schemas": False})
    with pytest.raises(SchemaError) as info:
        Record.create({"$schema": {"type": "object"}, "title": "x"}, repo=repo, pid_minters=["recid"])
    assert str(info.value) == INLINE_SCHEMAS_REFUSED
    assert "\n" not in INLINE_SCHEMAS_REFUSED
    result = gr(repo, "create", input='{"$schema": {"type": "object"}, "title": "x"}')
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: stdin: new record: /$schema: {INLINE_SCHEMAS_REFUSED}\n",
    )
    # a schema of the store is still fine, and nothing else was written
    repo.put_schema("t.json", {"type": "object"})
    Record.create({"$schema": "t.json", "title": "x"}, repo=repo)
    assert git(repo, "rev-list", "--count", "main").strip() == "3"


def test_a_store_built_with_the_setting_refuses_inline_schemas() -> None:
    """Where validation goes through a SchemaStore alone (bulk import, CI checks), it refuses too."""
    store = SchemaStore({"t.json": {"type": "object"}}, inline_schemas=False)
    with pytest.raises(SchemaError, match="inline_schemas"):
        list(store.iter_errors({}, {"type": "object"}))
    assert list(store.iter_errors({}, "t.json")) == []


# -- the dialect stays Python's ------------------------------------------------------

#: letters whose case folding differs between engines, Unicode digits and spaces, newlines
CHARS = [*"abkKsSéÉß_1 \n\t", "\u212a", "\u017f", "\u0130", "\u0131", "\u0345", "\u03b9", "٣", "²", "\u00a0"]
ATOMS = [
    "a", "k", "s", "é", "ß", "\u0130", ".", r"\d", r"\D", r"\w", r"\W", r"\s", r"\S", "[ab]", "[^a]", "[a-k]",
    r"[^\W\d_]", r"[\d\s]", "[Kk]", r"\u00e9", r"\x41", r"\.", "(?a:\\w)", "(?a:\\b)", "(?i:k)", "(?i:s)",
    "(?ai:k)", "(?m:^)", "(?m:$)", "(?=a)", "(?!b)", "(?<=a)", r"\b", r"\B", r"(a)\1", "(?>a+)", "a*+",
    "(a)?(?(1)b|c)",
]  # fmt: skip


def random_pattern(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.35:
        return rng.choice(ATOMS)
    if roll < 0.5:
        return random_pattern(rng, depth + 1) + random_pattern(rng, depth + 1)
    if roll < 0.6:
        return f"({random_pattern(rng, depth + 1)}|{random_pattern(rng, depth + 1)})"
    if roll < 0.75:
        return f"(?:{random_pattern(rng, depth + 1)})" + rng.choice(["*", "+", "?", "{2}", "{1,3}", "*?"])
    if roll < 0.8:
        return f"(?i:{random_pattern(rng, depth + 1)})"
    if roll < 0.9:
        return rng.choice(["^", "$", r"\A", r"\Z"])
    return random_pattern(rng, depth + 1)


@pytest.mark.parametrize("seed", range(4))
def test_the_matcher_answers_as_python_re_does(seed: int) -> None:
    """RE2 (or the regex module) with Python's meaning: classes, case folding, anchors and all."""
    rng = random.Random(seed)
    compared = 0
    for _ in range(300):
        pattern = random_pattern(rng)
        pattern = rng.choice(["", "^", "(?i)", "(?m)", "(?s)", "(?a)"]) + pattern + rng.choice(["", "$"])
        try:
            python = re.compile(pattern)
        except re.error:
            continue
        matcher = schema_module._Matcher(pattern)
        for _ in range(15):
            text = "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 6)))
            assert matcher.search(text) is (python.search(text) is not None), (pattern, text)
            compared += 1
    assert compared > 1000


@pytest.mark.parametrize(
    ("pattern", "engine"),
    [
        (r"^\d{4}-\d{2}-\d{2}$", "re2"),
        (r"^[^\W\d_]+$", "re2"),
        (r"(?i)^[0-9a-f]{8}$", "re2"),
        (r"^a$", "re2"),
        (r"^a$\n", "regex"),  # a $ that is not last
        (r"\bword\b", "regex"),  # Python's \b is Unicode's
        (r"(?a)\bword\b", "re2"),
        ("(?=a)", "regex"),
        ("a{1001}", "regex"),  # RE2 counts up to 1000
    ],
)
def test_which_engine_runs_a_pattern(pattern: str, engine: str) -> None:
    matcher = schema_module._Matcher(pattern)
    assert ("re2" if matcher.linear is not None else "regex") == engine


EVALUATED = {
    "type": "object",
    "properties": {"a": {"pattern": "^x"}},
    "allOf": [{"patternProperties": {"^p": {"type": "integer"}}}],
    "if": {"required": ["i"]},
    "then": {"patternProperties": {"^i$": {}}},
    "unevaluatedProperties": {"type": "string", "minLength": 2, "pattern": "^q"},
}


@pytest.mark.parametrize(
    "schema",
    [
        {
            "type": "object",
            "properties": {"a": {"pattern": "^x"}},
            "patternProperties": {"^p": {"type": "integer"}, "^P2": {"minimum": 5}},
            "additionalProperties": False,
        },
        {"properties": {"a": {"pattern": "^x"}}, "additionalProperties": False},
        EVALUATED,
        {**EVALUATED, "$schema": "https://json-schema.org/draft/2019-09/schema"},
        {**EVALUATED, "unevaluatedProperties": False},
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "patternProperties": {"^p": {"type": "integer"}},
        },
    ],
)
def test_messages_are_jsonschemas(schema: dict[str, Any]) -> None:
    data = {"a": "y", "p1": "no", "P2": 1, "q": 1, "r": "r", "i": 0}
    ours = sorted(e.message for e in SchemaStore({}).iter_errors(data, schema))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    theirs = sorted(e.message for e in cls(schema).iter_errors(data))
    assert ours == theirs and ours


def test_a_pattern_python_refuses_is_a_schema_error() -> None:
    """Draft 4 does not check patternProperties keys as regexes: such a key is a schema error."""
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "patternProperties": {"(": {}}}
    with pytest.raises(SchemaError, match="is not a valid regular expression"):
        list(SchemaStore({}).iter_errors({"x": 1}, schema))


def test_inline_schemas_off_is_enforced_by_bulk_import_and_validate(tmp_path: Path) -> None:
    """The setting reaches every validator: a bulk import and `validate` (so the pre-receive hook)
    refuse an inline `$schema` object as the record API does."""
    from gitrecords import checks, layout

    inline = {"$schema": {"type": "object"}, "title": "inline"}
    refusing = Repository.init(tmp_path / "refusing.git", config={"inline_schemas": False})
    with pytest.raises(BatchValidationError) as raised:
        refusing.import_records([inline])
    assert [p[2] for p in raised.value.problems] == ["/$schema"]
    # a record written while inline schemas were allowed, then the setting changes
    repo = Repository.init(tmp_path / "data.git")
    record = Record.create(inline, repo=repo)
    assert checks.validate(repo, "HEAD").ok
    settings = {**repo.config, "inline_schemas": False}
    repo.writer.write_files({layout.CONFIG_FILE: layout.dumps(settings)}, message="no inline schemas")
    report = checks.validate(repo, "HEAD")
    assert [(p.record_id, p.pointer) for p in report.problems] == [(str(record.id), "/$schema")]


def test_the_shipped_unicode_classes_are_what_python_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """``\\d``, ``\\s`` and ``\\w`` come from a table shipped for one Unicode version (asking ``re``
    about every code point took 106 ms of every process that checks a pattern); under that
    version the table must be what ``re`` matches, and under another one ``re`` is asked."""
    import unicodedata

    from gitrecords import _patterns, _unicode_classes

    if _unicode_classes.UNIDATA_VERSION != unicodedata.unidata_version:
        pytest.skip("this Python's Unicode is not the shipped table's (made again by unicode_classes_source)")
    for name in "dsw":
        for ascii_only in (False, True):
            assert _unicode_classes.CLASSES[name, ascii_only] == _patterns._asked_category(name, ascii_only)
    asked: list[tuple[str, bool]] = []
    monkeypatch.setattr(_unicode_classes, "UNIDATA_VERSION", "0.0.0")

    def ask(name: str, ascii_only: bool) -> tuple[tuple[int, int], ...]:
        asked.append((name, ascii_only))
        return ()

    monkeypatch.setattr(_patterns, "_asked_category", ask)
    _patterns._category.cache_clear()
    try:
        assert _patterns._category("d", False) == ()
        assert asked == [("d", False)]
    finally:
        _patterns._category.cache_clear()


TRICKY_CASES = [
    *range(0x30, 0x3A),
    *range(0x41, 0x5B),
    *range(0x61, 0x7B),
    0xB5,
    0xDF,
    0x130,
    0x131,
    0x17F,
    0x1C4,
    0x1C5,
    0x1C6,
    0x345,
    0x390,
    0x3B9,
    0x3C2,
    0x3C3,
    0x1E9B,
    0x1E9E,
    0x1FBE,
    0x2126,
    0x212A,
    0x212B,
    0xFB05,
    0xFB06,
    0x10400,
    0x10428,
    0x4E00,
]


def test_case_insensitive_literals_are_folded_as_python_folds_them() -> None:
    """Literals under (?i) are folded from re's own case tables, not by a scan of every code
    point each (28 ms a character: a 1,000-character pattern took 28 s before the first match):
    the same sets as the scan, for the characters whose cases are odd (the Kelvin and Angstrom
    signs, dotted and dotless i, long s, final sigma, title-case digraphs)."""
    for code in TRICKY_CASES:
        quick = schema_module._folded_literals((code,))
        assert quick is not None
        scanned = schema_module._folded("[", f"\\U{code:08x}", False)
        assert schema_module._merged(list(quick)) == schema_module._merged(list(scanned)), hex(code)
    together = schema_module._folded_literals((0x6B, 0x53, 0x3C3))
    scanned = schema_module._folded("[", "\\U0000006b\\U00000053\\U000003c3", False)
    assert schema_module._merged(list(together or ())) == schema_module._merged(list(scanned))


def test_a_long_case_insensitive_pattern_scans_no_code_points(monkeypatch: pytest.MonkeyPatch) -> None:
    def scan(*args: Any) -> Any:
        raise AssertionError("every code point scanned for a class of literals")

    monkeypatch.setattr(schema_module, "_matched", scan)
    pattern = "(?i)title: " + "".join(chr(0x4E00 + i) for i in range(300))
    assert schema_module.translate(pattern, linear=True) is not None


def test_a_class_with_a_cased_character_past_the_bmp_matches_as_python_matches_it(
    repo: Repository,
) -> None:
    """CPython's re does not match a cased character past U+FFFF in a case-insensitive class with
    other characters: (?i)^[\\U00010400a]$ refuses "\\U00010400". The folded tables alone would
    accept it; such classes are left to the scan, which agrees with re."""
    pattern = "(?i)^[\U00010400a]$"
    schema = {"type": "object", "properties": {"t": {"type": "string", "pattern": pattern}}}
    for value in ("\U00010400", "\U00010428", "a", "A"):
        expected = re.search(pattern, value) is not None
        try:
            Record.create({"$schema": schema, "t": value}, repo=repo)
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == expected, repr(value)
