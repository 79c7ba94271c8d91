"""What changed between two schemas of the store: ``gitrecords schema diff OLD NEW``.

:func:`diff_schemas` walks both schemas side by side, from the root through
``properties``, ``items`` and ``allOf``, and lists each change at the place of the
records it is about, as a JSON pointer into a record (``*`` stands for every
element of an array: ``/creators/*/name``): properties added and removed (a
removed and an added property of the same type, and nothing else like them,
look renamed), ``type`` changes, ``required`` names added and removed, ``enum``
values added and removed, and changes of ``const``, ``format``, ``pattern``, the
bounds (``minimum``, ``maxLength``, ...) and ``additionalProperties`` (walked too
when it is a schema). A change under a keyword the walk does not go into
(``anyOf``, ``oneOf``, ``if``/``then``/``else``, ``dependentRequired``, ... see
:data:`UNWALKED`) is reported as that keyword having changed, so schemas that
validate differently never show "no changes". ``$ref``s are followed inside the
schema store only (never the network); keywords beside a ``$ref`` apply with it;
a ``$ref`` that cannot be followed is compared as written.

>>> old = {"type": "object", "properties": {"lang": {"type": "string"}}}
>>> new = {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}
>>> for change in diff(old, new):
...     print(change)
/code: renamed from /lang (string)
/code: now required
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import referencing
import referencing.exceptions

from . import layout
from .errors import GitRecordsError
from .schema import SchemaStore, store_uri

__all__ = ["KEYWORDS", "SchemaChange", "SchemaDiff", "diff", "diff_schemas"]

#: keywords whose value is compared as it is, reported as ``keyword old -> new``
KEYWORDS = (
    "const",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "additionalProperties",
)

#: keywords the walk does not go into: a change under them is reported as a whole (the
#: keyword changed), so that "no changes" is never said of schemas that validate differently
UNWALKED = (
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "patternProperties",
    "propertyNames",
    "prefixItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedProperties",
    "unevaluatedItems",
    "$schema",
)

#: how deep the walk goes (a recursive schema is followed this far)
MAX_DEPTH = 32

_ABSENT = object()


@dataclass(frozen=True)
class SchemaChange:
    """One change: ``kind`` at ``pointer`` (where in a record), from ``old`` to ``new``.

    Kinds: ``added``, ``removed`` (old/new: the property's type), ``renamed`` (old: the old
    pointer, new: the type), ``type``, ``required-added``, ``required-removed``,
    ``enum-added``, ``enum-removed`` (new/old: the values), ``ref`` (a ``$ref`` that could
    not be followed changed), and each of :data:`KEYWORDS` (None: absent).
    ``schema_pointer`` is where it is in the new schema (in the old one for ``removed``).
    """

    pointer: str
    kind: str
    old: Any = None
    new: Any = None
    schema_pointer: str = ""

    def __str__(self) -> str:
        where = self.pointer or "/"
        if self.kind == "added":
            return f"{where}: added{_typed(self.new)}"
        if self.kind == "removed":
            return f"{where}: removed{_typed(self.old)}"
        if self.kind == "renamed":
            return f"{where}: renamed from {self.old}{_typed(self.new)}"
        if self.kind == "type":
            return f"{where}: type {_type_text(self.old)} -> {_type_text(self.new)}"
        if self.kind == "required-added":
            return f"{where}: now required"
        if self.kind == "required-removed":
            return f"{where}: no longer required"
        if self.kind in UNWALKED:
            return f"{where}: {self.kind} changed (compared as written, not field by field)"
        if self.kind in ("enum-added", "enum-removed"):
            values = self.new if self.kind == "enum-added" else self.old
            verb = "added" if self.kind == "enum-added" else "removed"
            return f"{where}: enum values {verb}: {', '.join(_json(v) for v in values)}"
        return f"{where}: {self.kind} {_value(self.old)} -> {_value(self.new)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "pointer": self.pointer or "/",
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "schema_pointer": self.schema_pointer or "/",
        }


@dataclass
class SchemaDiff:
    """The changes from the schema ``old`` to ``new`` (store paths or ``$id``s)."""

    old: str
    new: str
    changes: list[SchemaChange] = field(default_factory=list)

    def summary(self) -> str:
        count = len(self.changes)
        if not count:
            return f"{self.old} and {self.new}: no changes"
        return f"{self.old} -> {self.new}: {count} change{'' if count == 1 else 's'}"

    def as_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "changes": [c.as_dict() for c in self.changes]}


def _json(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True, eq=False)
class _Bound:
    """A subschema merged into another document's node (from an ``allOf`` member or a ``$ref``
    with keywords beside it), with the resolver of its own document, for its own ``$ref``s."""

    node: Any
    resolver: Any


def _plain(value: Any) -> Any:
    """``value`` without :class:`_Bound` wrappers (for output)."""
    if isinstance(value, _Bound):
        return _plain(value.node)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _schema_like(value: Any) -> bool:
    return isinstance(value, (dict, _Bound))


def _value(value: Any) -> str:
    return "(none)" if value is None else _json(value)


def _type_text(types: Any) -> str:
    if types is None:
        return "(any)"
    return "|".join(types) if isinstance(types, list) else str(types)


def _typed(types: Any) -> str:
    return "" if types is None else f" ({_type_text(types)})"


def _types(node: Any) -> list[str] | None:
    if not isinstance(node, dict) or "type" not in node:
        return None
    found = node["type"]
    return sorted(found) if isinstance(found, list) else [found]


# -- the walk ------------------------------------------------------------------


class _Side:
    """One schema, with the resolver its ``$ref``s are followed with (the store's only)."""

    def __init__(self, store: SchemaStore, name: str) -> None:
        self.schema, key = store.resolve_schema(name)
        self.resolver = store.registry.resolver(base_uri=key)


def _resolved(node: Any, resolver: Any, depth: int = 0) -> tuple[Any, Any]:
    """``node`` with its ``$ref`` followed, and the resolver for what is inside. Keywords beside
    a ``$ref`` apply with it, as an ``allOf`` of the two; ``allOf`` members are merged into the
    node (their properties, ``required``, ``items`` and keywords), each subschema they bring
    keeping the resolver of its own document."""
    if isinstance(node, _Bound):
        return _resolved(node.node, node.resolver, depth)
    if not isinstance(node, dict):
        return node, resolver
    ref = node.get("$ref")
    if isinstance(ref, str) and depth < MAX_DEPTH:
        try:
            found = resolver.lookup(ref)
        except (referencing.exceptions.Unresolvable, GitRecordsError):
            return node, resolver  # compared as written
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if not siblings:
            return _resolved(found.contents, found.resolver, depth + 1)
        return _resolved({"allOf": [_Bound(found.contents, found.resolver), siblings]}, resolver, depth + 1)
    members = node.get("allOf")
    if isinstance(members, list) and depth < MAX_DEPTH:
        merged = {k: v for k, v in node.items() if k != "allOf"}
        properties = dict(merged.get("properties") or {})
        required = list(merged.get("required") or [])
        for member in members:
            part, inner = _resolved(member, resolver, depth + 1)
            if not isinstance(part, dict):
                continue

            def bind(value: Any, inner: Any = inner) -> Any:
                return _Bound(value, inner) if inner is not resolver and _schema_like(value) else value

            for name, value in (part.get("properties") or {}).items():
                properties.setdefault(name, bind(value))
            required += [r for r in part.get("required") or [] if r not in required]
            for keyword in ("type", "items", *KEYWORDS, *UNWALKED):
                if keyword in part:
                    merged.setdefault(keyword, bind(part[keyword]))
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = required
        return merged, resolver
    return node, resolver


class _Walk:
    def __init__(self, old: _Side, new: _Side) -> None:
        self.changes: list[SchemaChange] = []
        self.old, self.new = old, new
        self.stack: set[tuple[int, int]] = set()

    def add(self, pointer: str, kind: str, old: Any, new: Any, schema_pointer: str) -> None:
        self.changes.append(SchemaChange(pointer, kind, old, new, schema_pointer))

    def compare(
        self, old: Any, new: Any, old_res: Any, new_res: Any, where: str, schema_at: str, depth: int
    ) -> None:
        pair = (id(old), id(new))
        if depth > MAX_DEPTH or pair in self.stack:  # a recursive schema: compared once
            return
        self.stack.add(pair)
        try:
            self._compare(old, new, old_res, new_res, where, schema_at, depth)
        finally:
            self.stack.discard(pair)

    def _compare(
        self, old: Any, new: Any, old_res: Any, new_res: Any, where: str, schema_at: str, depth: int
    ) -> None:
        old, old_res = _resolved(old, old_res)
        new, new_res = _resolved(new, new_res)
        if not isinstance(old, dict) or not isinstance(new, dict):
            if old != new:
                self.add(where, "schema", old, new, schema_at)
            return
        # a $ref left after _resolved could not be followed: compared as written
        old_ref, new_ref = old.get("$ref"), new.get("$ref")
        if old_ref != new_ref and (isinstance(old_ref, str) or isinstance(new_ref, str)):
            self.add(where, "ref", old_ref, new_ref, f"{schema_at}/$ref")
        if _types(old) != _types(new):
            self.add(where, "type", _types(old), _types(new), schema_at)
        self.enum(old, new, where, schema_at)
        for keyword in KEYWORDS:
            before, after = old.get(keyword, _ABSENT), new.get(keyword, _ABSENT)
            if _schema_like(before) and _schema_like(after):  # additionalProperties: two schemas
                self.compare(
                    before,
                    after,
                    old_res,
                    new_res,
                    f"{where}/(other properties)",
                    f"{schema_at}/{keyword}",
                    depth + 1,
                )
                continue
            if _schema_like(before) or _schema_like(after):
                before, after = _plain(before), _plain(after)
            if before != after or type(before) is not type(after):
                self.add(
                    where,
                    keyword,
                    None if before is _ABSENT else before,
                    None if after is _ABSENT else after,
                    f"{schema_at}/{keyword}",
                )
        for keyword in UNWALKED:
            before, after = old.get(keyword, _ABSENT), new.get(keyword, _ABSENT)
            if before is _ABSENT and after is _ABSENT:
                continue
            shown_before = None if before is _ABSENT else _plain(before)
            shown_after = None if after is _ABSENT else _plain(after)
            if _json(shown_before) != _json(shown_after):
                self.add(where, keyword, shown_before, shown_after, f"{schema_at}/{keyword}")
        self.properties(old, new, old_res, new_res, where, schema_at, depth)
        old_items, new_items = old.get("items"), new.get("items")
        if _schema_like(old_items) and _schema_like(new_items):
            self.compare(
                old_items, new_items, old_res, new_res, f"{where}/*", f"{schema_at}/items", depth + 1
            )
        elif _schema_like(old_items) != _schema_like(new_items):
            if _schema_like(new_items):
                self.add(f"{where}/*", "added", None, _types(_resolved(new_items, new_res)[0]), schema_at)
            else:
                self.add(f"{where}/*", "removed", _types(_resolved(old_items, old_res)[0]), None, schema_at)

    def enum(self, old: dict[str, Any], new: dict[str, Any], where: str, schema_at: str) -> None:
        before, after = old.get("enum"), new.get("enum")
        if not isinstance(before, list) and not isinstance(after, list):
            return
        if not isinstance(before, list) or not isinstance(after, list):
            self.add(where, "enum", before, after, f"{schema_at}/enum")
            return
        old_keys = {_json(v): v for v in before}
        new_keys = {_json(v): v for v in after}
        added = [v for k, v in new_keys.items() if k not in old_keys]
        removed = [v for k, v in old_keys.items() if k not in new_keys]
        if added:
            self.add(where, "enum-added", None, added, f"{schema_at}/enum")
        if removed:
            self.add(where, "enum-removed", removed, None, f"{schema_at}/enum")

    def properties(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        old_res: Any,
        new_res: Any,
        where: str,
        schema_at: str,
        depth: int,
    ) -> None:
        before = old.get("properties") if isinstance(old.get("properties"), dict) else {}
        after = new.get("properties") if isinstance(new.get("properties"), dict) else {}
        old_required = {r for r in old.get("required") or [] if isinstance(r, str)}
        new_required = {r for r in new.get("required") or [] if isinstance(r, str)}
        removed = [n for n in before if n not in after]
        added = [n for n in after if n not in before]
        renamed = self.renames(before, after, removed, added, old_res, new_res)
        props = f"{schema_at}/properties"
        for name in sorted(set(before) | set(after), key=lambda n: (n not in before, n)):
            here = f"{where}/{layout.pointer_token(name)}"
            at = f"{props}/{layout.pointer_token(name)}"
            if name in before and name in after:
                self.compare(before[name], after[name], old_res, new_res, here, at, depth + 1)
            elif name in renamed:
                source = renamed[name]
                old_here = f"{where}/{layout.pointer_token(source)}"
                types = _types(_resolved(after[name], new_res)[0])
                self.add(here, "renamed", old_here, types, at)
                self.compare(before[source], after[name], old_res, new_res, here, at, depth + 1)
            elif name in after:
                self.add(here, "added", None, _types(_resolved(after[name], new_res)[0]), at)
            elif name not in renamed.values():
                self.add(here, "removed", _types(_resolved(before[name], old_res)[0]), None, at)
        for name in sorted(new_required - old_required):
            self.add(
                f"{where}/{layout.pointer_token(name)}", "required-added", None, True, f"{schema_at}/required"
            )
        for name in sorted(old_required - new_required):
            self.add(
                f"{where}/{layout.pointer_token(name)}",
                "required-removed",
                True,
                None,
                f"{schema_at}/required",
            )

    @staticmethod
    def renames(
        before: dict[str, Any],
        after: dict[str, Any],
        removed: list[str],
        added: list[str],
        old_res: Any,
        new_res: Any,
    ) -> dict[str, str]:
        """New name -> old name for the properties that look renamed: the same subschema, else
        the same type with no other removed or added property of that type."""
        found: dict[str, str] = {}
        old_text = {n: _json(_resolved(before[n], old_res)[0]) for n in removed}
        new_text = {n: _json(_resolved(after[n], new_res)[0]) for n in added}
        for name in added:
            same = [o for o in removed if o not in found.values() and old_text[o] == new_text[name]]
            if len(same) == 1 and [a for a in added if new_text[a] == new_text[name]] == [name]:
                found[name] = same[0]
        old_types = {n: _types(_resolved(before[n], old_res)[0]) for n in removed if n not in found.values()}
        new_types = {n: _types(_resolved(after[n], new_res)[0]) for n in added if n not in found}
        for name, types in new_types.items():
            if types is None:
                continue
            olds = [o for o, t in old_types.items() if t == types]
            news = [n for n, t in new_types.items() if t == types]
            if len(olds) == 1 and news == [name]:
                found[name] = olds[0]
        return found


def _walk(old: _Side, new: _Side) -> list[SchemaChange]:
    walk = _Walk(old, new)
    walk.compare(old.schema, new.schema, old.resolver, new.resolver, "", "", 0)
    return sorted(walk.changes, key=lambda change: change.pointer.split("/"))  # stable: walk order within


def diff_schemas(store: SchemaStore, old: str, new: str) -> SchemaDiff:
    """The changes from the schema ``old`` of the store to ``new`` (each a path in the store or
    an ``$id``). ``$ref``s are followed in the store only; raises :class:`SchemaError` when the
    store does not have one of them."""
    local = SchemaStore(store.by_path, store.schemas_dir)  # never the network, whatever the settings
    return SchemaDiff(old, new, _walk(_Side(local, old), _Side(local, new)))


def diff(old: Any, new: Any) -> list[SchemaChange]:
    """The changes from the schema ``old`` to ``new`` (two schemas, not in a store: their
    ``$ref``s are followed within each of them only)."""
    sides = [_Side(SchemaStore({"schema.json": schema}), store_uri("schema.json")) for schema in (old, new)]
    return _walk(*sides)


def iter_lines(result: SchemaDiff) -> Iterator[str]:
    """The changes, one line each (what ``gitrecords schema diff`` prints)."""
    for change in result.changes:
        yield str(change)
