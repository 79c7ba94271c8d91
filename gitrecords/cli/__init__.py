"""The gitrecords command line: a thin click layer over the Python API."""

from __future__ import annotations

import click

from .. import __version__
from ..repository import Repository


@click.group()
@click.version_option(__version__, prog_name="gitrecords")
def cli() -> None:
    """Metadata records as JSON files in a git repository."""


@cli.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False), help="Working tree to import.")
@click.option("--bare/--no-bare", default=True, show_default=True)
def init(path: str, from_dir: str | None, bare: bool) -> None:
    """Create a data repository at PATH.

    Example: gitrecords init --from sample-repo demo.git
    """
    repo = Repository.init(path, bare=bare, from_dir=from_dir)
    click.echo(f"Initialised data repository in {repo.path}", err=True)


def main() -> None:
    cli()
