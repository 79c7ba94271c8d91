"""Read refs and objects of a plain git repository from Python, without libgit2.

Starting libgit2 (importing pygit2, OpenSSL among it) costs a process about 60 ms of wall
time, more than everything else ``gitrecords get ID`` does. :class:`GitDir` reads what a
plain repository holds, byte for byte as git does: ``HEAD``, loose refs and
``packed-refs``; loose objects (zlib); packs with a version 2 index (the id looked up by
binary search in the mapped index, nothing else of it read), their entries whole or as
OFS_DELTA and REF_DELTA chains. Every object read is checked against its id.

A reader that reads many objects once each, all over the packs (a bulk edit's search index
catch-up), opens the repository with ``mapped=False``: the packs are read with ``pread`` instead
of mapped, so the pages it touches do not stay resident in its process.

It reads only: a caller that gets None (or an exception) asks libgit2 instead. A
repository that is not plain is refused when it is opened (:meth:`GitDir.open` returns
None): a worktree's or submodule's ``.git`` file, alternates, a shallow clone, grafts,
replace refs, any ``extensions`` (reftable, SHA-256, partial clones) or ``include`` in the
configuration, a repository owned by another user (libgit2's ``safe.directory`` check).
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from types import TracebackType
from typing import Any

from ._pack import (
    BLOB,
    COMMIT,
    NAMES,
    OFS_DELTA,
    REF_DELTA,
    TREE,
    apply_delta,
    inflate,
    object_id,
    parse_entry,
    parse_ofs,
)

__all__ = ["GitDir"]

#: the longest delta chain followed (git writes at most pack.depth, 50 by default)
MAX_CHAIN = 4096
#: what a repository's configuration must not mention (lower case) for this reader to read it
_REFUSED_CONFIG = (b"extensions", b"include", b"promisor", b"partialclone")
#: files and folders of a git dir that make it more than plain
_REFUSED_FILES = ("shallow", "commondir", "gitdir", "info/grafts", "objects/info/alternates", "reftable")
#: bytes that hold any pack entry's header and an OFS_DELTA's base distance (10 and 10 at most
#: for the sizes of git's packs)
_HEAD = 32
#: object type numbers by name (a loose object's header)
_KINDS = {name: number for number, name in NAMES.items()}
#: the characters of a branch name this reader looks up (others go to libgit2, which checks them)
_REF_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class _PackFile:
    """A pack file read with ``pread`` through a buffer of at least :data:`BLOCK` bytes, as the
    entry readers of :mod:`gitrecords._pack` read a mapped one (an index or an ``[a:b]`` slice)."""

    BLOCK = 8192

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._size = os.fstat(self._fd).st_size
        self._at = 0
        self._buf = b""

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: int | slice) -> Any:
        # only what the readers ask: an offset, or a slice [a:b] with no step, neither negative
        if isinstance(key, slice):
            start = key.start or 0
            stop = self._size if key.stop is None else min(key.stop, self._size)
            if stop <= start:
                return b""
            self._fill(start, stop - start)
            return self._buf[start - self._at : stop - self._at]
        self._fill(key, 1)
        return self._buf[key - self._at]

    def _fill(self, start: int, size: int) -> None:
        if start < self._at or start + size > self._at + len(self._buf):
            if not 0 <= start < self._size:
                raise IndexError(start)
            self._buf = os.pread(self._fd, max(size, self.BLOCK), start)
            self._at = start

    def close(self) -> None:
        os.close(self._fd)


class _Pack:
    """One pack and its version 2 index; the index is mapped, the pack opened on first use
    (mapped, or read through a :class:`_PackFile`)."""

    def __init__(self, idx_path: str, mapped: bool = True) -> None:
        self.path = idx_path[: -len(".idx")] + ".pack"
        self.mapped = mapped
        with open(idx_path, "rb") as stream:
            self.idx = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        if self.idx[:8] != b"\xfftOc\x00\x00\x00\x02":
            self.idx.close()
            raise ValueError(f"{idx_path}: not a version 2 pack index")
        self.count = struct.unpack_from(">I", self.idx, 8 + 255 * 4)[0]
        self._data: mmap.mmap | _PackFile | None = None

    @property
    def data(self) -> mmap.mmap | _PackFile:
        if self._data is None:
            data: mmap.mmap | _PackFile
            if self.mapped:
                with open(self.path, "rb") as stream:
                    data = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
            else:
                data = _PackFile(self.path)
            if data[:4] != b"PACK" or data[4:8] not in (b"\x00\x00\x00\x02", b"\x00\x00\x00\x03"):
                data.close()
                raise ValueError(f"{self.path}: not a pack of version 2 or 3")
            self._data = data
        return self._data

    def offset(self, oid: bytes) -> int | None:
        """Where the entry of ``oid`` starts in the pack, or None if the pack does not hold it."""
        idx, first = self.idx, oid[0]
        lo = struct.unpack_from(">I", idx, 8 + (first - 1) * 4)[0] if first else 0
        hi = struct.unpack_from(">I", idx, 8 + first * 4)[0]
        ids = 8 + 256 * 4
        # the ids that start with the same byte, searched for ``oid`` at a multiple of 20 bytes
        # (one search in C; an id is found at another place only by an astronomical chance)
        end = ids + 20 * hi
        at = idx.find(oid, ids + 20 * lo, end)
        while at >= 0 and (at - ids) % 20:
            at = idx.find(oid, at + 1, end)
        if at < 0:
            return None
        offsets = ids + 24 * self.count  # after the ids and the CRC-32s
        offset: int = struct.unpack_from(">I", idx, offsets + 4 * ((at - ids) // 20))[0]
        if offset & 0x80000000:
            large = offsets + 4 * self.count + 8 * (offset & 0x7FFFFFFF)
            offset = struct.unpack_from(">Q", idx, large)[0]
        return offset

    def close(self) -> None:
        self.idx.close()
        if self._data is not None:
            self._data.close()


class GitDir:
    """A plain git repository's git dir, read without libgit2 (see the module docstring)."""

    def __init__(self, git_dir: str, mapped: bool = True) -> None:
        self.path = git_dir
        #: whether packs are mapped (else read with pread: see the module docstring)
        self.mapped = mapped
        self._objects = os.path.join(git_dir, "objects")
        self._packs: list[_Pack] | None = None
        self._last = 0  # the pack that held the last object read
        self._packed_refs: dict[bytes, bytes] | None = None

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str, *, mapped: bool = True) -> GitDir | None:
        """The repository at ``path`` as libgit2 opens it without searching (``path/.git`` of
        a working clone, or ``path`` itself), or None when it is not a plain one. ``mapped``:
        see :attr:`mapped`."""
        if not path:
            return None
        dot_git = os.path.join(path, ".git")
        inside, itself = _is_git_dir(dot_git), _is_git_dir(path)
        if os.path.isfile(dot_git) or inside == itself:  # a .git file, none or both: libgit2's call
            return None
        return cls._plain(dot_git if inside else path, path, mapped)

    @classmethod
    def discover(cls, start: str) -> GitDir | None:
        """The repository around ``start`` as libgit2's discovery finds it (``.git`` in a folder,
        then the folder itself, from ``start`` up, not across file systems), or None when that
        is not a plain repository or is not clear."""
        here = os.path.abspath(start)
        device = os.stat(here).st_dev
        while True:
            if os.stat(here).st_dev != device:
                return None
            found = cls.open(here)
            if found is not None:
                return found
            dot_git = os.path.join(here, ".git")
            if os.path.lexists(dot_git) or _is_git_dir(here):
                return None  # something libgit2 may take for a repository: its call
            parent = os.path.dirname(here)
            if parent == here:
                return None
            here = parent

    @classmethod
    def _plain(cls, git_dir: str, given: str, mapped: bool = True) -> GitDir | None:
        uid = os.geteuid()
        if any(os.stat(p).st_uid != uid for p in (git_dir, given)):
            return None  # libgit2's ownership check (and safe.directory) decide
        if any(os.path.lexists(os.path.join(git_dir, name)) for name in _REFUSED_FILES):
            return None
        replace = os.path.join(git_dir, "refs", "replace")
        if os.path.isdir(replace) and os.listdir(replace):
            return None
        try:
            with open(os.path.join(git_dir, "config"), "rb") as stream:
                config = stream.read().lower()
        except FileNotFoundError:
            config = b""
        if any(word in config for word in _REFUSED_CONFIG):
            return None
        repo = cls(git_dir, mapped)
        if any(name.startswith(b"refs/replace/") for name in repo.packed_refs()):
            return None
        return repo

    def close(self) -> None:
        for pack in self._packs or ():
            pack.close()
        self._packs = None
        self._last = 0

    def __enter__(self) -> GitDir:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- refs --------------------------------------------------------------------------------

    def head_branch(self) -> str | None:
        """The branch ``HEAD`` names (``refs/heads/NAME``), or None (detached, or another ref)."""
        with open(os.path.join(self.path, "HEAD"), "rb") as stream:
            head = stream.read()
        if head.startswith(b"ref: refs/heads/") and head.endswith(b"\n") and head.count(b"\n") == 1:
            return head[len(b"ref: refs/heads/") : -1].decode("utf-8")
        return None

    def packed_refs(self) -> dict[bytes, bytes]:
        """``packed-refs``: ref name -> object id (hex)."""
        if self._packed_refs is None:
            refs: dict[bytes, bytes] = {}
            try:
                with open(os.path.join(self.path, "packed-refs"), "rb") as stream:
                    lines = stream.read().splitlines()
            except FileNotFoundError:
                lines = []
            for line in lines:
                if line.startswith((b"#", b"^")) or not line:
                    continue
                oid, _, name = line.partition(b" ")
                refs[name] = oid
            self._packed_refs = refs
        return self._packed_refs

    def ref(self, name: str) -> bytes | None:
        """The object id (20 bytes) a branch ``refs/heads/...`` points to: its loose file, else
        its line in ``packed-refs``; None for a missing or symbolic ref or an unusual name."""
        parts = name.split("/")
        if parts[:2] != ["refs", "heads"] or len(parts) < 3 or name.endswith(".lock"):
            return None
        if any(not part or part[0] in ".-" or not _REF_CHARS.issuperset(part) for part in parts[2:]):
            return None
        try:
            with open(os.path.join(self.path, *parts), "rb") as stream:
                text = stream.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            text = self.packed_refs().get(name.encode())
            if text is None:
                return None
        text = text.strip()
        if len(text) != 40:
            return None  # a symbolic ref, or a damaged file: libgit2's to resolve or report
        return bytes.fromhex(text.decode("ascii"))

    # -- objects -----------------------------------------------------------------------------

    def read(self, oid: bytes) -> tuple[int, bytes] | None:
        """(type, content) of the object ``oid`` (20 bytes), checked against its id, or None
        when it is neither loose nor in a pack (or is damaged)."""
        found = None
        where = self._locate(oid)
        if where is not None:
            found = self._packed(*where)
        if found is None:
            found = self._loose(oid)
        if found is None or object_id(found[0], found[1]) != oid:
            return None
        return found

    def _locate(self, oid: bytes) -> tuple[_Pack, int] | None:
        """(pack, offset) of ``oid``'s entry: the packs in turn, the one that had the last
        object first."""
        packs = self._all_packs()
        last = self._last
        for number in (last, *range(last), *range(last + 1, len(packs))) if packs else ():
            offset = packs[number].offset(oid)
            if offset is not None:
                self._last = number
                return packs[number], offset
        return None

    def _loose(self, oid: bytes) -> tuple[int, bytes] | None:
        hexid = oid.hex()
        try:
            with open(os.path.join(self._objects, hexid[:2], hexid[2:]), "rb") as stream:
                data = zlib.decompress(stream.read())
        except FileNotFoundError:
            return None
        header, _, raw = data.partition(b"\x00")
        kind_name, _, size = header.partition(b" ")
        if kind_name not in _KINDS or not size.isdigit() or int(size) != len(raw):
            return None
        return _KINDS[kind_name], raw

    def _all_packs(self) -> list[_Pack]:
        if self._packs is None:
            folder = os.path.join(self._objects, "pack")
            try:
                names = sorted(n for n in os.listdir(folder) if n.startswith("pack-") and n.endswith(".idx"))
            except FileNotFoundError:
                names = []
            self._packs = []
            for name in names:
                try:
                    self._packs.append(_Pack(os.path.join(folder, name), self.mapped))
                except (OSError, ValueError):  # gone in a repack meanwhile, or not one this reads
                    continue
        return self._packs

    def _packed(self, pack: _Pack, offset: int) -> tuple[int, bytes] | None:
        """The object whose entry is at ``offset`` in ``pack``: its delta chain followed, also
        into other packs (a REF_DELTA names its base by id), in a loop, not by recursion."""
        deltas: list[bytes] = []  # the outermost first
        while len(deltas) <= MAX_CHAIN:
            data = pack.data
            head = data[offset : offset + _HEAD]  # the type, the size and a delta's base: one read
            kind, size, at = parse_entry(head, 0)
            if kind == OFS_DELTA:
                distance, at = parse_ofs(head, at)
                if not 0 < distance < offset:
                    return None
                deltas.append(inflate(data, offset + at, size))
                offset -= distance
                continue
            at += offset
            if kind == REF_DELTA:
                deltas.append(inflate(data, at + 20, size))
                base = bytes(data[at : at + 20])
                where = self._locate(base)
                if where is None:  # a loose base (the result is checked against its id)
                    found = self._loose(base)
                    if found is None:
                        return None
                    kind, raw = found
                    break
                pack, offset = where
                continue
            if kind not in NAMES:
                return None
            raw = inflate(data, at, size)
            break
        else:
            return None
        for delta in reversed(deltas):
            raw = apply_delta(raw, delta)
        return kind, raw

    # -- trees -------------------------------------------------------------------------------

    def commit_tree(self, commit: bytes) -> bytes | None:
        """The tree id of the commit ``commit``, or None (not a commit, or not readable)."""
        found = self.read(commit)
        if found is None or found[0] != COMMIT or not found[1].startswith(b"tree "):
            return None
        return bytes.fromhex(found[1][5:45].decode("ascii"))

    def blob_at(self, tree: bytes, path: str) -> bytes | None:
        """The content of the blob at ``path`` (``a/b/c``) in the tree ``tree``, or None when
        there is none (or a tree, a submodule or an unreadable object is in the way)."""
        *folders, name = path.encode("utf-8").split(b"/")
        for folder in folders:
            entry = self._entry(tree, folder)
            if entry is None or entry[0] != b"40000":
                return None
            tree = entry[1]
        entry = self._entry(tree, name)
        if entry is None or entry[0] not in (b"100644", b"100755"):
            return None
        found = self.read(entry[1])
        if found is None or found[0] != BLOB:
            return None
        return found[1]

    def _entry(self, tree: bytes, name: bytes) -> tuple[bytes, bytes] | None:
        """(mode, id) of ``name`` in the tree ``tree``."""
        found = self.read(tree)
        if found is None or found[0] != TREE:
            return None
        raw = found[1]
        at = 0
        while at < len(raw):
            space = raw.index(b" ", at)
            nul = raw.index(b"\x00", space)
            if raw[space + 1 : nul] == name:
                return raw[at:space], raw[nul + 1 : nul + 21]
            at = nul + 21
        return None


def _is_git_dir(path: str) -> bool:
    """What libgit2 takes for a git dir: a folder with ``HEAD``, ``objects/`` and ``refs/``."""
    return (
        os.path.isfile(os.path.join(path, "HEAD"))
        and os.path.isdir(os.path.join(path, "objects"))
        and os.path.isdir(os.path.join(path, "refs"))
    )
