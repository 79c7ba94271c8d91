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

import importlib
import os
import sys
from typing import Any

import click

from .._version import __version__
from ..config import DEFAULT_LOCK_WAIT
from ..errors import GitRecordsError, QueryError, RecordExistsError

__all__ = ["cli", "main"]


#: command name -> "module:attribute" in this package, imported when the command runs (or for
#: ``--help``): ``gitrecords get`` does not pay for the bulk, edit, CI and web commands (issue 21)
COMMANDS = {
    "blame": "history:blame",
    "create": "records:create",
    "delete": "records:delete",
    "diff": "history:diff",
    "edit": "edit:edit",
    "export": "bulk:export",
    "fmt": "ci:fmt",
    "gc": "admin:gc_",
    "get": "get:get",
    "history": "history:history",
    "hooks": "ci:hooks",
    "import": "bulk:import_",
    "init": "admin:init",
    "list": "bulk:list_",
    "merge-driver": "replication:merge_driver",
    "patch": "records:patch",
    "path": "schemas:path",
    "pull": "replication:pull",
    "push": "replication:push",
    "reindex": "bulk:reindex",
    "revert": "records:revert",
    "schema": "schemas:schema",
    "search": "search:search",
    "serve": "serve:serve",
    "undelete": "records:undelete",
    "undo": "edit:undo",
    "update": "records:update",
    "users": "users:users",
    "validate": "ci:validate",
}


def _loaded(module: str, name: str) -> Any:
    """``module.name`` if ``module`` is imported, else None: an error cannot be an instance of a
    class that was never imported, so the error path does not import jsonschema to ask."""
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None


def describe(err: BaseException) -> str:
    """The one-line message for an error."""
    validation_error = _loaded("jsonschema.exceptions", "ValidationError")
    if validation_error is not None and isinstance(err, validation_error):
        from ..schema import pointer

        return f"{pointer(err)}: {err.message}"
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        return f"{err.filename}: {err.strerror}"
    return str(err) or type(err).__name__


def data_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the data is wrong" (exit 1): ours, jsonschema's
    ``ValidationError``, JSON Patch errors (those of them that are imported)."""
    loaded = (
        _loaded("jsonschema.exceptions", "ValidationError"),
        _loaded("jsonpatch", "JsonPatchException"),
        _loaded("jsonpointer", "JsonPointerException"),
    )
    return (GitRecordsError, *(cls for cls in loaded if cls is not None))


class GitRecordsGroup(click.Group):
    """A click group that turns library errors into exit codes (in this one place), and imports
    a command's module only when the command is looked up (``lazy_commands``)."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        self.lazy_commands = dict(lazy_commands or {})
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        """Every command, imported (``--help``, the CLI reference, tests)."""
        for name in list(self.lazy_commands):
            self._load(name)
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def _load(self, name: str) -> None:
        module, attribute = self.lazy_commands.pop(name).split(":")
        self._commands[name] = getattr(importlib.import_module(f".{module}", __name__), attribute)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self._commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            self._load(cmd_name)
        return self._commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        from ._common import DataError, UsageFailure

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
        except RecordExistsError as err:  # a conflict with the data, not a misuse of the command
            if "hard-deleted" in str(err):  # no option brings a purged id back
                raise DataError(str(err)) from err
            raise DataError(f"{err}: use --force to write a new revision") from err
        except QueryError as err:
            raise UsageFailure(str(err)) from err
        except (*data_errors(), OSError) as err:
            raise DataError(describe(err)) from err
        except Exception as err:
            if os.environ.get("GITRECORDS_DEBUG"):
                raise
            raise DataError(
                f"unexpected {type(err).__name__}: {describe(err)} (set GITRECORDS_DEBUG=1 for a traceback)"
            ) from err


@click.group(
    cls=GitRecordsGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, "--version", prog_name="gitrecords")
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
    from ._common import State

    ctx.obj = State(repo_path=repo_path, branch=branch, wait=wait)


def main() -> None:
    """The ``gitrecords`` console script."""
    cli.main(prog_name="gitrecords")
