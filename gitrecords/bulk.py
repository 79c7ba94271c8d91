"""Bulk import: many new records as one commit, at the speed of ``git fast-import``.

Records are validated and serialised canonically in worker processes (each
compiles a schema once), while the parent streams the files into ``git
fast-import`` on a temporary ref. Every problem of every record is collected;
if there is any, fast-import is stopped before it writes a ref and nothing
changes. Otherwise the branch moves from the tip the import was built on to
the new commit with one compare-and-swap, and the revision and PID index is
updated from the rows staged during the import, without reading a blob back.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from . import _git, layout, signals
from ._workers import can_fork, ordered_map
from .config import PURGED_FILE
from .errors import BatchValidationError, GitRecordsError, InvalidRecordError, SchemaError, StaleRevisionError
from .index import PendingImport, facts_from_data, pid_type_problems
from .record import Record
from .schema import FastCheck, SchemaStore, pointer
from .storage import Storage as Repository
from .writer import (
    IMPORT_SLOT,
    MAX_ATTEMPTS,
    check_message,
    keep_out_of_children,
    open_lock_file,
    release_in_children,
)

log = logging.getLogger("gitrecords")

#: records per chunk handed to a worker
CHUNK = 256
#: below this many records, validation runs in the calling process
PARALLEL_THRESHOLD = 2000
#: bytes buffered on the way to git fast-import (in Python, and in the pipe where the OS allows)
PIPE_BYTES = 1 << 20
#: at most this many problems are kept (the count of invalid records stays exact)
MAX_PROBLEMS = 1000
#: a temporary pack file untouched this long is a killed import's (or another killed git's), and
#: the next import removes it; one written more recently may be a running fetch's
STALE_TEMP_SECONDS = 600
#: for git fast-import (unless set already): glibc's malloc gives the top of its heap back to
#: the kernel whenever 128 KiB are free there, and fast-import allocates and frees zlib's state
#: for every object it writes, so each object paid for fresh zeroed pages: three quarters of its
#: time on the 17,500 trees of a 20,000-record edit (1.9 s, 0.5 s with this), a fifth on blobs.
#: Other C libraries ignore it.
FAST_IMPORT_ENV = {"MALLOC_TRIM_THRESHOLD_": str(64 << 20)}

Problem = tuple[int, str | None, str, str]


@dataclass
class ImportResult:
    """What :meth:`Repository.import_records` wrote."""

    commit_id: str | None
    ids: list[uuid.UUID] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


# -- the work done per record (in workers or in process) ----------------------

_settings: dict[str, Any] = {}


def _init_worker(
    schemas: dict[str, Any],
    schemas_dir: str,
    default_schema: Any,
    pid_fields: dict[str, str],
    max_bytes: int,
    format_checker: Any,
    inline_schemas: bool = True,
    allow_remote_refs: bool = False,
) -> None:
    _settings.clear()
    _settings.update(
        store=SchemaStore(
            schemas, schemas_dir, allow_remote_refs=allow_remote_refs, inline_schemas=inline_schemas
        ),
        default_schema=default_schema,
        pid_fields=pid_fields,
        max_bytes=max_bytes,
        format_checker=format_checker,
        schemas={},
    )


class Validity:
    """The problems of records against one schema: jsonschema-rs decides, jsonschema explains.

    A record jsonschema-rs finds invalid is checked again by jsonschema, whose
    messages are reported (and which has the last word: it may find no problem).
    The first valid records are checked by both; if they disagree, jsonschema
    alone checks the rest.
    """

    def __init__(self, store: SchemaStore, schema_ref: Any, format_checker: Any) -> None:
        self.store, self.schema_ref, self.format_checker = store, schema_ref, format_checker
        self.fast = FastCheck(store.fast_check(schema_ref, format_checker))

    def problems(self, data: Any) -> list[tuple[str, str]]:
        verdict = self.fast.verdict(data)
        if verdict:
            return []
        try:
            found = self.explain(data)
        except SchemaError:  # e.g. a $ref cycle jsonschema-rs did not mind
            self.fast.refuted(verdict)
            raise
        if found:
            self.fast.refuted(verdict)
        return found

    def explain(self, data: Any) -> list[tuple[str, str]]:
        return [
            (pointer(error), error.message)
            for error in self.store.iter_errors(data, self.schema_ref, format_checker=self.format_checker)
        ]


def _validity(schema_ref: Any) -> Validity:
    cache: dict[str, Validity] = _settings["schemas"]
    store: SchemaStore = _settings["store"]
    key = schema_ref if isinstance(schema_ref, str) else store.resolve_schema(schema_ref)[1]  # inline
    found = cache.get(key)
    if found is None:
        found = cache[key] = Validity(store, schema_ref, _settings["format_checker"])
    return found


def _prepare_chunk(
    chunk: list[tuple[int, str, Any]],
) -> list[tuple[int, str, bytes | None, dict[str, str], list[tuple[str, str]]]]:
    """Parse, check, validate and serialise records; (index, id, bytes, pids, problems) each."""
    max_bytes = _settings["max_bytes"]
    default_schema = _settings["default_schema"]
    pid_fields = _settings["pid_fields"]
    out = []
    for idx, record_id, payload in chunk:
        problems: list[tuple[str, str]] = []
        data: Any = payload
        try:
            parsed = isinstance(payload, (bytes, str))
            if parsed:
                data = layout.loads(payload, what="record")
            if not isinstance(data, dict):
                raise InvalidRecordError(f"a record must be a JSON object, not {layout.json_type(data)}")
            if layout.TOMBSTONE_KEY in data:
                raise InvalidRecordError(f"top-level key {layout.TOMBSTONE_KEY!r} is reserved for tombstones")
            raw = layout.dumps_parsed(data) if parsed else layout.dumps(data)
            if len(raw) > max_bytes:
                raise InvalidRecordError(f"{len(raw)} bytes is larger than the limit of {max_bytes}")
        except GitRecordsError as err:
            out.append((idx, record_id, None, {}, [("/", str(err))]))
            continue
        schema_ref = data.get("$schema")
        if schema_ref is None:
            schema_ref = default_schema
        if schema_ref is not None:
            try:
                problems = _validity(schema_ref).problems(data)
            except SchemaError as err:
                problems = [("/$schema", str(err))]
        problems = [*problems, *pid_type_problems(data, pid_fields)]
        _state, pids = facts_from_data(data, pid_fields)
        out.append((idx, record_id, None if problems else raw, pids, problems))
    return out


# -- the orchestration ---------------------------------------------------------


def _normalise(items: Iterable[Any]) -> Iterator[tuple[int, uuid.UUID | str, Any]]:
    """(index, id, payload) per item; the id is a UUID, or a message starting with "!"."""
    for idx, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2:
            record_id, payload = item
            try:
                record_id = layout.normalize_id(record_id) if record_id is not None else uuid.uuid4()
            except InvalidRecordError as err:
                yield idx, f"!{err}", payload  # reported at /id
                continue
        else:
            record_id, payload = uuid.uuid4(), item
        yield idx, record_id, payload


def record_path(record_id: str, records_dir: str) -> str:
    """:func:`layout.path_for` of an id already in canonical form (``str(uuid)``)."""
    digest = hashlib.sha256(record_id.encode("ascii")).hexdigest()
    return f"{records_dir}/{digest[:2]}/{digest[2:4]}/{record_id}.json"


def _hooks_in_use() -> tuple[bool, bool]:
    return signals.receivers("before_record_insert"), signals.receivers("after_record_insert")


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (hex)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _FastImport:
    """A ``git fast-import`` process: blobs first, then one commit on a temporary ref."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.proc = subprocess.Popen(
            # --depth=1: no delta chains, so a record is read without unpacking other versions
            [
                "git",
                "--git-dir",
                str(repo.git_dir),
                "fast-import",
                "--quiet",
                "--done",
                "--force",
                "--depth=1",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            bufsize=PIPE_BYTES,
            env={**FAST_IMPORT_ENV, **os.environ},
        )
        assert self.proc.stdin is not None
        self.out = self.proc.stdin
        # forked workers must not keep fast-import's input open: when this process dies, fast-import
        # sees the end of its input without "done" and exits without writing a ref
        keep_out_of_children(self.out.fileno())
        _widen_pipe(self.out.fileno())

    def blob(self, mark: int, data: bytes) -> None:
        self.out.write(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))

    def commit(
        self, ref: str, base: _git.Oid | None, message: str, author: Any, entries: Iterable[tuple[str, int]]
    ) -> None:
        author_sig, committer_sig = self.repo.writer.signatures(author)
        text = message.encode()
        out = self.out
        out.write(b"commit %s\n" % ref.encode())
        out.write(_person(b"author", author_sig) + _person(b"committer", committer_sig))
        out.write(b"data %d\n%s\n" % (len(text), text))
        if base is not None:
            out.write(b"from %s\n" % str(base).encode())
        for path, mark in entries:
            out.write(b"M 100644 :%d %s\n" % (mark, path.encode()))
        out.write(b"\ndone\n")
        release_in_children(out.fileno())
        out.close()
        stderr = self._finish()
        if self.proc.returncode != 0:
            raise GitRecordsError(f"git fast-import failed: {stderr.decode(errors='replace').strip()}")

    def abort(self) -> None:
        if not self.out.closed:
            release_in_children(self.out.fileno())
            try:
                self.out.close()  # without "done", fast-import exits with an error and moves no ref
            except BrokenPipeError:
                pass
        self._finish()
        # that error makes fast-import write a crash report into the git dir: it is no crash
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.repo.git_dir / f"fast_import_crash_{self.proc.pid}")

    def _finish(self) -> bytes:
        stderr = b""
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            stderr = self.proc.stderr.read()
            self.proc.stderr.close()
        self.proc.wait()
        return stderr


class StagedTrees:
    """New blobs, and the trees of commits that change files on top of ``base``, written by one
    ``git fast-import`` as one pack: a bulk edit of 100,000 records writes as many blobs and
    some 65,000 trees, which as loose objects would cost 30 s. The commits are made on a
    temporary ref and dropped; their trees are what the caller commits through the write path
    (``WritePath.write(..., prebuilt=(base tree, tree))``). Until :meth:`finish`, nothing is
    written: :meth:`abort` (or a crash) leaves no object behind.

    Use as a context manager; it holds the import slot (see :func:`import_slot`) throughout.
    """

    def __init__(self, repo: Repository, base: _git.Oid) -> None:
        self.repo = repo
        self.base = base
        self.ref = f"refs/gitrecords/import-edit-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.commits = 0
        self.opened = False
        self._slot = contextlib.ExitStack()
        self._importer: _FastImport | None = None

    def __enter__(self) -> StagedTrees:
        self._slot.enter_context(import_slot(self.repo))
        return self

    def __exit__(self, *exc: Any) -> None:
        aborted = self._importer is not None and not self._importer.out.closed
        try:
            if aborted:
                self.abort()
            _delete_ref(self.repo, self.ref)
        finally:
            self._slot.close()
        if aborted:
            with import_slot(self.repo):
                pass  # when no other import runs: the killed fast-import's temporary pack goes

    def abort(self) -> None:
        """Stop without writing anything. git fast-import would finish its pack when its input
        ends early, leaving the staged blobs behind: it is killed instead, and its temporary
        pack removed when no other import is running."""
        importer = self._importer
        if importer is None or importer.out.closed:
            return
        pack_dir = self.repo.git_dir / "objects" / "pack"
        own = _open_files(importer.proc.pid, pack_dir, "tmp_")  # its own, known before it dies
        importer.proc.kill()
        release_in_children(importer.out.fileno())
        with contextlib.suppress(BrokenPipeError):
            importer.out.close()
        importer._finish()
        for path in own:  # (other temporary packs may be a fetch's or a gc's: left alone)
            with contextlib.suppress(OSError):
                os.unlink(path)

    @property
    def importer(self) -> _FastImport:
        if self._importer is None:
            self._importer = _FastImport(self.repo)
        return self._importer

    def tree(self, changes: Iterable[tuple[str, _git.Oid | None]]) -> None:
        """Stage the tree of the previous one (``base``'s, first) with ``changes`` applied: each
        path gets the blob (staged, or already in the repository), or is removed (None)."""
        self.open_tree()
        out = self.importer.out
        for path, blob in changes:
            if blob is None:
                out.write(b"D %s\n" % path.encode())
            else:
                out.write(b"M 100644 %s %s\n" % (str(blob).encode(), path.encode()))
        self.close_tree()

    def open_tree(self) -> None:
        """Start the next tree (the previous one's, ``base``'s first): :meth:`file` puts files
        into it as they come, so that git fast-import builds it meanwhile, until :meth:`close_tree`."""
        out = self.importer.out
        out.write(
            b"commit %s\ncommitter gitrecords <gitrecords@localhost> 0 +0000\ndata 0\n" % self.ref.encode()
        )
        if self.commits == 0:
            out.write(b"from %s\n" % str(self.base).encode())
        self.opened = True

    def file(self, path: str, data: bytes, known_id: str | None = None) -> _git.Oid:
        """Put a new file at ``path`` of the open tree; returns its blob id (``known_id``: its hex
        id, computed already)."""
        self.importer.out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
        return _git.oid_from_hex(known_id or blob_id(data))

    def close_tree(self) -> None:
        self.importer.out.write(b"\n")
        self.commits += 1
        self.opened = False

    def finish(self, meanwhile: Callable[[], Any] | None = None) -> list[_git.Oid]:
        """Write the pack; returns the staged trees' ids, in order. ``meanwhile`` is called
        while git fast-import writes the trees and the pack's index (a second or so at
        100,000 records, which this process would spend waiting)."""
        if self.opened:
            self.close_tree()
        if not self.commits:
            self.abort()
            return []
        importer = self.importer
        out = importer.out
        out.write(b"done\n")
        release_in_children(out.fileno())
        out.close()
        try:
            if meanwhile is not None:
                meanwhile()
        finally:
            # fast-import is waited for even when ``meanwhile`` raised (a Ctrl-C): else it would
            # write its ref after the caller removed it
            stderr = importer._finish()
        if importer.proc.returncode != 0:
            raise GitRecordsError(f"git fast-import failed: {stderr.decode(errors='replace').strip()}")
        commit = _git.tip(self.repo.git, self.ref)
        assert commit is not None
        chain = _git.first_parent_chain(self.repo.git, commit, self.base) or []
        return [_git.commit_tree(self.repo.git, c) for c in reversed(chain)]


def _widen_pipe(fd: int) -> None:
    """Let the pipe to fast-import hold more (Linux): fewer stalls when it is briefly busy."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setpipe is not None:
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size for non-root
            fcntl.fcntl(fd, setpipe, PIPE_BYTES)


def _person(role: bytes, sig: Any) -> bytes:
    offset = sig.offset
    sign = "+" if offset >= 0 else "-"
    tz = f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    return b"%s %s <%s> %d %s\n" % (role, sig.name.encode(), sig.email.encode(), sig.time, tz.encode())


def import_records(
    repo: Repository,
    items: Iterable[Any],
    *,
    message: str | None = None,
    author: Any = None,
    format_checker: Any = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    source: str | None = None,
) -> ImportResult:
    """Create many new records as one commit; see :meth:`Repository.import_records`."""
    if repo.in_transaction is not None:
        raise GitRecordsError("a bulk import cannot run inside a transaction")
    check_message(message)
    before_hooks, after_hooks = _hooks_in_use()
    settings = repo.config
    # the write lock is only taken to move the branch: preparing the records (validation in
    # worker processes, git fast-import) runs without it, so a slow import blocks no writer and a
    # killed one leaves no lock behind
    with import_slot(repo):
        base = repo.tip()
        repo.index.catch_up(base)
        store = repo.schema_store(base)
        init_args = (
            store.by_path,
            store.schemas_dir,
            settings.get("default_schema"),
            dict(settings.get("pids") or {}),
            repo.max_record_bytes,
            format_checker,
            settings.get("inline_schemas", True) is True,
            store.allow_remote_refs,  # as the single writes of this repository resolve them
        )
        records_dir = settings["records"]
        pending = PendingImport(repo.index)
        ref = f"refs/gitrecords/import-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        importer = _FastImport(repo)
        problems: list[Problem] = []
        invalid: set[int] = set()
        # 16 bytes per id until git fast-import is done: UUID objects take 120 MB per million
        ids = bytearray()
        kept: list[Any] = []
        total = 0

        def problem(idx: int, record_id: str | None, where: str, text: str) -> None:
            invalid.add(idx)
            if len(problems) < MAX_PROBLEMS:
                problems.append((idx, record_id, where, text))

        def chunks() -> Iterator[list[tuple[int, str, Any]]]:
            nonlocal total
            source = _normalise(items)
            while True:
                chunk = []
                for idx, given, payload in itertools.islice(source, CHUNK):
                    total = idx + 1
                    if isinstance(given, str):
                        problem(idx, None, "/id", given[1:])
                        continue
                    ids.extend(given.bytes)
                    record_id = str(given)
                    if before_hooks or after_hooks:
                        payload = _run_before_hook(repo, record_id, payload, before_hooks, kept)
                    chunk.append((idx, record_id, payload))
                if not chunk:
                    return
                yield chunk

        try:
            prepared = 0
            for results in in_workers(chunks(), _prepare_chunk, _init_worker, init_args, workers):
                rows = []
                prepared += len(results)
                for idx, record_id, raw, pids, found in results:
                    for where, text in found:
                        problem(idx, record_id, where, text)
                    if raw is None:
                        continue
                    blob = blob_id(raw)
                    rows.append((idx, record_id, blob, pids))
                    if not invalid:
                        importer.blob(idx + 1, raw)
                for idx, record_id, where, text in pending.add(rows):
                    problem(idx, record_id, where, text)
                if progress is not None:
                    progress(prepared)
            for idx, record_id, where, text in _conflicts(repo, pending, _git.tree_of(repo.git, base)):
                problem(idx, record_id, where, text)
            if invalid:
                importer.abort()
                problems.sort()
                raise BatchValidationError(problems, total)
            count = len(ids) // 16
            if not count:
                importer.abort()
                return ImportResult(None, [])
            default = f"import {count} record{'' if count == 1 else 's'}"
            if source:
                default += f" from {source}"
            text = (message or default).rstrip("\n")
            text += f"\n\nGitrecords-Operation: import\nGitrecords-Records: {count}\n"
            entries = ((record_path(record, records_dir), idx + 1) for idx, record in pending.staged())
            importer.commit(ref, base, text, author, entries)
        except BaseException:
            importer.abort()
            pending.close()
            _delete_ref(repo, ref)
            raise
        try:
            commit = _git.tip(repo.git, ref)
            assert commit is not None
            with repo.writer.lock():
                parent, commit = _move_branch(repo, base, commit, pending, total)
                # the branch moved: from here on nothing raises. The staged rows index the commit
                # without reading a blob back, once the index has caught up with its parent
                try:
                    repo.index.catch_up(parent)
                    pending.apply(parent, commit, _git.commit_time(repo.git, commit))
                except sqlite3.Error:
                    log.warning("the import's rows were not indexed; the index reads the commit instead")
                repo.writer.landed(parent, commit)
        finally:
            pending.close()
            _delete_ref(repo, ref)
    view = memoryview(ids)
    result = ImportResult(
        str(commit), [uuid.UUID(bytes=bytes(view[i : i + 16])) for i in range(0, len(ids), 16)]
    )
    if after_hooks:
        for record_id in result.ids:
            record = Record.get_record(record_id, repo=repo)
            signals.send("after_record_insert", repo, record)
    return result


def _run_before_hook(repo: Repository, record_id: str, payload: Any, before: bool, kept: list[Any]) -> Any:
    if isinstance(payload, (bytes, str)):
        try:
            payload = layout.loads(payload, what="record")
        except InvalidRecordError:
            return payload
    if not isinstance(payload, dict) or not before:
        return payload
    return Record.before_insert(payload, id_=uuid.UUID(record_id), repo=repo)


def _conflicts(repo: Repository, pending: PendingImport, tree: Any) -> list[tuple[int, str, str, str]]:
    """Problems of the staged records against ``tree`` (the index must be at its commit): ids
    that exist or were hard-deleted, PIDs that another record holds or a purged one held."""
    problems = pending.conflicts()
    purged = repo.writer.purged(tree)
    if purged.ids:
        problems += [
            (idx, record, "/", f"record {record} was hard-deleted (it is listed in {PURGED_FILE})")
            for idx, record in pending.staged()
            if record in purged.ids
        ]
    if purged.pids:
        problems += [
            (idx, record, "/", f"PID {t}:{v} belonged to hard-deleted record {purged.pids[(t, v)]}")
            for idx, record, t, v in pending.staged_pids()
            if (t, v) in purged.pids
        ]
    return sorted(problems)


def in_workers(
    chunks: Iterable[Any],
    prepare: Callable[[Any], Any],
    init: Callable[..., None],
    init_args: tuple[Any, ...],
    workers: int | None,
    *,
    fork_only: bool = False,
) -> Iterator[Any]:
    """``prepare(chunk)`` of every chunk, in input order: in worker processes (each set up by
    ``init(*init_args)``) once the input reaches :data:`PARALLEL_THRESHOLD` records in chunks of
    :data:`CHUNK`, else in this process (after ``init(*init_args)`` here). ``fork_only``: only
    forked workers (whose ``init_args`` need not be picklable); without fork, this process.

    The workers are forked once the first chunks are read, before the caller writes anything
    (a forked worker shares the parent's memory of that moment), and are gone when this ends."""
    source = iter(chunks)
    first: list[Any] = []
    for chunk in source:
        first.append(chunk)
        if len(first) * CHUNK >= PARALLEL_THRESHOLD:
            break
    count = workers if workers is not None else (os.cpu_count() or 1)
    fork = can_fork()
    if count <= 1 or len(first) * CHUNK < PARALLEL_THRESHOLD or (fork_only and not fork):
        init(*init_args)
        for chunk in itertools.chain(first, source):
            yield prepare(chunk)
        return
    # fork: workers need no re-import (and do not re-run a caller's unguarded script)
    yield from ordered_map(
        prepare,
        itertools.chain(first, source),
        workers=count,
        initializer=init,
        initargs=init_args,
        window=4,
        start="fork" if fork else "spawn",
    )


def _move_branch(
    repo: Repository, base: _git.Oid | None, commit: _git.Oid, pending: PendingImport, total: int
) -> tuple[_git.Oid | None, _git.Oid]:
    """Move the branch from ``base`` to ``commit``; returns (parent, commit) as landed.

    If another writer moved the branch meanwhile, the import is rebuilt on the new tip after
    the ids and PIDs are checked again there (a record, a PID or a purge that arrived during the
    import refuses it, and nothing is written)."""
    try:
        repo.writer.move(base, commit, "gitrecords: import")
        return base, commit
    except _git.RefMoved:
        pass
    git = repo.git
    try:
        changes = {
            path: new
            for path, _old, new in _git.changed_blobs(git, _git.tree_of(git, base), _git.tree_of(git, commit))
        }
    except (KeyError, _git.GitError):
        # the history was rewritten under the import by something that does not wait for
        # imports as a hard delete does (a forced fetch and git gc): its base commit is gone
        raise StaleRevisionError(
            f"{repo.ref} was rewritten while the import ran (the commit it started from is gone); "
            "nothing was written: run the import again"
        ) from None
    raw = git[commit]
    for _ in range(MAX_ATTEMPTS):
        tip = repo.tip()
        tip_tree = _git.tree_of(git, tip)
        repo.index.catch_up(tip)
        problems = _conflicts(repo, pending, tip_tree)
        if problems:
            raise BatchValidationError(problems[:MAX_PROBLEMS], total)
        tree = _git.build_tree(git, tip_tree, changes)
        try:
            return tip, repo.writer.commit(tip, tree, raw.message, signatures=(raw.author, raw.committer))
        except _git.RefMoved:
            continue
    raise StaleRevisionError(f"{repo.ref} kept moving under the import; nothing was written")


def _open_files(pid: int, folder: str | os.PathLike[str], prefix: str) -> list[str]:
    """The files in ``folder`` whose names start with ``prefix`` that process ``pid`` has open
    (from /proc; none where there is no /proc)."""
    found: list[str] = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    wanted = os.path.realpath(folder)
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if os.path.dirname(target) == wanted and os.path.basename(target).startswith(prefix):
            found.append(target)
    return found


@contextlib.contextmanager
def import_slot(repo: Repository) -> Iterator[None]:
    """Mark an import as running (a shared ``flock`` on ``gitrecords/imports.running``) for as long as
    it prepares its records. An import that finds no other one running first cleans up what a
    killed import left: its temporary ref, git fast-import's temporary pack and crash report. A
    hard delete waits for running imports and keeps new ones waiting while it rewrites the
    history (:func:`gitrecords.writer.imports_excluded`)."""
    fd = open_lock_file(repo.git_dir, IMPORT_SLOT)
    if fd < 0:
        yield  # a read-only repository: the import fails later, when it writes
        return
    keep_out_of_children(fd)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # other imports are running: leave their files alone
            else:
                _clean_up_killed_imports(repo)
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        release_in_children(fd)
        os.close(fd)


def _clean_up_killed_imports(repo: Repository) -> None:
    """What imports that were killed left (no import is running: the caller made sure)."""
    for name in list(repo.git.references):
        if name.startswith("refs/gitrecords/import-"):
            _delete_ref(repo, name)
    # a temporary pack git is writing now (a fetch's, a push's, a gc's) has the same kind of name
    # as a killed fast-import's: only one nobody has written to for a while is left over
    cutoff = time.time() - STALE_TEMP_SECONDS
    for stale in (repo.git_dir / "objects" / "pack").glob("tmp_*"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
    for report in repo.git_dir.glob("fast_import_crash_*"):
        with contextlib.suppress(OSError):
            report.unlink()


def _delete_ref(repo: Repository, ref: str) -> None:
    try:
        repo.git.references.delete(ref)
    except (KeyError, _git.GitError):
        pass
