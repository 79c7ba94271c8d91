"""The old and new bytes of the records a bulk write changes, kept for the derived indexes.

A bulk edit reads each record's file, changes it and writes the new one: it has both in hand.
The search index then compares each record's new file with its old one (only what differs is
written), and read both again out of the packs: about 70 µs a record in its worker processes
(two files, a delta each in two), some 5 s of CPU for an edit of 100,000 records, and this
process looked each old file up in the old tree. The writer keeps them here instead, one
after the other in a temporary file (not in memory: 2.6 KB a record), and the search index
reads them back with one ``pread`` each, in its forked workers too, which inherit the file.

The file has no name (``O_TMPFILE`` where the system has it): a crash leaves nothing behind.
Past :data:`BUDGET` bytes nothing more is kept; a record not kept is read from the packs as
before. What is kept says only "this record's file was ``old`` and became ``new`` in the
write": a reader uses it only for a catch-up of exactly that write's commit, whose parent is
where ``old`` was (the write path checked each record's file there against the blob the
writer read).
"""

from __future__ import annotations

import os
import struct
import tempfile

#: the bytes kept at most (about 200,000 records of 1.3 KB); the rest is read from the packs
BUDGET = 512 << 20
_HEAD = struct.Struct(">II")  # the lengths of the old and the new file
#: the bytes gathered before one write to the file
_FLUSH = 1 << 20


class WrittenFiles:
    """(old, new) file of each record a write changes, by record id (its text form). The old
    file is a live record's (not a tombstone): a reader may count the records kept as records
    it has live."""

    def __init__(self, folder: str | None = None, budget: int | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=folder, buffering=0)
        self._fd = self._file.fileno()
        self._buffer = bytearray()
        self._size = 0  # the bytes kept, in the file and the buffer
        self._budget = BUDGET if budget is None else budget
        self._where: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._where)

    def add(self, record_id: str, old: bytes, new: bytes) -> bool:
        """Keep a record's ``old`` and ``new`` file; False (nothing kept) past the budget."""
        size = _HEAD.size + len(old) + len(new)
        if self._size + size > self._budget or size >> 32 or record_id in self._where:
            return False
        buffer = self._buffer
        buffer += _HEAD.pack(len(old), len(new))
        buffer += old
        buffer += new
        if len(buffer) >= _FLUSH and not self._flushed():
            return False
        # where and how long, in one int (a dict of 100,000 tuples would take 6 MB more)
        self._where[record_id] = self._size << 32 | size
        self._size += size
        return True

    def _flushed(self) -> bool:
        """Write the buffer to the file; False if it could not be (the disk is full): then
        nothing is kept any more, and every record is read from the packs."""
        view = memoryview(self._buffer)
        written = True
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            written = False
        finally:
            view.release()
        self._buffer.clear()
        if not written:
            self._where.clear()
            self._budget = 0
        return written

    def location(self, record_id: str) -> int | None:
        """Where the files of ``record_id`` are (for :func:`read`), None when not kept."""
        return self._where.get(record_id)

    def ready(self) -> int:
        """Write out what is buffered; the file descriptor to :func:`read` from (a forked
        process inherits it)."""
        self._flushed()
        return self._fd

    def close(self) -> None:
        self._where.clear()
        self._file.close()


def read(fd: int, location: int) -> tuple[bytes, bytes]:
    """(old, new) file kept at ``location`` in the file ``fd`` (see :meth:`WrittenFiles.ready`)."""
    offset, size = location >> 32, location & 0xFFFFFFFF
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise OSError(f"the written files end at {offset + len(data)}, not {offset + size}")
    old_size, new_size = _HEAD.unpack_from(data)
    start = _HEAD.size
    return data[start : start + old_size], data[start + old_size : start + old_size + new_size]
