"""Every hook is documented in docs/plugins.md with its exact signature."""

from __future__ import annotations

import inspect
from pathlib import Path

from gitrecords import hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def hook_functions() -> list:
    return [
        f for name, f in vars(hookspecs).items() if inspect.isfunction(f) and hasattr(f, "gitrecords_spec")
    ]


def test_every_hook_is_documented_with_its_signature() -> None:
    text = DOCS.read_text()
    hooks = hook_functions()
    assert len(hooks) == 10
    for function in hooks:
        params = ", ".join(inspect.signature(function).parameters)
        assert f"`{function.__name__}({params})`" in text, function.__name__


def test_every_record_hook_takes_repo_and_record() -> None:
    for function in hook_functions():
        if function.__name__.startswith(("before_record", "after_record")):
            assert list(inspect.signature(function).parameters) == ["repo", "record"]
