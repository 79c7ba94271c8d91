"""The administration pages' bulk change: "change these N records" on a search result.

``/admin/bulk?q=QUERY`` asks for a JSON Patch, previews what it would do to every live record
the query selects (how many change, stay the same or would become invalid, and the first diffs),
and applies it, as one commit, only when the admin confirms the preview they saw: if the branch
moved since, the preview is shown again. The work is :func:`gitrecords.edit.update_records`,
as for ``gitrecords edit`` and ``POST /api/bulk``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from .. import layout
from ..edit import EditReport
from ..errors import BulkEditError, GitRecordsError, InvalidRecordError
from .admin import blueprint, commit_message, require
from .context import BULK_WORKERS, author, current_repo

#: diffs shown in a preview
PREVIEW_DIFFS = 20


@blueprint.route("/bulk", methods=["GET", "POST"])
def bulk() -> Any:
    require("admin")
    repo = current_repo()
    q = (request.form.get("q") if request.method == "POST" else request.args.get("q")) or ""
    text = request.form.get("patch", '[\n  {"op": "replace", "path": "/title", "value": "..."}\n]\n')
    error = None
    report: EditReport | None = None
    status = 200
    tip = str(repo.tip())
    if request.method == "POST":
        try:
            patch = layout.loads(text, what="the JSON Patch")  # bounded depth, as POST /api/bulk
            if not isinstance(patch, list):
                raise InvalidRecordError("the JSON Patch must be a list of operations")
        except InvalidRecordError as err:
            patch, error, status = None, str(err), 400
        if patch is not None:
            if request.form.get("action") == "apply" and request.form.get("tip") != tip:
                error = "The records changed since this preview: check the new preview, then confirm again."
                status = 409
            try:
                if request.form.get("action") == "apply" and status == 200:
                    done = repo.update_records(
                        q,
                        patch,
                        message=commit_message(),
                        author=author(),
                        workers=BULK_WORKERS,
                        keep_pids=True,
                    )
                    flash(
                        f"Changed {done.changed} record{'' if done.changed == 1 else 's'}"
                        + (f" in commit {done.commit[:7]}." if done.commit else ".")
                    )
                    return redirect(url_for("admin.index", q=q or None))
                report = repo.update_records(
                    q, patch, dry_run=True, diffs=PREVIEW_DIFFS, workers=BULK_WORKERS, keep_pids=True
                )
                if report.invalid and status == 200:
                    status = 422
            except BulkEditError as err:
                report, status = err.report, 422
            except GitRecordsError as err:
                error, status = str(err), 400
    return render_template(
        "bulk.html",
        q=q,
        text=text,
        report=report,
        error=error,
        tip=tip,
        diffs=[
            (record_id, json.dumps(diff, indent=2)) for record_id, diff in (report.diffs if report else [])
        ],
    ), status
