"""What the commands share: repository selection, option bundles, CLI errors."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from .. import layout
from ..config import DEFAULT_LOCK_WAIT
from ..errors import GitRecordsError, RepositoryError

if TYPE_CHECKING:
    from ..repository import Repository

# libgit2 (_git), the repository and blame are imported by the functions that use them:
# ``gitrecords get`` reads a record without them when it can (issue 21)

F = TypeVar("F", bound=Callable[..., Any])

#: the help of ``--at`` (``get``)
AT_HELP = (
    "The record as it was then: a revision id (digits), an ISO 8601 date or datetime (the last "
    "revision at or before it; a date alone is the end of that day, UTC) or a commit (a full or "
    "abbreviated id, a ref)."
)


def at_revision(repo: Repository, record_id: uuid.UUID, at: str) -> int:
    """The revision ``--at`` names; a malformed value is a usage error (exit 2), a record that did
    not exist then a data error (exit 1)."""
    from ..blame import AtError, find_revision

    try:
        return find_revision(repo, record_id, at)
    except AtError as err:
        raise click.BadParameter(str(err), param_hint="'--at'") from None


def one_line(text: object) -> str:
    """``text`` on one line: errors are one line on stderr."""
    return re.sub(r"\s*\n\s*", " ", str(text).strip())


class DataError(click.ClickException):
    """Exit 1: invalid input, a schema violation, a missing record."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class UsageFailure(click.ClickException):
    """Exit 2, like click's usage errors, but shown as one ``Error:`` line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class ProblemsError(DataError):
    """Exit 1 after listing every problem found, one per line, on stderr."""

    def __init__(self, problems: list[str], message: str) -> None:
        super().__init__(message)
        self.problems = problems

    def show(self, file: IO[Any] | None = None) -> None:
        for problem in self.problems:
            click.echo(one_line(problem), err=True)
        super().show(file)


# -- repository selection ------------------------------------------------


@dataclass
class State:
    """The group's options; the repository is opened when a command first needs it."""

    repo_path: str | None = None
    branch: str | None = None
    #: seconds a write waits for the write lock (--wait)
    wait: float = DEFAULT_LOCK_WAIT
    _repo: Repository | None = None

    def repository(self) -> Repository:
        if self._repo is None:
            self._repo = open_repository(self.repo_path, self.branch, self.wait)
            click.get_current_context().find_root().call_on_close(self._repo.close)
        return self._repo


def _forget_index(repo: Repository) -> None:
    """Remove the revision index file that opening ``repo`` made for a branch that does not exist
    (a mistyped --branch leaves nothing behind; a branch made later builds its own)."""
    from .._sqlite import remove_database

    path = repo.index.path
    if path is not None:
        with contextlib.suppress(OSError):  # not ours to remove: it stays, as it is harmless
            remove_database(path)


def open_repository(path: str | None, branch: str | None, wait: float = DEFAULT_LOCK_WAIT) -> Repository:
    """Open ``path``, else the git repository around the current directory.

    Refuses a git repository that is not a gitrecords data repository (no
    ``gitrecords.json`` on the branch), so the CLI never writes records into
    a source code repository by accident.
    """
    from .. import _git
    from ..repository import Repository

    shown = path
    if path is None:
        cwd = os.getcwd()
        found = _git.discover(cwd)
        if found is None:
            raise UsageFailure(
                f"no data repository here ({cwd} is not inside a git repository): "
                "use --repo PATH or set GITRECORDS_REPO"
            )
        path = found
        shown = found.rstrip("/")
        if shown.endswith("/.git"):
            shown = shown[: -len("/.git")]
    if branch is not None:
        from .. import _git  # libgit2 only when a branch is named

        if not _git.valid_branch_name(branch):
            raise UsageFailure(f"--branch {branch}: not a valid branch name")
    try:
        repo = Repository(path, branch=branch, lock_wait=wait)
    except RepositoryError as err:
        raise UsageFailure(f"{err} (from --repo or GITRECORDS_REPO)") from None
    tip = repo.tip()
    if tip is None:
        empty = not any(name.startswith("refs/") for name in repo.git.references)
        repo.close()
        if empty:  # a fresh `git init`: nothing to call a branch yet
            raise UsageFailure(
                f"{shown} is not a gitrecords data repository (it has no commits): "
                "create one with 'gitrecords init'"
            )
        _forget_index(repo)
        raise UsageFailure(f"{shown}: there is no branch {repo.branch!r}")
    if _git.entry_id(_git.tree_of(repo.git, tip), layout.CONFIG_FILE) is None:
        repo.close()
        raise UsageFailure(
            f"{shown} is not a gitrecords data repository (no {layout.CONFIG_FILE} on branch "
            f"{repo.branch!r}): use --repo PATH, or create one with 'gitrecords init'"
        )
    return repo


def pass_repo(f: F) -> F:
    """Give the command the selected :class:`Repository` as its first argument."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = click.get_current_context().ensure_object(State)
        return f(state.repository(), *args, **kwargs)

    return wrapper  # type: ignore[return-value]


# -- parameter types and option bundles ----------------------------------


class RecordIdType(click.ParamType):
    """A record id (a UUID, in any form :class:`uuid.UUID` accepts)."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        try:
            return layout.normalize_id(value)
        except GitRecordsError as err:
            self.fail(str(err), param, ctx)


RECORD_ID = RecordIdType()


def _check_author(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from ..repository import parse_author

    try:
        parse_author(value)
    except GitRecordsError as err:
        raise click.BadParameter(str(err)) from None
    return value


def write_options(f: F) -> F:
    """``-m/--message`` and ``--author``: every write takes both."""
    f = click.option(
        "--author",
        metavar="'NAME <EMAIL>'",
        callback=_check_author,
        help="Author of the commit (default: git config user.name and user.email).",
    )(f)
    f = click.option("-m", "--message", help="Commit message (default: one that describes the change).")(f)
    return f


def _check_minters(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from ..plugins import get_minter

    for name in value:
        try:
            get_minter(name)
        except GitRecordsError as err:
            raise click.BadParameter(str(err)) from None
    return value


def create_options(f: F) -> F:
    """``--force``, ``--pid-minter`` and ``--no-pid-minters``, for the commands that create
    records; the command gets ``pid_minters``: the names given, ``()`` for none, or None for the
    repository's default (``mint`` in gitrecords.json)."""

    @functools.wraps(f)
    def command(*args: Any, pid_minters: tuple[str, ...], no_pid_minters: bool, **kwargs: Any) -> Any:
        if pid_minters and no_pid_minters:
            raise click.UsageError("give --pid-minter or --no-pid-minters, not both")
        chosen = () if no_pid_minters else (pid_minters or None)
        return f(*args, pid_minters=chosen, **kwargs)

    wrapped: Any = command
    wrapped = click.option(
        "--no-pid-minters",
        is_flag=True,
        help="Mint no PID, whatever the repository's default.",
    )(wrapped)
    wrapped = click.option(
        "--pid-minter",
        "pid_minters",
        metavar="NAME",
        multiple=True,
        callback=_check_minters,
        help='Mint this PID for each new record instead of the repository\'s default ("mint" in'
        " gitrecords.json; recid: the next control_number); repeatable.",
    )(wrapped)
    wrapped = click.option(
        "--force", is_flag=True, help="If a record with the id exists, write the input as its new revision."
    )(wrapped)
    return wrapped  # type: ignore[no-any-return]


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)


def ids_option(required: bool = False, help: str = "Record id; repeat for several.") -> Callable[[F], F]:
    return click.option("-i", "--id", "ids", type=RECORD_ID, multiple=True, required=required, help=help)


def short(commit: object | None) -> str:
    return str(commit)[:7] if commit is not None else "-"
