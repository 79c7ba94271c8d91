"""The record page's reading view: the record as a person reads it.

The title, the creators with their identifiers as links, the dates and the descriptions first;
then every other field, labelled by its schema's ``title`` (else its name, spelled out), nested
values as nested lists. Identifiers become links where their scheme says how (ORCID, ROR, DOI,
ISNI, arXiv, Handle...), and so does any ``http(s)`` URL; nothing else is ever a link, and every
text is escaped by the template.

A plugin can show a schema's records its own way: the ``gitrecords_record_view`` hook (see
docs/plugins.md) returns the HTML of the view, and this module's view is used when no plugin
answers.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from .. import plugins
from ..record import Record
from ..repository import Repository

#: identifier schemes and how a bare identifier of each becomes a link
RESOLVERS = {
    "orcid": "https://orcid.org/",
    "ror": "https://ror.org/",
    "doi": "https://doi.org/",
    "isni": "https://isni.org/isni/",
    "arxiv": "https://arxiv.org/abs/",
    "handle": "https://hdl.handle.net/",
    "pmid": "https://pubmed.ncbi.nlm.nih.gov/",
    "crossref funder id": "https://doi.org/",
    "wikidata": "https://www.wikidata.org/wiki/",
}

#: what bare identifiers look like when no scheme is named
_BARE = (
    ("orcid", re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")),
    ("doi", re.compile(r"^10\.\d{4,9}/\S+$")),
)

#: words a label spells in capitals
_ACRONYMS = frozenset({"uri", "url", "doi", "id", "orcid", "ror", "isni", "isbn", "issn", "pid", "iri"})

#: the fields the view shows first, in their own sections
_LEADING = (
    "title",
    "titles",
    "creators",
    "dates",
    "publicationYear",
    "description",
    "descriptions",
    "$schema",
)


@dataclass
class Value:
    """One value: a text (a link when ``href`` is set), or the fields of an object, or the items
    of an array."""

    text: str | None = None
    href: str | None = None
    fields: list[tuple[str, Value]] | None = None
    items: list[Value] | None = None


@dataclass
class Person:
    name: str
    identifiers: list[Value] = field(default_factory=list)
    affiliations: list[Value] = field(default_factory=list)


@dataclass
class View:
    """What the built-in reading view shows (``_reading.html``)."""

    creators: list[Person]
    dates: list[tuple[str, str]]
    descriptions: list[tuple[str, str]]
    fields: list[tuple[str, Value]]


def http_url(value: str) -> str | None:
    """``value`` if it is an absolute http(s) URL with a host, else None: the only links shown."""
    try:
        parts = urllib.parse.urlsplit(value.strip())
    except ValueError:
        return None
    if (
        parts.scheme.lower() in ("http", "https")
        and parts.netloc
        and not any(c.isspace() for c in value.strip())
    ):
        return value.strip()
    return None


def identifier_link(value: Any, scheme: Any = None) -> str | None:
    """The https URL of an identifier: ``0000-0002-1825-0097`` (ORCID), ``10.5281/zenodo.1``
    (DOI), a ROR id, or any http(s) URL as it is; None when it is not a link."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    url = http_url(text)
    if url is not None:
        return url
    name = scheme.strip().lower() if isinstance(scheme, str) else None
    if name is None:
        name = next((known for known, pattern in _BARE if pattern.match(text)), None)
    if name == "doi":
        text = re.sub(r"^doi:\s*", "", text, flags=re.IGNORECASE)
    base = RESOLVERS.get(name or "")
    if base is None or any(c.isspace() for c in text):
        return None
    return base + urllib.parse.quote(text, safe="/:;()._-~")


def label(name: str, schema: Any) -> str:
    """The schema's ``title`` for a field, else its name spelled out: ``publicationYear`` is
    "Publication year", ``$schema`` "Schema"."""
    if isinstance(schema, dict) and isinstance(schema.get("title"), str) and schema["title"].strip():
        return schema["title"].strip()
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.strip("$_")).replace("_", " ").lower().split()
    text = " ".join(word.upper() if word in _ACRONYMS else word for word in words) or name
    return text[:1].upper() + text[1:]


def _property(schema: Any, name: str) -> Any:
    if isinstance(schema, dict):
        for part in (schema, *(p for p in schema.get("allOf", []) if isinstance(p, dict))):
            properties = part.get("properties")
            if isinstance(properties, dict) and name in properties:
                return properties[name]
    return None


def _items(schema: Any) -> Any:
    return schema.get("items") if isinstance(schema, dict) else None


def value_of(data: Any, schema: Any = None) -> Value:
    """``data`` as the view shows it, labelled by ``schema`` (a dereferenced schema, or None)."""
    if isinstance(data, dict):
        fields = []
        for key, item in data.items():
            scheme = next(
                (data[key + s] for s in ("Scheme", "Type") if isinstance(data.get(key + s), str)), None
            )
            if isinstance(item, str) and scheme is not None:
                fields.append(
                    (label(key, _property(schema, key)), Value(item, identifier_link(item, scheme)))
                )
            else:
                fields.append((label(key, _property(schema, key)), value_of(item, _property(schema, key))))
        return Value(fields=fields)
    if isinstance(data, list):
        return Value(items=[value_of(item, _items(schema)) for item in data])
    if isinstance(data, str):
        return Value(data, http_url(data))
    if isinstance(data, bool):
        return Value("yes" if data else "no")
    if data is None:
        return Value("—")
    return Value(str(data))


def _person(data: Any, schema: Any) -> Person | None:
    if isinstance(data, str):
        return Person(data)
    if not isinstance(data, dict):
        return None
    name = data.get("name")
    if not isinstance(name, str):
        given, family = data.get("givenName"), data.get("familyName")
        name = ", ".join(p for p in (family, given) if isinstance(p, str) and p) or "(no name)"
    person = Person(name)
    for found in data.get("nameIdentifiers") or []:
        if isinstance(found, dict) and isinstance(found.get("nameIdentifier"), str):
            scheme = found.get("nameIdentifierScheme")
            text = found["nameIdentifier"]
            shown = f"{scheme}: {text}" if isinstance(scheme, str) and scheme else text
            person.identifiers.append(Value(shown, identifier_link(text, scheme)))
    for found in data.get("affiliation") or data.get("affiliations") or []:
        if isinstance(found, str):
            person.affiliations.append(Value(found))
        elif isinstance(found, dict) and isinstance(found.get("name"), str):
            ident = found.get("affiliationIdentifier")
            href = identifier_link(ident, found.get("affiliationIdentifierScheme")) if ident else None
            person.affiliations.append(Value(found["name"], href))
    return person


def view(record: Record, schema: Any) -> View:
    """The built-in view of ``record`` (``schema``: its dereferenced schema, or None)."""
    data = dict(record)
    creators_schema = _items(_property(schema, "creators"))
    creators = [p for p in (_person(c, creators_schema) for c in _list(data.get("creators"))) if p]
    dates = []
    if isinstance(data.get("publicationYear"), str | int):
        dates.append(
            (label("publicationYear", _property(schema, "publicationYear")), str(data["publicationYear"]))
        )
    for item in _list(data.get("dates")):
        if isinstance(item, dict) and isinstance(item.get("date"), str):
            kind = item.get("dateType") if isinstance(item.get("dateType"), str) else "Date"
            note = item.get("dateInformation")
            dates.append((kind, item["date"] + (f" ({note})" if isinstance(note, str) and note else "")))
    descriptions = []
    if isinstance(data.get("description"), str):
        descriptions.append(("", data["description"]))
    for item in _list(data.get("descriptions")):
        if isinstance(item, dict) and isinstance(item.get("description"), str):
            kind = item.get("descriptionType")
            descriptions.append(
                (kind if isinstance(kind, str) and kind != "Abstract" else "", item["description"])
            )
    titles = [t for t in _list(data.get("titles")) if isinstance(t, dict)]
    consumed = set(_LEADING)
    if len(titles) > 1 or any(set(t) - {"title"} for t in titles):
        consumed.discard("titles")  # other titles (translated, subtitles) are shown with the fields
    fields = [
        (label(key, _property(schema, key)), value_of(value, _property(schema, key)))
        for key, value in data.items()
        if key not in consumed
    ]
    return View(creators, dates, descriptions, fields)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def plugin_view(repo: Repository, record: Record, schema: Any) -> Markup | None:
    """The HTML a plugin's ``gitrecords_record_view`` gives for ``record``, if one answers."""
    html = plugins.hook().gitrecords_record_view(repo=repo, record=record, schema=schema)
    return None if html is None else Markup(html)
