"""The schema store, validation, and safe ``$ref`` resolution.

Schemas are plain JSON files under the store folder (``schemas/`` by default)
of the branch, so every clone validates with the schemas versioned with the
data. A record's ``$schema`` may be an inline schema, a path in the store
(``datacite/v4.json`` or ``schemas/datacite/v4.json``) or the ``$id`` URI of a
schema in the store. ``$ref``s resolve only inside the store (and local
``#/...`` pointers) unless remote references are explicitly allowed.

``pattern`` and ``patternProperties`` keep the dialect of Python's ``re`` (what
jsonschema uses, and what ``check_schema`` accepts), but never run on its
backtracking engine: a pattern is parsed by ``re``'s own parser and rewritten
for RE2, which matches in time linear in the input. The few constructs RE2 has
no equivalent for run on the ``regex`` module under a time limit per
validation (:data:`BACKTRACKING_TIME_LIMIT`); see docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from . import layout
from .errors import InvalidRecordError, RefResolutionError, SchemaError

if TYPE_CHECKING:
    import referencing
    from jsonschema.exceptions import ValidationError

    from ._patterns import BACKTRACKING_TIME_LIMIT as BACKTRACKING_TIME_LIMIT
    from ._patterns import PatternTimeoutError as PatternTimeoutError

# jsonschema, jsonschema-rs, referencing, jsonref and the pattern engines (_patterns: RE2,
# regex) are imported by the functions that validate or resolve: a command that only reads
# records (``gitrecords get``) does not pay 100 ms for them at start-up (issue 21).


def __getattr__(name: str) -> Any:
    """``PatternTimeoutError`` and ``BACKTRACKING_TIME_LIMIT``, from :mod:`gitrecords._patterns`
    (which imports jsonschema) when asked for."""
    if name in ("PatternTimeoutError", "BACKTRACKING_TIME_LIMIT"):
        from . import _patterns

        return getattr(_patterns, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DRAFT202012_URI = "https://json-schema.org/draft/2020-12/schema"

#: schemas in the store without an ``$id`` are known as gitrecords:schemas/<path>
STORE_SCHEME = "gitrecords"
#: records of a schema that jsonschema checks too after jsonschema-rs found them valid, before
#: jsonschema-rs alone is believed (per schema store and process; bulk imports count the same)
CROSS_CHECKS = 32


def _register_scheme(scheme: str) -> None:
    """Let urljoin resolve relative references under ``scheme`` (e.g. ``local://``)."""
    for _list in (urllib.parse.uses_relative, urllib.parse.uses_netloc):
        if scheme and scheme not in _list:
            _list.append(scheme)


_register_scheme(STORE_SCHEME)


def store_uri(path: str) -> str:
    return f"{STORE_SCHEME}:///{path}"


#: the refusal when the repository's ``inline_schemas`` setting is false
INLINE_SCHEMAS_REFUSED = (
    'inline $schema objects are not allowed here ("inline_schemas": false in gitrecords.json): '
    "add the schema to the schema store ('gitrecords schema add FILE', repo.put_schema in Python) "
    "and name it by its path"
)


class FastCheck:
    """jsonschema-rs's word on the records of one schema (a :meth:`SchemaStore.fast_check`, or
    None where it has none): believed alone once the first :data:`CROSS_CHECKS` records it
    found valid were found valid by jsonschema too, and dropped at the first disagreement."""

    def __init__(self, check: Callable[[Any], bool] | None) -> None:
        self.check = check
        self.cross_checks = CROSS_CHECKS

    def verdict(self, data: Any) -> bool | None:
        """True: ``data`` is valid on jsonschema-rs's word alone. False: jsonschema-rs found it
        valid and jsonschema checks it too (a cross-check: tell :meth:`refuted` if jsonschema
        disagrees). None: jsonschema decides."""
        if self.check is None or not self.check(data):
            return None
        if self.cross_checks <= 0:
            return True
        self.cross_checks -= 1
        return False

    def refuted(self, verdict: bool | None) -> None:
        """jsonschema refused (or could not check) a record that came with ``verdict``: when that
        was a cross-check, jsonschema-rs disagreed, and it is no longer asked."""
        if verdict is False:
            self.check = None


class SchemaStore:
    """The schemas of one tree of the repository, keyed by ``$id`` and by path.

    With ``inline_schemas=False`` a ``$schema`` object (rather than a name in the
    store) is refused with :class:`SchemaError` (the ``inline_schemas`` setting).
    """

    def __init__(
        self,
        schemas: Mapping[str, Any],
        schemas_dir: str = "schemas",
        allow_remote_refs: bool = False,
        inline_schemas: bool = True,
    ) -> None:
        self.schemas_dir = schemas_dir
        self.allow_remote_refs = allow_remote_refs
        self.inline_schemas = inline_schemas
        self.by_path: dict[str, Any] = dict(schemas)
        self.by_uri: dict[str, Any] = {}
        import referencing

        resources = []
        #: (path, the other schema's path, message) of each schema whose own id another schema
        #: of the store already answers to
        self.collisions: list[tuple[str, str, str]] = []
        # what a record's "$schema" may say to name each schema: its store URI and its path
        claimed = {name: path for path in self.by_path for name in self._names(path)}
        for path, schema in sorted(self.by_path.items()):
            uri = store_uri(path)
            self.by_uri.setdefault(uri, schema)
            resource = _resource(schema, path)
            resources.append((uri, resource))
            # its own id: "$id", or "id" in a draft 3 or 4 schema (invenio's schemas are draft 4)
            own = resource.id() if isinstance(schema, dict) else None
            if isinstance(own, str) and own.rstrip("#"):
                own = own.rstrip("#")
                other = claimed.setdefault(own, path)
                if other != path:
                    # two schemas by one name: records would be checked by whichever came last
                    message = f"its $id {own!r} already names {self.schemas_dir}/{other}: give it its own"
                    self.collisions.append((path, other, message))
                    continue
                self.by_uri[own] = schema
                _register_scheme(urllib.parse.urlsplit(own).scheme)
                resources.append((own, resource))
        self.registry: referencing.Registry = referencing.Registry(retrieve=self._retrieve).with_resources(
            resources
        )
        self._validators: dict[Any, Any] = {}
        self._fast: dict[str, Callable[[Any], bool] | None] = {}
        #: jsonschema-rs's word on single writes, per schema (see :meth:`validate`)
        self._fast_checks: dict[str, FastCheck] = {}
        self._dereferenced: dict[str, Any] = {}

    def _names(self, path: str) -> tuple[str, ...]:
        return (store_uri(path), path, f"{self.schemas_dir}/{path}")

    # -- lookups ---------------------------------------------------------

    def resolve_schema(self, ref: Any) -> tuple[Any, str]:
        """The schema a record's ``$schema`` names, and a cache key for it."""
        if isinstance(ref, dict):
            if not self.inline_schemas:
                raise SchemaError(INLINE_SCHEMAS_REFUSED)
            return ref, "inline:" + hashlib.sha256(layout.dumps(ref)).hexdigest()
        if not isinstance(ref, str):
            raise SchemaError(f"$schema must be a string or an object, not {type(ref).__name__}")
        key = ref.rstrip("#")
        if key in self.by_uri:
            return self.by_uri[key], key
        path = key[len(self.schemas_dir) + 1 :] if key.startswith(self.schemas_dir + "/") else key
        if path in self.by_path:
            return self.by_path[path], store_uri(path)
        if self.allow_remote_refs and key.startswith(("http://", "https://")):
            return self._fetch(key), key
        raise SchemaError(
            f"schema {ref!r} is not in the schema store ({self.schemas_dir}/); add it with "
            "'gitrecords schema add FILE' (repo.put_schema in Python)"
        )

    def _retrieve(self, uri: str) -> referencing.Resource:
        if uri in self.by_uri:
            return _resource(self.by_uri[uri], uri)
        if self.allow_remote_refs and uri.startswith(("http://", "https://")):
            return _resource(self._fetch(uri), uri)
        raise RefResolutionError(
            f"$ref {uri!r} is outside the schema store ({self.schemas_dir}/) "
            "and remote references are not allowed"
        )

    def _fetch(self, uri: str) -> Any:
        import urllib.request  # 7 ms (http, ssl, email) that no command needs at start-up

        try:
            with urllib.request.urlopen(uri, timeout=10) as response:
                return layout.loads(response.read(), what=f"schema {uri}")
        except OSError as err:
            raise RefResolutionError(f"cannot fetch $ref {uri!r}: {err}") from err

    # -- validation ------------------------------------------------------

    def validator(self, schema_ref: Any, format_checker: Any = None, validator_cls: Any = None) -> Any:
        schema, key = self.resolve_schema(schema_ref)
        cache_key = (key, validator_cls, id(format_checker))
        cached = self._validators.get(cache_key)
        if cached is not None and cached[1] is format_checker:
            return cached[0]
        import jsonschema

        from ._patterns import with_safe_patterns

        cls = with_safe_patterns(validator_cls or _validator_for(schema, key))
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as err:
            raise SchemaError(
                f"schema {key} is not a valid schema: {err.message} at {_pointer(err.path)}"
            ) from None
        if key.startswith(f"{STORE_SCHEME}:"):
            schema = _with_base_uri(schema, key)
        validator = cls(schema, registry=self.registry, format_checker=format_checker)
        self._validators[cache_key] = (validator, format_checker)
        return validator

    def iter_errors(
        self, data: Any, schema_ref: Any, format_checker: Any = None, validator_cls: Any = None
    ) -> Iterator[ValidationError]:
        """Every validation error of ``data``; one is a :class:`PatternTimeoutError` when a
        pattern could not be checked in time, wherever it was (even under ``not`` or ``anyOf``)."""
        import referencing.exceptions

        from ._patterns import first_timeout, pattern_budget, swallowed_timeout

        validator = self.validator(schema_ref, format_checker, validator_cls)
        with pattern_budget() as budget:
            first = len(budget.timeouts)
            try:
                errors = list(validator.iter_errors(data))
            except referencing.exceptions.Unresolvable as err:
                raise _ref_error(err) from None
            except RecursionError:
                raise SchemaError(_REF_CYCLE) from None
            except BaseException as err:
                # the same recursion met inside rpds (referencing's Rust maps) comes out as pyo3's
                # PanicException, a BaseException no ``except Exception`` catches
                if _recursion_panic(err):
                    raise SchemaError(_REF_CYCLE) from None
                raise
            if budget.timeouts[first:] and first_timeout(errors) is None:
                errors.append(swallowed_timeout(data, *budget.timeouts[first]))
        yield from errors

    def validate(
        self, data: Any, schema_ref: Any, format_checker: Any = None, validator_cls: Any = None
    ) -> None:
        """Raise the best error of ``data``, or the :class:`PatternTimeoutError` if there is one.

        With jsonschema's own validator classes, jsonschema-rs decides first (:meth:`fast_check`,
        about ten times faster): valid is the answer once the schema's first
        :data:`CROSS_CHECKS` records it found valid were found valid by jsonschema too; anything
        else is decided and worded by jsonschema. A disagreement drops the fast check of that
        schema for good."""
        from jsonschema.exceptions import best_match

        from ._patterns import first_timeout

        fast = verdict = None
        if validator_cls is None and format_checker is None:
            key = self.resolve_schema(schema_ref)[1]
            fast = self._fast_checks.get(key)
            if fast is None:
                fast = self._fast_checks[key] = FastCheck(self.fast_check(schema_ref))
            verdict = fast.verdict(data)
            if verdict:
                return
        try:
            errors = list(self.iter_errors(data, schema_ref, format_checker, validator_cls))
        except SchemaError:
            if fast is not None:
                fast.refuted(verdict)  # e.g. a $ref cycle jsonschema-rs did not mind
            raise
        error = first_timeout(errors) or best_match(errors)
        if error is not None:
            if fast is not None:
                fast.refuted(verdict)  # jsonschema-rs accepted what jsonschema refuses
            raise error

    def fast_check(self, schema_ref: Any, format_checker: Any = None) -> Callable[[Any], bool] | None:
        """A compiled jsonschema-rs check: ``check(data)`` is True when ``data`` is valid.

        It decides validity only: where it says False, :meth:`iter_errors` (jsonschema)
        has the last word and the messages. None where the two could disagree: a format
        checker, remote references allowed, a draft jsonschema-rs does not share,
        ``patternProperties`` (Rust's regex dialect), or a schema it cannot compile.
        ``pattern`` is checked as :meth:`iter_errors` checks it (Python's dialect, run by RE2
        or under the time limit) and ``multipleOf`` by jsonschema's own code (float
        arithmetic). ``$ref`` resolves in the store only.
        """
        if format_checker is not None or self.allow_remote_refs:
            return None
        validator = self.validator(schema_ref)  # a SchemaError is raised as for iter_errors
        _schema, key = self.resolve_schema(schema_ref)
        if key not in self._fast:
            self._fast[key] = self._compile_fast(validator, key)
        return self._fast[key]

    def _compile_fast(self, validator: Any, key: str) -> Callable[[Any], bool] | None:
        import jsonschema_rs

        from ._patterns import SAFE_BASES, pattern_budget

        cls = SAFE_BASES.get(type(validator), type(validator))
        expected = _rust_drafts().get(cls)
        schemas = [validator.schema, *self.by_path.values()]
        if expected is None or any(_mentions(schema, _READ_APART) for schema in schemas):
            return None
        try:
            if jsonschema_rs.validator_cls_for(validator.schema) is not expected:
                return None
            registry = jsonschema_rs.Registry(
                [(uri, schema) for uri, schema in self.by_uri.items()], retriever=_refuse_retrieval
            )
            compiled = expected(
                validator.schema,
                validate_formats=False,
                registry=registry,
                retriever=_refuse_retrieval,
                base_uri=key if key.startswith(f"{STORE_SCHEME}:") else None,
                keywords={"pattern": _python_pattern(), "multipleOf": _python_keyword(cls, "multipleOf")},
            )
        except Exception:  # whatever jsonschema-rs cannot compile is validated by jsonschema alone
            return None

        def check(data: Any) -> bool:
            try:
                with pattern_budget():
                    return bool(compiled.is_valid(data))
            except Exception:  # e.g. an integer beyond 64 bits: let jsonschema decide
                return False

        return check

    def check_schemas(self) -> Iterator[tuple[str, str]]:
        """(path, message) for every schema in the store that is not a valid schema."""
        import jsonschema

        for path, schema in sorted(self.by_path.items()):
            unknown = unknown_draft(schema)
            if unknown is not None:
                yield path, unknown
                continue
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as err:
                yield path, f"{err.message} at {_pointer(err.path)}"
        yield from ((path, message) for path, _other, message in self.collisions)

    # -- $ref replacement -------------------------------------------------

    def dereferenced(self, schema_ref: Any) -> Any:
        """The schema ``schema_ref`` names, with every ``$ref`` replaced by a copy of what it
        points to: one self-contained JSON document, as a form generated from the schema in a
        browser needs it (the administration pages' record form and reading view).

        References resolve in the store only, never on the network, even where remote references
        are allowed for validation. A ``$ref`` met again inside its own expansion (a recursive
        schema) becomes ``{}`` (any value); ``$defs``/``definitions`` are left out (every use is
        inlined), and so are ``$id``, ``$anchor`` and ``$schema``. The words beside a ``$ref``
        (``title``, ``description``...) win over the target's. Raises :class:`SchemaError` (or
        :class:`RefResolutionError`) when the schema is missing, a ``$ref`` cannot be resolved,
        or the expansion passes :data:`DEREFERENCED_MAX_NODES` schemas.
        """
        schema, key = self.resolve_schema(schema_ref)
        if key in self._dereferenced:
            return self._dereferenced[key]
        import referencing
        import referencing.exceptions
        from referencing.jsonschema import DRAFT202012, specification_with

        if key.startswith(f"{STORE_SCHEME}:"):
            schema = _with_base_uri(schema, key)
        registry = referencing.Registry().with_resources(
            (uri, _resource(stored, uri)) for uri, stored in self.by_uri.items()
        )
        registry = registry.with_resource(key, _resource(schema, key))
        dialect = schema.get("$schema") if isinstance(schema, dict) else None
        spec = specification_with(
            dialect if isinstance(dialect, str) else DRAFT202012_URI, default=DRAFT202012
        )
        budget = [DEREFERENCED_MAX_NODES]
        try:
            expanded = _expand(schema, registry.resolver(base_uri=key), spec, frozenset(), budget)
        except referencing.exceptions.Unresolvable as err:
            raise RefResolutionError(
                f"schema {key}: cannot resolve $ref {err.ref!r} in the schema store"
            ) from None
        self._dereferenced[key] = expanded
        return expanded

    def replace_refs(self, data: Any) -> Any:
        """``data`` with ``$ref``s replaced by jsonref proxies, resolved in the store only.

        References are resolved here, not on first access, so that a ``$ref`` outside the
        store raises :class:`RefResolutionError` from this call, not a jsonref error later.
        """

        def loader(uri: str) -> Any:
            key = uri.rstrip("#")
            if key in self.by_uri:
                return self.by_uri[key]
            if self.allow_remote_refs and key.startswith(("http://", "https://")):
                return self._fetch(key)
            raise RefResolutionError(
                f"$ref {uri!r} is outside the schema store ({self.schemas_dir}/) "
                "and remote references are not allowed"
            )

        import jsonref

        try:
            return jsonref.replace_refs(
                data, base_uri=store_uri("record"), loader=loader, load_on_repr=False, lazy_load=False
            )
        except jsonref.JsonRefError as err:
            raise _jsonref_error(err) from None


def unknown_draft(schema: Any) -> str | None:
    """Why ``schema``'s ``$schema`` names no JSON Schema draft jsonschema knows (a typo in the
    draft's URI, an https form of an http one), else None. Validation takes such a schema as
    2020-12, which may not be what its author meant (jsonschema will refuse it in a later
    version): the store refuses it and ``validate`` reports it."""
    import jsonschema

    named = schema.get("$schema") if isinstance(schema, dict) else None
    if not isinstance(named, str) or jsonschema.validators.validator_for(schema, default=None) is not None:
        return None
    return (
        f"$schema {named!r} is not a JSON Schema draft's meta-schema (draft-04, draft-06, draft-07, "
        "2019-09 or 2020-12, e.g. https://json-schema.org/draft/2020-12/schema); without $schema a "
        "schema is read as 2020-12"
    )


def _validator_for(schema: Any, where: str) -> Any:
    """The validator class for the draft the schema's ``$schema`` names (2020-12 by default)."""
    if isinstance(schema, dict) and not isinstance(schema.get("$schema", ""), str):
        # jsonschema would fail with a TypeError or AttributeError
        kind = type(schema["$schema"]).__name__
        raise SchemaError(
            f"schema {where} is not a valid schema: its $schema must be a URI string, not {kind}"
        )
    import jsonschema

    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)


@cache
def _rust_drafts() -> dict[Any, Any]:
    """jsonschema's validator classes and jsonschema-rs's for the same drafts (draft 3 has none)."""
    import jsonschema
    import jsonschema_rs

    return {
        getattr(jsonschema, name): getattr(jsonschema_rs, name, None)
        for name in (
            "Draft4Validator",
            "Draft6Validator",
            "Draft7Validator",
            "Draft201909Validator",
            "Draft202012Validator",
        )
    }


#: at most this many (sub)schemas in a dereferenced schema: the expansion of many ``$ref``s to
#: the same large definition grows fast
DEREFERENCED_MAX_NODES = 20_000

#: keywords whose value is a schema, a list of schemas, or a map of names to schemas
_SUBSCHEMA = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contentSchema",
    }
)
_SUBSCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SUBSCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_DROPPED = frozenset({"$defs", "definitions", "$id", "$anchor", "$dynamicAnchor", "$schema", "$comment"})


def _expand(node: Any, resolver: Any, spec: Any, seen: frozenset[int], budget: list[int]) -> Any:
    """``node`` (a schema of dialect ``spec``) with its ``$ref``s inlined; ``seen`` holds the
    targets being expanded (a target met again is a recursive schema)."""
    if not isinstance(node, dict):
        return node
    budget[0] -= 1
    if budget[0] < 0:
        raise SchemaError(
            f"schema is too large to show as a form: more than {DEREFERENCED_MAX_NODES} subschemas "
            "once its $refs are expanded"
        )
    sub = spec.create_resource(node)
    if sub.id() is not None:  # an embedded $id moves the base URI of the $refs below it
        resolver = resolver.in_subresource(sub)
    out: dict[str, Any] = {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        found = resolver.lookup(ref)
        target = found.contents
        if isinstance(target, bool):
            out = {} if target else {"not": {}}
        elif isinstance(target, dict) and id(target) not in seen:
            out = dict(_expand(target, found.resolver, spec, seen | {id(target)}, budget))
        # else: a recursive schema, any value here (the server still validates)
    for keyword, value in node.items():
        if (keyword == "$ref" and isinstance(ref, str)) or keyword in _DROPPED:
            continue
        if keyword in _SUBSCHEMA or (keyword in _SUBSCHEMA_LISTS and isinstance(value, list)):
            if isinstance(value, list):
                out[keyword] = [_expand(item, resolver, spec, seen, budget) for item in value]
            else:
                out[keyword] = _expand(value, resolver, spec, seen, budget)
        elif keyword in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[keyword] = {name: _expand(sub, resolver, spec, seen, budget) for name, sub in value.items()}
        else:
            out[keyword] = value
    return out


def _refuse_retrieval(uri: str) -> Any:
    raise RefResolutionError(f"$ref {uri!r} is outside the schema store")


_REF_CYCLE = "schema has a $ref cycle that never reaches a value"


def _recursion_panic(err: BaseException) -> bool:
    """Whether ``err`` is a Rust panic (pyo3's PanicException) over a Python RecursionError."""
    return type(err).__name__ == "PanicException" and "RecursionError" in str(err)


#: keywords jsonschema-rs reads otherwise than jsonschema (the reference) in some draft: a schema
#: that any schema of the store mentions them in is validated by jsonschema alone. The first
#: CROSS_CHECKS records find a disagreement only if one of them meets it; these were found by a
#: differential test: patternProperties (regex dialects), 2019-09's unevaluatedProperties and
#: unevaluatedItems (jsonschema took an additionalProperties schema's keys for names), the
#: draft-7 dependencies in 2019-09 and 2020-12 (jsonschema ignores it there, jsonschema-rs
#: applies it), $recursiveRef and $dynamicRef
_READ_APART = frozenset(
    (
        "patternProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "dependencies",
        "$recursiveRef",
        "$dynamicRef",
    )
)


def _mentions(value: Any, keys: frozenset[str]) -> bool:
    """Whether one of ``keys`` is a key anywhere in ``value`` (as a keyword or not: a cautious
    answer)."""
    if isinstance(value, dict):
        return not keys.isdisjoint(value) or any(_mentions(item, keys) for item in value.values())
    if isinstance(value, list):
        return any(_mentions(item, keys) for item in value)
    return False


def _python_pattern() -> type:
    from ._patterns import TooSlow, matcher

    class Pattern:
        """``pattern`` as :meth:`SchemaStore.iter_errors` checks it (an error when not checked in time)."""

        def __init__(self, parent_schema: Any, value: str, schema_path: Any) -> None:
            self.search = matcher(value).search

        def validate(self, instance: Any) -> None:
            if not isinstance(instance, str):
                return
            try:
                found = self.search(instance)
            except TooSlow:
                raise ValueError("not checked in time") from None
            if not found:
                raise ValueError("does not match the pattern")

    return Pattern


def _python_keyword(cls: Any, keyword: str) -> type:
    function = cls.VALIDATORS[keyword]
    checker = cls({})

    class Keyword:
        """A keyword checked by jsonschema's own function."""

        def __init__(self, parent_schema: Any, value: Any, schema_path: Any) -> None:
            self.value, self.schema = value, parent_schema

        def validate(self, instance: Any) -> None:
            for error in function(checker, self.value, instance, self.schema) or ():
                raise ValueError(error.message)

    return Keyword


def _resource(schema: Any, where: str) -> referencing.Resource:
    import referencing
    import referencing.exceptions
    from referencing.jsonschema import DRAFT202012, specification_with

    try:
        return referencing.Resource.from_contents(schema, default_specification=DRAFT202012)
    except referencing.exceptions.CannotDetermineSpecification:
        return specification_with("https://json-schema.org/draft/2020-12/schema").create_resource(schema)
    except Exception as err:
        raise SchemaError(f"schema {where} cannot be loaded: {err}") from err


def _with_base_uri(schema: Any, uri: str) -> Any:
    """A store schema without an id, given its store URI as id so that relative ``$ref``s
    resolve by path in the store (``defs.json`` next to it), as for schemas with an ``$id``."""
    if not isinstance(schema, dict) or _resource(schema, uri).id() is not None:
        return schema
    for keyword in ("$id", "id"):  # "id" in drafts 3 and 4
        candidate = {**schema, keyword: uri}
        if _resource(candidate, uri).id() == uri:
            return candidate
    return schema


def _pointer(path: Any) -> str:
    return "/" + "/".join(layout.pointer_token(p) for p in path) if path else "/"


def pointer(error: ValidationError) -> str:
    """The JSON pointer of the value a validation error is about."""
    return _pointer(error.absolute_path)


def _ref_error(err: Exception) -> RefResolutionError:
    cause = err.__cause__ or getattr(err, "__context__", None)
    while cause is not None:
        if isinstance(cause, RefResolutionError):
            return cause
        cause = cause.__cause__ or cause.__context__
    ref = getattr(err, "ref", None)
    return RefResolutionError(f"cannot resolve $ref {ref!r}: {err}")


def _jsonref_error(err: Exception) -> RefResolutionError:
    cause = getattr(err, "cause", None)
    if isinstance(cause, RefResolutionError):
        return cause
    return RefResolutionError(f"cannot resolve $ref: {err}")


@lru_cache(maxsize=64)
def parse_schema_file(raw: bytes, path: str) -> Any:
    try:
        return layout.loads(raw, what=f"schema {path}")
    except InvalidRecordError as err:
        raise SchemaError(str(err)) from None


def schema_bytes(schema: Any) -> bytes:
    if not isinstance(schema, (dict, bool)):
        raise SchemaError("a schema must be a JSON object, or true or false")
    return layout.dumps(json.loads(json.dumps(schema)))
