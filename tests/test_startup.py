"""CLI start-up (issue 21): what ``import gitrecords.cli``, ``--version`` and ``get`` import.

Scripts and CI jobs call the CLI in loops, so a command must not pay for what it
does not use. Each check runs in a fresh interpreter and looks at ``sys.modules``;
the times themselves are measured by ``python -m benchmarks.startup``, not here.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonpatch
import jsonpointer
import jsonschema.exceptions
import pytest
from click.testing import CliRunner
from helpers import ROOT

import gitrecords
import gitrecords.errors
from gitrecords import Record, Repository
from gitrecords.cli import COMMANDS, GitRecordsGroup, cli

#: never imported by ``import gitrecords.cli`` nor by ``gitrecords get``: the web server, the
#: validators, the pattern engines, bulk import and bulk edits, search
HEAVY = (
    "flask",
    "werkzeug",
    "jsonschema",
    "jsonschema_rs",
    "referencing",
    "jsonref",
    "re2",
    "regex",
    "gitrecords.web",
    "gitrecords.bulk",
    "gitrecords.edit",
    "gitrecords.search",
    "gitrecords.purge",
    "gitrecords._patterns",
)

#: the script run in a fresh interpreter: argv[1] is where to write the imported modules,
#: argv[2:] the command line (none: only ``import gitrecords.cli``)
SCRIPT = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
import gitrecords.cli
code = None
if args:
    sys.argv = ["gitrecords", *args]
    try:
        gitrecords.cli.main()
    except SystemExit as exit:
        code = exit.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def imported(tmp_path: Path, *args: str, cwd: Path | None = None) -> tuple[set[str], str]:
    """The modules a fresh interpreter has imported after ``import gitrecords.cli`` and the
    command ``gitrecords ARGS`` (run in ``cwd``), and the command's stdout."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("GITRECORDS_REPO", None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=cwd,
    )
    result = json.loads(out.read_text())
    assert result["code"] in (None, 0), proc.stderr
    return set(result["modules"]), proc.stdout


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_import_cli_imports_no_command(tmp_path: Path) -> None:
    modules, _ = imported(tmp_path)
    assert heavy(modules) == []
    assert "pygit2" not in modules
    assert [m for m in modules if m.startswith("gitrecords.cli.")] == []


def test_version_imports_no_git_and_no_command(tmp_path: Path) -> None:
    modules, stdout = imported(tmp_path, "--version")
    assert stdout == f"gitrecords, version {gitrecords.__version__}\n"
    assert heavy(modules) == []
    assert "pygit2" not in modules
    assert "importlib.metadata" not in modules


@pytest.mark.parametrize("where", ["bare", "working clone", "discovered"])
def test_get_reads_without_libgit2(tmp_path: Path, where: str) -> None:
    """``gitrecords get ID`` of a plain repository reads the record without pygit2 (whose
    start costs more than the rest of the command), the revision index or the record API."""
    repo = Repository.init(tmp_path / "data", bare=where == "bare")
    with repo:
        record = Record.create({"title": "Start-up"}, pid_minters=[])
    repo.close()
    if where == "discovered":
        (tmp_path / "data" / "records").mkdir(exist_ok=True)
        modules, stdout = imported(tmp_path, "get", str(record.id), cwd=tmp_path / "data" / "records")
    else:
        modules, stdout = imported(tmp_path, "--repo", str(tmp_path / "data"), "get", str(record.id))
    assert json.loads(stdout) == {"title": "Start-up"}
    assert heavy(modules) == []
    assert "gitrecords.cli.get" in modules
    light = ("pygit2", "sqlite3", "gitrecords.cli.records", "gitrecords.repository", "gitrecords._git")
    assert [m for m in light if m in modules] == []


def test_get_json_reads_the_index_without_libgit2(tmp_path: Path) -> None:
    """``get --json`` reads its revision id and dates from the revision index's file when the
    index has seen the branch tip, and through the repository (pygit2) when it must catch up;
    either way it imports no validator, bulk machinery or web server."""
    repo = Repository.init(tmp_path / "data.git")
    with repo:
        record = Record.create({"title": "Start-up"}, pid_minters=[])
    repo.close()
    args = ("--repo", str(tmp_path / "data.git"), "get", "--json", str(record.id))
    modules, stdout = imported(tmp_path, *args)
    assert json.loads(stdout)["data"] == {"title": "Start-up"}
    assert json.loads(stdout)["revision_id"] == 0
    assert heavy(modules) == []
    assert "pygit2" not in modules
    assert "sqlite3" in modules
    (tmp_path / "data.git" / "gitrecords" / "index-main.sqlite").unlink()
    modules, again = imported(tmp_path, *args)
    assert again == stdout
    assert heavy(modules) == []
    assert "pygit2" in modules


def test_the_lazy_command_map_names_every_command() -> None:
    """``COMMANDS`` (name -> module:attribute) lists every command of the command modules."""
    names = ("admin", "bulk", "ci", "edit", "get", "history", "records", "replication", "schemas", "search")
    names += ("serve",)
    modules = [importlib.import_module(f"gitrecords.cli.{name}") for name in (*names, "users")]
    assert {c.name: c for m in modules for c in m.COMMANDS} == cli.commands
    assert sorted(COMMANDS) == sorted(cli.commands)


def test_lazy_names_are_the_same_objects() -> None:
    """The names resolved on first use are the classes they always were: ``except`` and
    ``isinstance`` keep working."""
    from gitrecords import edit, repository
    from gitrecords._patterns import PatternTimeoutError
    from gitrecords.schema import BACKTRACKING_TIME_LIMIT
    from gitrecords.schema import PatternTimeoutError as from_schema

    assert gitrecords.ValidationError is jsonschema.exceptions.ValidationError
    assert gitrecords.errors.ValidationError is jsonschema.exceptions.ValidationError
    assert from_schema is PatternTimeoutError
    assert BACKTRACKING_TIME_LIMIT > 0
    assert repository.DIFFS == edit.DIFFS
    assert set(gitrecords.__all__) <= set(dir(gitrecords))
    for name in gitrecords.__all__:
        assert getattr(gitrecords, name) is not None
    with pytest.raises(AttributeError):
        gitrecords.no_such_name  # noqa: B018
    with pytest.raises(AttributeError):
        gitrecords.errors.NoSuchError  # noqa: B018


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (jsonschema.exceptions.ValidationError("5 is not of type 'string'", path=["title"]), "/title: 5 is"),
        (jsonpatch.JsonPatchConflict("no such path"), "no such path"),
        (jsonpointer.JsonPointerException("bad pointer"), "bad pointer"),
    ],
)
def test_validation_and_patch_errors_are_still_data_errors(error: Exception, message: str) -> None:
    """jsonschema's and JSON Patch's errors are exit 1, one line, though the group no longer
    imports those libraries to recognise them (an error's class is imported when it is raised)."""
    group = GitRecordsGroup(name="gitrecords")

    @group.command()
    def fail() -> None:
        raise error

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {message}")


def test_the_startup_benchmark_runs() -> None:
    """``python -m benchmarks.startup`` still runs (one round; no time is asserted)."""
    from benchmarks import startup

    report = startup.run(1)
    assert set(report["rows"]) == {  # type: ignore[call-overload]
        "python -c pass",
        "git cat-file -p <blob>",
        "gitrecords --version",
        "gitrecords get ID",
        "gitrecords get ID (after git gc)",
        "gitrecords get --json ID",
    }
    assert "| `gitrecords get ID` |" in startup.render(report)
