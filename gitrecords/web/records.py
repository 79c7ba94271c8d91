"""What the API and the pages ask of a repository: lookups, listings, search and writes.

Both front ends go through these functions, so a record looks the same in
JSON and in HTML, and a write from either checks the same revision (the
``ETag``/``If-Match`` pair of the API, a hidden field in the pages' forms).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jsonschema.exceptions import ValidationError

from .. import _git, layout, query
from ..blame import AtError, BlameEntry, find_revision
from ..errors import InvalidRecordError, NoResultFound, QueryError
from ..pids import RECID_FIELD
from ..record import Record, RecordRevision
from ..repository import Repository
from ..schema import pointer
from ..search import search as find
from ..search_index import leaves
from .errors import HTTPProblem, RecordGone


def parse_id(value: str) -> uuid.UUID:
    try:
        return layout.normalize_id(value)
    except InvalidRecordError:
        raise HTTPProblem(404, f"no record with id {value!r}: not a UUID") from None


def load(
    repo: Repository, record_id: uuid.UUID, *, deleted_ok: bool = False, expected: str | None = None
) -> Record:
    """The current revision; 404 if there is none, 410 if it is soft-deleted (unless ``deleted_ok``),
    412 unless ``expected`` (when given) names it (see :func:`check_revision`)."""
    try:
        record = Record.get_record(record_id, with_deleted=True, repo=repo)
    except NoResultFound:
        raise HTTPProblem(404, f"record {record_id} does not exist") from None
    if record.is_deleted and not deleted_ok:
        raise RecordGone(f"record {record_id} is deleted", record.revision_id)
    check_revision(record, expected)
    return record


def load_by_pid(repo: Repository, pid_type: str, value: str) -> Record:
    try:
        record_id = repo.lookup_pid(pid_type, value)
    except NoResultFound:
        raise HTTPProblem(404, f"no record with PID {pid_type}:{value}") from None
    return load(repo, record_id)


def check_revision(record: Record, expected: str | None) -> None:
    """412 unless ``expected`` (an If-Match value or a form field) names the current revision."""
    if expected is None:
        return
    # a strong comparison (RFC 9110, 13.1.1): a weak tag W/"n" never matches
    tags = [t.strip() for t in expected.split(",")]
    if "*" in tags or any(t.strip('"') == str(record.revision_id) for t in tags if not t.startswith("W/")):
        return
    raise HTTPProblem(
        412,
        f"record {record.id} is at revision {record.revision_id}, not {expected}: "
        "someone else changed it; reload and try again",
        revision_id=record.revision_id,
    )


def check_pids_kept(
    repo: Repository, record: Record | RecordRevision, data: dict[str, Any], *, fill: bool = False
) -> None:
    """400 when ``data`` changes (or, without ``fill``, drops) a PID field the record holds.

    A PID is how others cite the record (``/records/<control_number>``): the Python API lets a
    program rewrite it, but a write over HTTP or from the pages may not lose it by accident.
    With ``fill`` (a full replace: PUT, the edit page), a body that leaves the field out keeps
    the PID: a client need not echo back fields the server minted.
    """
    for pid_type, field in sorted((repo.config.get("pids") or {}).items()):
        if fill and field in record and field not in data:
            data[field] = record[field]
        if field in record and data.get(field) != record[field]:
            shown = json.dumps(record[field], ensure_ascii=False)
            raise HTTPProblem(
                400,
                f"/{field}: record {record.id} has the {pid_type} PID {shown}; "
                "it cannot be removed or changed",
                errors=[{"pointer": f"/{field}", "message": f"the {pid_type} PID {shown} cannot change"}],
            )


def check_schema_kept(record: Record | RecordRevision, data: dict[str, Any], *, fill: bool = False) -> None:
    """400 when ``data`` drops the ``$schema`` the record names: the schema is what a write is
    validated against, and a record without one (in a repository with no default schema) is
    validated no more. With ``fill`` (PUT, the edit page) a body that leaves it out keeps it,
    as the form shows it read-only; naming another schema is a change like any other (the
    record is validated against that one)."""
    if "$schema" not in record or "$schema" in data:
        return
    if fill:
        data["$schema"] = record["$schema"]
        return
    raise HTTPProblem(
        400,
        f"/$schema: record {record.id} is validated against its $schema; a write over HTTP cannot "
        "remove it (name another schema to move the record to it)",
        errors=[{"pointer": "/$schema", "message": "the record's $schema cannot be removed"}],
    )


def check_revert_keeps_pids(repo: Repository, record: Record, target: int) -> None:
    """400 when reverting ``record`` to revision ``target`` would drop or change a PID it holds
    (a revision from before the PID was added); reverting to a deletion is a delete, which keeps
    the PID with the tombstone."""
    revisions = record.revisions
    revision = revisions[target]
    if revision.is_deleted:
        return
    # a deleted record's tombstone holds no fields: its PIDs are those of its last live revision
    held = next((r for r in reversed(revisions) if not r.is_deleted), None) if record.is_deleted else record
    if held is not None:
        check_pids_kept(repo, held, dict(revision))


def minters_for(repo: Repository, data: dict[str, Any], names: Iterable[str] | None) -> list[str]:
    """The minters to run for a new record: ``names`` (None: the repository's ``mint``), but
    ``recid`` only when the data has no ``control_number`` yet (a record brought over from
    elsewhere keeps its number; uniqueness is still checked)."""
    if names is None:
        return repo.minters_for(data)
    return [name for name in names if name and (name != "recid" or RECID_FIELD not in data)]


def timestamp(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def when(value: datetime | None) -> str:
    """For people: ``2026-11-26 10:33 UTC``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def record_json(record: Record) -> dict[str, Any]:
    rid = str(record.id)
    return {
        "id": rid,
        "revision_id": record.revision_id,
        "created": timestamp(record.created),
        "updated": timestamp(record.updated),
        "metadata": dict(record),
        "links": {
            "self": f"/api/records/{rid}",
            "revisions": f"/api/records/{rid}/revisions",
            "html": f"/admin/records/{rid}",
        },
    }


@dataclass(frozen=True)
class RevisionInfo:
    """One revision of a record with the commit that made it."""

    revision_id: int
    commit: str
    author_name: str
    author_email: str
    time: datetime
    message: str
    deleted: bool
    operation: str | None = None

    def as_json(self, record_id: uuid.UUID) -> dict[str, Any]:
        return {
            "revision_id": self.revision_id,
            "commit": self.commit,
            "author": {"name": self.author_name, "email": self.author_email},
            "time": timestamp(self.time),
            "message": self.message,
            "operation": self.operation,
            "deleted": self.deleted,
            "links": {"self": f"/api/records/{record_id}/revisions/{self.revision_id}"},
        }


def history(repo: Repository, record_id: uuid.UUID) -> list[RevisionInfo]:
    """Every revision, oldest first; 404 if the record never existed (or was hard-deleted)."""
    rows = repo_revisions(repo, record_id).rows()
    return [revision_info(repo, row.revision, row.commit_id, row.deleted) for row in rows]


def revision_info(repo: Repository, revision_id: int, commit_id: str, deleted: bool) -> RevisionInfo:
    info = _git.commit_info(repo.git, commit_id)
    message, operation = split_trailers(info.message)
    return RevisionInfo(
        revision_id, commit_id, info.author_name, info.author_email, info.time, message, deleted, operation
    )


def split_trailers(message: str) -> tuple[str, str | None]:
    """The message without gitrecords' ``Gitrecords-*`` trailers, and the operation they name."""
    text = message.strip()
    head, _, last = text.rpartition("\n\n")
    lines = last.splitlines()
    if not lines or not all(line.startswith("Gitrecords-") for line in lines):
        return text, None
    operation = next(
        (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Gitrecords-Operation:")), None
    )
    return head.strip(), operation


def repo_revisions(repo: Repository, record_id: uuid.UUID) -> Any:
    try:
        record = Record.get_record(record_id, with_deleted=True, repo=repo)
    except NoResultFound:
        raise HTTPProblem(404, f"record {record_id} does not exist") from None
    return record.revisions


def revision(repo: Repository, record_id: uuid.UUID, revision_id: int) -> RecordRevision:
    revisions = repo_revisions(repo, record_id)
    if revision_id < 0 or revision_id not in revisions:
        raise HTTPProblem(404, f"record {record_id} has no revision {revision_id}")
    return revisions[revision_id]


def info_of(repo: Repository, revision: RecordRevision) -> RevisionInfo:
    assert revision.revision_id is not None and revision.commit_id is not None
    return revision_info(repo, revision.revision_id, revision.commit_id, revision.is_deleted)


def revision_json(revision: RecordRevision, info: RevisionInfo) -> dict[str, Any]:
    body = info.as_json(revision.id)  # type: ignore[arg-type]
    body["id"] = str(revision.id)
    body["metadata"] = dict(revision)
    return body


def canonical_text(data: Any) -> str:
    return layout.dumps(data).decode()


# -- time travel and blame -----------------------------------------------------


def revision_at(repo: Repository, record_id: uuid.UUID, at: str) -> RecordRevision:
    """The revision current at ``at`` (``?at=``: a revision id, an ISO 8601 date or a commit):
    400 for a value that is none of these, 404 when the record did not exist then, 410 when it
    was deleted then."""
    record = load(repo, record_id, deleted_ok=True)
    try:
        found = record.revisions[find_revision(repo, record_id, at)]
    except AtError as err:
        raise HTTPProblem(400, f"query parameter 'at': {err}", parameter="at") from None
    except NoResultFound as err:
        raise HTTPProblem(404, str(err)) from None
    if found.is_deleted:
        raise RecordGone(
            f"record {record_id} was deleted at {at} (revision {found.revision_id})", found.revision_id
        )
    return found


def blame(repo: Repository, record_id: uuid.UUID, at: str | None = None) -> list[BlameEntry]:
    """Each leaf of the record (as of ``at``, default now) and who set it; 404/410 as for the
    record (and as for ``?at=``)."""
    if at is None:
        load(repo, record_id)  # 404, 410
        return repo.blame(record_id)
    return repo.blame(record_id, revision=revision_at(repo, record_id, at).revision_id)


def blame_json(entry: BlameEntry) -> dict[str, Any]:
    """``{pointer, revision_id, commit, author: {name, email}, time, message}``, with the time and
    the message (without gitrecords' trailers) as the revisions of the API show them."""
    body = entry.as_json()
    body["time"] = timestamp(entry.time)
    body["message"] = split_trailers(entry.message)[0]
    return body


# -- listing and search --------------------------------------------------------
#
# Both front ends search through the derived index (gitrecords.search): the query
# language of docs/search.md, sorts, pages and the facets declared in gitrecords.json.


def field_values(data: Any, name: str) -> list[Any]:
    """The scalar values of field ``name`` in ``data``, in document order: a dotted path, or the
    end of one, as the query language reads field names (``title`` is ``titles.title`` too)."""
    wanted = name.split(".")
    return [value for path, value in leaves(data) if path.split(".")[-len(wanted) :] == wanted]


def query_problem(err: QueryError, parameter: str) -> HTTPProblem:
    """400 for a malformed ``q`` or ``sort``, naming the parameter and the position."""
    text = str(err)
    if parameter != "q":  # a position in a sort field says nothing: the whole value is wrong
        text = text.removesuffix(f" (at position {err.position + 1})")
    return HTTPProblem(
        400, f"query parameter {parameter!r}: {text}", parameter=parameter, position=err.position
    )


@dataclass(frozen=True)
class Unreadable:
    """A listed record whose file cannot be read (hand-edited into invalid JSON, say)."""

    id: uuid.UUID
    error: str

    def as_json(self) -> dict[str, Any]:
        rid = str(self.id)
        return {"id": rid, "error": self.error, "links": {"self": f"/api/records/{rid}"}}


def listed(repo: Repository, record_id: uuid.UUID) -> Record | Unreadable:
    """A record for a list page: one broken file is shown as such, not an error for the page."""
    try:
        return load(repo, record_id, deleted_ok=True)
    except InvalidRecordError as err:
        return Unreadable(record_id, str(err))


def listing_json(entry: Record | Unreadable) -> dict[str, Any]:
    return entry.as_json() if isinstance(entry, Unreadable) else record_json(entry)


@dataclass
class Page:
    records: list[Record | Unreadable]
    total: int
    page: int
    size: int
    #: facet name -> (value, count), most frequent first (when asked for)
    facets: dict[str, list[tuple[str, int]]] = dataclasses.field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


#: the order of a list without a query
NEWEST_FIRST = "-updated"

#: the highest page number a list accepts (beyond the last page a page is empty anyway; this
#: keeps the offset within SQLite's integers)
MAX_PAGE = 1_000_000_000


def search(
    repo: Repository,
    q: str,
    page: int,
    size: int,
    *,
    sort: str | None = None,
    facets: bool = False,
    with_deleted: bool = False,
) -> Page:
    """One page of the records matching ``q`` in ``sort`` order (the index's default: best
    matches first when ``q`` has words, else most recently changed first), with facet counts if
    asked for; a malformed ``q`` or ``sort`` is a 400 naming the parameter and the position."""
    try:
        query.parse(q)
    except QueryError as err:
        raise query_problem(err, "q") from None
    # the plain list too: the search index orders it as the revision index does (time of the
    # latest revision, then more revisions first, then id) and pages it without a scan
    try:
        found = find(repo, q, sort=sort, page=page, size=size, facets=facets, with_deleted=with_deleted)
    except QueryError as err:
        raise query_problem(err, "sort") from None
    return Page([listed(repo, i) for i in found.ids], found.total, page, size, found.facets)


def live_total(repo: Repository, q: str) -> int:
    """How many live records match ``q``: what a bulk change of ``q`` selects (the list pages
    count deleted records too)."""
    return find(repo, q, page=1, size=1).total


# -- writes --------------------------------------------------------------------


def all_errors(repo: Repository, data: dict[str, Any], err: ValidationError) -> ValidationError:
    """Attach every schema error (``err.all_errors``: pointer and message) to ``err``."""
    schema_ref = data.get("$schema", repo.config.get("default_schema"))
    errors: list[dict[str, str]] = []
    if schema_ref is not None:
        try:
            found = repo.schema_store().iter_errors(data, schema_ref)
            errors = [{"pointer": pointer(e), "message": e.message} for e in found]
        except Exception:  # the one error we have is still worth reporting
            errors = []
    errors.sort(key=lambda e: e["pointer"])
    err.all_errors = errors or [{"pointer": pointer(err), "message": err.message}]  # type: ignore[attr-defined]
    return err


def parse_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = layout.loads(raw, what=what)
    except InvalidRecordError as err:
        raise HTTPProblem(400, str(err)) from None
    if not isinstance(data, dict):
        raise HTTPProblem(400, f"{what} must be a JSON object, not {type(data).__name__}")
    return data


def now() -> datetime:
    return datetime.now(UTC)
