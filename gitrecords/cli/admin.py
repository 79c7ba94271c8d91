"""Creating and maintaining a data repository: init, gc."""

from __future__ import annotations

import functools
import uuid

import click

from ..errors import BatchValidationError, InitValidationError
from ..maintenance import AGGRESSIVE_WINDOW, DEFAULT_WINDOW, ObjectStore, gc
from ..repository import Repository
from ._batch import Problem
from ._common import ProblemsError, State, UsageFailure, json_option, pass_repo, write_options
from ._output import echo_json, note, stderr_is_tty


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Working tree to import (gitrecords.json, schemas/ and records/, like sample-repo/ or what "
    "'export --dir' writes).",
)
@click.option(
    "--allow-missing-schemas",
    is_flag=True,
    help="With --from: import records whose schema is not in the tree's schema store (each is a "
    "warning) instead of refusing them.",
)
@click.option("--branch", help="Name of the branch (default: the global --branch, else main).")
@click.option(
    "--bare/--no-bare",
    default=True,
    show_default=True,
    help="A bare repository (no working tree), or a working clone with the files checked out.",
)
@write_options
@click.pass_context
def init(
    ctx: click.Context,
    path: str,
    from_dir: str | None,
    allow_missing_schemas: bool,
    branch: str | None,
    bare: bool,
    message: str | None,
    author: str | None,
) -> None:
    """Create a data repository at PATH, empty or from a working tree.

    With --from, every record's $schema (or the default schema) must be in
    the working tree's schema store, and every record must pass the checks
    every write makes (size, reserved keys, its schema, unique PIDs):
    otherwise each problem is one line on stderr, nothing is created and the
    exit code is 1. --allow-missing-schemas imports records whose schema is
    missing anyway ('gitrecords validate' lists them later).

    \b
    Examples:
      gitrecords init data.git
      gitrecords init --from sample-repo demo.git
      gitrecords init --no-bare --branch records data
    """
    if allow_missing_schemas and from_dir is None:
        raise UsageFailure("--allow-missing-schemas goes with --from DIRECTORY")
    state = ctx.ensure_object(State)
    branch = branch or state.branch or "main"
    create = functools.partial(
        Repository.init, path, bare=bare, from_dir=from_dir, branch=branch, author=author, message=message
    )
    try:
        try:
            repo = create()
        except InitValidationError:
            raise
        except BatchValidationError as err:  # records whose schema the tree lacks: nothing was created
            lines = [
                Problem(text, where, uuid.UUID(i) if i else None).line() for _, i, where, text in err.problems
            ]
            if not allow_missing_schemas:
                count = len(lines)
                raise ProblemsError(
                    lines,
                    f"{count} record{' names' if count == 1 else 's name'} a schema that is not in the "
                    f"schema store of {from_dir}; nothing was created: add the schema files there, or use "
                    "--allow-missing-schemas to import the records anyway",
                ) from None
            for line in lines:
                note(f"warning: {line}")
            repo = create(allow_missing_schemas=True)
    except InitValidationError as err:  # records that break a check of every write: nothing created
        raise ProblemsError(
            [Problem(text, where, uuid.UUID(i) if i else None).line() for _, i, where, text in err.problems],
            f"{len(err.problems)} problem{'' if len(err.problems) == 1 else 's'} in the records of "
            f"{from_dir}; nothing was created: fix them there ('gitrecords validate' lists the same "
            "problems in a repository)",
        ) from None
    try:
        count = sum(1 for _ in repo.ids())
        kind = "bare data repository" if bare else "data repository"
        note(f"Initialised {kind} in {path} (branch {branch}, {count} record{'' if count == 1 else 's'})")
    finally:
        repo.close()


def _size(count: int) -> str:
    """Bytes for people: ``812 B``, ``10.2 MB``."""
    if count < 1000:
        return f"{count} B"
    for unit in ("kB", "MB", "GB"):
        count_in = count / 1000
        if count_in < 1000 or unit == "GB":
            return f"{count_in:.1f} {unit}"
        count = int(count_in)
    raise AssertionError("unreachable")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _stored(store: ObjectStore) -> str:
    """``27.8 MB in 1 pack and 12,008 loose objects``."""
    where = _plural(store.packs, "pack")
    if store.loose_objects:
        where += f" and {_plural(store.loose_objects, 'loose object')}"
    return f"{_size(store.pack_bytes + store.loose_bytes)} in {where}"


@click.command("gc")
@click.option(
    "--aggressive",
    is_flag=True,
    help=f"Compare each object with {AGGRESSIVE_WINDOW} others instead of {DEFAULT_WINDOW}: a smaller "
    "pack, in several times the time.",
)
@click.option(
    "--ratio",
    is_flag=True,
    help="Also gzip the live records as JSON Lines and report the pack's size as a multiple of that "
    "(reads every record).",
)
@json_option
@pass_repo
def gc_(repo: Repository, aggressive: bool, ratio: bool, as_json: bool) -> None:
    """Repack the objects for many small, similar records.

    Runs git gc --aggressive with a wider delta window than git's default and
    delta chains no longer than the repository's pack.depth, holding the
    write lock (writers wait; readers do not), then reports the size of the
    packs and loose objects before and after.

    \b
    Examples:
      gitrecords gc
      gitrecords gc --aggressive --ratio
      gitrecords gc --json
    """
    result = gc(repo, aggressive=aggressive, ratio=ratio, show_progress=stderr_is_tty())
    if as_json:
        echo_json(result.as_dict())
        return
    before, after = result.before, result.after
    line = f"Packed {_plural(after.objects, 'object')}: {_stored(before)} before, {_stored(after)} after"
    if result.ratio is not None and result.records is not None:
        line += f"; {result.ratio:.2f}x the gzip'd JSON Lines of {_plural(result.records, 'record')}"
    note(line)


COMMANDS = [init, gc_]
