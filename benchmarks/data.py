"""Deterministic DataCite-like benchmark records (standard library only).

Record ``i`` is the same on every machine and every run: :func:`record` builds
it from a ``random.Random`` seeded with ``i``. A record has 1-2 creators with
ORCIDs and affiliations, a DOI, titles, keywords, dates and a short abstract;
its canonical JSON (the file gitrecords writes) is about 1 KB. Every record is
valid against ``datacite-lite-v1.json`` (:data:`SCHEMA_ID`).

This module is imported by the invenio-records worker too, which runs in
another virtual environment: it must not import gitrecords or pygit2.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "datacite-lite-v1.json"
#: path of the schema in a gitrecords schema store
SCHEMA_STORE_PATH = "bench/datacite-lite-v1.json"
SCHEMA_ID = "https://bench.gitrecords.org/schemas/datacite-lite-v1.json"


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


GIVEN = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Leslie",
    "Margaret",
    "Niklaus",
    "Radia",
    "Ken",
    "Shafi",
    "Tim",
    "Karen",
    "John",
    "Sophie",
    "Lars",
    "Ingrid",
    "Kwame",
    "Mei",
    "Ravi",
]
FAMILY = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Lamport",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Thompson",
    "Goldwasser",
    "Berners-Lee",
    "Jones",
    "McCarthy",
    "Wilson",
    "Andersen",
    "Nilsen",
    "Mensah",
    "Chen",
    "Shankar",
    "de Jong",
    "Visser",
]
AFFILIATIONS = [
    ("Royal Netherlands Institute for Sea Research", "https://ror.org/03v4gjf40"),
    ("University of Oslo", "https://ror.org/01xtthb56"),
    ("CERN", "https://ror.org/01ggx4157"),
    ("Max Planck Institute for Meteorology", "https://ror.org/05esem239"),
    ("University of Ghana", "https://ror.org/01r22mr83"),
    ("Indian Institute of Science", "https://ror.org/04dese585"),
]
TOPICS = [
    "benthic macrofauna",
    "streamflow",
    "amorphous silicon",
    "minimum wage",
    "sea ice",
    "soil carbon",
    "gene expression",
    "galaxy clusters",
    "urban heat",
    "protein folding",
    "coral reefs",
    "air quality",
    "glacier mass balance",
    "language models",
    "wind power",
    "malaria incidence",
    "seismic noise",
]
#: the facets the benchmark repositories declare in gitrecords.json (issue 17)
FACETS = {
    "type": "types.resourceTypeGeneral",
    "year": "publicationYear",
    "affiliation": "creators.affiliation.name",
}
KINDS = ["Dataset", "Software", "Dataset", "Dataset", "Model", "Workflow", "Collection"]
PUBLISHERS = ["Zenodo", "PANGAEA", "Dryad", "figshare", "Mendeley Data", "4TU.ResearchData"]


def record_id(i: int) -> uuid.UUID:
    """The id of record ``i`` (a version 4 UUID derived from ``i``)."""
    return uuid.UUID(bytes=hashlib.sha256(b"bench-%d" % i).digest()[:16], version=4)


def _orcid(rng: random.Random) -> str:
    digits = "".join(str(rng.randrange(10)) for _ in range(15))
    check = rng.choice("0123456789X")
    return f"{digits[:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:15]}{check}"


def record(i: int) -> dict[str, Any]:
    """Record ``i``: about 1 KB of canonical JSON, valid against the DataCite-lite schema."""
    rng = random.Random(i)
    creators = []
    for _ in range(rng.choice((1, 1, 2))):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        name, ror = rng.choice(AFFILIATIONS)
        creators.append(
            {
                "name": f"{family}, {given}",
                "nameType": "Personal",
                "givenName": given,
                "familyName": family,
                "nameIdentifiers": [{"nameIdentifier": _orcid(rng), "nameIdentifierScheme": "ORCID"}],
                "affiliation": [{"name": name, "affiliationIdentifier": ror}],
            }
        )
    topics = rng.sample(TOPICS, rng.randint(2, 3))
    year = rng.randint(2005, 2025)
    kind = rng.choice(KINDS)
    return {
        "$schema": SCHEMA_ID,
        "identifier": {"identifier": f"10.5072/bench.{i:07d}", "identifierType": "DOI"},
        "creators": creators,
        "titles": [{"title": f"{topics[0].capitalize()} and {topics[1]}: observations {i}", "lang": "en"}],
        "publisher": rng.choice(PUBLISHERS),
        "publicationYear": str(year),
        "types": {"resourceTypeGeneral": kind, "resourceType": f"{kind} of {topics[0]}"},
        "subjects": [{"subject": t} for t in topics],
        "dates": [
            {"date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "dateType": "Issued"},
            {"date": f"{year - 1}-{rng.randint(1, 12):02d}", "dateType": "Collected"},
        ][: rng.randint(1, 2)],
        "version": f"1.{rng.randint(0, 9)}",
    }


def revised(data: dict[str, Any], k: int) -> dict[str, Any]:
    """Revision ``k`` of a record: a new version number and one more date (valid, and different)."""
    new = json.loads(json.dumps(data))
    new["version"] = f"2.{k}"
    new["dates"] = [*data["dates"][:2], {"date": f"2026-01-{k % 28 + 1:02d}", "dateType": "Updated"}]
    return new


def canonical(data: Any) -> bytes:
    """The bytes gitrecords writes for ``data`` (docs/format.md, "Canonical JSON")."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def compact(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def jsonl_lines(n: int, start: int = 0) -> Iterator[bytes]:
    """``{"id": ..., "data": ...}`` lines (what ``gitrecords export`` writes) for records start..start+n."""
    for i in range(start, start + n):
        yield b'{"id":"%s","data":%s}\n' % (str(record_id(i)).encode(), compact(record(i)))


def write_jsonl(path: Path, n: int, start: int = 0) -> None:
    with open(path, "wb") as out:
        for line in jsonl_lines(n, start):
            out.write(line)


def record_path(id_: uuid.UUID | str, records_dir: str = "records") -> str:
    """Where format 1 stores a record (docs/format.md): ``records/<h0h1>/<h2h3>/<id>.json``."""
    name = str(id_)
    digest = hashlib.sha256(name.encode("ascii")).hexdigest()
    return f"{records_dir}/{digest[:2]}/{digest[2:4]}/{name}.json"


#: the record that gets many revisions in the history fixture
HOT = 0


def history_plan(n: int, commits: int, hot_revisions: int = 50) -> list[tuple[int, int]]:
    """``(record index, revision number)`` for each of ``commits`` single-record updates.

    Record :data:`HOT` gets ``hot_revisions - 1`` updates spread evenly over the
    history (so it has ``hot_revisions`` revisions with its creation); the other
    commits update records 1..n-1 chosen by a seeded generator.
    """
    if n < 2 or commits < hot_revisions - 1:
        raise ValueError("the history fixture needs n >= 2 and commits >= hot_revisions - 1")
    hot_at = {(k + 1) * commits // (hot_revisions - 1) - 1 for k in range(hot_revisions - 1)}
    rng = random.Random(commits * 7919 + n)
    seen: dict[int, int] = {}
    plan = []
    for j in range(commits):
        target = HOT if j in hot_at else rng.randrange(1, n)
        seen[target] = seen.get(target, 0) + 1
        plan.append((target, seen[target]))
    return plan


def sample(n: int, count: int, seed: str, exclude_hot: bool = True) -> list[int]:
    """``count`` distinct record indices in ``range(n)`` (fewer when n is small), seeded by ``seed``."""
    start = 1 if exclude_hot else 0
    population = range(start, n)
    rng = random.Random(f"{seed}-{n}")
    return rng.sample(population, min(count, len(population)))
