"""The record form of the edit and new-record pages: the schema it is generated from, a template of
a schema's required fields, the schemas to start a new record from, and JSON pointers as the
form's paths.

The pages hand the browser the record's schema with every ``$ref`` resolved here, in the schema
store (:meth:`gitrecords.schema.SchemaStore.dereferenced`): json-editor (``static/vendor/``)
builds the form from it and never loads a schema itself. The form only edits the JSON text of
the page's textarea, which is what the server reads and validates, as without JavaScript.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..errors import SchemaError
from ..repository import Repository
from .reading import label


@dataclass(frozen=True)
class SchemaChoice:
    """A schema of the store a new record can start from."""

    #: what the record's ``$schema`` names: the schema's ``$id``, else its path in the store
    ref: str
    path: str
    title: str
    default: bool = False

    @property
    def label(self) -> str:
        return f"{self.title} ({self.path})" if self.title != self.path else self.path


def schema_of(repo: Repository, data: Any) -> Any:
    """The schema of record data (its ``$schema``, else the repository's ``default_schema``) with
    every ``$ref`` resolved in the store; None when there is none, or it cannot be resolved."""
    schema_ref = data.get("$schema") if isinstance(data, dict) else None
    if schema_ref is None:
        schema_ref = repo.config.get("default_schema")
    if schema_ref is None:
        return None
    try:
        return repo.schema_store().dereferenced(schema_ref)
    except SchemaError:
        return None


def form_schema(repo: Repository, data: Any) -> dict[str, Any] | None:
    """The schema of the form for record data, self-contained (:func:`schema_of`); its
    ``$schema`` and PID fields read-only (the server keeps them). None when there is no form to
    show: no schema, one that cannot be resolved in the store, or one that is not an object's."""
    schema = schema_of(repo, data)
    if not isinstance(schema, dict) or not isinstance(schema.get("properties", {}), dict):
        return None
    if schema.get("type") != "object" and not schema.get("properties"):
        return None  # a schema of definitions (or of anything): the raw JSON only
    schema = _titled(copy.deepcopy(schema))
    schema.setdefault("type", "object")
    properties = schema.setdefault("properties", {})
    kept = ["$schema", *(str(field) for field in (repo.config.get("pids") or {}).values())]
    for name in kept:
        if isinstance(properties.get(name), dict):
            properties[name] = {**properties[name], "readOnly": True}
    return schema


def _titled(schema: Any) -> Any:
    """``schema`` with a ``title`` for every property that has none, its name spelled out
    (``publicationYear``: "Publication year"), as the reading view labels it, and one for the
    items of an array property ("Creator" for "Creators")."""
    if isinstance(schema, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and not isinstance(sub.get("title"), str):
                    sub["title"] = label(name, sub)
                items = sub.get("items") if isinstance(sub, dict) else None
                if isinstance(items, dict) and not isinstance(items.get("title"), str):
                    # json-editor numbers the items: "Creator 1", "Creator 2"
                    title = sub["title"]
                    items["title"] = title[:-1] if title.endswith("s") and not title.endswith("ss") else title
        for keyword, value in schema.items():
            if keyword in ("enum", "const", "default", "examples"):
                continue
            if isinstance(value, dict):
                _titled(value)
            elif isinstance(value, list):
                for item in value:
                    _titled(item)
    return schema


def schema_choices(repo: Repository) -> list[SchemaChoice]:
    """The store's schemas for a new record: the repository's ``default_schema`` first, then those
    that describe an object with properties (what a record is), then the rest, each by path."""
    store = repo.schema_store()
    default = repo.config.get("default_schema")
    default_key = None
    if isinstance(default, str):
        try:
            default_key = store.resolve_schema(default)[1]
        except SchemaError:
            default_key = None
    choices = []
    for path, schema in store.by_path.items():
        document = schema if isinstance(schema, dict) else {}
        ref = document.get("$id") if isinstance(document.get("$id"), str) else path
        key = store.resolve_schema(ref)[1]
        title = document.get("title") if isinstance(document.get("title"), str) else path
        choices.append(SchemaChoice(ref.rstrip("#"), path, title, default=key == default_key))

    def order(choice: SchemaChoice) -> tuple[int, str]:
        document = store.by_path[choice.path]
        describes_records = isinstance(document, dict) and isinstance(document.get("properties"), dict)
        return (0 if choice.default else 1 if describes_records else 2, choice.path)

    return sorted(choices, key=order)


def template(schema: Any, depth: int = 0) -> Any:
    """A value holding only what ``schema`` requires: each required property of an object (and of
    its ``allOf`` parts), ``minItems`` items of an array, a schema's ``default``, ``const`` or first
    ``enum`` value, else an empty value of its type. A starting point for a person to fill in; it
    need not be valid."""
    if not isinstance(schema, dict) or depth > 20:
        return None
    for keyword in ("default", "const"):
        if keyword in schema:
            return copy.deepcopy(schema[keyword])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return copy.deepcopy(schema["enum"][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    parts = [schema, *(p for p in schema.get("allOf", []) if isinstance(p, dict))]
    if kind is None:
        kind = "object" if any("properties" in p or "required" in p for p in parts) else None
        kind = kind or ("array" if "items" in schema else None)
    if kind == "object":
        properties: dict[str, Any] = {}
        required: list[str] = []
        for part in parts:
            if isinstance(part.get("properties"), dict):
                properties.update(part["properties"])
            required += [name for name in part.get("required", []) if isinstance(name, str)]
        return {name: template(properties.get(name), depth + 1) for name in dict.fromkeys(required)}
    if kind == "array":
        count = schema.get("minItems", 0)
        item = schema.get("items")
        return [template(item, depth + 1) for _ in range(count if isinstance(count, int) else 0)]
    return {"string": "", "integer": 0, "number": 0, "boolean": False}.get(kind or "", "")


def new_record(repo: Repository, choice: SchemaChoice) -> dict[str, Any]:
    """The template of a new record of ``choice``'s schema, naming it in ``$schema``."""
    schema = form_schema(repo, {"$schema": choice.ref})
    data = template(schema) if schema is not None else {}
    if not isinstance(data, dict):
        data = {}
    return {"$schema": choice.ref, **{k: v for k, v in data.items() if k != "$schema"}}


def editor_path(pointer: str) -> str:
    """A JSON pointer (``/creators/0/name``) as json-editor names the field (``root.creators.0.name``);
    ``""`` and ``"/"`` (what a schema error about the whole record points to) are ``root``."""
    if pointer in ("", "/"):
        return "root"
    parts = pointer.split("/")[1:]
    return ".".join(["root", *(part.replace("~1", "/").replace("~0", "~") for part in parts)])


def with_paths(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """The page's problems with the form path of each (for the ones with a pointer)."""
    return [{**error, "path": editor_path(error["pointer"])} for error in errors if error.get("pointer")]
