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

:func:`copy_without` then removes the purged objects from the packs that hold
them: it copies a pack without them, reusing every other entry byte for byte
(what ``git repack -a -d`` does after walking the whole history and searching
deltas for the objects stored whole; here neither is needed).

Reading an entry (:func:`parse_entry`, :func:`parse_ofs`, :func:`inflate`,
:func:`apply_delta`, :func:`object_id`) is shared with :mod:`gitrecords._objects`,
which reads objects for ``gitrecords get`` without libgit2.
"""

from __future__ import annotations

import bisect
import hashlib
import mmap
import os
import struct
import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, BinaryIO

#: object type numbers in a pack
COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4
OFS_DELTA = 6
REF_DELTA = 7
NAMES = {COMMIT: b"commit", TREE: b"tree", BLOB: b"blob", TAG: b"tag"}
#: the longest copy one delta instruction can express (24-bit size)
_MAX_COPY = 0xFFFFFF


@dataclass
class _Base:
    raw: bytes
    offset: int
    depth: int


def object_id(kind: int, raw: bytes) -> bytes:
    """The 20-byte SHA-1 git gives an object of type ``kind`` with content ``raw``."""
    digest = hashlib.sha1(b"%s %d\x00" % (NAMES[kind], len(raw)))
    digest.update(raw)
    return digest.digest()


def _mkstemp(prefix: str, folder: str) -> tuple[int, str]:
    """``tempfile.mkstemp``, imported on first use: reading objects (``gitrecords get``) does
    without it."""
    import tempfile

    return tempfile.mkstemp(prefix=prefix, dir=folder)


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
    """Append copy instructions for ``size`` bytes of the base from ``offset``: a command byte
    whose bits say which of the offset's 4 and the size's 3 bytes follow (zero bytes are left out)."""
    while size > 0:
        chunk = min(size, _MAX_COPY)
        cmd = 0x80
        args = bytearray()
        # bits 0-3: the offset's bytes, least significant first; bits 4-6: the size's
        fields = [(offset >> shift) & 0xFF for shift in (0, 8, 16, 24)]
        fields += [(chunk >> shift) & 0xFF for shift in (0, 8, 16)]
        for bit, byte in enumerate(fields):
            if byte:
                cmd |= 1 << bit
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
    """Length of the longest common prefix of ``a`` and ``b``, at most ``limit``: a binary search
    whose comparisons run in C, each on the part not compared yet."""
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common suffix of ``a`` and ``b``, at most ``limit``."""
    lo, hi = 0, limit
    end_a, end_b = len(a), len(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[end_a - mid : end_a - lo] == b[end_b - mid : end_b - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def delta(base: bytes, target: bytes) -> bytes:
    """A git delta turning ``base`` into ``target``: copy the common prefix and suffix, insert the
    middle. Enough for trees that differ in one place (an entry replaced, added or removed)."""
    limit = min(len(base), len(target))
    prefix = _common_prefix(base, target, limit)
    suffix = _common_suffix(base, target, limit - prefix)
    out = bytearray(_varint(len(base)) + _varint(len(target)))
    if prefix:
        _copy(out, 0, prefix)
    _insert(out, target[prefix : len(target) - suffix])
    if suffix:
        _copy(out, len(base) - suffix, suffix)
    return bytes(out)


def deflate(data: bytes) -> bytes:
    """``data`` zlib-compressed at level 1. Below 4 KiB with a window no larger than the data:
    ``zlib.compress`` sets up 256 KiB of state for every call, which costs more than compressing
    a commit or a delta."""
    if len(data) > 4096:
        return zlib.compress(data, 1)
    compressor = zlib.compressobj(1, zlib.DEFLATED, max(len(data).bit_length(), 9), 4)
    return compressor.compress(data) + compressor.flush()


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
        fd, self._tmp = _mkstemp("tmp_pack_", pack_dir)
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
            entry = _entry_header(OFS_DELTA, len(data)) + _ofs(self._offset - base.offset)
            depth = base.depth + 1
        else:
            data = raw
            entry = _entry_header(kind, len(raw))
            depth = 0
        entry += deflate(data)
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
            return _install(self._dir, self._tmp, _index(self._entries, checksum), checksum)
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)

    def abort(self) -> None:
        """Forget the pack (an error before :meth:`finish`)."""
        self._file.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)


def _install(pack_dir: str, tmp_pack: str, index: bytes, checksum: bytes) -> str:
    """Write ``index``, the index of the complete pack ``tmp_pack``, then move the pack and its
    index into place, the index last (git sees a pack through its index). Returns the pack's path."""
    base = os.path.join(pack_dir, f"pack-{checksum.hex()}")
    fd, tmp_index = _mkstemp("tmp_idx_", pack_dir)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(index)
        os.chmod(tmp_pack, 0o444)
        os.chmod(tmp_index, 0o444)
        os.replace(tmp_pack, base + ".pack")
        os.replace(tmp_index, base + ".idx")
    finally:
        if os.path.exists(tmp_index):
            os.unlink(tmp_index)
    return base + ".pack"


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


# -- reading an index, copying a pack without some objects --------------------------------------


@dataclass
class PackIndex:
    """A version 2 pack index: sorted object ids, their CRC-32s and offsets in the pack."""

    ids: bytes  # n * 20 bytes, sorted
    crcs: tuple[int, ...]
    offsets: tuple[int, ...]
    fanout: tuple[int, ...]  # fanout[b]: how many ids start with a byte <= b

    def __len__(self) -> int:
        return len(self.crcs)

    def id(self, position: int) -> bytes:
        return self.ids[20 * position : 20 * position + 20]

    def find(self, oid: bytes) -> int:
        """The position of ``oid``, or -1."""
        first = oid[0]
        lo, hi = (self.fanout[first - 1] if first else 0), self.fanout[first]
        while lo < hi:
            mid = (lo + hi) // 2
            here = self.ids[20 * mid : 20 * mid + 20]
            if here < oid:
                lo = mid + 1
            elif here > oid:
                hi = mid
            else:
                return mid
        return -1


class UnsupportedPack(Exception):
    """A pack index this module does not read (not version 2)."""


def read_index(path: str) -> PackIndex:
    with open(path, "rb") as stream:
        data = stream.read()
    if data[:8] != b"\xfftOc" + struct.pack(">I", 2):
        raise UnsupportedPack(f"{path}: not a version 2 pack index")
    fanout = struct.unpack_from(">256I", data, 8)
    count = fanout[255]
    start = 8 + 256 * 4
    ids = data[start : start + 20 * count]
    start += 20 * count
    crcs = struct.unpack_from(f">{count}I", data, start)
    start += 4 * count
    small = struct.unpack_from(f">{count}I", data, start)
    start += 4 * count
    if small and max(small) & 0x80000000:
        large = len([o for o in small if o & 0x80000000])
        table = struct.unpack_from(f">{large}Q", data, start)
        small = tuple(table[o & 0x7FFFFFFF] if o & 0x80000000 else o for o in small)
    return PackIndex(ids, crcs, small, fanout)


def _parse_header(data: bytes | mmap.mmap, offset: int) -> tuple[int, int]:
    """(type, offset after the type-and-size header) of the entry at ``offset``."""
    byte = data[offset]
    kind = (byte >> 4) & 7
    offset += 1
    while byte & 0x80:
        byte = data[offset]
        offset += 1
    return kind, offset


def parse_entry(data: bytes | mmap.mmap, offset: int) -> tuple[int, int, int]:
    """(type, size, offset after the header) of the pack entry at ``offset``."""
    byte = data[offset]
    kind = (byte >> 4) & 7
    size = byte & 0x0F
    shift = 4
    offset += 1
    while byte & 0x80:
        byte = data[offset]
        offset += 1
        size |= (byte & 0x7F) << shift
        shift += 7
    return kind, size, offset


def parse_ofs(data: bytes | mmap.mmap, offset: int) -> tuple[int, int]:
    """(distance back to the base, offset after it) of an OFS_DELTA entry's base reference."""
    byte = data[offset]
    offset += 1
    distance = byte & 0x7F
    while byte & 0x80:
        byte = data[offset]
        offset += 1
        distance = ((distance + 1) << 7) | (byte & 0x7F)
    return distance, offset


@dataclass
class PendingPack:
    """A pack written under a temporary name: :meth:`install` makes it part of the repository,
    :meth:`discard` forgets it."""

    pack_dir: str
    tmp: str
    index: bytes  # the complete pack index
    checksum: bytes

    def install(self) -> str:
        """Write the index and move the pack into place; returns its path."""
        try:
            return _install(self.pack_dir, self.tmp, self.index, self.checksum)
        finally:
            self.discard()

    def discard(self) -> None:
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def copy_without(
    pack_path: str, index: PackIndex, drop: set[bytes], read: Callable[[bytes], tuple[int, bytes]]
) -> PendingPack:
    """Write a copy of a pack without the objects in ``drop`` next to it, under a temporary
    name; the caller installs it, then deletes the old pack.

    Entries are copied byte for byte, as ``git repack`` reuses them; only an OFS_DELTA whose
    base moved gets a new base distance, and an object whose delta base is dropped is stored
    whole (``read`` gives its type and content), so nothing of a dropped object stays behind.

    A pack holds a million entries and loses a few: the entries between two changes are copied
    as one byte range, and the new index is the old one without the dropped entries, each
    offset moved by what was removed or resized before it (a step function of the old offset).
    Only an entry's first byte is read, and an OFS_DELTA's base distance.
    """
    count = len(index)
    offsets = index.offsets
    starts = sorted(offsets)
    pack_dir = os.path.dirname(pack_path)
    dropped: dict[int, int] = {}  # old offset -> position in the index, of the dropped entries
    for oid in drop:
        found = index.find(oid)
        if found >= 0:
            dropped[offsets[found]] = found
    position_of: dict[int, int] = {}  # old offset -> position in the index, made when needed
    lookups = 0

    def position(offset: int) -> int:
        """The position in the index of the entry at ``offset``: a few are found by a scan (in C)
        of the offsets, then a table of all of them is made."""
        nonlocal lookups
        if not position_of:
            lookups += 1
            if lookups <= 8:
                return offsets.index(offset)
            position_of.update((at, i) for i, at in enumerate(offsets))
        return position_of[offset]

    fd, tmp = _mkstemp("tmp_pack_", pack_dir)
    digest = hashlib.sha1()
    crcs = list(index.crcs)
    # the old offsets at which the shift (new offset - old offset) changes, and the shift from there
    breaks: list[int] = [0]
    shifts: list[int] = [0]
    try:
        with open(pack_path, "rb") as source, os.fdopen(fd, "wb") as out:
            data = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                header = b"PACK" + struct.pack(">II", 2, count - len(dropped))
                out.write(header)
                digest.update(header)
                starts.append(len(data) - 20)
                shift = 0  # new offset - old offset of the current entry
                changed = 0  # the entries from this old offset on have ``shift``
                run_start = 12  # the kept entries not copied yet start here
                for j in range(count):
                    start = starts[j]
                    if start in dropped:
                        _flush(out, digest, data, run_start, start)
                        run_start = changed = starts[j + 1]
                        shift -= changed - start
                        breaks.append(changed)
                        shifts.append(shift)
                        continue
                    byte = data[start]
                    kind = (byte >> 4) & 7
                    if kind == OFS_DELTA:
                        after = start + 1
                        while byte & 0x80:
                            byte = data[after]
                            after += 1
                        payload = after  # the base distance, then the deflated delta
                        byte = data[payload]
                        payload += 1
                        distance = byte & 0x7F
                        while byte & 0x80:
                            byte = data[payload]
                            payload += 1
                            distance = ((distance + 1) << 7) | (byte & 0x7F)
                        base = start - distance
                        if base >= changed:
                            continue  # base and entry move together: copied as they are
                        if base in dropped:
                            entry = _whole(*read(index.id(position(start))))
                        else:
                            new_distance = (
                                start + shift - (base + shifts[bisect.bisect_right(breaks, base) - 1])
                            )
                            if new_distance == distance:
                                continue
                            entry = data[start:after] + _ofs(new_distance) + data[payload : starts[j + 1]]
                    elif kind == REF_DELTA:
                        after = start + 1
                        while byte & 0x80:
                            byte = data[after]
                            after += 1
                        if data[after : after + 20] not in drop:
                            continue
                        entry = _whole(*read(index.id(position(start))))
                    else:
                        continue
                    _flush(out, digest, data, run_start, start)
                    out.write(entry)
                    digest.update(entry)
                    end = starts[j + 1]
                    crcs[position(start)] = zlib.crc32(entry)
                    run_start = changed = end
                    shift += len(entry) - (end - start)
                    breaks.append(changed)
                    shifts.append(shift)
                _flush(out, digest, data, run_start, starts[count])
            finally:
                data.close()
            checksum = digest.digest()
            out.write(checksum)
        new_index = _index_without(index, sorted(dropped.values()), crcs, breaks, shifts, checksum)
    except BaseException:
        os.unlink(tmp)
        raise
    return PendingPack(pack_dir, tmp, new_index, checksum)


def _index_without(
    index: PackIndex,
    dropped: list[int],
    crcs: list[int],
    breaks: list[int],
    shifts: list[int],
    checksum: bytes,
) -> bytes:
    """The version 2 index of a copy of the pack of ``index`` without the entries at positions
    ``dropped`` (sorted), with ``crcs``, each offset moved by ``shifts`` (from ``breaks`` on)."""
    count = len(index)
    ids = index.ids
    offsets = index.offsets
    kept_ids: list[bytes] = []
    kept_offsets: list[int] = []
    kept_crcs: list[int] = []
    previous = 0
    for position in (*dropped, count):  # the runs of kept entries, in the order of the ids
        kept_ids.append(ids[20 * previous : 20 * position])
        kept_offsets += offsets[previous:position]
        kept_crcs += crcs[previous:position]
        previous = position + 1
    gone = [0] * 256
    for position in dropped:
        gone[ids[20 * position]] += 1
    fanout: list[int] = []
    total = 0
    for byte in range(256):
        total += gone[byte]
        fanout.append(index.fanout[byte] - total)
    if len(breaks) == 1:
        moved = kept_offsets
    else:
        where = bisect.bisect_right
        moved = [offset + shifts[where(breaks, offset) - 1] for offset in kept_offsets]
    small: list[int] = []
    large: list[int] = []
    if moved and max(moved) >= 0x80000000:
        for offset in moved:
            if offset < 0x80000000:
                small.append(offset)
            else:
                small.append(0x80000000 | len(large))
                large.append(offset)
    else:
        small = moved
    out = bytearray(b"\xfftOc" + struct.pack(">I", 2))
    out += struct.pack(">256I", *fanout)
    out += b"".join(kept_ids)
    out += struct.pack(f">{len(small)}I", *kept_crcs)
    out += struct.pack(f">{len(small)}I", *small)
    out += struct.pack(f">{len(large)}Q", *large)
    out += checksum
    out += hashlib.sha1(out).digest()
    return bytes(out)


def _whole(kind: int, raw: bytes) -> bytes:
    return bytes(_entry_header(kind, len(raw))) + deflate(raw)


def _flush(out: BinaryIO, digest: Any, data: mmap.mmap, start: int, end: int) -> None:
    """Copy ``data[start:end]``, a few MiB at a time."""
    while start < end:
        chunk = data[start : min(end, start + (4 << 20))]
        out.write(chunk)
        digest.update(chunk)
        start += len(chunk)


# -- reading objects ------------------------------------------------------------------------------


def apply_delta(base: bytes, delta_data: bytes) -> bytes:
    """The object a git delta makes of ``base``."""
    i = 0
    for _size in range(2):  # the base's and the result's sizes
        while delta_data[i] & 0x80:
            i += 1
        i += 1
    out = bytearray()
    end = len(delta_data)
    while i < end:
        cmd = delta_data[i]
        i += 1
        if cmd & 0x80:  # copy from the base: which offset and size bytes follow, by bit
            offset = size = 0
            if cmd & 0x01:
                offset = delta_data[i]
                i += 1
            if cmd & 0x02:
                offset |= delta_data[i] << 8
                i += 1
            if cmd & 0x04:
                offset |= delta_data[i] << 16
                i += 1
            if cmd & 0x08:
                offset |= delta_data[i] << 24
                i += 1
            if cmd & 0x10:
                size = delta_data[i]
                i += 1
            if cmd & 0x20:
                size |= delta_data[i] << 8
                i += 1
            if cmd & 0x40:
                size |= delta_data[i] << 16
                i += 1
            out += base[offset : offset + (size or 0x10000)]
        elif cmd:
            out += delta_data[i : i + cmd]
            i += cmd
        else:
            raise ValueError("delta instruction 0")
    return bytes(out)


class PackReader:
    """Reads objects out of a repository's packs, keeping recently read ones.

    A history rewrite reads every version of a folder's tree in order. In a pack each is a
    delta of a neighbouring version; libgit2 keeps only the whole object at the bottom of a
    chain and applies the chain's deltas again for every read, where this reader keeps what it
    resolved and applies one delta. Every object read is checked against its id; anything
    unusual (a loose object, a base in another pack, a damaged entry) returns None, and the
    caller asks libgit2.
    """

    def __init__(self, pack_dir: str, cache_bytes: int = 64 << 20) -> None:
        self._packs: list[tuple[PackIndex, mmap.mmap]] = []
        self._cache: dict[tuple[int, int], tuple[int, bytes]] = {}
        self._cached = 0
        self._limit = cache_bytes
        self._last = 0
        for name in sorted(os.listdir(pack_dir)):
            if not (name.startswith("pack-") and name.endswith(".idx")):
                continue
            try:
                index = read_index(os.path.join(pack_dir, name))
                with open(os.path.join(pack_dir, name[:-4] + ".pack"), "rb") as stream:
                    data = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError, UnsupportedPack):
                continue
            self._packs.append((index, data))

    def close(self) -> None:
        for _index, data in self._packs:
            data.close()
        self._packs = []
        self._cache.clear()

    def read(self, oid: bytes) -> tuple[int, bytes] | None:
        """(type, content) of the object ``oid``, or None when libgit2 should read it."""
        # the pack that had the last object first: versions of a tree tend to share a pack
        for number in (self._last, *range(len(self._packs))) if self._packs else ():
            index = self._packs[number][0]
            position = index.find(oid)
            if position >= 0:
                self._last = number
                try:
                    found = self._resolve(number, index.offsets[position])
                except (ValueError, IndexError, zlib.error):
                    return None
                if found is None or object_id(found[0], found[1]) != oid:
                    return None
                return found
        return None

    def _resolve(self, number: int, offset: int) -> tuple[int, bytes] | None:
        data = self._packs[number][1]
        deltas: list[tuple[int, bytes]] = []  # (offset, delta), the outermost first
        while True:
            cached = self._cache.get((number, offset))
            if cached is not None:
                kind, raw = cached
                break
            kind, size, at = parse_entry(data, offset)
            if kind == OFS_DELTA:
                distance, at = parse_ofs(data, at)
                deltas.append((offset, inflate(data, at, size)))
                offset -= distance
                continue
            if kind not in NAMES:
                return None  # a REF_DELTA: its base may be anywhere
            raw = inflate(data, at, size)
            self._keep(number, offset, kind, raw)
            break
        for at_offset, delta_data in reversed(deltas):
            raw = apply_delta(raw, delta_data)
            self._keep(number, at_offset, kind, raw)
        return kind, raw

    def _keep(self, number: int, offset: int, kind: int, raw: bytes) -> None:
        self._cache[(number, offset)] = (kind, raw)
        self._cached += len(raw)
        while self._cached > self._limit and self._cache:
            oldest = next(iter(self._cache))
            self._cached -= len(self._cache.pop(oldest)[1])


def inflate(data: bytes | mmap.mmap, start: int, size: int) -> bytes:
    """The ``size`` bytes a pack entry's zlib stream at ``data[start:]`` inflates to; ValueError
    when it inflates to another size or ends early."""
    chunk = size + (size >> 10) + 64  # enough for the whole stream unless it was badly compressed
    stream = zlib.decompressobj()
    whole = stream.decompress(data[start : start + chunk], size + 1)
    if stream.eof and len(whole) == size:
        return whole  # the usual case: one call
    stream = zlib.decompressobj()
    parts: list[bytes] = []
    got = 0
    pending = b""
    end = len(data)
    while not stream.eof:
        if not pending:
            if start >= end:
                raise ValueError("pack entry cut short")
            pending = data[start : start + chunk]
            start += chunk
        part = stream.decompress(pending, size + 1 - got)
        pending = stream.unconsumed_tail
        got += len(part)
        parts.append(part)
        if got > size:
            raise ValueError("pack entry longer than its header says")
    if got != size:
        raise ValueError("pack entry shorter than its header says")
    return b"".join(parts)
