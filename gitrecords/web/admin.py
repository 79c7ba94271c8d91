"""The administration pages under ``/admin/``: list, search, view, history, diff and edit.

A person signs in with the server's token (kept in a signed session cookie);
every form carries a per-session token against cross-site request forgery,
and every write names the revision it was based on, so two people editing
the same record cannot overwrite each other silently.
"""

from __future__ import annotations

import difflib
import hmac
import secrets
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from jsonschema.exceptions import ValidationError
from werkzeug.wrappers import Response

from ..errors import GitRecordsError
from ..record import Record
from . import records as rec
from .context import author, current_repo, role_for, writes_enabled
from .errors import HTTPProblem, problem

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


@blueprint.app_template_test("unreadable")
def is_unreadable(entry: object) -> bool:
    return isinstance(entry, rec.Unreadable)


def signed_in_role() -> str | None:
    """The role of this browser's session, if it is open on the server and its token is still
    the server's (signing out or changing the token ends it)."""
    role = current_app.extensions["gitrecords.sessions"].role(
        session.get("sid"),
        {
            "write": current_app.config["GITRECORDS_TOKEN"],
            "admin": current_app.config["GITRECORDS_ADMIN_TOKEN"],
        },
    )
    if role is None and "sid" in session:
        session.pop("sid", None)  # a session that ended: the cookie is dropped too
    return role


@blueprint.app_context_processor
def helpers() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        "role": signed_in_role(),
        "writes_enabled": writes_enabled(),
        "timestamp": rec.timestamp,
        "when": rec.when,
        "title": _title,
    }


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@blueprint.before_request
def check_csrf() -> None:
    if request.method != "POST":
        return
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPProblem(400, "the form has expired or did not come from this site: reload the page")


def require(role: str = "write") -> None:
    granted = signed_in_role()
    if granted is None or (role == "admin" and granted != "admin"):
        which = "admin token" if role == "admin" else "token"
        raise HTTPProblem(403, f"sign in with the {which} to change records")


def commit_message() -> str | None:
    return request.form.get("message", "").strip() or None


# -- signing in ----------------------------------------------------------------


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        token = request.form.get("token", "")
        role = role_for(token)
        if role is None:
            error = "That token is not this server's token."
        else:
            sessions = current_app.extensions["gitrecords.sessions"]
            sessions.close(session.get("sid"))
            session.clear()
            session["sid"] = sessions.open(role, token)
            csrf_token()
            flash(f"Signed in ({role}).")
            return redirect(url_for("admin.index"))
    return render_template("login.html", error=error), 401 if error else 200


@blueprint.post("/logout")
def logout() -> Response:
    current_app.extensions["gitrecords.sessions"].close(session.get("sid"))
    session.clear()
    flash("Signed out.")
    return redirect(url_for("admin.index"))


# -- reading -------------------------------------------------------------------


@blueprint.get("/")
def index() -> str:
    config = current_app.config
    q = request.args.get("q", "")
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    size = config["GITRECORDS_PAGE_SIZE"]
    found = rec.search(current_repo(), q, page, size, with_deleted=True)
    return render_template("list.html", found=found, q=q)


@blueprint.get("/records/<record_id>")
def record(record_id: str) -> str:
    repo = current_repo()
    current = rec.load(repo, rec.parse_id(record_id), deleted_ok=True)
    pids = repo.index.pids_of(current.id)
    return render_template("record.html", record=current, text=rec.canonical_text(dict(current)), pids=pids)


@blueprint.get("/records/<record_id>/history")
def history(record_id: str) -> str:
    repo = current_repo()
    rid = rec.parse_id(record_id)
    current = rec.load(repo, rid, deleted_ok=True)
    infos = list(reversed(rec.history(repo, rid)))
    return render_template("history.html", record=current, revisions=infos)


@blueprint.get("/records/<record_id>/revisions/<int:revision_id>")
def revision(record_id: str, revision_id: int) -> str:
    repo = current_repo()
    rid = rec.parse_id(record_id)
    current = rec.load(repo, rid, deleted_ok=True)
    old = rec.revision(repo, rid, revision_id)
    info = rec.info_of(repo, old)
    return render_template(
        "revision.html", record=current, revision=old, info=info, text=rec.canonical_text(dict(old))
    )


@blueprint.get("/records/<record_id>/diff")
def diff(record_id: str) -> str:
    repo = current_repo()
    rid = rec.parse_id(record_id)
    current = rec.load(repo, rid, deleted_ok=True)
    last = current.revision_id or 0
    try:
        a = int(request.args.get("a", max(last - 1, 0)))
        b = int(request.args.get("b", last))
    except ValueError:
        abort(400, "a and b must be revision numbers")
    old, new = rec.revision(repo, rid, a), rec.revision(repo, rid, b)
    lines = list(
        difflib.unified_diff(
            _revision_text(old).splitlines(),
            _revision_text(new).splitlines(),
            f"revision {a}",
            f"revision {b}",
            n=3,
            lineterm="",
        )
    )
    choices = list(range(len(current.revisions)))
    return render_template(
        "diff.html", record=current, a=a, b=b, lines=lines, choices=choices, css=_diff_class
    )


def _revision_text(revision: Any) -> str:
    if revision.is_deleted:
        return "(deleted)\n"
    return rec.canonical_text(dict(revision))


def _diff_class(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "del"}.get(line[:1], "same")


def _title(record: Record) -> str:
    for key in ("title", "name"):
        value = record.get(key)
        if isinstance(value, str) and value:
            return value
    titles = record.get("titles")
    if isinstance(titles, list) and titles and isinstance(titles[0], dict):
        value = titles[0].get("title")
        if isinstance(value, str):
            return value
    return "(no title)" if not record.is_deleted else "(deleted)"


# -- writing -------------------------------------------------------------------


@blueprint.route("/new", methods=["GET", "POST"])
def new() -> Any:
    require()
    text = request.form.get("data", "{\n  \n}\n")
    errors: list[dict[str, str]] = []
    status = 200
    if request.method == "POST":
        repo = current_repo()
        try:
            data = rec.parse_object(text.encode(), "record")
            minters = rec.minters_for(data, current_app.config["GITRECORDS_PID_MINTERS"])
            created = Record.create(
                data, repo=repo, pid_minters=minters, message=commit_message(), author=author()
            )
        except ValidationError as err:
            status = 400
            errors = rec.all_errors(repo, data, err).all_errors  # type: ignore[attr-defined]
        except (GitRecordsError, HTTPProblem) as err:
            status, body = problem(err)  # 409 for a used id or PID, as the API answers
            errors = [{"pointer": "", "message": body["message"]}]
        else:
            flash(f"Created record {created.id}.")
            return redirect(url_for("admin.record", record_id=str(created.id)))
    return render_template("edit.html", record=None, text=text, errors=errors, revision_id=None), status


@blueprint.route("/records/<record_id>/edit", methods=["GET", "POST"])
def edit(record_id: str) -> Any:
    require()
    repo = current_repo()
    current = rec.load(repo, rec.parse_id(record_id))
    errors: list[dict[str, str]] = []
    if request.method == "GET":
        return render_template(
            "edit.html",
            record=current,
            text=rec.canonical_text(dict(current)),
            errors=errors,
            revision_id=current.revision_id,
        )
    text = request.form.get("data", "")
    based_on = request.form.get("revision_id", "")
    status = 400
    try:
        rec.check_revision(current, based_on)
        data = rec.parse_object(text.encode(), "record")
        rec.check_pids_kept(repo, current, data)
        current.clear()
        current.update(data)
        before = current.revision_id
        current.commit(message=commit_message(), author=author())
    except ValidationError as err:
        errors = rec.all_errors(repo, data, err).all_errors  # type: ignore[attr-defined]
    except (GitRecordsError, HTTPProblem) as err:
        status, body = problem(err)  # 412 for a stale revision, as the API answers
        errors = [{"pointer": "", "message": body["message"]}]
    else:
        if current.revision_id == before:
            flash("Nothing changed: no new revision was written.")
        else:
            flash(f"Saved revision {current.revision_id}.")
        return redirect(url_for("admin.record", record_id=record_id))
    stored = rec.load(repo, current.id)  # the heading names the stored record, not the refused text
    return render_template("edit.html", record=stored, text=text, errors=errors, revision_id=based_on), status


def form_record(record_id: str, role: str = "write", deleted_ok: bool = True) -> Record:
    """The record a button's form acts on, at the revision the page showed (412 otherwise)."""
    require(role)
    return rec.load(
        current_repo(),
        rec.parse_id(record_id),
        deleted_ok=deleted_ok,
        expected=request.form.get("revision_id"),
    )


@blueprint.post("/records/<record_id>/delete")
def delete(record_id: str) -> Response:
    hard = request.form.get("hard") == "1"
    current = form_record(record_id, "admin" if hard else "write", deleted_ok=hard)
    if hard:
        if request.form.get("confirm", "").strip() != str(current.id):
            flash("Not purged: type the record's id to confirm.")
            return redirect(url_for("admin.record", record_id=record_id))
        current.delete(force=True, message=commit_message(), author=author())
        flash(f"Purged record {current.id} from every revision.")
        return redirect(url_for("admin.index"))
    current.delete(message=commit_message(), author=author())
    flash(f"Deleted (revision {current.revision_id}); undelete brings it back.")
    return redirect(url_for("admin.record", record_id=record_id))


@blueprint.post("/records/<record_id>/undelete")
def undelete(record_id: str) -> Response:
    current = form_record(record_id)
    if not current.is_deleted:
        raise HTTPProblem(409, f"record {current.id} is not deleted")
    current.undelete(message=commit_message(), author=author())
    flash(f"Undeleted (revision {current.revision_id}).")
    return redirect(url_for("admin.record", record_id=record_id))


@blueprint.post("/records/<record_id>/revert")
def revert(record_id: str) -> Response:
    current = form_record(record_id)
    try:
        target = int(request.form.get("target", ""))
    except ValueError:
        raise HTTPProblem(400, "choose a revision to revert to") from None
    if target < 0 or target not in current.revisions:
        raise HTTPProblem(404, f"record {current.id} has no revision {target}")
    new = current.revert(target, message=commit_message(), author=author())
    flash(f"Reverted to revision {target}: that is now revision {new.revision_id}.")
    return redirect(url_for("admin.record", record_id=record_id))
