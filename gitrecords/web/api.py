"""The REST API: ``/api/records`` and ``/records/<control_number>``.

Every answer is JSON. A record's ``ETag`` is its revision id in quotes; send
it back in ``If-Match`` to write only if nobody changed the record since
(412 otherwise). Writes need ``Authorization: Bearer <token>``: a shared token, or
a person's token from the users file (then that person is the commit's author).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from jsonschema.exceptions import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from .. import layout
from ..errors import BulkEditError, InvalidRecordError, QueryError
from ..record import Record
from ..repository import Repository
from ..users import allows
from . import records as rec
from .context import BULK_WORKERS, api_person, author, current_repo, int_arg, users_file, writes_enabled
from .errors import HTTPProblem

blueprint = Blueprint("api", __name__)


# -- helpers -------------------------------------------------------------------


@blueprint.before_request
def private_reads() -> None:
    """With ``GITRECORDS_PRIVATE``, reads need a token too (any role)."""
    if current_app.config["GITRECORDS_PRIVATE"] and api_person() is None:
        raise HTTPProblem(401, "this server is private: reads need 'Authorization: Bearer <token>' too")


def require(role: str) -> None:
    """401/403 unless the request carries a token (or comes through the trusted proxy) with
    ``role`` ('write' or 'admin'; read < write < admin), as the pages require it of a session."""
    if not writes_enabled():
        raise HTTPProblem(403, "this server is read-only: it was started without a token")
    person = api_person()
    if person is None:
        raise HTTPProblem(401, "writes need 'Authorization: Bearer <token>' with the server's token")
    if allows(person.role, role):
        return
    if role == "admin":
        if not current_app.config["GITRECORDS_ADMIN_TOKEN"] and users_file() is None:
            raise HTTPProblem(403, "hard deletes are disabled: the server was started without an admin token")
        raise HTTPProblem(403, "a hard delete needs the admin token or a person with the admin role")
    raise HTTPProblem(403, f"{person.label} may read but not change records: writes need the write role")


def writable(record_id: str, role: str = "write", deleted_ok: bool = False) -> Record:
    """The record a write acts on, if the token allows it and ``If-Match`` (when sent) names it."""
    require(role)
    return rec.load(
        current_repo(),
        rec.parse_id(record_id),
        deleted_ok=deleted_ok,
        expected=request.headers.get("If-Match"),
    )


def flag_arg(name: str) -> bool:
    value = request.args.get(name, "").lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise HTTPProblem(400, f"query parameter {name!r} must be true or false, not {value!r}")


#: what a PATCH body may be sent as (a 415 for another type says so in ``Accept-Patch``)
ACCEPT_PATCH = "application/json-patch+json, application/json"


def is_json(mimetype: str) -> bool:
    """``application/json`` or any ``application/...+json`` (``application/json-patch+json``)."""
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def json_body(what: str) -> bytes:
    """The request body, sent as JSON: 415 for a body of another ``Content-Type`` (a form, text),
    413 for one larger than ``MAX_CONTENT_LENGTH``. A body without a ``Content-Type`` is read as
    JSON (``requests.post(url, data=...)``, Flask's test client), and malformed JSON is a 400."""
    sent = request.headers.get("Content-Type", "").strip()
    patch = request.method == "PATCH"
    if sent:
        mimetype = request.mimetype
        if patch and mimetype == "application/merge-patch+json":
            raise HTTPProblem(
                415,
                "PATCH takes a JSON Patch (RFC 6902), not a merge patch: send a list of operations "
                "as 'Content-Type: application/json-patch+json'",
                headers={"Accept-Patch": ACCEPT_PATCH},
            )
        if not is_json(mimetype):
            wanted = "application/json-patch+json' or 'application/json" if patch else "application/json"
            raise HTTPProblem(
                415,
                f"the {what} must be JSON sent as 'Content-Type: {wanted}', not {sent!r}",
                headers={"Accept-Patch": ACCEPT_PATCH} if patch else {},
            )
    return whole_body()


def whole_body() -> bytes:
    """The request body; 413 when it is larger than ``MAX_CONTENT_LENGTH``, however it was sent.

    Werkzeug refuses a ``Content-Length`` over the limit, but stops reading a chunked body (no
    ``Content-Length``; gunicorn and werkzeug's server pass it on as it comes) at the limit
    without a word: the cut-off JSON was answered with a 400 "not valid JSON".
    """
    data = request.get_data(cache=False)
    limit = request.max_content_length
    if (
        request.content_length is None
        and limit is not None
        and len(data) >= limit
        and request.environ.get("wsgi.input_terminated")
        and request.environ["wsgi.input"].read(1)  # a byte past the limit: the body is larger
    ):
        raise RequestEntityTooLarge()
    return data


def body_object(what: str = "record") -> dict[str, Any]:
    return rec.parse_object(json_body(what), what)


def message() -> str | None:
    """The ``X-Commit-Message`` header: UTF-8 (WSGI hands header bytes over as Latin-1)."""
    sent = request.headers.get("X-Commit-Message")
    if not sent:
        return None
    try:
        return sent.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise HTTPProblem(400, "X-Commit-Message: the commit message must be UTF-8") from None


def with_record(record: Record, status: int = 200) -> Response:
    response = jsonify(rec.record_json(record))
    response.status_code = status
    response.set_etag(str(record.revision_id))
    return response


def written(record: Record, status: int = 200) -> Response:
    response = with_record(record, status)
    if status == 201:
        response.headers["Location"] = url_for("api.get_record", record_id=str(record.id))
    return response


def validated(repo: Repository, data: dict[str, Any], write: Any) -> Any:
    """Run ``write()``; a schema error comes back with every error of ``data``."""
    try:
        return write()
    except ValidationError as err:
        raise rec.all_errors(repo, data, err) from None


# -- reading -------------------------------------------------------------------


@blueprint.get("/api/records")
def list_records() -> Response:
    """``?q=&sort=&page=&size=&facets=1``: one page of hits; with ``facets``, their ``aggregations``
    (invenio-records-rest's shape: ``{name: {"buckets": [{"key", "doc_count"}, ...]}}``)."""
    config = current_app.config
    page = int_arg("page", 1, 1, rec.MAX_PAGE)
    size = int_arg("size", config["GITRECORDS_PAGE_SIZE"], 1, config["GITRECORDS_MAX_PAGE_SIZE"])
    q = request.args.get("q", "")
    sort = request.args.get("sort") or None
    facets = flag_arg("facets")
    found = rec.search(current_repo(), q, page, size, sort=sort, facets=facets)

    def link(number: int) -> str:
        return url_for(
            "api.list_records", q=q or None, sort=sort, page=number, size=size, facets=1 if facets else None
        )

    if page > found.pages:  # page 1 always exists, empty when nothing matches
        raise HTTPProblem(
            404, f"page {page} is past the last page ({found.pages})", links={"last": link(found.pages)}
        )

    links = {"self": link(page)}
    if page > 1:
        links["prev"] = link(min(page - 1, found.pages))
    if page < found.pages:
        links["next"] = link(page + 1)
    body: dict[str, Any] = {
        "hits": {"total": found.total, "hits": [rec.listing_json(r) for r in found.records]},
        "page": page,
        "size": size,
        "links": links,
    }
    if facets:
        body["aggregations"] = {
            name: {"buckets": [{"key": value, "doc_count": count} for value, count in buckets]}
            for name, buckets in found.facets.items()
        }
    return jsonify(body)


@blueprint.get("/api/records/<record_id>")
def get_record(record_id: str) -> Response:
    """``?at=REVISION|DATE|COMMIT``: the record as it was then."""
    if request.args.get("at") is not None:
        return revision_at(record_id, request.args["at"])
    record = rec.load(current_repo(), rec.parse_id(record_id))
    response = with_record(record)
    return response.make_conditional(request)


def revision_at(record_id: str, at: str) -> Response:
    rid = rec.parse_id(record_id)
    found = rec.revision_at(current_repo(), rid, at)
    body = rec.record_json(found)  # type: ignore[arg-type]
    body["links"]["revision"] = f"/api/records/{rid}/revisions/{found.revision_id}"
    response = jsonify(body)
    response.set_etag(str(found.revision_id))
    return response.make_conditional(request)


@blueprint.get("/api/records/<record_id>/blame")
def blame_record(record_id: str) -> Response:
    """Each leaf (JSON pointer) and the revision that last set it; ``?at=`` as for the record."""
    rid = rec.parse_id(record_id)
    entries = rec.blame(current_repo(), rid, request.args.get("at"))
    return jsonify({"id": str(rid), "blame": [rec.blame_json(e) for e in entries]})


@blueprint.get("/api/records/<record_id>/revisions")
def list_revisions(record_id: str) -> Response:
    rid = rec.parse_id(record_id)
    infos = rec.history(current_repo(), rid)
    return jsonify({"id": str(rid), "revisions": [i.as_json(rid) for i in infos]})


@blueprint.get("/api/records/<record_id>/revisions/<int:revision_id>")
def get_revision(record_id: str, revision_id: int) -> Response:
    rid = rec.parse_id(record_id)
    repo = current_repo()
    revision = rec.revision(repo, rid, revision_id)
    return jsonify(rec.revision_json(revision, rec.info_of(repo, revision)))


@blueprint.get("/records/<control_number>")
def get_by_control_number(control_number: str) -> Response:
    """A record by its ``recid`` PID (``control_number``), as invenio serves it."""
    response = with_record(rec.load_by_pid(current_repo(), "recid", control_number))
    return response.make_conditional(request)


# -- writing -------------------------------------------------------------------


@blueprint.post("/api/records")
def create_record() -> Response:
    require("write")
    repo = current_repo()
    data = body_object()
    record_id: uuid.UUID | None = None
    if request.args.get("id"):
        record_id = rec.parse_id(request.args["id"])
    asked = request.args.getlist("pid_minter") if "pid_minter" in request.args else None
    if asked:
        from .. import plugins

        known = plugins.minters()
        unknown = sorted({name for name in asked if name and name not in known})
        if unknown:  # a bad query parameter: 400 (409 is for an id or a PID taken already)
            raise HTTPProblem(
                400, f"pid_minter: unknown PID minter {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
    minters = rec.minters_for(
        repo, data, current_app.config["GITRECORDS_PID_MINTERS"] if asked is None else asked
    )
    record = validated(
        repo,
        data,
        lambda: Record.create(
            data, repo=repo, id_=record_id, pid_minters=minters, message=message(), author=author()
        ),
    )
    return written(record, 201)


@blueprint.put("/api/records/<record_id>")
def replace_record(record_id: str) -> Response:
    record = writable(record_id)
    repo = current_repo()
    data = body_object()
    rec.check_pids_kept(repo, record, data, fill=True)
    rec.check_schema_kept(record, data, fill=True)
    record.clear()
    record.update(data)
    return written(validated(repo, data, lambda: record.commit(message=message(), author=author())))


@blueprint.patch("/api/records/<record_id>")
def patch_record(record_id: str) -> Response:
    record = writable(record_id)
    repo = current_repo()
    try:
        operations = layout.loads(json_body("JSON Patch"), what="JSON Patch")
    except InvalidRecordError as err:
        raise HTTPProblem(400, str(err)) from None
    patched = record.patch(operations)
    rec.check_pids_kept(repo, record, dict(patched))
    rec.check_schema_kept(record, dict(patched))
    return written(validated(repo, dict(patched), lambda: patched.commit(message=message(), author=author())))


@blueprint.delete("/api/records/<record_id>")
def delete_record(record_id: str) -> Response:
    hard = flag_arg("hard")
    record = writable(record_id, "admin" if hard else "write", deleted_ok=hard)
    record.delete(force=hard, message=message(), author=author())
    response = Response(status=204)
    if not hard:
        response.set_etag(str(record.revision_id))
    return response


@blueprint.post("/api/records/<record_id>/revert")
def revert_record(record_id: str) -> Response:
    """Body: ``{"revision_id": n}``; writes revision n's data again as a new revision."""
    record = writable(record_id, deleted_ok=True)
    body = body_object("request body")
    target = body.get("revision_id")
    if not isinstance(target, int) or isinstance(target, bool):
        raise HTTPProblem(400, '/revision_id: the request body must be {"revision_id": <integer>}')
    if target < 0 or target not in record.revisions:
        raise HTTPProblem(404, f"record {record.id} has no revision {target}")
    rec.check_revert_keeps_pids(current_repo(), record, target)
    new = record.revert(target, message=message(), author=author())
    if new.is_deleted:
        response = Response(status=204)
        response.set_etag(str(new.revision_id))
        return response
    return written(new)


@blueprint.post("/api/records/<record_id>/undelete")
def undelete_record(record_id: str) -> Response:
    require("write")
    repo = current_repo()
    record = rec.load(repo, rec.parse_id(record_id), deleted_ok=True)
    if not record.is_deleted:
        raise HTTPProblem(409, f"record {record.id} is not deleted")
    rec.check_revision(record, request.headers.get("If-Match"))
    return written(record.undelete(message=message(), author=author()))


# -- bulk changes ----------------------------------------------------------------

#: the members a ``POST /api/bulk`` body may have
BULK_MEMBERS = frozenset({"query", "patch", "schema", "dry_run", "message"})


@blueprint.post("/api/bulk")
def bulk_change() -> Response:
    """Body ``{"query": "...", "patch": [...], "dry_run": false, "message": "..."}`` (and
    ``"schema"`` to move the records to another schema): ``repo.update_records`` for admins.
    Answers the report (200); 400 with the problems when a record would become invalid, and
    then nothing is written. A dry run answers 200 with the problems in its report."""
    try:
        require("admin")
    except HTTPProblem as err:
        if err.status != 403 or not writes_enabled():
            raise
        if not current_app.config["GITRECORDS_ADMIN_TOKEN"] and users_file() is None:
            raise HTTPProblem(
                403, "bulk changes are disabled: the server was started without an admin token"
            ) from None
        raise HTTPProblem(
            403, "a bulk change needs the admin token or a person with the admin role"
        ) from None
    body = body_object("request body")
    unknown = sorted(set(body) - BULK_MEMBERS)
    if unknown:
        raise HTTPProblem(
            400, f"/{unknown[0]}: unknown member; a bulk change takes {', '.join(sorted(BULK_MEMBERS))}"
        )
    query = body.get("query")
    if not isinstance(query, str):
        raise HTTPProblem(400, '/query: a search query string is needed ("" selects every live record)')
    patch = body.get("patch")
    schema = body.get("schema")
    if patch is None and schema is None:
        raise HTTPProblem(400, "/patch: a JSON Patch (a list of operations) is needed")
    if patch is not None and not isinstance(patch, list):
        raise HTTPProblem(400, "/patch: a JSON Patch must be a list of operations")
    if schema is not None and not isinstance(schema, str):
        raise HTTPProblem(400, "/schema: the path or $id of a schema in the store is needed")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise HTTPProblem(400, "/dry_run: must be true or false")
    text = body.get("message")
    if text is not None and not isinstance(text, str):
        raise HTTPProblem(400, "/message: must be a string")
    repo = current_repo()
    try:
        report = repo.update_records(
            query,
            patch,
            message=text or message(),
            dry_run=dry_run,
            author=author(),
            schema=schema,
            workers=BULK_WORKERS,
            keep_pids=True,  # as PUT and PATCH: a PID survives every write over HTTP
        )
    except QueryError as err:
        raise HTTPProblem(400, f"/query: {err}", position=err.position) from None
    except BulkEditError as err:
        found = err.report
        raise HTTPProblem(
            400,
            str(err),
            errors=[{"id": i, "pointer": p, "message": m} for i, p, m in found.problems],
            report=found.as_dict(),
        ) from None
    return jsonify(report.as_dict())
