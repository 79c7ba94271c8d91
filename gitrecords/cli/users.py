"""The people of a web server: users add, list and remove (the users file of gitrecords.users)."""

from __future__ import annotations

from typing import Any

import click

from ..errors import GitRecordsError
from ..users import ROLES, UsersFile, check_email, check_name
from ._common import json_option
from ._output import echo_json, note


def users_file_option(f: Any) -> Any:
    return click.option(
        "--users-file",
        "users_file",
        required=True,
        metavar="FILE",
        envvar="GITRECORDS_USERS_FILE",
        show_envvar=True,
        type=click.Path(dir_okay=False),
        help="The users file (JSON, mode 0600; created by the first users add).",
    )(f)


def _checked(check: Any) -> Any:
    """A callback that makes a value ``check`` refuses a usage error (exit 2), as a bad --role
    is: the option is wrong, not the data."""

    def callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
        try:
            check(value)
        except GitRecordsError as err:
            raise click.BadParameter(str(err)) from None
        return value

    return callback


@click.group()
def users() -> None:
    """The people who may use the web server, with their roles (read, write, admin).

    Each person's token is printed once by users add; the file keeps only a
    scrypt hash of it. gitrecords serve --users-file FILE commits each person's
    writes with them as the author.

    \b
    Examples:
      gitrecords users add --users-file users.json --name 'Ada Lovelace' --email ada@example.org --role write
      gitrecords users list --users-file users.json
      gitrecords users remove --users-file users.json ada@example.org
    """


@users.command("add")
@users_file_option
@click.option(
    "--name",
    required=True,
    callback=_checked(check_name),
    help="The person's name (the git author name of their writes).",
)
@click.option(
    "--email",
    required=True,
    callback=_checked(check_email),
    help="Their email (the git author email; also their user name).",
)
@click.option(
    "--role",
    required=True,
    type=click.Choice(ROLES),
    help="read: read only; write: create, update, delete, revert; admin: also hard-delete.",
)
@click.option("--replace", is_flag=True, help="Give someone already in the file a new token (and role).")
def users_add(users_file: str, name: str, email: str, role: str, replace: bool) -> None:
    """Add a person and print their new token on stdout, once (it is not kept).

    \b
    Example:
      gitrecords users add --users-file users.json --name 'Ada Lovelace' --email ada@example.org --role write
    """
    user, token = UsersFile(users_file).add(name, email, role, replace=replace)
    click.echo(token)
    who = f"{user.name} <{user.email}> ({user.role})"
    note(f"Added {who} to {users_file}: the token is shown only this once.")


@users.command("list")
@users_file_option
@json_option
def users_list(users_file: str, as_json: bool) -> None:
    """List the people: email, role and name (never a token or its hash).

    \b
    Example:
      gitrecords users list --users-file users.json --json
    """
    people = UsersFile(users_file).users()
    if as_json:
        echo_json([user.public() for user in people])
        return
    for user in people:
        click.echo(f"{user.email}\t{user.role}\t{user.name}")


@users.command("remove")
@users_file_option
@click.argument("email")
def users_remove(users_file: str, email: str) -> None:
    """Remove a person: their token and their signed-in sessions stop working at once.

    \b
    Example:
      gitrecords users remove --users-file users.json ada@example.org
    """
    user = UsersFile(users_file).remove(email)
    note(f"Removed {user.name} <{user.email}> from {users_file}.")


COMMANDS = [users]
