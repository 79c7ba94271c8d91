"""The gitrecords command line: a thin click layer over the Python API.

Commands live in modules by family (``records``, ``history``, ``bulk``,
``admin``). This module holds the group, its options (which repository,
which branch) and the one place where errors become exit codes:

== =====================================================================
0  success
1  data error: invalid JSON or records, schema violations, a missing
   record (:class:`~gitrecords.errors.GitRecordsError`,
   :class:`jsonschema.ValidationError`, JSON Patch errors)
2  usage error: click's own, plus an existing id without ``--force``,
   no repository found, a hard delete without ``--yes`` off a terminal,
   a malformed query or sort (:class:`~gitrecords.errors.QueryError`)
== =====================================================================

Every error is one ``Error: ...`` line on stderr, never a traceback (set
``GITRECORDS_DEBUG=1`` to see one for an unexpected error).
"""

from __future__ import annotations

import os
from typing import Any

import click
import jsonpatch
import jsonpointer
from jsonschema.exceptions import ValidationError

from ..errors import GitRecordsError, QueryError, RecordExistsError
from ..schema import pointer
from ..writer import DEFAULT_LOCK_WAIT
from . import admin, bulk, ci, edit, history, records, replication, schemas, search, serve, users
from ._common import DataError, State, UsageFailure

__all__ = ["cli", "main"]


def describe(err: BaseException) -> str:
    """The one-line message for an error."""
    if isinstance(err, ValidationError):
        return f"{pointer(err)}: {err.message}"
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        return f"{err.filename}: {err.strerror}"
    return str(err) or type(err).__name__


#: exceptions that mean "the data is wrong" (exit 1)
DATA_ERRORS = (
    GitRecordsError,
    ValidationError,
    jsonpatch.JsonPatchException,
    jsonpointer.JsonPointerException,
)


class GitRecordsGroup(click.Group):
    """A click group that turns library errors into exit codes (in this one place)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
        except RecordExistsError as err:  # a conflict with the data, not a misuse of the command
            raise DataError(f"{err}: use --force to write a new revision") from err
        except QueryError as err:
            raise UsageFailure(str(err)) from err
        except (*DATA_ERRORS, OSError) as err:
            raise DataError(describe(err)) from err
        except Exception as err:
            if os.environ.get("GITRECORDS_DEBUG"):
                raise
            raise DataError(
                f"unexpected {type(err).__name__}: {describe(err)} (set GITRECORDS_DEBUG=1 for a traceback)"
            ) from err


@click.group(cls=GitRecordsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "--version", package_name="gitrecords", prog_name="gitrecords")
@click.option(
    "--repo",
    "repo_path",
    metavar="PATH",
    envvar="GITRECORDS_REPO",
    show_envvar=True,
    help="The data repository (bare or a working clone). Default: the git repository around the "
    "current directory.",
)
@click.option("--branch", help="Branch that holds the records. Default: the repository's HEAD branch.")
@click.option(
    "--wait",
    "wait",
    metavar="SECONDS",
    type=click.FloatRange(min=0),
    default=DEFAULT_LOCK_WAIT,
    show_default=True,
    envvar="GITRECORDS_WAIT",
    show_envvar=True,
    help="How long a write waits for another writer's lock before it fails, naming the process "
    "that holds it.",
)
@click.pass_context
def cli(ctx: click.Context, repo_path: str | None, branch: str | None, wait: float) -> None:
    """Metadata records as canonical JSON files in a git repository.

    Every write is one git commit; a batch of records is one commit too.
    Data goes to stdout and messages to stderr. Exit codes: 0 success,
    1 data error (invalid JSON or record, missing record), 2 usage error.

    \b
    Example:
      gitrecords init --from sample-repo demo.git
      export GITRECORDS_REPO=demo.git
      echo '{"title": "New record"}' | gitrecords create
      gitrecords list
    """
    ctx.obj = State(repo_path=repo_path, branch=branch, wait=wait)


for _module in (admin, records, search, edit, history, schemas, bulk, ci, replication, serve, users):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """The ``gitrecords`` console script."""
    cli.main(prog_name="gitrecords")
