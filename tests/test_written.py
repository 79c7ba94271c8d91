"""The files a bulk write keeps for the derived indexes (gitrecords._written)."""

from __future__ import annotations

import os
from pathlib import Path

from gitrecords import _written


def test_kept_files_are_read_back_by_record_within_the_budget(tmp_path: Path) -> None:
    files = _written.WrittenFiles(str(tmp_path), budget=3 * (8 + 2_000))
    try:
        assert files.add("a", b"old a", b"new a" * 100)
        assert files.add("b", b"", b"new b")
        assert not files.add("a", b"again", b"again")  # a record's files are kept once
        assert not files.add("c", b"x" * 4_000, b"y" * 4_000)  # past the budget: not kept
        assert files.add("d", b"old d", b"new d")  # what still fits is
        assert len(files) == 3 and files.location("c") is None
        fd = files.ready()
        assert _written.read(fd, files.location("a")) == (b"old a", b"new a" * 100)
        assert _written.read(fd, files.location("b")) == (b"", b"new b")
        assert _written.read(fd, files.location("d")) == (b"old d", b"new d")
        # the file has no name: a crash leaves nothing in the folder
        assert os.listdir(tmp_path) == []
    finally:
        files.close()


def test_a_forked_process_reads_the_kept_files(tmp_path: Path) -> None:
    files = _written.WrittenFiles(str(tmp_path))
    try:
        for n in range(2_000):  # more than one write's worth of buffer
            files.add(str(n), b"%d old" % n * 100, b"%d new" % n * 100)
        fd, where = files.ready(), files.location("1999")
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            same = _written.read(fd, where) == (b"1999 old" * 100, b"1999 new" * 100)
            os.write(writer, b"ok" if same else b"no")
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(reader, 2) == b"ok"
    finally:
        files.close()


def test_a_full_disk_keeps_nothing(tmp_path: Path, monkeypatch) -> None:
    """Files that cannot be written out are not kept: every record is read from the packs."""
    files = _written.WrittenFiles(str(tmp_path))
    try:
        assert files.add("a", b"old", b"new")

        def full(fd: int, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "write", full)
        assert not files.add("b", b"x" * (1 << 20), b"y")  # the buffer is written out, and fails
        assert len(files) == 0 and files.location("a") is None
        assert not files.add("c", b"old", b"new")  # nothing more is kept
        monkeypatch.undo()
        files.ready()
        assert len(files) == 0
    finally:
        files.close()
