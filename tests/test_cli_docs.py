"""The CLI docs: docs/cli.md's shell examples run, and docs/cli-reference.md matches --help.

Every ```console block of docs/cli.md is run, in order, by one bash process
in a temporary directory (with sample-repo/ in it), through the installed
``gitrecords`` executable. Each ``$ command`` line is followed by its
expected output (stdout and stderr as a terminal shows them). Ids that the
page does not choose itself (new UUIDs), short commit ids and times match
any value; ``...`` matches anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from helpers import ROOT, SAMPLE_REPO

from gitrecords.cli import cli

CLI_DOC = ROOT / "docs" / "cli.md"
REFERENCE = ROOT / "docs" / "cli-reference.md"

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIME = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\+00:00|Z)?"
SHORT_COMMIT = r"\b(?=[0-9a-f]*\d)[0-9a-f]{7}\b"
TOKEN = re.compile(rf"\.\.\.|{UUID}|{TIME}|{SHORT_COMMIT}")
BLOCK = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
MARKER = "@@gitrecords-doc-step"


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)

    @property
    def expected_text(self) -> str:
        return "\n".join(self.expected)


def parse_steps(text: str) -> list[Step]:
    steps: list[Step] = []
    for block in BLOCK.findall(text):
        current: Step | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = Step(line[2:])
                steps.append(current)
            elif current is not None:
                current.expected.append(line)
    return steps


def expected_pattern(expected: str, known_ids: set[str]) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    for match in TOKEN.finditer(expected):
        parts.append(re.escape(expected[position : match.start()]))
        token = match.group()
        if token == "...":
            parts.append(r"[\s\S]*?")
        elif re.fullmatch(UUID, token):
            parts.append(re.escape(token) if token in known_ids else UUID)
        elif re.fullmatch(TIME, token):
            parts.append(TIME)
        else:
            parts.append("[0-9a-f]{7}")
        position = match.end()
    parts.append(re.escape(expected[position:]))
    return re.compile("".join(parts) + r"\Z")


def executable() -> str:
    beside = Path(sys.executable).parent / "gitrecords"
    if beside.exists():
        return str(beside)
    found = shutil.which("gitrecords")
    if found is None:
        pytest.fail("the gitrecords executable is not installed: pip install -e '.[test]'")
    return found


def run_steps(steps: list[Step], cwd: Path) -> list[tuple[str, int]]:
    """Run the steps in one bash process; return each one's output and exit code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITRECORDS_", "GIT_"))}
    env.update(
        PATH=f"{Path(executable()).parent}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(cwd),
        GIT_CONFIG_GLOBAL=str(cwd / ".gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_DATE="1700000000 +0000",
        GIT_COMMITTER_DATE="1700000000 +0000",
        PYTHONUNBUFFERED="1",
        COLUMNS="80",
        LC_ALL="C.UTF-8",
    )
    script = "".join(f"{step.command}\nprintf '\\n{MARKER} %d\\n' \"$?\"\n" for step in steps)
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,  # 70 CLI runs; a loaded 2-core machine takes 2 minutes
    )
    parts = re.split(rf"\n{MARKER} (\d+)\n", proc.stdout)
    return [(output, int(code)) for output, code in zip(parts[0:-1:2], parts[1::2], strict=True)]


@pytest.fixture
def doc_dir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "sample-repo").symlink_to(SAMPLE_REPO, target_is_directory=True)
    return work


def test_cli_doc_examples_run(doc_dir: Path) -> None:
    text = CLI_DOC.read_text("utf-8")
    steps = parse_steps(text)
    assert len(steps) > 30
    known_ids = {match for step in steps for match in re.findall(UUID, step.command)}
    known_ids |= {path.stem for path in (SAMPLE_REPO / "records").rglob("*.json")}
    outputs = run_steps(steps, doc_dir)
    assert len(outputs) == len(steps), "a doc command ended the shell"
    failures = []
    for step, (output, code) in zip(steps, outputs, strict=True):
        if not expected_pattern(step.expected_text, known_ids).match(output.rstrip("\n")):
            failures.append(f"$ {step.command}\n--- expected\n{step.expected_text}\n--- got\n{output}")
        elif (code != 0) != ("Error:" in step.expected_text):
            failures.append(f"$ {step.command}\nexit code {code} does not fit the output shown")
    assert not failures, "\n\n".join(failures)


def test_expected_pattern() -> None:
    known = {"deadbeef-9fe4-43d3-a08f-38c2b309afba"}
    pattern = expected_pattern("deadbeef-9fe4-43d3-a08f-38c2b309afba (commit 1a2b3c4) ...", known)
    assert pattern.match("deadbeef-9fe4-43d3-a08f-38c2b309afba (commit 9f8e7d6) and more")
    assert not pattern.match("deadbeef-9fe4-43d3-a08f-38c2b309afbb (commit 9f8e7d6) and more")
    random_id = expected_pattern("5dade35c-524b-4c46-9d2a-313393f143f3", known)
    assert random_id.match("13cf6a59-08d8-4c88-b782-fb728707a7ae")


def test_cli_reference_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", str(REFERENCE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, f"run: cog -r docs/cli-reference.md\n{proc.stdout}{proc.stderr}"


def test_every_command_is_documented_with_an_example() -> None:
    reference = REFERENCE.read_text("utf-8")
    how_to = CLI_DOC.read_text("utf-8")
    for name, command in cli.commands.items():
        assert f"## gitrecords {name}\n" in reference, name
        assert f"gitrecords {name}" in how_to or f"gitrecords --repo copy.git {name}" in how_to, name
        assert command.help and "Example" in command.help, f"{name} --help has no example"
        assert isinstance(command, click.Command)
