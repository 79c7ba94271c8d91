"""``gitrecords get``: a command of its own module, so that it starts fast (issue 21).

Scripts call ``gitrecords get ID`` in loops. The plain form (an id, with or without
``--json``; no ``--pid``, ``--revision`` or ``--at``) is answered without libgit2 when it can
be answered exactly (:func:`fast_record`, through :class:`gitrecords._objects.GitDir`, and
for ``--json`` the revision index's file when it has seen the branch tip): starting libgit2
costs more than the rest of the command. Everything else, and anything that reader does not
read as git does, goes through the :class:`~gitrecords.Repository` as before, which gives the
same output and every error message and exit code.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import click

from .. import layout
from ..errors import NoResultFound
from ._common import AT_HELP, RECORD_ID, State, UsageFailure, at_revision, json_option, pass_repo

if TYPE_CHECKING:
    from ..record import RecordBase
    from ..repository import Repository


def parse_pid(value: str) -> tuple[str, str]:
    pid_type, sep, pid_value = value.partition(":")
    if not sep or not pid_type or not pid_value:
        raise click.BadParameter(f"{value!r} is not TYPE:VALUE, e.g. recid:1", param_hint="'--pid'")
    return pid_type, pid_value


def fast_record(state: State, record_id: uuid.UUID, as_json: bool = False) -> str | None:
    """What ``get`` prints for the live record ``record_id`` (with ``--json`` when ``as_json``),
    read without libgit2; None when the repository, the branch or the record is anything but
    plain (a deleted, missing, too large or invalid record, a repository :class:`GitDir` does
    not read, for ``--json`` a revision index that has not seen the branch tip): the
    :class:`~gitrecords.Repository` answers then, with its messages."""
    from .._index_sql import derived_file
    from .._objects import GitDir
    from ..config import parse_config

    try:
        if state.repo_path is None:
            git = GitDir.discover(os.getcwd())
        else:
            git = GitDir.open(state.repo_path)
        if git is None:
            return None
        with git:
            branch = state.branch or git.head_branch()  # a detached HEAD: the full path
            tip = git.ref(f"refs/heads/{branch}") if branch else None
            tree = git.commit_tree(tip) if tip is not None else None
            config = git.blob_at(tree, layout.CONFIG_FILE) if tree is not None else None
            if branch is None or tip is None or tree is None or config is None:
                return None
            settings = parse_config(config)
            limit = int(settings.get("max_record_bytes") or layout.MAX_RECORD_BYTES)
            raw = git.blob_at(tree, layout.path_for(record_id, settings["records"]))
        if raw is None or len(raw) > limit:
            return None
        data = layout.loads(raw)
        if not isinstance(data, dict) or layout.is_tombstone(data):
            return None
        if not as_json:
            return layout.dumps(data).decode("utf-8")
        summary = _indexed_summary(derived_file(git.path, "index", branch), record_id, tip.hex())
        return None if summary is None else _json_text(record_id, data, *summary)
    except Exception:  # whatever this reader did not expect, the full path reports
        return None


def _indexed_summary(path: str, record_id: uuid.UUID, tip: str) -> tuple[int, int, int] | None:
    """(revision id, time of revision 0, time of that revision) of the record as of ``tip``, from
    the revision index, as :meth:`~gitrecords.index.RevisionIndex.summary` reads them; None when
    there is no index of this format or it has not seen ``tip`` (it must catch up first)."""
    import sqlite3
    from urllib.parse import quote

    from .._index_sql import INDEX_FORMAT, SUMMARY

    if not os.path.isfile(path):
        return None
    conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=1, isolation_level=None)
    try:
        found = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if found is None or found[0] != INDEX_FORMAT:
            return None
        row = conn.execute(SUMMARY, (str(record_id), tip)).fetchone()
    finally:
        conn.close()
    if row is None or row[0] is None or row[1] is None or row[3] is None:
        return None
    return row[1], row[3], row[2]


def _json_text(
    record_id: uuid.UUID, data: dict[str, object], revision: int, created: int, updated: int
) -> str:
    """``get --json``'s output for a live record."""
    from datetime import UTC, datetime

    from ._output import json_text

    value = {
        "id": str(record_id),
        "revision_id": revision,
        "created": datetime.fromtimestamp(created, UTC).isoformat(),
        "updated": datetime.fromtimestamp(updated, UTC).isoformat(),
        "is_deleted": False,
        "data": data,
    }
    return json_text(value) + "\n"


@click.command()
@click.argument("record_id", type=RECORD_ID, required=False, metavar="[ID]")
@click.option("--pid", metavar="TYPE:VALUE", help="Find the record by a PID instead of its id, e.g. recid:1.")
@click.option(
    "-r", "--revision", type=int, help="Show revision N (0 is the first; -1 the latest, -2 the one before)."
)
@click.option("--at", metavar="REVISION|DATE|COMMIT", help=AT_HELP)
@click.option("--with-deleted", is_flag=True, help="Show a soft-deleted record (its data is {}).")
@json_option
def get(
    record_id: uuid.UUID | None,
    pid: str | None,
    revision: int | None,
    at: str | None,
    with_deleted: bool,
    as_json: bool,
) -> None:
    """Print a record as canonical JSON.

    With --json, print an object with its id, revision_id, created, updated,
    is_deleted and data.

    \b
    Examples:
      gitrecords get 6796d85a-8a58-419c-a937-84aef33e9d18
      gitrecords get --pid recid:1
      gitrecords get ID --revision 0 --json
      gitrecords get ID --at 2024-01-31
      gitrecords get ID --at 2024-01-31T12:00:00Z
      gitrecords get ID --at 4f2a9c1
    """
    if record_id is not None and pid is None and revision is None and at is None:
        state = click.get_current_context().ensure_object(State)
        text = fast_record(state, record_id, as_json)
        if text is not None:
            click.echo(text, nl=False)
            return
    show(record_id, pid, revision, at, with_deleted, as_json)


@pass_repo
def show(
    repo: Repository,
    record_id: uuid.UUID | None,
    pid: str | None,
    revision: int | None,
    at: str | None,
    with_deleted: bool,
    as_json: bool,
) -> None:
    """``get`` through the repository: every form, and every error."""
    from ..record import Record, revisions_of
    from ._output import echo_json, note, revision_range, timestamp

    if (record_id is None) == (pid is None):
        raise UsageFailure("give a record ID or --pid TYPE:VALUE (one of them)")
    if revision is not None and at is not None:
        raise UsageFailure("give --revision or --at, not both (--at also takes a revision id)")
    if pid is not None:
        record_id = repo.lookup_pid(*parse_pid(pid))
    assert record_id is not None
    if at is not None:
        revision = at_revision(repo, record_id, at)
    if revision is not None:
        revisions = revisions_of(record_id, repo)  # not through the current file
        if revision not in revisions:
            shown_range = revision_range(len(revisions))
            raise NoResultFound(f"record {record_id} has no revision {revision} ({shown_range})")
        shown: RecordBase = revisions[revision]
        if shown.is_deleted and not with_deleted:  # as plain get, and as REST's ?at= (410)
            raise NoResultFound(
                f"record {record_id} is deleted in revision {shown.revision_id}"
                " (use --with-deleted to show it)"
            )
    else:
        shown = Record.get_record(record_id, with_deleted=True, repo=repo)
        if shown.is_deleted and not with_deleted:
            raise NoResultFound(f"record {record_id} is deleted (use --with-deleted to show it)")
    if as_json:
        echo_json(
            {
                "id": str(shown.id),
                "revision_id": shown.revision_id,
                "created": timestamp(shown.created),
                "updated": timestamp(shown.updated),
                "is_deleted": shown.is_deleted,
                "data": dict(shown),
            }
        )
        return
    click.echo(layout.dumps(dict(shown)).decode("utf-8"), nl=False)
    if shown.is_deleted:
        where = f" in revision {shown.revision_id}" if revision is not None else ""
        note(f"record {record_id} is deleted{where}")


COMMANDS = [get]
