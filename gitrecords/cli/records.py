"""Commands for single records and batches of them: create, update, patch, delete, undelete, revert
(``get`` is in :mod:`gitrecords.cli.get`, which starts without these imports)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import click

from ..errors import GitRecordsError, InvalidRecordError, NoResultFound
from ..record import Record, purge_records
from ..repository import Repository
from ._batch import Problem, Written, check_record, fail, load_records, record_summary, report, write_items
from ._common import (
    RECORD_ID,
    DataError,
    UsageFailure,
    create_options,
    ids_option,
    json_option,
    pass_repo,
    short,
    write_options,
)
from ._input import Item, read_document, read_items
from ._output import Progress, echo_json, note, revision_range, stdin_is_tty

FILES = click.argument(
    "files", nargs=-1, metavar="[FILE]...", type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
NL = click.option("--nl", is_flag=True, help="Read JSON Lines: one record per line.")


def pair_ids(items: Sequence[Item], ids: Sequence[uuid.UUID]) -> None:
    """Give the i-th record the i-th ``-i`` id; the counts must match."""
    if not ids:
        return
    if len(ids) != len(items):
        records = f"{len(items)} record{'' if len(items) == 1 else 's'}"
        given = f"{len(ids)} {'id was' if len(ids) == 1 else 'ids were'}"
        raise DataError(
            f"the input holds {records} but {given} given with -i: give one id per record, in input order"
        )
    for item, record_id in zip(items, ids, strict=True):
        item.id = record_id


# -- create / update -------------------------------------------------------


@click.command()
@FILES
@NL
@ids_option(help="Id of the record; repeat for several, in input order.")
@create_options
@write_options
@json_option
@pass_repo
def create(
    repo: Repository,
    files: tuple[str, ...],
    nl: bool,
    ids: tuple[uuid.UUID, ...],
    force: bool,
    pid_minters: tuple[str, ...] | None,
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Create records from JSON in FILEs or on stdin; print their ids.

    The input is a JSON object (one record) or a list of objects, or JSON
    Lines with --nl; '-' is stdin. The ids are printed one per line, in input
    order. All records become one commit, or nothing is written: every
    invalid record is reported first.

    \b
    Examples:
      echo '{"title": "New record"}' | gitrecords create
      echo '[{"title": "1st"}, {"title": "2nd"}]' | gitrecords create -m "Two records"
      gitrecords create records.json more.json
      gitrecords create --nl records.jsonl
      echo '{"title": "x"}' | gitrecords create -i deadbeef-9fe4-43d3-a08f-38c2b309afba
      echo '{"title": "y"}' | gitrecords create --force -i deadbeef-9fe4-43d3-a08f-38c2b309afba
      echo '{"title": "With PID"}' | gitrecords create --pid-minter recid
    """
    items = read_items(files, nl)
    pair_ids(items, ids)
    written = write_items(repo, items, replace=force, pid_minters=pid_minters, message=message, author=author)
    if not as_json:
        for record in written.records:
            click.echo(str(record.id))
    report("Wrote" if force else "Created", written, as_json)


@click.command()
@FILES
@NL
@ids_option(required=True, help="Id of the record to replace; repeat for several, in input order.")
@write_options
@json_option
@pass_repo
def update(
    repo: Repository,
    files: tuple[str, ...],
    nl: bool,
    ids: tuple[uuid.UUID, ...],
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Replace existing records with JSON from FILEs or stdin.

    The input is read as for 'create'; the i-th record replaces the record
    of the i-th -i id. One commit for all, or nothing if any is invalid.

    \b
    Example:
      gitrecords get ID > record.json
      $EDITOR record.json
      gitrecords update -i ID record.json -m "Fix the title"
    """
    items = read_items(files, nl)
    pair_ids(items, ids)
    written = write_items(repo, items, must_exist=True, replace=True, message=message, author=author)
    report("Updated", written, as_json)


# -- patch -----------------------------------------------------------------


@click.command()
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@ids_option(required=True, help="Id of a record to patch; repeat to patch several.")
@write_options
@json_option
@pass_repo
def patch(
    repo: Repository,
    file: str | None,
    ids: tuple[uuid.UUID, ...],
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Apply a JSON Patch (RFC 6902) from FILE or stdin to each record.

    All patched records are checked against their schemas first and written
    as one commit, or nothing is written.

    \b
    Example:
      echo '[{"op": "replace", "path": "/title", "value": "Patched"}]' | gitrecords patch -i ID
    """
    _label, operations = read_document((file,) if file else (), "JSON Patch")
    if not isinstance(operations, list):
        raise DataError('a JSON Patch must be a list of operations, like [{"op": "add", ...}]')
    records = load_records(repo, ids)
    import jsonpatch
    import jsonpointer

    store = repo.schema_store()
    problems: list[Problem] = []
    patched: list[Record] = []
    for record in records:
        try:
            new = record.patch(operations)
        except (GitRecordsError, jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as err:
            text = str(err)
            if str(record.id) not in text:
                text = f"record {record.id}: {text}"
            problems.append(Problem(text))
            continue
        for pointer, text in check_record(repo, dict(new), store):
            problems.append(Problem(text, pointer, record.id))
        patched.append(new)
    if problems:
        fail(problems, len(records))
    _each_in_one_commit(repo, patched, Record.commit, "Patched", message, author, as_json)


# -- delete / undelete / revert -------------------------------------------


@click.command()
@ids_option(required=True, help="Id of a record to delete; repeat for several.")
@click.option("--force", is_flag=True, help="Purge the records from every commit (a history rewrite).")
@click.option("-y", "--yes", is_flag=True, help="With --force: do not ask for confirmation.")
@write_options
@json_option
@pass_repo
def delete(
    repo: Repository,
    ids: tuple[uuid.UUID, ...],
    force: bool,
    yes: bool,
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Delete records (soft), or purge them from history (--force).

    A soft delete writes a tombstone as the records' new revision (one
    commit); 'undelete' brings them back. A hard delete rewrites every
    commit that holds the records and cannot be undone: it asks for
    confirmation on a terminal, and needs --yes otherwise.

    \b
    Examples:
      gitrecords delete -i ID
      gitrecords delete -i ID1 -i ID2 -m "Withdrawn"
      gitrecords delete --force --yes -i ID
    """
    if not force:
        records = load_records(repo, ids, deleted=False)
        _each_in_one_commit(repo, records, Record.delete, "Deleted", message, author, as_json)
        return
    records = load_records(repo, ids, deleted=None)
    count = len(records)
    noun = "record" if count == 1 else "records"
    if not yes:
        if not stdin_is_tty():
            raise UsageFailure(
                f"delete --force purges {count} {noun} from the whole history and cannot be undone: "
                "add --yes to confirm (stdin is not a terminal, so there is no one to ask)"
            )
        click.confirm(
            f"Purge {count} {noun} from every commit of {repo.path}? This cannot be undone",
            abort=True,
            err=True,
        )
    with Progress("Purging") as progress:
        # the delete signals as for Record.delete(force=True): a plugin may refuse the purge
        purge_records(records, message=message, author=author, progress=progress)
    commit = repo.tip()
    if as_json:
        echo_json(
            {
                "commit": str(commit),
                "records": [{"id": str(r.id), "revision_id": None, "is_deleted": True} for r in records],
            }
        )
    note(f"Purged {count} {noun} from the history (commit {short(commit)})")


@click.command()
@click.argument("record_ids", nargs=-1, type=RECORD_ID, metavar="[ID]...")
@ids_option(help="Id of a record to undelete (the same as the ID argument); repeatable.")
@write_options
@json_option
@pass_repo
def undelete(
    repo: Repository,
    record_ids: tuple[uuid.UUID, ...],
    ids: tuple[uuid.UUID, ...],
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Bring soft-deleted records back with their last data.

    All records are undeleted in one commit.

    \b
    Examples:
      gitrecords undelete ID
      gitrecords undelete -i ID1 -i ID2 -m "Restore"
    """
    wanted = record_ids + ids
    if not wanted:
        raise UsageFailure("give the ID of a deleted record (as an argument or with -i)")
    records = load_records(repo, wanted, deleted=True)
    _each_in_one_commit(repo, records, Record.undelete, "Undeleted", message, author, as_json)


@click.command()
@click.argument("record_id", type=RECORD_ID, metavar="ID")
@click.argument("revision", type=click.IntRange(min=0), metavar="REVISION")
@write_options
@json_option
@pass_repo
def revert(
    repo: Repository,
    record_id: uuid.UUID,
    revision: int,
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Write an earlier REVISION's data again as a new revision.

    Reverting to a tombstone revision deletes the record; reverting a
    deleted record to a live revision brings it back.

    \b
    Example:
      gitrecords history ID
      gitrecords revert ID 0 -m "Undo the last edits"
    """
    try:
        record = Record.get_record(record_id, with_deleted=True, repo=repo)
    except InvalidRecordError:  # a file edited by hand into invalid JSON: reverting repairs it
        record = Record.get_unreadable(record_id, repo=repo)
    count = len(record.revisions)
    if revision not in record.revisions:
        raise NoResultFound(f"record {record_id} has no revision {revision} ({revision_range(count)})")
    before = repo.tip()
    new = record.revert(revision, message=message, author=author)
    commit = repo.tip()
    written = Written([new], str(commit), commit != before)
    if as_json:
        echo_json({"commit": written.commit, "records": [record_summary(new)]})
    if written.changed:
        note(
            f"Reverted record {record_id} to revision {revision}: new revision {new.revision_id} "
            f"(commit {short(commit)})"
        )
    else:
        note(f"No changes: record {record_id} already has the data of revision {revision}")


def _each_in_one_commit(
    repo: Repository,
    records: list[Record],
    action: Callable[[Record], Any],
    verb: str,
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Apply ``action`` to every record inside one transaction (one commit), then report."""
    before = repo.tip()
    with repo.transaction(message=message, author=author) as tx:
        for record in records:
            action(record)
    commit = tx.commit_id or before
    report(verb, Written(records, str(commit), commit != before), as_json)


COMMANDS = [create, update, patch, delete, undelete, revert]
