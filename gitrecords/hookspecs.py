"""Hook specifications: the record signals, PID minters and the record page's reading view.

Every record hook is called with the keyword arguments ``repo`` and
``record``; an implementation may accept only the ones it needs. Changes that
``before_record_insert`` and ``before_record_update`` make to the record are
validated and persisted (unlike invenio-records' before-insert signal).

``repo`` is a :class:`gitrecords.Repository` and ``record`` a
:class:`gitrecords.Record` (or the subclass the caller used). The specs name
them in words, not imports, so that this module stays at the bottom of the
package's layers: it imports nothing of gitrecords.
"""

from __future__ import annotations

from typing import Any

import pluggy

#: what the hooks receive (see the module docstring)
Repository = Any
Record = Any

hookspec = pluggy.HookspecMarker("gitrecords")
hookimpl = pluggy.HookimplMarker("gitrecords")


@hookspec
def before_record_insert(repo: Repository, record: Record) -> None:
    """Called before a new record is validated and written; may modify ``record``."""


@hookspec
def after_record_insert(repo: Repository, record: Record) -> None:
    """Called after a new record was written (or staged, inside a transaction)."""


@hookspec
def before_record_update(repo: Repository, record: Record) -> None:
    """Called before ``record.commit()`` validates and writes; may modify ``record``."""


@hookspec
def after_record_update(repo: Repository, record: Record) -> None:
    """Called after ``record.commit()`` wrote a new revision."""


@hookspec
def before_record_delete(repo: Repository, record: Record) -> None:
    """Called before a soft or hard delete; ``record.is_deleted`` is still false."""


@hookspec
def after_record_delete(repo: Repository, record: Record) -> None:
    """Called after a soft delete wrote its tombstone, or a hard delete purged history."""


@hookspec
def before_record_revert(repo: Repository, record: Record) -> None:
    """Called before ``record.revert(n)`` writes revision ``n``'s data again."""


@hookspec
def after_record_revert(repo: Repository, record: Record) -> None:
    """Called after a revert, with the new record (holding the restored data)."""


@hookspec
def gitrecords_pid_minters() -> dict[str, Any]:
    """Return ``{name: minter}``; a minter is ``minter(repo, record_id, data) -> str``.

    The minter stores its PID in ``data`` and returns the PID value. Minters of
    all plugins are merged; the built-in one is ``recid``.
    """


@hookspec(firstresult=True)
def gitrecords_record_view(repo: Repository, record: Record, schema: Any) -> str | None:
    """Return the HTML of the reading view of ``record`` on its page, or None to leave it to the
    next plugin and, last, to the built-in view.

    ``schema`` is the record's schema with every ``$ref`` resolved in the store (None when the
    record has none that resolves). The first plugin that returns a string wins. The string is
    inserted into the page as it is: escape every value of the record in it
    (``markupsafe.escape``, or a Jinja template with autoescape), and link only http(s) URLs.
    """
