"""Repository maintenance: ``gc`` packs the object store for many small, similar JSON files.

A bulk import writes its pack with ``git fast-import --depth=1`` (fast to write and to read,
but every other record is stored whole), and every single-record commit writes a blob, a
commit and four trees (the root, ``records/`` and two fan-out levels) as loose objects.
:func:`gc` runs ``git gc --aggressive``: every delta is searched again (``git repack -f``)
with a wider window than git's default, at most as deep as the repository's ``pack.depth``
(10 in a repository made by gitrecords, so that reading one record never unpacks a long
delta chain); then git's own housekeeping (loose objects packed, unreachable ones kept
until git's prune grace period ends, reflogs expired, refs packed). See
docs/performance.md, "Pack size and ``gitrecords gc``", for what the settings buy.

``gc`` holds the write lock: a hard delete copies packs and deletes the old ones, and a
repack reading them at the same time could keep the purged content; a bulk import's pack
holds objects no ref names until its commit lands. Readers are never blocked (git replaces
packs atomically).
"""

from __future__ import annotations

import os
import subprocess
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from . import _git, layout
from .errors import GitRecordsError, RepositoryError

if TYPE_CHECKING:
    from .storage import Storage as Repository

__all__ = ["AGGRESSIVE_WINDOW", "DEFAULT_WINDOW", "GCResult", "ObjectStore", "gc", "jsonl_gzip_size"]

#: objects each object is compared with in the delta search (git's default is 10)
DEFAULT_WINDOW = 50
#: the window of ``gc(aggressive=True)`` (git gc --aggressive's default): a smaller pack, in
#: several times the time
AGGRESSIVE_WINDOW = 250
#: the delta chain limit when the repository sets no ``pack.depth`` (git's default)
GIT_DEFAULT_DEPTH = 50


@dataclass(frozen=True)
class ObjectStore:
    """What the object store holds: packs (``objects/pack/*.pack``) and loose objects."""

    packs: int
    pack_bytes: int
    packed_objects: int
    loose_objects: int
    loose_bytes: int

    @property
    def objects(self) -> int:
        """Stored objects, packed and loose (an object in two places counts twice)."""
        return self.packed_objects + self.loose_objects


@dataclass(frozen=True)
class GCResult:
    """What :func:`gc` did: the object store before and after, the settings and the time."""

    before: ObjectStore
    after: ObjectStore
    window: int
    depth: int
    seconds: float
    #: live records, and the size of their JSON Lines gzip'd (with ``ratio=True``)
    records: int | None = None
    jsonl_gzip_bytes: int | None = None

    @property
    def ratio(self) -> float | None:
        """The packs' size over the gzip'd JSON Lines of the live records (``ratio=True``)."""
        if not self.jsonl_gzip_bytes:
            return None
        return self.after.pack_bytes / self.jsonl_gzip_bytes

    def as_dict(self) -> dict[str, Any]:
        value = asdict(self)
        value["before"]["objects"] = self.before.objects
        value["after"]["objects"] = self.after.objects
        value["seconds"] = round(self.seconds, 3)
        value["ratio"] = None if self.ratio is None else round(self.ratio, 2)
        return value


def object_store(git_dir: str | os.PathLike[str]) -> ObjectStore:
    """Count the packs, their bytes and objects, and the loose objects of ``git_dir``."""
    objects = Path(git_dir) / "objects"
    packs = pack_bytes = packed = 0
    for pack in (objects / "pack").glob("pack-*.pack"):
        idx = pack.with_suffix(".idx")
        try:
            size = pack.stat().st_size
            packed += _idx_count(idx)
        except FileNotFoundError:  # replaced meanwhile
            continue
        packs += 1
        pack_bytes += size
    loose = loose_bytes = 0
    for folder in objects.glob("[0-9a-f][0-9a-f]"):
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(entry.name) == 38 and entry.is_file():
                    loose += 1
                    loose_bytes += entry.stat().st_size
    return ObjectStore(packs, pack_bytes, packed, loose, loose_bytes)


def _idx_count(idx: Path) -> int:
    """The number of objects in a pack, from its index: the last fan-out entry (v1 and v2)."""
    with open(idx, "rb") as stream:
        head = stream.read(8)
        offset = 8 if head[:4] == b"\xfftOc" else 0
        stream.seek(offset + 255 * 4)
        return int.from_bytes(stream.read(4), "big")


def gc(
    repo: Repository,
    *,
    aggressive: bool = False,
    window: int | None = None,
    depth: int | None = None,
    ratio: bool = False,
    show_progress: bool = False,
) -> GCResult:
    """Repack the object store with delta settings that suit many small, similar records.

    Runs ``git gc --aggressive`` with a delta window of :data:`DEFAULT_WINDOW` (with
    ``aggressive``, :data:`AGGRESSIVE_WINDOW`) unless ``window`` says otherwise, and delta
    chains no longer than ``depth`` (default: the repository's ``pack.depth``), holding the
    write lock. ``ratio=True`` also gzips the live records as JSON Lines to report the ratio
    (reads every record: seconds at 100,000 records). With ``show_progress``, git draws its
    progress on this process's stderr (the caller checks that it is a terminal).
    """
    if repo.in_transaction is not None:
        raise GitRecordsError("gc cannot run inside a transaction")
    if window is None:
        window = AGGRESSIVE_WINDOW if aggressive else DEFAULT_WINDOW
    if depth is None:
        depth = _git.config_int(repo.git, "pack.depth")
        depth = GIT_DEFAULT_DEPTH if depth is None else depth
    if window < 1 or not 1 <= depth <= 4095:
        raise GitRecordsError(
            f"the delta window must be 1 or more and the depth 1 to 4095, not {window} and {depth}"
        )
    git_dir = str(repo.git_dir)
    with repo.writer.lock():
        before = object_store(git_dir)
        start = time.monotonic()
        _run(
            git_dir,
            # git gc --aggressive is git repack -f with these; -A keeps unreachable objects
            # (a push in progress) loose until git's prune grace period ends
            "-c",
            f"gc.aggressiveWindow={window}",
            "-c",
            f"gc.aggressiveDepth={depth}",
            # a commit-graph would keep naming the commits a hard delete removes
            "-c",
            "gc.writeCommitGraph=false",
            "gc",
            "--aggressive",
            show_progress=show_progress,
            lock_fds=repo.writer.lock_fds(),
        )
        seconds = time.monotonic() - start
        after = object_store(git_dir)
    records = gzipped = None
    if ratio:  # a read: writers need not wait for it
        records, gzipped = jsonl_gzip_size(repo)
    return GCResult(before, after, window, depth, seconds, records, gzipped)


def _run(git_dir: str, *args: str, show_progress: bool, lock_fds: tuple[int, ...] = ()) -> None:
    """Run git on ``git_dir``: its progress on our stderr when asked, else quietly with its
    messages kept for the error. ``lock_fds`` (the write lock) are inherited by git and the
    processes it starts: if this process is killed, the repack that goes on holds the lock."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    command = ["git", "--git-dir", git_dir, *args]
    if show_progress:
        proc = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env, pass_fds=lock_fds
        )
        if proc.returncode != 0:
            raise RepositoryError(f"git gc failed (exit code {proc.returncode})")
        return
    proc = subprocess.run(
        [*command, "--quiet"], stdin=subprocess.DEVNULL, capture_output=True, env=env, pass_fds=lock_fds
    )
    if proc.returncode != 0:
        raise RepositoryError(f"git gc failed: {proc.stderr.decode(errors='replace').strip()}")


def jsonl_gzip_size(repo: Repository) -> tuple[int, int]:
    """The live records at the branch tip, and the size of their JSON Lines (one compact
    ``{"id": ..., "data": ...}`` line each) compressed by gzip at its default level: the
    smallest plain export, to compare the packs with."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip format
    size = count = 0
    for record_id, raw in _live_files(repo):
        try:
            data = orjson.dumps(orjson.loads(raw))
        except orjson.JSONDecodeError:  # a hand-edited file gitrecords would refuse to read
            data = b" ".join(raw.split())
        size += len(compressor.compress(b'{"id":"%s","data":%s}\n' % (str(record_id).encode(), data)))
        count += 1
    return count, size + len(compressor.flush())


def _live_files(repo: Repository) -> Iterator[tuple[str, bytes]]:
    snap = repo.snapshot()
    tree = _git.subtree(repo.git, snap.tree, snap.records_dir)
    if tree is None:
        return
    prefix = snap.records_dir + "/"
    for path, blob in _git.walk_blobs(repo.git, tree, prefix):
        record_id = layout.id_from_path(path, snap.records_dir)
        if record_id is None:
            continue
        raw = _git.read_blob(repo.git, blob)
        if len(raw) < 200 and layout.TOMBSTONE_KEY.encode() in raw:
            try:
                if layout.is_tombstone(layout.loads(raw)):
                    continue
            except GitRecordsError:
                pass
        yield str(record_id), raw
