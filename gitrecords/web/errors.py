"""HTTP status codes for gitrecords' errors, in one place.

The API answers every error with JSON: ``{"status": 404, "message": "..."}``,
plus ``"errors": [{"pointer": "/title", "message": "..."}]`` for invalid
records. The administration pages show the same message on an HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

import jsonpatch
import jsonpointer
from flask import Flask, Response, has_request_context, jsonify, render_template, request
from jsonschema.exceptions import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import (
    GitRecordsError,
    InvalidRecordError,
    LocalChangesError,
    NoResultFound,
    PIDError,
    RecordDeletedError,
    RecordExistsError,
    RecordTooLargeError,
    RepositoryLockedError,
    SchemaError,
    StaleRevisionError,
)
from ..schema import pointer

log = logging.getLogger(__name__)


class HTTPProblem(Exception):
    """An error the web layer raises itself, with its status code."""

    def __init__(
        self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: response headers (``Accept-Patch`` on a 415); ``extra`` goes into the JSON body
        self.headers = headers or {}
        self.extra = extra


class RecordGone(HTTPProblem):
    """410: the record is soft-deleted (its history is still readable)."""

    def __init__(self, message: str, revision_id: int | None) -> None:
        super().__init__(410, message, revision_id=revision_id)


#: (error class, status), most specific first
STATUS: list[tuple[type[BaseException], int]] = [
    (NoResultFound, 404),
    (RecordDeletedError, 410),
    (RecordExistsError, 409),
    (PIDError, 409),
    (StaleRevisionError, 412),
    (RecordTooLargeError, 413),
    (InvalidRecordError, 400),
    (SchemaError, 400),
    (LocalChangesError, 409),
    (RepositoryLockedError, 503),
    (jsonpatch.JsonPatchTestFailed, 409),
    (jsonpatch.JsonPatchException, 400),
    (jsonpointer.JsonPointerException, 400),
    (GitRecordsError, 400),
]


def problem(err: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for an error."""
    if isinstance(err, HTTPProblem):
        return err.status, {"status": err.status, "message": err.message, **err.extra}
    if isinstance(err, RequestEntityTooLarge) and has_request_context() and request.max_content_length:
        message = f"the request body is larger than this server's limit of {request.max_content_length} bytes"
        return 413, {"status": 413, "message": message}
    if isinstance(err, HTTPException):
        status = err.code or 500
        return status, {"status": status, "message": err.description or err.name}
    if isinstance(err, ValidationError):
        where = pointer(err)
        errors = getattr(err, "all_errors", None) or [{"pointer": where, "message": err.message}]
        return 400, {"status": 400, "message": f"{where}: {err.message}", "errors": errors}
    for cls, status in STATUS:
        if isinstance(err, cls):
            return status, {"status": status, "message": str(err) or type(err).__name__}
    log.exception("unexpected error", exc_info=err)
    return 500, {"status": 500, "message": "internal server error (see the server log)"}


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/records/")) or request.path == "/api"


def register(app: Flask) -> None:
    def handle(err: BaseException) -> Any:
        status, body = problem(err)
        headers: dict[str, str] = dict(err.headers) if isinstance(err, HTTPProblem) else {}
        if isinstance(err, HTTPException):
            # werkzeug's own headers: a 405's Allow (RFC 9110 requires it)
            headers.update(err.get_headers())
            headers.pop("Content-Type", None)
        if status == 503:
            headers["Retry-After"] = "1"
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="gitrecords"'
        if wants_json():
            response: Response = jsonify(body)
        else:
            response = Response(render_template("error.html", status=status, message=body["message"]))
        response.status_code = status
        response.headers.update(headers)
        return response

    app.register_error_handler(HTTPProblem, handle)
    app.register_error_handler(HTTPException, handle)
    app.register_error_handler(ValidationError, handle)
    app.register_error_handler(GitRecordsError, handle)
    app.register_error_handler(jsonpatch.JsonPatchException, handle)
    app.register_error_handler(jsonpointer.JsonPointerException, handle)
    app.register_error_handler(Exception, handle)
