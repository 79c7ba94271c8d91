"""Commands for a record's past: history, diff and blame."""

from __future__ import annotations

import difflib
import uuid
from typing import Any

import click
import jsonpatch

from .. import _git, layout
from ..errors import InvalidRecordError, NoResultFound
from ..record import Record, RevisionsIterator, revisions_of
from ..repository import Repository
from ._common import RECORD_ID, DataError, at_revision, json_option, pass_repo, short
from ._output import echo_json, echo_table, printable, revision_range, timestamp


@click.command()
@click.argument("record_id", type=RECORD_ID, metavar="ID")
@click.option(
    "-n", "--limit", type=click.IntRange(min=1), metavar="N", help="Only the N most recent revisions."
)
@click.option("-r", "--newest-first", is_flag=True, help="The most recent revision first.")
@json_option
@pass_repo
def history(
    repo: Repository, record_id: uuid.UUID, limit: int | None, newest_first: bool, as_json: bool
) -> None:
    """List the revisions of a record, oldest first.

    Each line shows the revision number, the commit, its time (UTC), its
    author's name and the first line of its message; soft-deleted revisions
    are marked. --json has the author's email and the whole message too.
    Works for soft-deleted records too, and for a record whose file cannot
    be read (e.g. invalid JSON committed with plain git): the revisions are
    listed, the problem is one line on stderr, and the exit code is 1.

    \b
    Examples:
      gitrecords history 6796d85a-8a58-419c-a937-84aef33e9d18
      gitrecords history ID -n 5 --newest-first
      gitrecords history ID --json | jq '.[-1].commit'
    """
    try:
        revisions = Record.get_record(record_id, with_deleted=True, repo=repo).revisions.rows()
        unreadable = None
    except InvalidRecordError as err:  # the current file is broken: its history is not
        revisions = RevisionsIterator(repo, record_id).rows()
        unreadable = err
    # no record file is read below: the commits say it all
    if limit is not None:
        revisions = revisions[-limit:]
    if newest_first:
        revisions.reverse()
    rows: list[dict[str, Any]] = []
    for revision in revisions:
        info = _git.commit_info(repo.git, revision.commit_id)
        rows.append(
            {
                "revision_id": revision.revision,
                "commit": info.id,
                "time": timestamp(info.time),
                "author_name": info.author_name,
                "author_email": info.author_email,
                "message": info.message.rstrip("\n"),
                "is_deleted": revision.deleted,
            }
        )
    if as_json:
        echo_json(rows)
    else:
        _print_history(rows)
    if unreadable is not None:
        raise DataError(str(unreadable))


def _print_history(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        when = row["time"].replace("T", " ").replace("+00:00", "Z")
        subject = printable(row["message"].split("\n", 1)[0])
        deleted = " (deleted)" if row["is_deleted"] else ""
        author = printable(row["author_name"])
        click.echo(f"{row['revision_id']:>3}  {short(row['commit'])}  {when}  {author}  {subject}{deleted}")


def _data(revisions: Any, index: int | None) -> dict[str, Any]:
    return {} if index is None else dict(revisions[index])


@click.command()
@click.argument("record_id", type=RECORD_ID, metavar="ID")
@click.argument("a", type=click.IntRange(min=0), required=False, metavar="[A")
@click.argument("b", type=click.IntRange(min=0), required=False, metavar="[B]]")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["patch", "unified"]),
    default="patch",
    show_default=True,
    help="patch: a JSON Patch (RFC 6902) from A to B; unified: a unified diff of the canonical JSON.",
)
@pass_repo
def diff(repo: Repository, record_id: uuid.UUID, a: int | None, b: int | None, fmt: str) -> None:
    """Show how a record changed between revisions A and B.

    With no revisions, compare the previous revision with the latest (a
    record with one revision is compared with {}). With A only, compare A
    with the latest. A soft-deleted revision counts as {}.

    \b
    Examples:
      gitrecords diff ID
      gitrecords diff ID 0 2
      gitrecords diff ID 0 --format unified
    """
    # only the revisions compared are read (an unreadable latest file does not keep two earlier
    # revisions from being compared)
    revisions = revisions_of(record_id, repo)
    count = len(revisions)
    latest = count - 1
    if b is None:
        b = latest
    if a is None:
        a_index: int | None = b - 1 if b > 0 else None
    else:
        a_index = a
    for index in (a_index, b):
        if index is not None and index not in revisions:
            raise NoResultFound(f"record {record_id} has no revision {index} ({revision_range(count)})")
    old, new = _data(revisions, a_index), _data(revisions, b)
    if fmt == "patch":
        echo_json(jsonpatch.make_patch(old, new).patch)
        return
    old_text = layout.dumps(old).decode("utf-8").splitlines(keepends=True)
    new_text = layout.dumps(new).decode("utf-8").splitlines(keepends=True)
    old_name = f"{record_id}@{a_index}" if a_index is not None else "/dev/null"
    lines = difflib.unified_diff(old_text, new_text, fromfile=old_name, tofile=f"{record_id}@{b}")
    click.echo("".join(lines), nl=False)


@click.command()
@click.argument("record_id", type=RECORD_ID, metavar="ID")
@click.option(
    "--at", metavar="REVISION|DATE|COMMIT", help="Blame the record as it was then (as for 'get --at')."
)
@json_option
@pass_repo
def blame(repo: Repository, record_id: uuid.UUID, at: str | None, as_json: bool) -> None:
    """Show who last set each field of a record, and when.

    One line per leaf of the record (each scalar, each empty object or
    array), named by its JSON pointer: the revision that last set it, its
    commit, author, date (UTC) and the first line of its message. Soft
    deletes are skipped: an undelete changes no attribution. --json prints
    a list of {pointer, revision_id, commit, author: {name, email}, time,
    message}.

    \b
    Examples:
      gitrecords blame 6796d85a-8a58-419c-a937-84aef33e9d18
      gitrecords blame ID --json | jq -r '.[] | select(.pointer == "/title") | .author.name'
      gitrecords blame ID --at 2024-01-31
    """
    revision = at_revision(repo, record_id, at) if at is not None else None
    entries = repo.blame(record_id, revision=revision)
    if as_json:
        echo_json([entry.as_json() for entry in entries])
        return
    rows = [
        (
            entry.pointer or "(root)",
            str(entry.revision_id),
            short(entry.commit),
            entry.author_name,
            entry.time.strftime("%Y-%m-%d"),
            entry.message.split("\n", 1)[0],
        )
        for entry in entries
    ]
    echo_table(["pointer", "rev", "commit", "author", "date", "message"], rows, fixed=(1, 2, 4))


COMMANDS = [history, diff, blame]
