"""The data repository users hold: :class:`Repository`.

It is a :class:`gitrecords.storage.Storage` (open/init, settings, snapshots,
reads, transactions, the write path) with the two services that rewrite a
lot at once: :meth:`Repository.import_records` (bulk import through ``git
fast-import``) and :meth:`Repository.hard_delete` (a history rewrite). Every
write is one git commit that moves the branch with a compare-and-swap; see
:mod:`gitrecords.writer`, the write path, and docs/architecture.md.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import _git, layout
from .config import DEFAULT_CONFIG, PURGED_FILE
from .index import TOMBSTONE
from .storage import Snapshot, Storage, current_repository, record_facts
from .writer import (
    DEFAULT_AUTHOR,
    MAX_ATTEMPTS,
    MAX_TRAILER_RECORDS,
    Change,
    Transaction,
    parse_author,
)

if TYPE_CHECKING:
    from .blame import BlameEntry
    from .bulk import ImportResult
    from .edit import ChangeSpec, EditReport, UndoReport
    from .search import SearchResult

# The services below are imported by the methods that use them: reading a record (``gitrecords
# get``) does not import bulk import, bulk edits, search or hard delete (issue 21, CLI start-up).

#: the default of ``update_records(diffs=...)``; ``gitrecords.edit.DIFFS`` (a test checks they agree)
DIFFS = 10

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

    @classmethod
    def init(  # type: ignore[override]
        cls,
        path: str | os.PathLike[str],
        *,
        from_dir: str | os.PathLike[str] | None = None,
        allow_missing_schemas: bool = False,
        **kwargs: Any,
    ) -> Repository:
        """Create a new data repository; see :meth:`Storage.init`. With ``from_dir``, the first
        commit is checked as ``gitrecords validate`` checks a tree (every record: JSON object,
        size, depth, reserved keys, schema, PIDs): a problem raises
        :class:`~gitrecords.errors.InitValidationError` listing every one, and nothing is left
        at ``path``. With ``allow_missing_schemas``, a record whose schema the tree lacks is
        let through (it cannot be validated)."""
        import shutil

        from .checks import validate
        from .errors import InitValidationError

        target = os.fspath(path)
        existed = os.path.isdir(target)
        repo = super().init(path, from_dir=from_dir, allow_missing_schemas=allow_missing_schemas, **kwargs)
        if from_dir is None:
            return repo  # type: ignore[no-any-return]
        report = validate(repo)
        found = [
            p
            for p in report.problems
            if not (allow_missing_schemas and p.check == "schema" and "not in the schema store" in p.message)
        ]
        if not found:
            return repo  # type: ignore[no-any-return]
        repo.close()
        shutil.rmtree(target, ignore_errors=True)
        if existed:
            os.makedirs(target, exist_ok=True)
        places = {path: n for n, path in enumerate(dict.fromkeys(p.path for p in found))}
        problems = [
            (
                places[p.path],
                p.record_id,
                p.pointer or "/",
                f"{p.path}: {p.message}" if not p.record_id else p.message,
            )
            for p in found
        ]
        raise InitValidationError(problems, report.files)

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
        from .bulk import import_records

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

    def update_records(
        self,
        selection: str | Iterable[Any],
        change: ChangeSpec,
        *,
        message: str | None = None,
        dry_run: bool = False,
        author: Any = None,
        schema: str | None = None,
        chunk: int | None = None,
        diffs: int | None = DIFFS,
        signals: bool = True,
        progress: Any = None,
        workers: int | None = None,
        keep_pids: bool = False,
    ) -> EditReport:
        """Change many live records at once, validated, as ONE commit (docs/bulk-changes.md).

        ``selection`` is a search query (docs/search.md; ``""`` selects every live record)
        or an iterable of record ids. ``change`` is a JSON Patch (a list of operations), or a
        function that takes a record's data (a fresh dict it may change) and returns the new
        data, or None for "unchanged"; it may be None when ``schema`` is given. ``schema``
        moves the records to that schema of the store (their ``$schema`` becomes its ``$id``,
        else its path).

        Every changed record is validated against its (new) schema. If the change does not
        apply to a record or leaves it invalid, nothing is written and
        :class:`~gitrecords.errors.BulkEditError` is raised: its ``report`` lists every
        problem. ``dry_run=True`` writes nothing and returns the report, problems included.
        Returns an :class:`~gitrecords.edit.EditReport` (matched, changed, unchanged,
        invalid, problems, commits, the first ``diffs`` diffs; None keeps all).

        ``chunk=N`` writes commits of N records, landing one after another: a run that is
        interrupted can be run again, and the records already changed are then unchanged
        (when the change is idempotent). ``before_record_update`` and ``after_record_update``
        are sent for each changed record unless ``signals=False`` (for migrations).
        ``progress(done, total)`` is called as records are read and checked.

        From 2,000 records on, a JSON Patch, a ``SetFields`` change and a schema move are
        applied, validated and serialised in ``workers`` forked processes (default: one per
        CPU), as :meth:`import_records` does; a function of the caller's and the
        ``before_record_update`` receivers run in this process.

        ``keep_pids=True`` makes a change that removes or changes a PID a record holds (its
        ``control_number``, for one) a problem of that record, as REST and the admin pages do.
        """
        from .edit import update_records

        return update_records(
            self,
            selection,
            change,
            message=message,
            dry_run=dry_run,
            author=author,
            schema=schema,
            chunk=chunk,
            diffs=diffs,
            signals_on=signals,
            progress=progress,
            workers=workers,
            keep_pids=keep_pids,
        )

    def undo(
        self,
        commit: str | Any,
        *,
        skip_conflicts: bool = False,
        message: str | None = None,
        author: Any = None,
        signals: bool = True,
    ) -> UndoReport:
        """Restore every record ``commit`` changed to its state in the commit's first parent, as
        one new commit (docs/bulk-changes.md).

        A record that changed again since ``commit`` (updated, deleted, hard-deleted) is a
        conflict: nothing is written and :class:`~gitrecords.errors.UndoConflictError` lists
        them, unless ``skip_conflicts=True`` (then the others are restored). A record that
        ``commit`` created is soft-deleted. Files that are not records (schemas, settings)
        are left as they are. Returns an :class:`~gitrecords.edit.UndoReport`.

        Each record restored gets ``before_record_revert`` and ``after_record_revert``, each one
        soft-deleted ``before_record_delete`` and ``after_record_delete``, as single writes do (a
        before receiver that raises refuses the undo); ``signals=False`` sends none.
        """
        from .edit import undo

        return undo(
            self, commit, skip_conflicts=skip_conflicts, message=message, author=author, signals_on=signals
        )

    def search(
        self,
        q: str = "",
        *,
        sort: str | None = None,
        page: int = 1,
        size: int = 25,
        facets: bool = False,
        with_deleted: bool = False,
        offset: int | None = None,
    ) -> SearchResult:
        """Records matching the query ``q`` (docs/search.md), through the derived search index.

        ``sort`` is ``relevance`` (the default when ``q`` has words), ``updated`` (oldest first;
        ``-updated``, newest first, is the default otherwise), ``created`` or any field, ``-``
        first for descending. A page is
        ``page`` and ``size``, or ``offset`` and ``size``. Returns a
        :class:`~gitrecords.search.SearchResult`: ``total``, ``ids`` of this page in order, the
        ``records`` (read when asked for) and, with ``facets=True``, the counts of the facets
        declared in ``gitrecords.json``. A malformed query raises
        :class:`~gitrecords.errors.QueryError` naming the position.
        """
        from .search import search

        return search(
            self, q, sort=sort, page=page, size=size, facets=facets, with_deleted=with_deleted, offset=offset
        )

    def blame(self, record_id: uuid.UUID | str, *, revision: int | None = None) -> list[BlameEntry]:
        """Every leaf of a record (by JSON pointer, in document order) with the revision, commit,
        author, time and message that last set it, as of ``revision`` (default: the latest). The
        cost grows with the record's revisions, not the repository's (:mod:`gitrecords.blame`)."""
        from .blame import blame

        return blame(self, record_id, revision=revision)

    def hard_delete(
        self,
        record_ids: Iterable[uuid.UUID | str],
        *,
        message: str | None = None,
        author: Any = None,
        progress: Any = None,
    ) -> None:
        """Purge records from every commit, ref and object store (rewrites history)."""
        ids = [layout.normalize_id(i) for i in record_ids]
        from .purge import hard_delete
        from .search_index import forget_elsewhere

        hard_delete(self, ids, message=message, author=author, progress=progress)
        # the derived indexes of every worktree: the shared git directory's, and each linked
        # worktree's own (opened in one, a repository keeps them in its folder under worktrees/)
        shared = _git.common_dir(self.git)
        folders = {os.path.join(shared, "gitrecords"), str(self.git_dir / "gitrecords")}
        folders.update(os.path.join(w.admin, "gitrecords") for w in _git.linked_worktrees(self.git))
        for folder in sorted(folders):
            forget_elsewhere(folder, self._search_path, ids)


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
