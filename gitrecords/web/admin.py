"""The administration pages under ``/admin/``: list, search, view, history, diff and edit.

A person signs in with their token from the users file, or the server's shared
token (the session is kept on the server, its id in a signed cookie);
every form carries a per-session token against cross-site request forgery,
and every write names the revision it was based on, so two people editing
the same record cannot overwrite each other silently.
"""

from __future__ import annotations

import difflib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from jsonschema.exceptions import ValidationError
from werkzeug.wrappers import Response

from .. import layout
from ..errors import GitRecordsError
from ..record import Record
from ..search import facets_of
from ..search_index import scalar_number
from ..users import allows
from . import forms, reading
from . import records as rec
from .context import (
    Person,
    author,
    current_repo,
    int_arg,
    person_for,
    person_of,
    trusted_person,
    users_file,
    writes_enabled,
)
from .errors import HTTPProblem, problem
from .sessions import fingerprint

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


@blueprint.app_template_test("unreadable")
def is_unreadable(entry: object) -> bool:
    return isinstance(entry, rec.Unreadable)


def signed_in() -> Person | None:
    """Who uses this browser: the person (or shared token's role) of its session, if the session is
    open on the server and its token is still valid (signing out, changing the token, ``users
    remove`` or a new token end it); else the person of the trusted user header, if any."""
    if "gitrecords_person" in g:
        return g.gitrecords_person
    found = current_app.extensions["gitrecords.sessions"].lookup(session.get("sid"))
    person = session_person(*found) if found is not None else None
    if person is None and "sid" in session:
        session.pop("sid", None)  # a session that ended: the cookie is dropped too
    if person is None:
        person = trusted_person()
    g.gitrecords_person = person
    return person


def session_secret(person: Person, token: str) -> tuple[str, str]:
    """(role, secret) kept (as a fingerprint) for a new session: the shared token itself, or a
    person's stored token hash (so a new token or ``users remove`` ends their sessions)."""
    if person.email is None:
        return person.role, token
    users = users_file()
    user = users.get(person.email) if users is not None else None
    return f"user:{person.email}", json.dumps(user.token_hash if user else None, sort_keys=True)


def session_person(role: str, kept: str) -> Person | None:
    """The person of an open session, if what it was opened with is still valid."""
    if role.startswith("user:"):
        users = users_file()
        user = users.get(role[len("user:") :]) if users is not None else None
        if user is None:
            return None
        current = json.dumps(user.token_hash, sort_keys=True)
        return person_of(user) if hmac.compare_digest(kept, fingerprint(current)) else None
    config = current_app.config
    current_token = {"write": config["GITRECORDS_TOKEN"], "admin": config["GITRECORDS_ADMIN_TOKEN"]}.get(role)
    if not current_token or not hmac.compare_digest(kept, fingerprint(current_token)):
        return None
    return Person(role)


@blueprint.app_context_processor
def helpers() -> dict[str, Any]:
    person = signed_in()
    replica_of = current_app.config["GITRECORDS_REPLICA_OF"]
    return {
        "csrf_token": csrf_token,
        # the write buttons show for "write" and "admin"; someone with the "read" role, or anyone
        # on a read replica, sees none
        "role": person.role
        if person is not None and allows(person.role, "write") and not replica_of
        else None,
        "person": person,
        "writes_enabled": writes_enabled(),
        "replica_of": replica_of,
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
    if request.method in ("GET", "HEAD", "OPTIONS"):  # every other method may write
        return
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPProblem(400, "the form has expired or did not come from this site: reload the page")


@blueprint.before_request
def private_reads() -> Any:
    """With ``GITRECORDS_PRIVATE``, the pages are for people signed in only."""
    if current_app.config["GITRECORDS_PRIVATE"] and request.endpoint not in ("admin.login", "admin.logout"):
        if signed_in() is None:
            return redirect(url_for("admin.login"))
    return None


def require(role: str = "write") -> None:
    """403 unless the person signed in has ``role`` (read < write < admin), as in the REST API."""
    person = signed_in()
    if person is None:
        which = "admin token" if role == "admin" else "token"
        raise HTTPProblem(403, f"sign in with the {which} to change records")
    if not allows(person.role, role):
        if role == "admin":
            raise HTTPProblem(403, f"{person.label} may not do this: it needs the admin role")
        raise HTTPProblem(403, f"{person.label} may read but not change records: that needs the write role")


def commit_message() -> str | None:
    return request.form.get("message", "").strip() or None


# -- signing in ----------------------------------------------------------------


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        token = request.form.get("token", "").strip()
        person = person_for(token)
        if person is None:
            error = "That token is not this server's token."
        else:
            sessions = current_app.extensions["gitrecords.sessions"]
            sessions.close(session.get("sid"))
            session.clear()
            session["sid"] = sessions.open(*session_secret(person, token))
            g.gitrecords_person = person
            csrf_token()
            flash(f"Signed in as {person.label}." if person.name else f"Signed in ({person.role}).")
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
def index() -> Any:
    """The list: a search (``q``), a sort (``sort``, most recently changed first by default), a
    page, the facets with their counts, and the columns of ``list_columns`` in gitrecords.json."""
    config = current_app.config
    q = request.args.get("q", "")
    sort = request.args.get("sort") or DEFAULT_SORT
    page = int_arg("page", 1, 1, rec.MAX_PAGE)  # 400 as in the API; past the last page: 404, too
    size = config["GITRECORDS_PAGE_SIZE"]
    repo = current_repo()
    error = None
    try:
        found = rec.search(repo, q, page, size, sort=sort, facets=True, with_deleted=True)
    except HTTPProblem as err:
        if "parameter" not in err.extra:
            raise
        error = err.message
        found = rec.Page([], 0, page, size)
    columns = shown_columns(list_columns(repo), found.records)
    sort = canonical_sort(sort, facets_of(repo))
    return render_template(
        "list.html",
        found=found,
        q=q,
        sort=sort,
        order=describe_sort(sort, columns),
        columns=columns,
        rows=[(entry, cells(entry, columns, sort)) for entry in found.records],
        facets=facet_lists(found.facets, q, sort),
        heading=lambda column: heading(column, sort),
        error=error,
        # what "change these N records" selects: live records only
        bulk_total=rec.live_total(repo, q) if found.total and not error else 0,
    ), (400 if error else 404 if page > found.pages else 200)


# -- the list page: columns, sorting, facets -----------------------------------

DEFAULT_SORT = rec.NEWEST_FIRST

#: the list's columns when gitrecords.json has no ``list_columns``: shown when a record of the page
#: has a value for them (a facet of the same name gives its path: ``"year": "publicationYear"``)
DEFAULT_COLUMNS = (
    ("title", "title"),
    ("creators", "creators.name"),
    ("year", "publicationYear"),
    ("type", "types.resourceTypeGeneral"),
)

#: values shown in one cell before "+N more"
CELL_VALUES = 3

#: values of a facet shown before the rest fold away
FACET_SHOWN = 8


@dataclass(frozen=True)
class Column:
    """A column of the list: its heading and the field it shows (a dotted path, or the end of one,
    as in queries), which is also what its heading sorts by."""

    name: str
    path: str
    #: configured in gitrecords.json: shown even when no record of the page has a value
    always: bool = False

    @property
    def label(self) -> str:
        return self.name[:1].upper() + self.name[1:]


def list_columns(repo: Any) -> list[Column]:
    """``list_columns`` of gitrecords.json (``[{"name": "Title", "path": "titles.title"}, ...]``),
    else the default columns."""
    configured = repo.config.get("list_columns")
    if isinstance(configured, list):
        columns = [
            Column(str(item["name"]), str(item["path"]), always=True)
            for item in configured
            if isinstance(item, dict) and item.get("name") and item.get("path")
        ]
        if columns:
            return columns
    declared = facets_of(repo)
    return [Column(name, declared.get(name, path)) for name, path in DEFAULT_COLUMNS]


def shown_columns(columns: list[Column], entries: list[Any]) -> list[Column]:
    """The first column (it links to the record) and every other that is configured, or that some
    record of the page has a value for."""
    records = [entry for entry in entries if isinstance(entry, Record)]
    return [
        column
        for n, column in enumerate(columns)
        if n == 0 or column.always or any(rec.field_values(record, column.path) for record in records)
    ]


def cells(entry: Any, columns: list[Column], sort: str = "") -> list[str]:
    """The text of each column for one listed record: the first column shows the first value
    (or the record's title), the others up to three values and how many more there are. The
    column the list is sorted by shows first the value the record is sorted by (its smallest,
    or largest when descending: a record with several titles is placed by one of them)."""
    if not isinstance(entry, Record):
        return ["" for _ in columns]
    texts = []
    for n, column in enumerate(columns):
        found = rec.field_values(entry, column.path)
        if sort.lstrip("-") == column.path:
            found = _in_sort_order(found, sort.startswith("-"))
        values = list(dict.fromkeys(text_of(v) for v in found))
        if n == 0:
            texts.append(values[0] if values else _title(entry))
        elif len(values) > CELL_VALUES:
            texts.append("; ".join(values[:CELL_VALUES]) + f" (+{len(values) - CELL_VALUES} more)")
        else:
            texts.append("; ".join(values))
    return texts


def _in_sort_order(values: list[Any], descending: bool) -> list[Any]:
    """``values`` in the order a sort by their field weighs them, as the search index does:
    numbers (and text that reads as one, "9") first, then the other texts, each smallest first
    (largest first when ``descending``), then the rest as they were."""
    numbers: list[tuple[float, Any]] = []
    strings: list[str] = []
    rest: list[Any] = []
    for value in values:
        number = scalar_number(value)
        if number is not None:
            numbers.append((number, value))
        elif isinstance(value, str):
            strings.append(value)
        else:
            rest.append(value)
    ordered = [v for _n, v in sorted(numbers, key=lambda pair: pair[0], reverse=descending)]
    return ordered + sorted(strings, reverse=descending) + rest


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def heading(column: Column | str, sort: str) -> tuple[str, str]:
    """(the sort its heading links to, the arrow that shows the current order) for a column or
    for ``updated``: a heading sorts ascending, and the other way round once it is the sort."""
    key = column.path if isinstance(column, Column) else column
    if sort == key:
        return "-" + key, "▲"
    if sort == "-" + key:
        return key, "▼"
    return ("-" + key if key in ("updated", "created") else key), ""


def canonical_sort(sort: str, declared: dict[str, str]) -> str:
    """``-year`` as ``-publicationYear`` when the facet ``year`` is that field, so that the
    heading of the column shows the order."""
    key = sort.lstrip("-")
    return sort[: len(sort) - len(key)] + declared[key] if key in declared else sort


def describe_sort(sort: str, columns: list[Column]) -> str:
    """``most recently changed first``, ``by Year, descending``..."""
    named = {
        "-updated": "most recently changed first",
        "updated": "least recently changed first",
        "-created": "newest first",
        "created": "oldest first",
        "relevance": "best matches first",
    }
    if sort in named:
        return named[sort]
    key = sort.lstrip("-")
    label = next((c.label for c in columns if c.path == key), key)
    return f"by {label}, {'descending' if sort.startswith('-') else 'ascending'}"


@dataclass(frozen=True)
class Bucket:
    """One value of a facet: its count, its bar's width (percent of the facet's largest count),
    the list filtered on it (or no longer, when the filter is on)."""

    value: str
    count: int
    width: int
    href: str | None
    active: bool


@dataclass(frozen=True)
class FacetList:
    name: str
    buckets: list[Bucket]

    @property
    def label(self) -> str:
        return self.name[:1].upper() + self.name[1:]

    @property
    def shown(self) -> list[Bucket]:
        return self.buckets[:FACET_SHOWN]

    @property
    def folded(self) -> list[Bucket]:
        return self.buckets[FACET_SHOWN:]


#: a query's words, as the query language splits them: runs of anything but spaces, a quoted text
#: (spaces and all) being part of its word
_QUERY_WORDS = re.compile(r'(?:[^\s"]|"[^"]*"?)+')


def facet_lists(facets: dict[str, list[tuple[str, int]]], q: str, sort: str) -> list[FacetList]:
    """The sidebar: every facet with values, each value linking to the list with ``name:"value"``
    added to the query (or taken out again)."""
    terms = _QUERY_WORDS.findall(q)  # quoted text kept whole: "Two  Spaces" keeps its two spaces
    lists = []
    # the facets with fewer values first: gitrecords.json's keys are sorted, so its order says nothing
    for name, counts in sorted(facets.items(), key=lambda item: len(item[1])):
        if not counts:
            continue
        largest = max(count for _, count in counts)
        buckets = []
        for value, count in counts:
            term = f'{name}:"{value}"'
            active = term in terms
            if '"' in value:  # the query language cannot quote it
                href = None
            else:
                new_q = " ".join([t for t in terms if t != term] if active else [*terms, term])
                href = url_for("admin.index", q=new_q or None, sort=None if sort == DEFAULT_SORT else sort)
            width = max(1, round(100 * count / largest)) if largest else 0
            buckets.append(Bucket(value, count, width, href, active))
        lists.append(FacetList(name, buckets))
    return lists


@blueprint.get("/records/<record_id>")
def record(record_id: str) -> str:
    repo = current_repo()
    current = rec.load(repo, rec.parse_id(record_id), deleted_ok=True)
    pids = repo.index.pids_of(current.id)
    schema = forms.schema_of(repo, dict(current))
    view = None if current.is_deleted else reading.plugin_view(repo, current, schema)
    return render_template(
        "record.html",
        record=current,
        text=rec.canonical_text(dict(current)),
        pids=pids,
        plugin_view=view,
        view=None if current.is_deleted or view is not None else reading.view(current, schema),
    )


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


@blueprint.get("/records/<record_id>/blame")
def blame(record_id: str) -> str:
    """Who last set each field: a table of JSON pointers, values and revisions."""
    repo = current_repo()
    rid = rec.parse_id(record_id)
    current = rec.load(repo, rid, deleted_ok=True)
    entries = [] if current.is_deleted else rec.blame(repo, rid)
    return render_template("blame.html", record=current, entries=entries, shown=_shown_value)


def _shown_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


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


def _title(record: Any) -> str:
    if record.is_deleted and not dict(record) and isinstance(record, Record):
        # a soft-deleted record keeps its title: the one of its last live revision
        for revision in reversed(record.revisions):
            if not revision.is_deleted:
                found = _title(revision)
                return found if found != "(no title)" else "(deleted)"
        return "(deleted)"
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
    """A new record: a schema of the store picked (``?schema=``, the repository's default first),
    the page starts from a template of its required fields; saving validates it as any write."""
    require()
    repo = current_repo()
    choices = forms.schema_choices(repo)
    picked = request.values.get("schema")
    choice = next((c for c in choices if picked in (c.ref, c.path)), choices[0] if choices else None)
    if request.method == "GET":
        start = forms.new_record(repo, choice) if choice else {}
        text = json.dumps(start, indent=2, ensure_ascii=False) + "\n"
    else:
        text = request.form.get("data", "")
    errors: list[dict[str, str]] = []
    status = 200
    if request.method == "POST":
        try:
            data = rec.parse_object(text.encode(), "record")
            minters = rec.minters_for(repo, data, current_app.config["GITRECORDS_PID_MINTERS"])
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
    return render_template(
        "edit.html",
        record=None,
        text=text,
        errors=errors,
        revision_id=None,
        choices=choices,
        choice=choice,
        schema=forms.form_schema(repo, _data_or(text, {"$schema": choice.ref} if choice else {})),
        field_errors=forms.with_paths(errors),
    ), status


def _data_or(text: str, fallback: dict[str, Any]) -> Any:
    """The JSON object ``text`` holds (for its ``$schema``), else ``fallback``."""
    try:
        data = layout.loads(text)  # depth-limited: the text was refused, maybe for its nesting
    except GitRecordsError:
        return fallback
    return data if isinstance(data, dict) and "$schema" in data else fallback


@blueprint.route("/records/<record_id>/edit", methods=["GET", "POST"])
def edit(record_id: str) -> Any:
    require()
    repo = current_repo()
    current = rec.load(repo, rec.parse_id(record_id))
    errors: list[dict[str, str]] = []
    if request.method != "POST":  # GET, and HEAD (Flask routes it here too): never a save
        return render_template(
            "edit.html",
            record=current,
            text=rec.canonical_text(dict(current)),
            errors=errors,
            revision_id=current.revision_id,
            schema=forms.form_schema(repo, dict(current)),
            field_errors=[],
        )
    text = request.form.get("data", "")
    based_on = request.form.get("revision_id", "")
    status = 400
    try:
        rec.check_revision(current, based_on)
        data = rec.parse_object(text.encode(), "record")
        rec.check_pids_kept(repo, current, data, fill=True)
        rec.check_schema_kept(current, data, fill=True)
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
    return render_template(
        "edit.html",
        record=stored,
        text=text,
        errors=errors,
        revision_id=based_on,
        schema=forms.form_schema(repo, dict(stored)),
        field_errors=forms.with_paths(errors),
    ), status


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
    rec.check_revert_keeps_pids(current_repo(), current, target)
    new = current.revert(target, message=commit_message(), author=author())
    flash(f"Reverted to revision {target}: that is now revision {new.revision_id}.")
    return redirect(url_for("admin.record", record_id=record_id))
