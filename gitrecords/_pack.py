"""Write new git objects into one pack file and its index, from Python.

A history rewrite creates tens of thousands of trees and commits. Written as
loose objects, each is a deflated file of its own (with its folder, rename and
inode), and the ``git repack`` that follows has to read them back and search
deltas for all of them. :class:`PackWriter` writes them instead into a single
pack (format version 2) with an index (version 2), as ``git index-pack`` would:
a tree is stored as a delta against the previous version written for the same
path (chains at most ``depth`` long, like ``pack.depth``), commits whole. The
pack is visible to git and libgit2 once :meth:`PackWriter.finish` has renamed
it and then its index into ``objects/pack``; until then nothing refers to it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zlib
from collections.abc import Hashable
from dataclasses import dataclass

#: object type numbers in a pack
COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4
_OFS_DELTA = 6
_NAMES = {COMMIT: b"commit", TREE: b"tree", BLOB: b"blob", TAG: b"tag"}
#: the longest copy one delta instruction can express (24-bit size)
_MAX_COPY = 0xFFFFFF


@dataclass
class _Base:
    raw: bytes
    offset: int
    depth: int


def object_id(kind: int, raw: bytes) -> bytes:
    """The 20-byte SHA-1 git gives an object of type ``kind`` with content ``raw``."""
    digest = hashlib.sha1(b"%s %d\x00" % (_NAMES[kind], len(raw)))
    digest.update(raw)
    return digest.digest()


def _varint(value: int) -> bytes:
    """A delta header size: 7 bits a byte, least significant first."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _copy(out: bytearray, offset: int, size: int) -> None:
    while size > 0:
        chunk = min(size, _MAX_COPY)
        cmd = 0x80
        args = bytearray()
        for i in range(4):
            byte = (offset >> (8 * i)) & 0xFF
            if byte:
                cmd |= 1 << i
                args.append(byte)
        for i in range(3):
            byte = (chunk >> (8 * i)) & 0xFF
            if byte:
                cmd |= 0x10 << i
                args.append(byte)
        out.append(cmd)
        out += args
        offset += chunk
        size -= chunk


def _insert(out: bytearray, data: bytes) -> None:
    for start in range(0, len(data), 0x7F):
        piece = data[start : start + 0x7F]
        out.append(len(piece))
        out += piece


def _common_prefix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common prefix of ``a`` and ``b``, at most ``limit`` (binary search,
    so that the comparisons run in C)."""
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def delta(base: bytes, target: bytes) -> bytes:
    """A git delta turning ``base`` into ``target``: copy the common prefix and suffix, insert the
    middle. Enough for trees that differ in one place (an entry replaced, added or removed)."""
    limit = min(len(base), len(target))
    prefix = _common_prefix(base, target, limit)
    rest = limit - prefix
    suffix = _common_prefix(base[::-1], target[::-1], rest) if rest else 0
    out = bytearray(_varint(len(base)) + _varint(len(target)))
    if prefix:
        _copy(out, 0, prefix)
    _insert(out, target[prefix : len(target) - suffix])
    if suffix:
        _copy(out, len(base) - suffix, suffix)
    return bytes(out)


def _entry_header(kind: int, size: int) -> bytearray:
    out = bytearray()
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return out


def _ofs(distance: int) -> bytes:
    """An OFS_DELTA's distance back to its base, in git's offset encoding."""
    out = [distance & 0x7F]
    distance >>= 7
    while distance:
        distance -= 1
        out.append(0x80 | (distance & 0x7F))
        distance >>= 7
    return bytes(reversed(out))


class PackWriter:
    """Collects objects into a new pack in ``pack_dir``; :meth:`finish` makes it part of the
    repository.

    An object the repository has already is written again (git allows an object in several
    packs): asking libgit2 costs more than the copy, as a miss makes it rescan the packs.
    """

    def __init__(self, pack_dir: str, depth: int) -> None:
        self._dir = pack_dir
        self._depth = max(depth, 0)
        fd, self._tmp = tempfile.mkstemp(prefix="tmp_pack_", dir=pack_dir)
        self._file = os.fdopen(fd, "wb")
        self._file.write(b"PACK" + struct.pack(">II", 2, 0))  # the count is filled in by finish()
        self._offset = 12
        self._entries: list[tuple[bytes, int, int]] = []  # (id, crc32, offset)
        self._known: set[bytes] = set()
        self._bases: dict[Hashable, _Base] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def known(self, oid: bytes) -> bool:
        """Whether ``oid`` was added."""
        return oid in self._known

    def add(self, kind: int, raw: bytes, slot: Hashable | None = None) -> bytes:
        """Add an object; returns its id. Objects with the same ``slot`` (a tree's path) are
        stored as deltas of the one added before them."""
        oid = object_id(kind, raw)
        if oid in self._known:
            return oid
        self._known.add(oid)
        base = self._bases.get(slot) if slot is not None else None
        data: bytes | None = None
        if base is not None and base.depth < self._depth:
            data = delta(base.raw, raw)
            if len(data) * 2 >= len(raw):
                data = None
        if data is not None and base is not None:
            entry = _entry_header(_OFS_DELTA, len(data)) + _ofs(self._offset - base.offset)
            depth = base.depth + 1
        else:
            data = raw
            entry = _entry_header(kind, len(raw))
            depth = 0
        entry += zlib.compress(data)
        if slot is not None:
            self._bases[slot] = _Base(raw, self._offset, depth)
        self._entries.append((oid, zlib.crc32(entry), self._offset))
        self._file.write(entry)
        self._offset += len(entry)
        return oid

    def finish(self) -> str | None:
        """Complete the pack, write its index and move both into place (pack first, then the
        index that makes git see it). Returns the pack's path, or None when nothing was written."""
        self._file.close()
        try:
            if not self._entries:
                return None
            with open(self._tmp, "r+b") as stream:
                stream.seek(8)
                stream.write(struct.pack(">I", len(self._entries)))
                stream.seek(0)
                digest = hashlib.sha1()
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
                checksum = digest.digest()
                stream.seek(0, os.SEEK_END)
                stream.write(checksum)
            base = os.path.join(self._dir, f"pack-{checksum.hex()}")
            index = _index(self._entries, checksum)
            fd, tmp_index = tempfile.mkstemp(prefix="tmp_idx_", dir=self._dir)
            with os.fdopen(fd, "wb") as stream:
                stream.write(index)
            os.chmod(self._tmp, 0o444)
            os.chmod(tmp_index, 0o444)
            os.replace(self._tmp, base + ".pack")
            os.replace(tmp_index, base + ".idx")
            return base + ".pack"
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)

    def abort(self) -> None:
        """Forget the pack (an error before :meth:`finish`)."""
        self._file.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)


def _index(entries: list[tuple[bytes, int, int]], checksum: bytes) -> bytes:
    """A version 2 pack index for ``entries`` (id, crc32, offset) of the pack ``checksum``."""
    ordered = sorted(entries)
    fanout = [0] * 256
    for oid, _crc, _offset in ordered:
        fanout[oid[0]] += 1
    total = 0
    for i in range(256):
        total += fanout[i]
        fanout[i] = total
    small: list[int] = []
    large: list[int] = []
    for _oid, _crc, offset in ordered:
        if offset < 0x80000000:
            small.append(offset)
        else:
            small.append(0x80000000 | len(large))
            large.append(offset)
    out = bytearray(b"\xfftOc" + struct.pack(">I", 2))
    out += struct.pack(">256I", *fanout)
    out += b"".join(oid for oid, _crc, _offset in ordered)
    out += struct.pack(f">{len(ordered)}I", *(crc for _oid, crc, _offset in ordered))
    out += struct.pack(f">{len(small)}I", *small)
    out += struct.pack(f">{len(large)}Q", *large)
    out += checksum
    out += hashlib.sha1(out).digest()
    return bytes(out)
