"""Creating a data repository: init."""

from __future__ import annotations

import click

from ..repository import Repository
from ._common import State, write_options
from ._output import note


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Working tree to import (gitrecords.json, schemas/ and records/, like sample-repo/).",
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
    branch: str | None,
    bare: bool,
    message: str | None,
    author: str | None,
) -> None:
    """Create a data repository at PATH, empty or from a working tree.

    \b
    Examples:
      gitrecords init data.git
      gitrecords init --from sample-repo demo.git
      gitrecords init --no-bare --branch records data
    """
    state = ctx.ensure_object(State)
    branch = branch or state.branch or "main"
    repo = Repository.init(path, bare=bare, from_dir=from_dir, branch=branch, author=author, message=message)
    try:
        count = sum(1 for _ in repo.ids())
        kind = "bare data repository" if bare else "data repository"
        note(f"Initialised {kind} in {path} (branch {branch}, {count} record{'' if count == 1 else 's'})")
    finally:
        repo.close()


COMMANDS = [init]
