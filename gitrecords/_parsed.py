"""Record files parsed before, by blob id: what makes reading a file again cheap.

A blob id always names the same bytes, so what was learnt from a blob holds for
ever, with no invalidation: a cache keyed by blob id is never stale. A file is
parsed strictly the first time (:func:`gitrecords.layout.loads`: duplicate
keys, NaN, unpaired surrogates are refused); the second time it is parsed
without the checks it already passed, and its value is kept as ``marshal``
bytes; from then on a read is one ``marshal.loads``, a new copy of the value
that the caller may change freely (3-4 times faster than reading the blob from
the pack and parsing it). A file read once costs almost nothing to remember.
"""

from __future__ import annotations

import marshal
import threading
from collections.abc import Callable
from typing import Any

from . import layout
from .errors import InvalidRecordError

#: a blob parsed once: checked, value not kept (yet)
_CHECKED = b""


class ParsedBlobs:
    """Blob ids of record files that passed the strict parse, and the values of those read
    more than once (bounded: ``max_entries`` blobs, ``max_bytes`` of values; oldest out first)."""

    def __init__(self, max_entries: int = 20_000, max_bytes: int = 8 << 20, max_item: int = 64 << 10) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_item = max_item
        #: blob -> (size of the file, marshal bytes of its value or _CHECKED)
        self._items: dict[Any, tuple[int, bytes]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def read(self, blob: Any, limit: int, read: Callable[[], bytes]) -> Any:
        """The value of the record file ``blob``; ``read()`` gives its bytes when needed.

        Raises :class:`InvalidRecordError` for a file larger than ``limit`` bytes (also for
        one read before under a larger limit) and for a file that is not strict JSON.
        """
        item = self._items.get(blob)
        if item is not None and item[1] and item[0] <= limit:
            return marshal.loads(item[1])
        raw = read()
        if len(raw) > limit:
            raise InvalidRecordError(f"record: file is larger than {limit} bytes")
        if item is None:
            value = layout.loads(raw)
            self._add(blob, len(raw), _CHECKED)
            return value
        value = layout.loads(raw, checked=True)
        try:
            packed = marshal.dumps(value)
        except ValueError:  # nested deeper than marshal goes: stays checked only
            return value
        if len(packed) <= self.max_item:
            self._add(blob, len(raw), packed)
        return value

    def __contains__(self, blob: Any) -> bool:
        return blob in self._items

    def kept(self, blob: Any) -> bool:
        """Whether the value of ``blob`` is kept (it was read more than once)."""
        item = self._items.get(blob)
        return item is not None and bool(item[1])

    def _add(self, blob: Any, size: int, packed: bytes) -> None:
        with self._lock:
            old = self._items.get(blob)
            self._items[blob] = (size, packed)
            self._size += len(packed) - (len(old[1]) if old is not None else 0)
            while self._size > self.max_bytes or len(self._items) > self.max_entries:
                _size, dropped = self._items.pop(next(iter(self._items)))
                self._size -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0
