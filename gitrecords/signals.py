"""Sending the record signals: the one place that calls the record hooks.

:mod:`gitrecords.record` sends them around each write, and
:mod:`gitrecords.bulk` around each imported record, through :func:`send`.
"""

from __future__ import annotations

from typing import Any

from . import plugins

#: the record signals, in the order of a record's lifecycle
SIGNALS = (
    "before_record_insert",
    "after_record_insert",
    "before_record_update",
    "after_record_update",
    "before_record_delete",
    "after_record_delete",
    "before_record_revert",
    "after_record_revert",
)


def send(name: str, repo: Any, record: Any) -> None:
    """Call every plugin's ``name`` hook with ``repo`` and ``record`` (unless the record's class
    has ``send_signals = False``)."""
    if not getattr(record, "send_signals", True):
        return
    getattr(plugins.hook(), name)(repo=repo, record=record)


def receivers(name: str) -> bool:
    """Whether any plugin implements the signal ``name`` (lets bulk skip the work otherwise)."""
    return bool(getattr(plugins.hook(), name).get_hookimpls())
