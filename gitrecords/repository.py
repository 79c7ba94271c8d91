"""The data repository users hold: :class:`Repository`.

It is a :class:`gitrecords.storage.Storage` (open/init, settings, snapshots,
reads, transactions, the write path) with the two services that rewrite a
lot at once: :meth:`Repository.import_records` (bulk import through ``git
fast-import``) and :meth:`Repository.hard_delete` (a history rewrite). Every
write is one git commit that moves the branch with a compare-and-swap; see
:mod:`gitrecords.writer`, the write path, and docs/architecture.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from . import layout
from .bulk import ImportResult, import_records
from .config import DEFAULT_CONFIG, PURGED_FILE
from .errors import GitRecordsError
from .index import TOMBSTONE
from .purge import purge
from .storage import Snapshot, Storage, current_repository, record_facts
from .writer import (
    DEFAULT_AUTHOR,
    MAX_ATTEMPTS,
    MAX_TRAILER_RECORDS,
    Change,
    Transaction,
    parse_author,
)

__all__ = [
    "DEFAULT_AUTHOR",
    "DEFAULT_CONFIG",
    "MAX_ATTEMPTS",
    "MAX_TRAILER_RECORDS",
    "PURGED_FILE",
    "Change",
    "Repository",
    "Snapshot",
    "Transaction",
    "current_repository",
    "parse_author",
    "record_facts",
    "utc",
]

TOMBSTONE_STATE = TOMBSTONE


class Repository(Storage):
    """A gitrecords data repository: a git repository, bare or not.

    ``Repository(path)`` opens an existing repository; ``Repository.init(path)``
    creates one. Use ``with repo:`` to make it the current repository for the
    :class:`~gitrecords.Record` class methods.
    """

    def import_records(
        self,
        items: Iterable[Any],
        *,
        message: str | None = None,
        author: Any = None,
        format_checker: Any = None,
        workers: int | None = None,
        progress: Any = None,
        source: str | None = None,
    ) -> ImportResult:
        """Create many new records as ONE commit, through ``git fast-import``.

        ``items`` holds each record's data (a dict, or its JSON text as str or
        bytes), or ``(id, data)`` pairs. Every record is validated (in worker
        processes for large batches) and every problem of every record is
        reported in one :class:`~gitrecords.errors.BatchValidationError` before
        anything is written. Returns an ``ImportResult`` with the commit id and
        the record ids in input order. ``progress(count)`` is called as records
        are prepared.
        """
        return import_records(
            self,
            items,
            message=message,
            author=author,
            format_checker=format_checker,
            workers=workers,
            progress=progress,
            source=source,
        )

    def hard_delete(
        self,
        record_ids: Iterable[uuid.UUID | str],
        *,
        message: str | None = None,
        author: Any = None,
        progress: Any = None,
    ) -> None:
        """Purge records from every commit, ref and object store (rewrites history)."""
        if self.in_transaction is not None:
            raise GitRecordsError("a hard delete cannot run inside a transaction")
        ids = [layout.normalize_id(i) for i in record_ids]
        with self.writer.lock():
            # local edits to a purged record's file would be lost: refuse, as every write does
            self.working_clone.check(self.tip(), [self.path_for(i) for i in ids])
            try:
                purge(self, ids, message=message, author=author, progress=progress)
            finally:
                self.parsed.clear()  # no copy of a purged record's data stays in memory

    # -- TEMPORARY: what purge.py calls until it moves onto the write path -------------

    @property
    def _git(self) -> Any:
        return self.git

    def _forget_paths_in_worktree(self, paths: list[str]) -> None:
        self.working_clone.forget(paths)

    def _update_worktree(self, base: Any, changes: Any) -> None:
        self.working_clone.update(changes)

    def _purge_log_commit(
        self, base: Any, record_ids: list[uuid.UUID], *, message: str | None, author: Any
    ) -> tuple[Any, dict[str, Any]]:
        from . import _git
        from .config import purged_text

        tree = _git.tree_of(self.git, base)
        known = self.writer.purged(tree)
        self.index.catch_up(self.tip())
        added = {i: self.index.pids_of(i) for i in record_ids}
        new_blob = _git.create_blob(self.git, purged_text(known, added))
        new_tree = _git.build_tree(self.git, tree, {PURGED_FILE: new_blob})
        author_sig, committer_sig = self.writer.signatures(author)
        if len(record_ids) == 1:
            text = message or f"hard delete record {record_ids[0]}"
        else:
            text = message or f"hard delete {len(record_ids)} records"
        text = (
            text.rstrip("\n")
            + "\n\nGitrecords-Operation: hard-delete\n"
            + "".join(f"Gitrecords-Record: {i}\n" for i in record_ids[:MAX_TRAILER_RECORDS])
        )
        commit = _git.create_commit(self.git, None, author_sig, committer_sig, text, new_tree, [base])
        return commit, {PURGED_FILE: new_blob}


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
