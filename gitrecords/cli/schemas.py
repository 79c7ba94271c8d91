"""The schema store from the command line: schema add, list, show and diff; and path."""

from __future__ import annotations

import uuid
from pathlib import Path

import click

from .. import layout
from ..errors import InvalidRecordError, SchemaError
from ..repository import Repository
from ._common import RECORD_ID, DataError, UsageFailure, json_option, pass_repo, write_options
from ._input import read_bytes
from ._output import echo_json, note


@click.group()
def schema() -> None:
    """The schema store: JSON Schemas versioned with the records.

    \b
    Examples:
      gitrecords schema add datacite.json --path datacite/v4.json
      gitrecords schema list
      gitrecords schema show datacite/v4.json
      gitrecords schema diff datacite/v4.json datacite/v5.json
    """


@schema.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--path", "store_path", metavar="P", help="Path in the store (default: the file's name).")
@write_options
@pass_repo
def schema_add(
    repo: Repository, file: Path, store_path: str | None, message: str | None, author: str | None
) -> None:
    """Add or replace a schema in the store (one commit); print its store path.

    FILE is a JSON Schema (an object, or true or false); '-' reads stdin.
    It is checked against its dialect's meta-schema first.

    \b
    Example:
      gitrecords schema add record.json --path records/record-v1.json -m "Record schema v1"
    """
    raw = read_bytes(str(file))
    try:
        value = layout.loads(raw, what=f"schema {file}")
    except InvalidRecordError as err:
        raise DataError(str(err)) from None
    target = store_path or (file.name if str(file) != "-" else None)
    if target is None:
        raise UsageFailure("reading stdin: name the schema with --path P")
    try:
        written = repo.put_schema(target, value, message=message, author=author)
    except SchemaError as err:
        raise DataError(str(err)) from None
    click.echo(written)
    note(f"Schema {written} is in the store")


@schema.command("list")
@json_option
@pass_repo
def schema_list(repo: Repository, as_json: bool) -> None:
    """List the schemas in the store: path and $id.

    \b
    Example:
      gitrecords schema list --json
    """
    store = repo.schema_store()
    rows = [
        {"path": f"{store.schemas_dir}/{path}", "id": value.get("$id") if isinstance(value, dict) else None}
        for path, value in sorted(store.by_path.items())
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['path']}\t{row['id'] or ''}".rstrip("\t"))


@schema.command("show")
@click.argument("ref", metavar="ID-OR-PATH")
@pass_repo
def schema_show(repo: Repository, ref: str) -> None:
    """Print a schema of the store, by its path or its $id.

    \b
    Examples:
      gitrecords schema show datacite/v4.json
      gitrecords schema show https://schemas.gitrecords.org/datacite/datacite-v4.5-subset.json
    """
    try:
        value, _key = repo.schema_store().resolve_schema(ref)
    except SchemaError as err:
        raise DataError(str(err)) from None
    click.echo(layout.dumps(value).decode(), nl=False)


@schema.command("diff")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@json_option
@pass_repo
def schema_diff(repo: Repository, old: str, new: str, as_json: bool) -> None:
    """Summarise what changed from the schema OLD of the store to NEW.

    OLD and NEW are paths in the store or $ids. Lists, at the place in a
    record they are about (a JSON pointer; '*' is every element of an
    array): properties added, removed and (same type, one removed and one
    added) renamed; type changes; required properties added and removed;
    enum values added and removed; and changes of const, format, pattern,
    the bounds (minimum, maxLength, ...) and additionalProperties. $refs
    are followed in the store only. 'gitrecords validate --schema NEW' then
    tells which records would fail under NEW.

    \b
    Examples:
      gitrecords schema diff datacite/v1.json datacite/v2.json
      gitrecords schema diff datacite/v1.json datacite/v2.json --json | jq '.changes[].kind'
    """
    from ..schema_diff import diff_schemas

    try:
        found = diff_schemas(repo.schema_store(), old, new)
    except SchemaError as err:
        if "is not in the schema store" in str(err):  # a name mistyped: as edit --schema, exit 2
            raise UsageFailure(str(err)) from None
        raise DataError(str(err)) from None
    if as_json:
        echo_json(found.as_dict())
    else:
        for change in found.changes:
            click.echo(str(change))
    note(found.summary())


@click.command("path")
@click.argument("record_ids", type=RECORD_ID, metavar="ID...", nargs=-1, required=True)
@pass_repo
def path(repo: Repository, record_ids: tuple[uuid.UUID, ...]) -> None:
    """Print the path of each record's file in the repository (whether or not it exists).

    \b
    Examples:
      gitrecords path 6796d85a-8a58-419c-a937-84aef33e9d18
      $EDITOR "$(gitrecords path 6796d85a-8a58-419c-a937-84aef33e9d18)"
    """
    for record_id in record_ids:
        click.echo(repo.path_for(record_id))


COMMANDS = [schema, path]
