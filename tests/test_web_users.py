"""Named people and roles (issue 19): the users file and its CLI, each person the git author of
their writes with the server as committer, roles in the REST API and the pages, the trusted proxy
header, and two people editing at once through gunicorn's worker processes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from helpers import git

from gitrecords import Repository
from gitrecords.users import UsersFile

SERVER = "Curation server <curation@example.org>"
ADA = ("Ada Lovelace", "ada@example.org")
GRACE = ("Grace Hopper", "grace@example.org")
LOG = "--format=%an <%ae>|%cn <%ce>"


def add_user(gr: Any, users: Path, name: str, email: str, role: str) -> str:
    """``gitrecords users add``; returns the token it printed."""
    result = gr(
        None, "users", "add", "--users-file", str(users), "--name", name, "--email", email, "--role", role
    )
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


@pytest.fixture
def people(gr: Any, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A users file with a reader, two writers and an admin; their tokens by role or name."""
    users = tmp_path / "users.json"
    tokens = {
        "read": add_user(gr, users, "Rita Reader", "rita@example.org", "read"),
        "ada": add_user(gr, users, *ADA, "write"),
        "grace": add_user(gr, users, *GRACE, "write"),
        "admin": add_user(gr, users, "Alan Admin", "alan@example.org", "admin"),
    }
    return users, tokens


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def last_commits(repo: Repository, count: int) -> list[str]:
    """``author|committer`` of the branch's last commits, newest first, from the real git."""
    return git(repo, "log", f"-{count}", LOG, "main").splitlines()


# -- the users file and its CLI --------------------------------------------------


def test_users_add_prints_the_token_once_and_keeps_only_its_hash(gr: Any, tmp_path: Path) -> None:
    users = tmp_path / "secret" / "users.json"
    result = gr(
        None,
        "users",
        "add",
        "--users-file",
        str(users),
        "--name",
        ADA[0],
        "--email",
        ADA[1],
        "--role",
        "write",
    )
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # stdout: the token and nothing else
    assert token not in result.stderr and "Ada Lovelace <ada@example.org> (write)" in result.stderr
    token_id, _, secret = token.partition(".")
    assert len(secret) >= 40
    text = users.read_text()
    assert secret not in text and token not in text
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    stored = json.loads(text)
    assert stored["format"] == "gitrecords-users 1"
    [person] = stored["users"]
    assert (person["name"], person["email"], person["role"], person["token_id"]) == (*ADA, "write", token_id)
    hashed = person["token_hash"]
    assert (hashed["algorithm"], hashed["n"], hashed["r"], hashed["p"]) == ("scrypt", 2**14, 8, 1)
    assert len(bytes.fromhex(hashed["salt"])) == 16 and len(bytes.fromhex(hashed["hash"])) == 32
    assert sorted(os.listdir(users.parent)) == ["users.json"]  # no temporary file left behind

    # the token is checked against the hash, and nothing else is
    file = UsersFile(users)
    assert file.authenticate(token) is not None and file.authenticate(token).email == ADA[1]
    assert file.authenticate(f"{token_id}.{'x' * len(secret)}") is None
    assert file.authenticate(secret) is None and file.authenticate("") is None


def test_users_list_and_remove(gr: Any, people: tuple[Path, dict[str, str]]) -> None:
    users, tokens = people
    listed = gr(None, "users", "list", "--users-file", str(users), "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [(r["email"], r["role"], r["name"]) for r in rows] == [
        ("rita@example.org", "read", "Rita Reader"),
        ("ada@example.org", "write", "Ada Lovelace"),
        ("grace@example.org", "write", "Grace Hopper"),
        ("alan@example.org", "admin", "Alan Admin"),
    ]
    assert all(set(r) == {"name", "email", "role", "added"} for r in rows)  # no hash, no token id
    text = gr(None, "users", "list", "--users-file", str(users))
    assert text.stdout.splitlines()[1] == "ada@example.org\twrite\tAda Lovelace"
    assert "scrypt" not in text.output and "scrypt" not in listed.output

    removed = gr(None, "users", "remove", "--users-file", str(users), "ADA@example.org")
    assert removed.exit_code == 0 and removed.stdout == ""
    assert "Removed Ada Lovelace <ada@example.org>" in removed.stderr
    assert UsersFile(users).authenticate(tokens["ada"]) is None
    assert [p.email for p in UsersFile(users).users()] == [
        "rita@example.org",
        "grace@example.org",
        "alan@example.org",
    ]
    assert stat.S_IMODE(users.stat().st_mode) == 0o600

    again = gr(None, "users", "remove", "--users-file", str(users), "ada@example.org")
    assert (again.exit_code, again.stderr) == (1, f"Error: ada@example.org is not in {users}\n")


def test_users_add_refuses_a_second_entry_unless_replace(
    gr: Any, people: tuple[Path, dict[str, str]]
) -> None:
    users, tokens = people
    argv = [
        "users",
        "add",
        "--users-file",
        str(users),
        "--name",
        ADA[0],
        "--email",
        ADA[1],
        "--role",
        "admin",
    ]
    twice: Result = gr(None, *argv)
    assert twice.exit_code == 1 and "use --replace" in twice.stderr and twice.stdout == ""
    replaced = gr(None, *argv, "--replace")
    assert replaced.exit_code == 0
    file = UsersFile(users)
    assert file.authenticate(tokens["ada"]) is None  # the old token stops working
    assert file.authenticate(replaced.stdout.strip()).role == "admin"
    assert len(file.users()) == 4
    bad = gr(
        None, "users", "add", "--users-file", str(users), "--name", "X", "--email", "x@y", "--role", "root"
    )
    assert bad.exit_code == 2 and "'root' is not one of 'read', 'write', 'admin'" in bad.stderr
    bad = gr(
        None, "users", "add", "--users-file", str(users), "--name", "X", "--email", "nope", "--role", "read"
    )
    assert (bad.exit_code, bad.stderr) == (1, "Error: email 'nope' must look like someone@example.org\n")
