"""Changing many records at once: edit (``repo.update_records``) and undo (``repo.undo``)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import layout
from ..edit import EditReport, SetFields, UndoReport
from ..errors import BulkEditError, GitRecordsError, SchemaError, UndoConflictError
from ..repository import Repository
from ._common import ProblemsError, UsageFailure, ids_option, json_option, pass_repo, short, write_options
from ._input import read_document
from ._output import Progress, echo_json, note

#: diffs a preview shows without --diff
SHOWN_DIFFS = 5


class _Named:
    """A change function with the name the commit's trailers give it."""

    def __init__(self, function: Callable[[dict[str, Any]], Any], description: str) -> None:
        self.function = function
        self.description = description

    def __call__(self, data: dict[str, Any]) -> Any:
        return self.function(data)


def _parse_set(value: str) -> tuple[str, Any]:
    pointer, sep, text = value.partition("=")
    if not sep or not pointer.startswith("/"):
        raise UsageFailure(f"--set {value}: give POINTER=JSON, like --set '/title=\"New title\"'")
    try:
        return pointer, layout.loads(text, what=f"the value of --set {pointer}")
    except GitRecordsError as err:
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            quoted = f"{pointer}={json.dumps(text)}"
            raise UsageFailure(
                f"--set {value}: {text!r} is not JSON; for a string, quote it: --set '{quoted}'"
            ) from None
        raise UsageFailure(str(err)) from None  # JSON, but not what a record can hold


def _load_module_function(spec: str) -> Callable[[dict[str, Any]], Any]:
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise UsageFailure(f"--python {spec}: give MODULE:FUNCTION, like --python mymigrations:to_v2")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a module next to the user, as `python -m` finds it
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UsageFailure(f"--python {spec}: {err}") from None
    except Exception as err:  # the module's own code fails (SyntaxError, NameError, ...)
        raise UsageFailure(f"--python {spec}: {type(err).__name__}: {err}") from None
    return _function_in(module, name, f"--python {spec}", f"python {spec}")


def _load_file_function(spec: str) -> Callable[[dict[str, Any]], Any]:
    path, _, name = spec.partition(":") if ":" in spec and not os.path.exists(spec) else (spec, "", "")
    name = name or "change"
    if not os.path.isfile(path):
        raise UsageFailure(f"--python-file {spec}: no such file {path}")
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    if module_spec is None or module_spec.loader is None:
        raise UsageFailure(f"--python-file {spec}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        raise UsageFailure(f"--python-file {spec}: {type(err).__name__}: {err}") from None
    return _function_in(module, name, f"--python-file {spec}", f"python-file {Path(path).name}:{name}")


def _function_in(module: Any, name: str, option: str, description: str) -> Callable[[dict[str, Any]], Any]:
    function = getattr(module, name, None)
    if not callable(function):
        raise UsageFailure(f"{option}: {module.__name__} has no function {name!r}")
    return _Named(function, description)


def _change_from_options(
    patch_file: str | None,
    sets: tuple[str, ...],
    unsets: tuple[str, ...],
    python: str | None,
    python_file: str | None,
    schema: str | None,
) -> Any:
    given = [
        name
        for name, used in (
            ("--patch", patch_file is not None),
            ("--set/--unset", bool(sets or unsets)),
            ("--python", python is not None),
            ("--python-file", python_file is not None),
        )
        if used
    ]
    if len(given) > 1:
        raise UsageFailure(f"{' and '.join(given)} cannot be combined: give one change (and --schema)")
    if not given and schema is None:
        raise UsageFailure(
            "nothing to change: give --patch, --set/--unset, --python, --python-file or --schema"
        )
    if patch_file is not None:
        _label, operations = read_document((patch_file,), "JSON Patch")
        if not isinstance(operations, list):
            raise UsageFailure('a JSON Patch must be a list of operations, like [{"op": "add", ...}]')
        return operations
    if sets or unsets:
        try:
            return SetFields(set=[_parse_set(v) for v in sets], unset=list(unsets))
        except GitRecordsError as err:
            raise UsageFailure(str(err)) from None
    if python is not None:
        return _load_module_function(python)
    if python_file is not None:
        return _load_file_function(python_file)
    return None


def _op_line(op: dict[str, Any]) -> str:
    text = f"  {op['op']} {op['path']}"
    if "from" in op:
        text += f" from {op['from']}"
    if "value" in op:
        text += " " + json.dumps(op["value"], ensure_ascii=False)
    return text


def _show(report: EditReport, all_diffs: bool) -> None:
    """The preview (or what was done) for people: counts and diffs on stdout."""
    click.echo(f"Matched: {report.matched}")
    click.echo(f"{'Changed' if report.commits else 'Would change'}: {report.changed}")
    click.echo(f"Unchanged: {report.unchanged}")
    click.echo(f"{'Would be invalid' if report.dry_run else 'Invalid'}: {report.invalid}")
    shown = report.diffs if all_diffs else report.diffs[:SHOWN_DIFFS]
    for record_id, patch in shown:
        click.echo(f"\nrecord {record_id}:")
        for op in patch:
            click.echo(_op_line(op))
    if len(shown) < report.changed:
        rest = report.changed - len(shown)
        click.echo(f"\n... and {rest} more record{'' if rest == 1 else 's'} (--diff shows all)")


def _problem_lines(report: EditReport) -> list[str]:
    lines = [
        f"record {i}: {p}: {m}" if p not in ("", "/") else f"record {i}: {m}" for i, p, m in report.problems
    ]
    if report.invalid > len({p[0] for p in report.problems}):
        lines.append(f"(only the first {len(report.problems)} problems are listed)")
    return lines


@click.command()
@click.argument("query", required=False, default=None)
@ids_option(help="Change this record instead of the ones a QUERY selects; repeat for several.")
@click.option(
    "--patch",
    "patch_file",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="Apply the JSON Patch (RFC 6902) in FILE ('-' for stdin) to each record.",
)
@click.option(
    "--set",
    "sets",
    metavar="POINTER=JSON",
    multiple=True,
    help=(
        "Set the value at a JSON pointer (missing objects on the way are made; /list/- adds the"
        " value unless the list holds it); repeatable."
    ),
)
@click.option(
    "--unset", "unsets", metavar="POINTER", multiple=True, help="Remove a member if it is there; repeatable."
)
@click.option(
    "--python",
    metavar="MODULE:FUNCTION",
    help="Call FUNCTION(record_dict) of an importable module for each record: it returns the new "
    "data, or None for unchanged.",
)
@click.option(
    "--python-file",
    metavar="FILE[:NAME]",
    help="The same with a function in a Python file (named 'change' unless :NAME is given).",
)
@click.option(
    "--schema",
    metavar="NEW",
    help="Move the records to the schema NEW of the store (its path or $id); with or without a change.",
)
@click.option("--dry-run", is_flag=True, help="Write nothing: show what would change, and the problems.")
@click.option(
    "--diff", "all_diffs", is_flag=True, help=f"Show every diff (the first {SHOWN_DIFFS} otherwise)."
)
@click.option(
    "--chunk",
    metavar="N",
    type=click.IntRange(min=1),
    help="Write commits of N records, one after another (run again after a crash to continue).",
)
@click.option("--no-signals", is_flag=True, help="Do not send the update signals to plugins (migrations).")
@write_options
@json_option
@pass_repo
def edit(
    repo: Repository,
    query: str | None,
    ids: tuple[uuid.UUID, ...],
    patch_file: str | None,
    sets: tuple[str, ...],
    unsets: tuple[str, ...],
    python: str | None,
    python_file: str | None,
    schema: str | None,
    dry_run: bool,
    all_diffs: bool,
    chunk: int | None,
    no_signals: bool,
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Change every live record that matches QUERY, as one commit.

    QUERY uses the search syntax (see 'search'); without it, every live
    record is changed. Give one change: --patch, --set/--unset, --python or
    --python-file, and/or --schema. Every changed record is validated
    against its (new) schema; if the change does not apply to a record or
    leaves one invalid, every problem is listed and nothing is written
    (exit 1). The commit's message and trailers record the query and the
    change; 'gitrecords undo COMMIT' takes it back.

    --dry-run prints how many records matched, would change, stay the same
    and would be invalid, with the first diffs (--diff: all, --json: a
    report for scripts).

    \b
    Examples:
      gitrecords edit 'publisher.name:"Old Name"' --set '/publisher/name="New Name"' --dry-run
      gitrecords edit 'type:Software' --unset /version -m "Software has no version here"
      gitrecords edit --patch fix.json 'publicationYear:<2000'
      gitrecords edit --python-file to_v2.py --schema datacite/v2.json --chunk 10000
    """
    if ids and query is not None:
        raise UsageFailure("give a QUERY or --id, not both")
    change = _change_from_options(patch_file, sets, unsets, python, python_file, schema)
    if schema is not None:
        try:
            repo.schema_store().resolve_schema(schema)
        except SchemaError as err:
            raise UsageFailure(f"--schema {schema}: {err}") from None
    selection: Any = list(ids) if ids else (query or "")
    with Progress("Reading") as progress:
        try:
            report = repo.update_records(
                selection,
                change,
                message=message,
                dry_run=dry_run,
                author=author,
                schema=schema,
                chunk=chunk,
                diffs=None if all_diffs or as_json else SHOWN_DIFFS,
                signals=not no_signals,
                progress=progress if progress.enabled else None,
            )
        except BulkEditError as err:
            report = err.report
    if as_json:
        echo_json(report.as_dict())
    elif dry_run or report.invalid:
        _show(report, all_diffs)
    if report.invalid:
        suffix = "" if dry_run else "; nothing was written"
        count = len(report.problems)
        plural = "" if count == 1 else "s"
        raise ProblemsError(
            _problem_lines(report),
            f"{count} problem{plural} in {report.invalid} of {report.matched} records{suffix}",
        )
    if dry_run:
        return
    noun = "record" if report.changed == 1 else "records"
    if not report.commits:
        note(
            "No changes: no record matches"
            if not report.matched
            else f"No changes: the {report.matched} "
            f"{'record' if report.matched == 1 else 'records'} already had that data"
        )
    elif len(report.commits) == 1:
        note(f"Changed {report.changed} {noun} (commit {short(report.commit)})")
    else:
        note(
            f"Changed {report.changed} {noun} in {len(report.commits)} commits (last {short(report.commit)})"
        )


@click.command()
@click.argument("commit", metavar="COMMIT")
@click.option("--skip-conflicts", is_flag=True, help="Restore the other records when some changed since.")
@click.option("--no-signals", is_flag=True, help="Do not send the revert and delete signals to plugins.")
@write_options
@json_option
@pass_repo
def undo(
    repo: Repository,
    commit: str,
    skip_conflicts: bool,
    no_signals: bool,
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Take back the changes COMMIT made to records, as one new commit.

    Every record COMMIT changed gets back its state before COMMIT; a record
    COMMIT created is soft-deleted. A record that changed again since is a
    conflict: the conflicts are listed and nothing is written (exit 1),
    unless --skip-conflicts is given. Schemas and settings are left as
    they are.

    \b
    Examples:
      gitrecords undo 3f2a9c1
      gitrecords undo HEAD --skip-conflicts
    """
    try:
        report: UndoReport = repo.undo(
            commit, skip_conflicts=skip_conflicts, message=message, author=author, signals=not no_signals
        )
    except UndoConflictError as err:
        if as_json:
            echo_json(err.report.as_dict())
        raise ProblemsError([f"record {i}: {m}" for i, m in err.report.conflicts], str(err)) from None
    if as_json:
        echo_json(report.as_dict())
    for record_id, text in report.conflicts:
        note(f"Skipped record {record_id}: {text}")
    count = len(report.restored)
    noun = "record" if count == 1 else "records"
    if report.commit is None:
        undone = short(report.undone)
        if report.conflicts:  # --skip-conflicts, and every record it changed has changed since
            skipped = len(report.conflicts)
            note(
                f"Nothing undone: the {skipped} {'record' if skipped == 1 else 'records'} {undone} changed "
                "that are not as it left them were skipped"
                + (f"; {report.already} are as they were before it" if report.already else "")
            )
        elif report.already:
            note(f"Nothing to undo: the records {undone} changed are as they were before it")
        else:
            note(f"Nothing to undo: {undone} changed no records")
    else:
        note(f"Undid {short(report.undone)}: restored {count} {noun} (commit {short(report.commit)})")


COMMANDS = [edit, undo]
