"""The tables of docs/reliability.md, rendered from the cases the test suites run.

``tests/test_crash_safety.py`` (``CASES``: where a writer is killed and what the test asserts)
and ``tests/test_hostile_input.py`` (``CASES``: each bad input and the error it must get) are
the only source: cog calls :func:`crash_table` and :func:`input_table` between the markers of
docs/reliability.md, and ``tests/test_durability.py`` runs ``cog --check`` so the page cannot
drift from what the tests check. After changing a case: ``cog -r docs/reliability.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_crash_safety as crash
import test_group_commit as group
import test_hostile_input as hostile

STATE = {
    "before": "**before**: unchanged",
    "after": "**after**: the whole operation",
}
VIA = {"API": "Python API", "CLI": "CLI", "gitrecords": "`gitrecords` executable"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{_cell(text)}{pad}{fence}"


def crash_table() -> str:
    rows = [
        "| Operation | Killed | Kill point | The branch is | Also checked |",
        "|---|---|---|---|---|",
    ]
    shown = None
    for case in crash.CASES:
        operation = crash.OPERATIONS[case.operation] if case.operation != shown else ""
        shown = case.operation
        point = (
            f"`{case.target}` {case.when} call {case.nth}"
            if case.when != "lock"
            else (f"`{case.target}` call {case.nth}, leaving the lock file")
        )
        notes = "; ".join(crash.NOTES[n] for n in case.notes) or "-"
        rows.append(
            f"| {_cell(operation)} | {_cell(case.point)} | {point} | {STATE[case.outcome]} | {_cell(notes)} |"
        )
    return "\n".join(rows) + "\n"


def group_table() -> str:
    """The kill points of group commit (``tests/test_group_commit.py``)."""
    rows = [
        "| Killed | Kill point | The leader's own write | The queued writes |",
        "|---|---|---|---|",
    ]
    every = "each acknowledged, in the branch once, with its own author and message"
    for case in group.CASES:
        own = "in the branch once" if case.leader_write == "present" else "not in the branch"
        queued = every
        if case.victim == "waiter":
            queued = f"the others {every[5:]}; the killed waiter's in the branch at most once"
        point = f"`{case.target}` {case.when} call {case.nth}"
        rows.append(f"| {_cell(case.point)} | {point} | {own} | {queued} |")
    return "\n".join(rows) + "\n"


def input_table() -> str:
    rows = [
        "| Input | Through | Result | The one-line message contains |",
        "|---|---|---|---|",
    ]
    for topic in hostile.TOPICS:
        rows.append(f"| **{topic}** | | | |")
        for case in (c for c in hostile.CASES if c.topic == topic):
            result = "accepted" if case.result == "accepted" else case.result
            if case.result.startswith("exit "):
                result = f"exit code {case.result[5:]}"
            elif case.result != "accepted":
                result = f"`{case.result}`"
            message = case.message if case.result == "accepted" else _code(case.message)
            rows.append(f"| {_cell(case.input)} | {VIA[case.via]} | {result} | {message} |")
    return "\n".join(rows) + "\n"


def counts() -> str:
    kinds = len({c.operation for c in crash.CASES})
    return (
        f"In all, the tests kill writers at {len(crash.CASES)} points of {kinds} kinds of operation "
        f"and try {len(hostile.CASES)} bad inputs in {len(hostile.TOPICS)} groups."
    )


if __name__ == "__main__":
    print(crash_table())
    print(input_table())
