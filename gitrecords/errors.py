"""The errors gitrecords raises: one base class and a few subclasses.

Invalid data raises jsonschema's own :class:`jsonschema.ValidationError`, as
the record API of invenio-records does; everything else derives from
:class:`GitRecordsError`, so callers never need to import pygit2 to catch ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

__all__ = [
    "BatchValidationError",
    "BulkEditError",
    "EditInterruptedError",
    "GitRecordsError",
    "HardDeleteRefusedError",
    "InitValidationError",
    "InvalidRecordError",
    "LocalChangesError",
    "NoResultFound",
    "PIDError",
    "QueryError",
    "RecordDeletedError",
    "RecordExistsError",
    "RecordTooLargeError",
    "RefResolutionError",
    "RepositoryError",
    "RepositoryLockedError",
    "SchemaError",
    "StaleRevisionError",
    "UndoConflictError",
    "ValidationError",
]


def __getattr__(name: str) -> Any:
    """``ValidationError``, jsonschema's, imported when asked for: jsonschema costs every CLI command
    80 ms at start-up (issue 21). The class is jsonschema's own, so ``except`` and ``isinstance``
    work as before."""
    if name == "ValidationError":
        from jsonschema.exceptions import ValidationError

        return ValidationError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class GitRecordsError(Exception):
    """Base class of every error gitrecords raises on purpose."""


class RepositoryError(GitRecordsError):
    """The path is not a gitrecords data repository, or it cannot be used."""


class RepositoryLockedError(RepositoryError):
    """A lock file left by another (possibly crashed) writer blocks the branch."""


class NoResultFound(GitRecordsError, LookupError):
    """No record with that id (or it is soft-deleted and ``with_deleted`` is false)."""


class RecordExistsError(GitRecordsError):
    """A record with this id exists, or existed and was soft-deleted."""


class RecordDeletedError(GitRecordsError):
    """The operation needs a live record but the record is soft-deleted."""


class StaleRevisionError(GitRecordsError):
    """The record changed in the repository since this copy was read."""


class PIDError(GitRecordsError):
    """A PID cannot be minted, or it is already used by another record."""


class InvalidRecordError(GitRecordsError, ValueError):
    """The data cannot be stored as a record (not an object, NaN, bad id, ...)."""


class RecordTooLargeError(InvalidRecordError):
    """The record's file would be larger than the repository's ``max_record_bytes``."""


class SchemaError(GitRecordsError):
    """A schema is missing from the store or is not a valid JSON Schema."""


class RefResolutionError(SchemaError):
    """A ``$ref`` points outside the schema store and was not allowed."""


class HardDeleteRefusedError(GitRecordsError):
    """A hard delete cannot remove all of the content (a ref names a purged blob, a linked worktree
    is missing): nothing was changed."""


class QueryError(GitRecordsError, ValueError):
    """A malformed search query or sort; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position + 1})")
        self.position = position


class LocalChangesError(GitRecordsError):
    """A write would overwrite uncommitted edits in a working clone."""


class BatchValidationError(GitRecordsError):
    """Records of a batch are invalid; nothing was written.

    ``problems`` lists every problem as ``(index in the input, record id or None,
    JSON pointer, message)``.
    """

    def __init__(self, problems: list[tuple[int, str | None, str, str]], total: int) -> None:
        self.problems = problems
        self.total = total
        invalid = len({p[0] for p in problems})
        plural = "" if len(problems) == 1 else "s"
        super().__init__(
            f"{len(problems)} problem{plural} in {invalid} of {total} records; nothing was written"
        )


class InitValidationError(BatchValidationError):
    """Records of a tree to start a repository from (``Repository.init(from_dir=...)``) break
    a check that every write makes (size, reserved keys, schema, PIDs, ...): nothing was
    created. ``problems`` as :class:`BatchValidationError`'s, the message naming the file."""


class EditInterruptedError(GitRecordsError):
    """A bulk edit was interrupted (Ctrl-C) after some of its commits landed: ``commits`` are
    those on the branch, oldest first, of ``parts`` in all."""

    def __init__(self, commits: list[str], parts: int) -> None:
        self.commits = commits
        self.parts = parts
        landed = ", ".join(c[:12] for c in commits)
        if parts == 1:
            done = "the edit's commit"
        elif len(commits) == parts:
            done = f"all {parts} of the edit's commits"
        else:
            done = f"{len(commits)} of the edit's {parts} commits"
        super().__init__(
            f"interrupted, but {done} landed ({landed}): run the same command again to finish it, "
            "or 'gitrecords undo' each of them to take it back"
        )


class BulkEditError(GitRecordsError):
    """Records of a bulk edit (``repo.update_records``) would be invalid, or the change does not
    apply to them; nothing was written.

    ``report`` is the :class:`gitrecords.edit.EditReport`: its ``problems`` list every problem
    as ``(record id, JSON pointer, message)``.
    """

    def __init__(self, report: Any) -> None:
        self.report = report
        count = len(report.problems)
        plural = "" if count == 1 else "s"
        super().__init__(
            f"{count} problem{plural} in {report.invalid} of {report.matched} records; nothing was written"
        )


class AfterSignalError(GitRecordsError):
    """A change was committed, then an ``after_*`` signal receiver (a plugin) raised for some of
    its records; every receiver still heard of every record. ``commits`` are the commits that
    landed, ``errors`` the ``(record id, exception)`` raised, the first one is the cause."""

    def __init__(self, commits: list[str], errors: list[tuple[str, BaseException]]) -> None:
        self.commits = commits
        self.errors = errors
        record_id, first = errors[0]
        more = f" (and for {len(errors) - 1} more records)" if len(errors) > 1 else ""
        landed = ", ".join(c[:12] for c in commits)
        super().__init__(
            f"the change is committed ({landed}; gitrecords undo takes it back), but a plugin's "
            f"after signal failed for record {record_id}{more}: {type(first).__name__}: {first}"
        )


class UndoConflictError(GitRecordsError):
    """Records that the commit to undo changed have changed again since; nothing was written.

    ``report`` is the :class:`gitrecords.edit.UndoReport`: its ``conflicts`` list
    ``(record id, message)``.
    """

    def __init__(self, report: Any) -> None:
        self.report = report
        count = len(report.conflicts)
        plural = "" if count == 1 else "s"
        super().__init__(
            f"{count} record{plural} changed since commit {str(report.undone)[:12]}: nothing was written "
            "(use skip_conflicts=True, --skip-conflicts in the CLI, to undo the others)"
        )
