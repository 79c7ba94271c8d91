"""Checks for CI and git hooks: validate a tree, or what a range of commits changes.

Everything is read from git objects, never from a working tree, so the checks
run the same in a bare repository, in a clone (shallow or not), in a
pre-receive hook (where the pushed objects are still in quarantine) and on the
staged tree of a pre-commit hook.

:func:`validate` checks the whole tree of ``head``; with ``base`` it checks only
the records that ``base..head`` adds or changes, plus the rules about what the
range removes. Each :class:`Problem` names the file, the line (where a JSON
pointer maps to one), the record id, the JSON pointer and the check (see
:data:`CHECKS`). Record files are checked in worker processes, which compile
each schema once.

>>> line_of('{\\n  "a": [\\n    1,\\n    2\\n  ]\\n}\\n', "/a/1")
4
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from . import _git, layout
from ._checkfile import (
    TOMBSTONE,
    BlobReader,
    json_place,
    line_of,
    pids_of,
    results,
)
from .config import DEFAULT_CONFIG, PURGED_FILE, parse_config, read_purged
from .errors import GitRecordsError, InvalidRecordError, RepositoryError, SchemaError
from .schema import SchemaStore, parse_schema_file, unknown_draft
from .schema import pointer as error_pointer
from .storage import Storage as Repository

__all__ = [
    "CHECKS",
    "FmtResult",
    "Problem",
    "Report",
    "fmt",
    "line_of",
    "range_base",
    "resolve",
    "split_range",
    "validate",
]

#: every check, by the name a :class:`Problem` gives in ``check``; docs/ci.md says how to fix each
CHECKS: dict[str, str] = {
    "config": "gitrecords.json is a JSON object of a format this gitrecords reads",
    "json": "the file is valid JSON: UTF-8, no NaN or Infinity, no duplicate keys",
    "canonical": "the file is in canonical form (sorted keys, 2-space indent, final newline)",
    "layout": "the file name and folders match the record id (records/<h0h1>/<h2h3>/<uuid>.json)",
    "stray": "the records folder holds record files only",
    "record": "the record is a JSON object within the size limit, without the reserved $gitrecords key",
    "schema": "the record validates against its $schema, from the schema store of the checked commit",
    "removed": "a record file is not removed without a hard delete (a soft delete leaves a tombstone)",
    "revision": "in a range, every commit leaves the record files it changes readable (each is a revision)",
    "purged": "a hard-deleted id (listed in purged.txt) does not come back, and stays listed",
    "pid": "each PID (such as control_number) belongs to one live record only",
    "schema-store": "every schema in the store is valid JSON and a valid JSON Schema",
    "unicode-keys": "(a warning) no two keys of one object differ only in Unicode normalization",
}

#: checks that warn without making the report fail
WARNINGS = frozenset({"unicode-keys"})

#: record files per chunk handed to a worker process
CHUNK = 200
#: problems kept in a report (the count stays exact)
MAX_PROBLEMS = 10_000


@dataclass(frozen=True)
class Problem:
    """One thing wrong, at one place."""

    path: str
    check: str
    message: str
    line: int | None = None
    record_id: str | None = None
    pointer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "id": self.record_id,
            "pointer": self.pointer,
            "check": self.check,
            "message": self.message,
        }

    def sort_key(self) -> tuple[str, int, str, str, str]:
        return (self.path, self.line or 0, self.pointer or "", self.check, self.message)

    def __str__(self) -> str:
        path = shown_path(self.path)
        where = f"{path}:{self.line}" if self.line else path
        what = f"{self.pointer}: " if self.pointer else ""
        return f"{where}: [{self.check}] {what}{one_line(self.message)}"


@dataclass
class Report:
    """What :func:`validate` found."""

    head: str
    base: str | None
    problems: list[Problem] = field(default_factory=list)
    #: live records checked (tombstones are checked too but not counted here)
    checked: int = 0
    #: record files checked, tombstones included
    files: int = 0
    #: every record was checked (a whole tree, or a range that changes schemas or configuration)
    full: bool = True
    #: number of problems found; only the first :data:`MAX_PROBLEMS` are kept in ``problems``
    total_problems: int = 0
    #: the record files that were checked
    checked_paths: set[str] = field(default_factory=set, repr=False)
    #: things worth a look that do not make the report fail (check names in :data:`WARNINGS`)
    warnings: list[Problem] = field(default_factory=list)
    #: the schema every record was checked against (``validate --schema``), else None
    schema: str | None = None

    @property
    def ok(self) -> bool:
        return self.total_problems == 0

    @property
    def invalid_records(self) -> int:
        """Checked record files with at least one problem."""
        return len({p.path for p in self.problems if p.path in self.checked_paths})

    @property
    def other_files(self) -> int:
        """Files with problems that are not checked record files (removed, misplaced, schemas...)."""
        return len({p.path for p in self.problems if p.path not in self.checked_paths})

    def summary(self) -> str:
        """``2 problems in 1 of 3 records``, or ``3 records valid``."""
        noun = "record" if self.checked == 1 else "records"
        if self.ok:
            return f"{self.checked} {noun} valid"
        count = self.total_problems
        text = f"{count} problem{'' if count == 1 else 's'} in "
        if self.other_files:
            files = self.invalid_records + self.other_files
            text += f"{files} file{'' if files == 1 else 's'} ({self.checked} {noun} checked)"
        else:
            text += f"{self.invalid_records} of {self.checked} {noun}"
        if count > len(self.problems):
            text += f"; the first {len(self.problems)} are listed"
        return text

    def to_dict(self) -> dict[str, Any]:
        found = {
            "valid": self.ok,
            "head": self.head,
            "base": self.base,
            "checked": self.checked,
            "invalid": self.invalid_records,
            "problems": [p.to_dict() for p in self.problems],
        }
        if self.warnings:  # only when there are any: the shape scripts know stays as it was
            found["warnings"] = [p.to_dict() for p in self.warnings]
        if self.schema is not None:
            found["schema"] = self.schema
        return found


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def shown_path(path: str) -> str:
    """``path`` as one line of text: quoted with escapes, as git quotes it, when it holds a control
    character (a file named with a newline would split a problem, or a hook's answer, in two)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return json.dumps(path, ensure_ascii=False)
    return path


class _Problems:
    """The problems of one run, capped at ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[Problem] = []
        self.total = 0

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.items) < self.limit:
            self.items.append(problem)


# -- revisions and ranges -------------------------------------------------------


def resolve(repo: Repository, spec: Any) -> tuple[_git.Oid, Any]:
    """``(id, tree)`` of a revision (``HEAD``, ``origin/main``, a commit or tree id).

    The id is the commit's, or the tree's when ``spec`` names a tree.
    """
    git = repo.git
    try:
        obj = git[spec] if isinstance(spec, _git.Oid) else git.revparse_single(str(spec))
        if obj.type == _git.ObjectType.TREE:
            return obj.id, obj
        commit = obj.peel(_git.ObjectType.COMMIT)
        return commit.id, commit.tree
    except (KeyError, ValueError, _git.GitError):
        raise RepositoryError(f"unknown revision {str(spec)!r} (is it fetched?)") from None


def split_range(spec: str) -> tuple[str, str] | None:
    """``("A", "B")`` for ``A..B`` or ``A...B`` (an empty side is ``HEAD``); None otherwise."""
    match = re.fullmatch(r"(.*?)\.\.\.?(.*)", spec)
    if match is None:
        return None
    return match[1] or "HEAD", match[2] or "HEAD"


def range_base(repo: Repository, base: Any, head: Any) -> _git.Oid:
    """The commit a range's changes are taken from: the merge base of ``base`` and
    ``head`` (as ``git diff base...head``), else ``base`` itself (e.g. in a shallow
    clone whose history stops before the merge base)."""
    base_id, _ = resolve(repo, base)
    head_id, _ = resolve(repo, head)
    git = repo.git
    if git[base_id].type != _git.ObjectType.COMMIT or git[head_id].type != _git.ObjectType.COMMIT:
        return base_id
    try:
        found = git.merge_base(base_id, head_id)
    except (KeyError, ValueError, _git.GitError):
        found = None
    return found if found is not None else base_id


def _read_config(repo: Repository, tree: Any, problems: _Problems) -> dict[str, Any] | None:
    blob = _git.entry_id(tree, layout.CONFIG_FILE)
    if blob is None:
        problems.add(
            Problem(
                layout.CONFIG_FILE,
                "config",
                f"there is no {layout.CONFIG_FILE}: this is not a gitrecords data repository",
            )
        )
        return None
    text = _git.read_blob(repo.git, blob)
    try:
        loaded = layout.loads(text, what=layout.CONFIG_FILE)
    except InvalidRecordError as err:
        line, pointer = json_place(str(err))
        problems.add(Problem(layout.CONFIG_FILE, "config", str(err), line=line, pointer=pointer))
        return None
    if not isinstance(loaded, dict):
        problems.add(Problem(layout.CONFIG_FILE, "config", f"{layout.CONFIG_FILE} must hold a JSON object"))
        return None
    settings = {**DEFAULT_CONFIG, **loaded}
    if settings.get("format") != layout.FORMAT_VERSION:
        problems.add(
            Problem(
                layout.CONFIG_FILE,
                "config",
                f"format {settings.get('format')!r} is not supported "
                f"(this gitrecords reads format {layout.FORMAT_VERSION})",
                line=line_of(text.decode("utf-8", "replace"), "/format"),
                pointer="/format",
            )
        )
        return None
    for key in ("records", "schemas"):
        value = settings.get(key)
        if not isinstance(value, str) or not value or "/" in value.strip("/") or value.startswith("."):
            problems.add(
                Problem(
                    layout.CONFIG_FILE,
                    "config",
                    f"{key!r} must name a folder at the top of the tree, not {value!r}",
                    line=line_of(text.decode("utf-8", "replace"), f"/{key}"),
                    pointer=f"/{key}",
                )
            )
            return None
    if not isinstance(settings.get("pids") or {}, dict):
        problems.add(
            Problem(layout.CONFIG_FILE, "config", "'pids' must map PID types to field names", pointer="/pids")
        )
        return None
    return settings


def _load_schemas(
    repo: Repository, tree: Any, schemas_dir: str, report: set[str] | None, problems: _Problems
) -> dict[str, Any]:
    """The schema store's schemas by path; problems for the files in ``report`` (None: all)."""
    git = repo.git
    store_tree = _git.subtree(git, tree, schemas_dir)
    schemas: dict[str, Any] = {}
    if store_tree is None:
        return schemas
    for path, blob in _git.walk_blobs(git, store_tree):
        if not path.endswith(".json"):
            continue
        full = f"{schemas_dir}/{path}"
        raw = _git.read_blob(git, blob)
        try:
            schema = parse_schema_file(raw, path)
        except SchemaError as err:
            if report is None or full in report:
                line, pointer = json_place(str(err))
                problems.add(Problem(full, "schema-store", str(err), line=line, pointer=pointer))
            continue
        findings = _schema_problems(schema)
        if findings and (report is None or full in report):
            text = raw.decode("utf-8", "replace")
            for where, message in findings:
                problems.add(Problem(full, "schema-store", message, line=line_of(text, where), pointer=where))
        try:
            SchemaStore({path: schema}, schemas_dir)
        except SchemaError as err:
            if report is None or full in report:
                problems.add(Problem(full, "schema-store", str(err)))
            continue  # the records that use it report that it is missing
        schemas[path] = schema
    for path, _other, message in SchemaStore(schemas, schemas_dir).collisions:
        full = f"{schemas_dir}/{path}"
        if report is None or full in report:
            problems.add(Problem(full, "schema-store", message))
    return schemas


def _schema_problems(schema: Any) -> list[tuple[str, str]]:
    """(pointer, message) for everything that makes ``schema`` not a valid JSON Schema."""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [("/", "a schema must be a JSON object (or true or false)")]
    unknown = unknown_draft(schema)
    if unknown is not None:
        return [("/$schema", unknown)]
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    found = []
    for error in cls(cls.META_SCHEMA).iter_errors(schema):
        deepest = best_match([error]) or error
        found.append((error_pointer(deepest), deepest.message))
    return sorted(found)


def _is_commit(repo: Repository, oid: Any) -> bool:
    try:
        return repo.git[oid].type == _git.ObjectType.COMMIT
    except (KeyError, ValueError):
        return False


def purged_history(repo: Repository, head: Any, base: Any = None) -> Report:
    """Only the check that no content of a hard-deleted record comes back, on a history that
    holds no records of its own (a notes ref): every file of a purged id that ``head`` reaches
    and ``base`` does not, with the purged.txt of the branch."""
    head_id, _ = resolve(repo, head)
    base_id = resolve(repo, base)[0] if base is not None else None
    report = Report(str(head_id), str(base_id) if base_id is not None else None, full=False)
    problems = _Problems(MAX_PROBLEMS)
    tip = repo.tip()
    tree = _git.tree_of(repo.git, tip) if tip is not None else None
    purged = _read_purged(repo, tree) if tree is not None else set()
    if purged and _is_commit(repo, head_id):
        _check_purged_history(repo, head_id, base_id, purged, problems, present_too=True)
    return _finish(report, problems)


def _check_purged_history(
    repo: Repository,
    head: Any,
    base: Any,
    purged: set[str],
    problems: _Problems,
    present_too: bool = False,
) -> None:
    """Content of a hard-deleted record in the history of ``head`` (not of ``base``): an old clone's
    history merged back in by plain git, or pushed. One ``git rev-list --objects`` lists the new
    trees (not the blobs); a tree with a file named after a purged id holds content that was
    purged and came back (it reaches every new clone, even if the branch's tree no longer has it).

    Every listed tree is read, wherever it was met: git lists an object once, under the first
    path it meets it at, so the path of a record's blob (or of its folder) may be another one,
    a copy's, and a check of those paths let the record's file through."""
    args = ["rev-list", "--objects", "--filter=blob:none", str(head)]
    if base is not None and _is_commit(repo, base):
        args += ["--not", str(base)]
    listed = _git.git(str(repo.git_dir), *args).stdout.decode("utf-8", "replace")
    names = {f"{record_id}.json": record_id for record_id in purged}
    found: dict[str, str] = {}
    git = repo.git
    for line in listed.splitlines():
        oid, sep, folder = line.partition(" ")
        if not sep:
            continue  # a commit
        try:
            tree = git[oid]
        except (KeyError, ValueError):
            continue
        if tree.type != _git.ObjectType.TREE:
            continue
        for entry in tree:
            record_id = names.get(entry.name.lower())
            if record_id is not None:
                found.setdefault(record_id, f"{folder}/{entry.name}" if folder else entry.name)
    head_tree = _git.tree_of(repo.git, head)
    for record_id, path in sorted(found.items()):
        if _git.entry_id(head_tree, path) is not None and not present_too:
            continue  # the file itself is back: the check of the record files reports it
        where = (
            _git.git(
                str(repo.git_dir), "log", "-1", "--format=%h", f"-S{record_id}", str(head), "--", PURGED_FILE
            )
            .stdout.decode()
            .strip()
        )
        problems.add(
            Problem(
                path,
                "purged",
                f"this history contains content of record {record_id}, purged in {where or PURGED_FILE}: "
                "it was merged or pushed back from a clone made before the hard delete. That clone must "
                "be replaced: clone again (or fetch, reset the branch to the rewritten one and expire its "
                "reflogs), then redo its new changes there",
                record_id=record_id,
            )
        )


def _not_a_file(tree: Any, name: str, kind: str) -> Problem | None:
    """A problem when the repository's own file ``name`` is in ``tree`` as a folder, a link or a
    gitlink: it is then read as missing (a purge log that lists nothing), and a hard delete
    would write its own file over what is there."""
    try:
        entry = tree[name]
    except KeyError:
        return None
    if entry.type == _git.ObjectType.BLOB and entry.filemode != _LINK_MODE:
        return None
    if entry.type == _git.ObjectType.TREE:
        what = "folder"
    else:
        what = "link" if entry.type == _git.ObjectType.BLOB else "gitlink"
    return Problem(name, kind, f"{name} must be a file, and here it is a {what}: 'git rm -r --cached {name}'")


#: the mode git gives a symbolic link
_LINK_MODE = 0o120000


def _is_link(tree: Any, path: str) -> bool:
    """Whether ``path`` is a symbolic link in ``tree``."""
    try:
        return bool(tree[path].filemode == _LINK_MODE)
    except KeyError:
        return False


def _read_purged(repo: Repository, tree: Any) -> set[str]:
    blob = _git.entry_id(tree, PURGED_FILE)
    if blob is None:
        return set()
    ids = set()
    for line in _git.read_blob(repo.git, blob).decode("utf-8", "replace").split():
        try:
            ids.add(str(layout.normalize_id(line)))
        except InvalidRecordError:
            continue
    return ids


def _records_dir_of(repo: Repository, tree: Any) -> str | None:
    """The records folder ``tree``'s gitrecords.json names (None: it cannot be read)."""
    blob = _git.entry_id(tree, layout.CONFIG_FILE)
    try:
        settings = parse_config(_git.read_blob(repo.git, blob) if blob is not None else None)
    except GitRecordsError:
        return None
    return str(settings["records"]).strip("/")


def _record_ids_in(repo: Repository, tree: Any, records_dir: str) -> set[str]:
    sub = _git.subtree(repo.git, tree, records_dir)
    if sub is None:
        return set()
    found = (
        layout.id_from_path(path, records_dir)
        for path, _b in _git.walk_blobs(repo.git, sub, records_dir + "/")
    )
    return {str(record_id) for record_id in found if record_id is not None}


def _check_moved_records(
    repo: Repository,
    base_tree: Any,
    head_tree: Any,
    old_dir: str,
    new_dir: str,
    purged: set[str],
    problems: _Problems,
) -> None:
    """The range moves the records folder: every record at base must be in the new one (a record
    left behind, or dropped, is a record removed without a tombstone)."""
    missing = _record_ids_in(repo, base_tree, old_dir) - _record_ids_in(repo, head_tree, new_dir) - purged
    for record_id in sorted(missing):
        problems.add(
            Problem(
                layout.CONFIG_FILE,
                "removed",
                f'"records" moves from {old_dir}/ to {new_dir}/, and record {record_id} is not in '
                f"{new_dir}/: move the record files with it ('git mv {old_dir} {new_dir}')",
                record_id=record_id,
            )
        )


def _purged_pids(repo: Repository, tree: Any) -> dict[tuple[str, str], str]:
    """(PID type, value) -> the hard-deleted record that held it, as ``tree``'s purged.txt says."""
    blob = _git.entry_id(tree, PURGED_FILE)
    return read_purged(_git.read_blob(repo.git, blob)).pids if blob is not None else {}


def _check_reserved_kept(
    now: dict[tuple[str, str], str], before: dict[tuple[str, str], str], problems: _Problems
) -> None:
    gone = sorted(f"{pid_type}:{value}" for pid_type, value in before.keys() - now.keys())
    _no_longer_listed(gone, ("PID of hard-deleted records", "PIDs of hard-deleted records"), "they", problems)


def _no_longer_listed(gone: list[str], noun: tuple[str, str], they: str, problems: _Problems) -> None:
    """One problem for what purged.txt listed before and lists no more (``noun``: one, several)."""
    if gone:
        problems.add(
            Problem(
                PURGED_FILE,
                "purged",
                f"{len(gone)} {noun[len(gone) > 1]} no longer listed "
                f"({', '.join(gone[:3])}{', ...' if len(gone) > 3 else ''}): {they} stay in {PURGED_FILE}",
            )
        )


def _looks_like_a_record_file(path: str) -> bool:
    """A file named ``<uuid>.json`` (in any of the forms a record id may take)."""
    name = path.rsplit("/", 1)[-1]
    if not name.lower().endswith(".json"):
        return False
    try:
        layout.normalize_id(name[:-5])
    except InvalidRecordError:
        return False
    return True


def _misplaced(path: str, records_dir: str) -> Problem:
    name = path.rsplit("/", 1)[-1]
    stem = name[:-5] if name.lower().endswith(".json") else None
    record_id: uuid.UUID | None = None
    if stem is not None:
        try:
            record_id = layout.normalize_id(stem)
        except InvalidRecordError:
            record_id = None
    if record_id is not None:
        wanted = layout.path_for(record_id, records_dir)
        return Problem(
            path,
            "layout",
            f"this is not where record {record_id} belongs: git mv it to {wanted}",
            record_id=str(record_id),
        )
    return Problem(
        path,
        "stray",
        f"only record files ({records_dir}/<h0h1>/<h2h3>/<uuid>.json) belong in {records_dir}/: "
        "move this file out of it or remove it",
    )


def validate(
    repo: Repository,
    head: Any = "HEAD",
    base: Any = None,
    *,
    ids: Iterable[uuid.UUID | str] | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    format_checker: Any = None,
    validator_cls: Any = None,
    pid_index: Any = None,
    max_problems: int = MAX_PROBLEMS,
    rewritten: bool = False,
) -> Report:
    """Check the tree of ``head``, or what ``base..head`` changes.

    ``head`` and ``base`` are revisions (names, commit or tree ids). Without
    ``base``, every record file, the schema store and the configuration are
    checked, and PIDs must be unique across the tree. With ``base``, only the
    record files the range adds or changes are checked (every record, if the
    range changes the schema store or ``gitrecords.json``), their PIDs must not
    be used by any other live record at ``head``, and removed record files
    must be hard deletes. Use :func:`range_base` to take a range from its
    merge base, as ``git diff base...head`` does. ``ids`` limits a whole-tree
    check to those records. ``progress(done, total)`` is called as record
    files are checked; with more than :data:`PARALLEL_THRESHOLD` files (or
    ``workers`` given) they are checked in ``workers`` processes (default:
    one per core). ``pid_index`` is a revision index whose PID table may be
    used for the PIDs at ``base`` (by default the repository's own, when it
    is at ``base``).
    """
    head_id, head_tree = resolve(repo, head)
    base_id, base_tree = resolve(repo, base) if base is not None else (None, None)
    problems = _Problems(max_problems)
    report = Report(str(head_id), str(base_id) if base_id is not None else None)
    settings = _read_config(repo, head_tree, problems)
    if settings is None:
        return _finish(report, problems)
    git = repo.git
    records_dir: str = settings["records"].strip("/")
    schemas_dir: str = settings["schemas"].strip("/")
    pid_fields: dict[str, str] = dict(settings.get("pids") or {})
    purged = _read_purged(repo, head_tree)
    purged_before = _read_purged(repo, base_tree) if base_tree is not None else set()
    # what the branch itself says was purged counts too: a push of a history from before the hard
    # delete has no purged.txt that lists it (in a pre-receive hook, the branch is the server's)
    branch_tip = repo.tip()
    if branch_tip is not None and branch_tip != head_id:  # (the range's own list is not "before")
        purged_before |= _read_purged(repo, _git.tree_of(git, branch_tip))
    # the PIDs the hard-deleted records held stay reserved (never minted or accepted again)
    reserved = _purged_pids(repo, head_tree)
    reserved_before: dict[tuple[str, str], str] = {}
    for tree in (base_tree, _git.tree_of(git, branch_tip) if branch_tip is not None else None):
        if tree is not None:
            reserved_before.update(_purged_pids(repo, tree))

    changed: list[tuple[str, Any, Any]] = []
    #: the records folder at base, when the range moves it ("records" in gitrecords.json)
    moved_from: str | None = None
    if base_tree is not None:
        changed = list(_git.changed_blobs(git, base_tree, head_tree))
        old_dir = _records_dir_of(repo, base_tree)
        if old_dir is not None and old_dir != records_dir:
            moved_from = old_dir
    changed_paths = {path for path, _old, new in changed if new is not None}
    # what purged.txt lists bears on every record and PID (an id or a PID listed by hand)
    settings_changed = any(
        path in (layout.CONFIG_FILE, PURGED_FILE) or path.startswith(schemas_dir + "/")
        for path, _o, _n in changed
    )
    report.full = base_tree is None or settings_changed
    schemas = _load_schemas(
        repo, head_tree, schemas_dir, None if base_tree is None else changed_paths, problems
    )

    # the record files to check
    entries: list[tuple[str, str, Any]] = []
    records_prefix = records_dir + "/"
    if ids is not None:
        report.full = False
        for given in ids:
            record_id = layout.normalize_id(given)
            path = layout.path_for(record_id, records_dir)
            blob = _git.entry_id(head_tree, path)
            if blob is None:
                problems.add(
                    Problem(path, "record", f"there is no record {record_id}", record_id=str(record_id))
                )
            else:
                entries.append((path, str(record_id), blob))
    elif report.full:
        records_tree = _git.subtree(git, head_tree, records_dir)
        if records_tree is not None:
            for path, blob in _git.walk_blobs(git, records_tree, records_prefix):
                record_id = layout.id_from_path(path, records_dir)
                if record_id is None:
                    problems.add(_misplaced(path, records_dir))
                else:
                    entries.append((path, str(record_id), blob))
    if ids is None:
        # a record file anywhere but under the records folder is a record nobody sees
        if base_tree is None or moved_from is not None:  # every path, when the folder moved
            outside = (
                path
                for entry in head_tree
                if entry.name != records_dir
                for path, _blob in (
                    _git.walk_blobs(git, git[entry.id], entry.name + "/")
                    if entry.type == _git.ObjectType.TREE
                    else [(entry.name, entry.id)]
                )
            )
        else:
            outside = (p for p, _old, new in changed if new is not None and not p.startswith(records_prefix))
        for path in outside:
            if _looks_like_a_record_file(path):
                problems.add(_misplaced(path, records_dir))
    if ids is None:
        # a gitlink (a submodule entry) holds no file: no check above sees it
        before_records = None if base_tree is None or moved_from is not None else base_tree
        for path in _git.new_links(git, before_records, head_tree):
            if path.startswith(records_prefix):
                problems.add(
                    Problem(
                        path,
                        "stray",
                        f"a gitlink (a submodule entry) in {records_dir}/, which holds record files only: "
                        f"remove it ('git rm --cached {path}')",
                    )
                )
    if ids is None:
        problem = _not_a_file(head_tree, PURGED_FILE, "purged")
        if problem is not None:
            problems.add(problem)
    if base_id is not None and ids is None and not rewritten and _is_commit(repo, head_id):
        # (a rewritten history, a hard delete's: its commits were checked when they were new)
        if _is_commit(repo, base_id):
            _check_intermediate_revisions(repo, head_id, base_id, records_dir, problems)
    if (purged or purged_before) and ids is None and _is_commit(repo, head_id):
        _check_purged_history(repo, head_id, base_id, purged | purged_before, problems)
    if base_tree is not None:
        _check_removals(changed, records_dir, purged, purged_before, problems)
        _check_reserved_kept(reserved, reserved_before, problems)
        if moved_from is not None:
            _check_moved_records(repo, base_tree, head_tree, moved_from, records_dir, purged, problems)
        if not report.full:
            for path, _old, new in changed:
                if new is None or not path.startswith(records_prefix):
                    continue
                record_id = layout.id_from_path(path, records_dir)
                if record_id is None:
                    problems.add(_misplaced(path, records_dir))
                else:
                    entries.append((path, str(record_id), new))
    for path, record_id, _blob in entries:
        if record_id in purged or record_id in purged_before:
            problems.add(
                Problem(
                    path,
                    "purged",
                    f"record {record_id} was hard-deleted (it is listed in {PURGED_FILE}) and cannot "
                    "come back: remove this file, or create a record with a new id",
                    record_id=record_id,
                )
            )

    # check the record files
    init_args = (
        schemas,
        schemas_dir,
        settings.get("default_schema"),
        pid_fields,
        int(settings.get("max_record_bytes") or layout.MAX_RECORD_BYTES),
        format_checker,
        validator_cls,
        settings.get("inline_schemas", True) is True,
    )
    total = len(entries)

    def chunks(reader: BlobReader) -> Iterator[list[tuple[str, str, bytes]]]:
        for start in range(0, total, CHUNK):
            chunk = entries[start : start + CHUNK]
            contents = reader.read([blob for _path, _id, blob in chunk])
            yield [(path, record_id, raw) for (path, record_id, _b), raw in zip(chunk, contents, strict=True)]

    owners: dict[tuple[str, str], list[tuple[str, str]]] = {}
    done = 0
    if progress is not None:
        progress(0, total)
    # closing the results first stops the worker processes, which hold copies of the reader's pipes
    with (
        BlobReader(repo, total) as reader,
        closing(results(chunks(reader), init_args, workers, total)) as done_chunks,
    ):
        for checked in done_chunks:
            for path, record_id, state, pids, findings in checked:
                report.files += 1
                report.checked_paths.add(path)
                if state != TOMBSTONE:
                    report.checked += 1
                for check, pointer, line, message in findings:
                    if check == "json" and _is_link(head_tree, path):
                        # its content is the path it points to, not JSON: say what it is
                        message, line, pointer = (
                            "a symbolic link, not a file: a record is a file of JSON "
                            f"('git rm --cached {path}', then add the file itself)",
                            None,
                            None,
                        )
                    found = Problem(path, check, message, line, record_id, pointer)
                    if check in WARNINGS:
                        report.warnings.append(found)
                    else:
                        problems.add(found)
                for pid_type, value in pids.items():
                    owners.setdefault((pid_type, value), []).append((record_id, path))
            done += len(checked)
            if progress is not None:
                progress(done, total)

    # PIDs
    if pid_fields and owners:
        if not report.full or ids is not None:
            _add_other_owners(
                repo, owners, head_tree, base_id, changed, entries, records_dir, pid_fields, pid_index
            )
        checked_paths = {path for path, _r, _b in entries}
        reserved_all = {**reserved_before, **reserved}
        _check_pids(repo, owners, reserved_all, head_tree, pid_fields, checked_paths, problems)
    return _finish(report, problems)


def _finish(report: Report, problems: _Problems) -> Report:
    report.problems = sorted(problems.items, key=Problem.sort_key)
    report.warnings.sort(key=Problem.sort_key)
    report.total_problems = problems.total
    return report


#: intermediate commits of a range whose record files are read (a longer range: the newest ones)
MAX_INTERMEDIATE = 10_000


def _check_intermediate_revisions(
    repo: Repository, head_id: Any, base_id: Any, records_dir: str, problems: _Problems
) -> None:
    """Each commit a range adds to the branch's first-parent line is a revision of the records
    it changes: a record file it leaves unreadable (a broken commit, fixed by the next one)
    would be a revision nothing can read, diff or revert to. ``head`` itself is checked whole."""
    git = repo.git
    commits = _git.new_first_parents(git, head_id, base_id)[1 : MAX_INTERMEDIATE + 1]
    prefix = records_dir + "/"
    for commit in commits:
        parent = _git.first_parent(git, commit)
        old_tree = _git.tree_of(git, parent) if parent is not None else None
        for path, _old, new in _git.changed_blobs(
            git,
            _git.subtree(git, old_tree, records_dir),
            _git.subtree(git, _git.tree_of(git, commit), records_dir),
            prefix,
        ):
            record_id = layout.id_from_path(path, records_dir)
            if new is None or record_id is None:
                continue
            try:
                data = layout.loads(_git.read_blob(git, new), what="the file")
                if not isinstance(data, dict):
                    raise InvalidRecordError("the file does not hold a JSON object")
            except InvalidRecordError as err:
                problems.add(
                    Problem(
                        path,
                        "revision",
                        f"commit {str(commit)[:7]} of this range leaves record {record_id} unreadable "
                        f"({err}); every commit on the branch is a revision: fix that commit or "
                        "squash it into the one that fixes the file (git rebase -i)",
                        record_id=str(record_id),
                    )
                )


def _check_removals(
    changed: list[tuple[str, Any, Any]],
    records_dir: str,
    purged: set[str],
    before: set[str],
    problems: _Problems,
) -> None:
    for path, old, new in changed:
        if new is not None or old is None:
            continue
        record_id = layout.id_from_path(path, records_dir)
        if record_id is None or (str(record_id) in purged and str(record_id) in before):
            continue
        if str(record_id) in purged:
            # a hard delete rewrites history (no range holds the file and then not): this is a
            # file removed and its id listed by hand, with its content still in the history
            problems.add(
                Problem(
                    path,
                    "removed",
                    f"record {record_id}'s file was removed and its id listed in {PURGED_FILE} by hand: "
                    "its content stays in the history; restore the file, and purge the record with "
                    "'gitrecords delete --force' (which rewrites the history)",
                    record_id=str(record_id),
                )
            )
            continue
        problems.add(
            Problem(
                path,
                "removed",
                f"record {record_id}'s file was removed: restore it and delete the record with "
                "'gitrecords delete' (a soft delete leaves a tombstone), or purge it with "
                "'gitrecords delete --force', which lists it in purged.txt",
                record_id=str(record_id),
            )
        )
    _no_longer_listed(sorted(before - purged), ("hard-deleted id", "hard-deleted ids"), "ids", problems)


def _add_other_owners(
    repo: Repository,
    owners: dict[tuple[str, str], list[tuple[str, str]]],
    head_tree: Any,
    base_id: Any,
    changed: list[tuple[str, Any, Any]],
    entries: list[tuple[str, str, Any]],
    records_dir: str,
    pid_fields: dict[str, str],
    pid_index: Any,
) -> None:
    """Add the other live records at head that hold the PIDs in ``owners``."""
    checked = {path for path, _r, _b in entries}
    touched = checked | {path for path, _o, _n in changed}
    index = pid_index if pid_index is not None else _index_at(repo, base_id)
    git = repo.git
    if index is not None and base_id is not None and index.indexed_tip() == str(base_id):
        # the index knows every PID at base; records the range did not touch still hold theirs
        for (pid_type, value), holders in owners.items():
            owner = index.lookup_pid(pid_type, value)
            if owner is None:
                continue
            path = layout.path_for(owner, records_dir)
            if path in touched:
                continue
            blob = _git.entry_id(head_tree, path)
            if blob is not None and pids_of(_git.read_blob(git, blob), pid_fields).get(pid_type) == value:
                holders.append((str(owner), path))
        return
    wanted = set(owners)
    records_tree = _git.subtree(git, head_tree, records_dir)
    if records_tree is None:
        return
    others = []
    for path, blob in _git.walk_blobs(git, records_tree, records_dir + "/"):
        record_id = layout.id_from_path(path, records_dir)
        if record_id is not None and path not in checked:
            others.append((path, str(record_id), blob))
    with BlobReader(repo, len(others)) as reader:
        for start in range(0, len(others), CHUNK):
            chunk = others[start : start + CHUNK]
            contents = reader.read([blob for _path, _id, blob in chunk])
            for (path, record_id, _blob), raw in zip(chunk, contents, strict=True):
                for pid_type, value in pids_of(raw, pid_fields).items():
                    if (pid_type, value) in wanted:
                        owners[(pid_type, value)].append((record_id, path))


def _index_at(repo: Repository, base_id: Any) -> Any:
    """The repository's revision index, if it is (or can cheaply be brought) at ``base_id``."""
    index = repo.index
    if base_id is None or index.path is None:
        return None
    if index.indexed_tip() != str(base_id) and repo.tip() == base_id:
        index.sync(base_id)  # the index follows the branch: this is the catch-up every read does
    return index


def _check_pids(
    repo: Repository,
    owners: dict[tuple[str, str], list[tuple[str, str]]],
    reserved: dict[tuple[str, str], str],
    head_tree: Any,
    pid_fields: dict[str, str],
    checked: set[str],
    problems: _Problems,
) -> None:
    """A PID that several records hold, or that a hard-deleted record held (``reserved``: the
    value -> that record), is a problem of each checked record holding it."""
    for (pid_type, value), holders in sorted(owners.items()):
        gone = reserved.get((pid_type, value))
        if len(holders) < 2 and gone is None:
            continue
        field_name = pid_fields[pid_type]
        pointer = "/" + layout.pointer_token(field_name)
        for record_id, path in holders:
            if path not in checked:
                continue  # only the records being checked are blamed
            messages = []
            if len(holders) > 1:
                others = [other for other, other_path in holders if other_path != path]
                shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
                messages.append(f"PID {pid_type}:{value} is also used by record {shown}")
            if gone is not None:
                messages.append(
                    f"PID {pid_type}:{value} belonged to hard-deleted record {gone} and stays reserved"
                )
            blob = _git.entry_id(head_tree, path)
            text = _git.read_blob(repo.git, blob).decode("utf-8", "replace") if blob is not None else ""
            for message in messages:
                problems.add(Problem(path, "pid", message, line_of(text, pointer), record_id, pointer))


# -- fmt: canonical files in a working tree ------------------------------------------


@dataclass
class FmtResult:
    """What :func:`fmt` did to one file."""

    path: Path
    changed: bool
    error: str | None = None
    line: int | None = None


def fmt(paths: Iterable[Path], *, check: bool = False, git: Any = None) -> Iterator[FmtResult]:
    """Rewrite JSON files in canonical form (with ``check``, only say which are not).

    A file that is not valid JSON is left alone and reported with ``error``. With ``git`` (the
    working clone the files are in), a file is canonical when git sees it so: through the
    clone's filters (``core.autocrlf`` checks files out with CRLF line ends).
    """
    for path in paths:
        raw = path.read_bytes()
        try:
            canonical = layout.dumps(layout.loads(raw, what=str(path)))
        except InvalidRecordError as err:
            yield FmtResult(path, False, str(err), json_place(str(err))[0])
            continue
        if canonical == raw or (
            # absolute: libgit2 reads a relative path from the clone's root, not from the cwd
            git is not None and _git.hash_worktree_file(git, path.absolute()) == _git.hash_bytes(canonical)
        ):
            yield FmtResult(path, False)
            continue
        if not check:
            temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            temp.write_bytes(canonical)
            os.replace(temp, path)
        yield FmtResult(path, True)
