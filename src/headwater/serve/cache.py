"""The response cache: what a page held, keyed by the data it was read from.

A key hashes (model, product snapshot, role, the normalized request, the page's position,
the format): data that changes gets a new snapshot, so an entry can never answer for newer
data — staleness is impossible by construction, not by expiry. When a model's current
snapshot moves on, the entries of the old one are dropped at once (`drop`), those of every
unchanged model stay. Bounded by bytes, least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    body: bytes
    rows: int
    next_keys: tuple[Any, ...] | None  # the cursor keys of the next page, if one follows


class Cache:
    def __init__(self, max_bytes: int = 256 << 20):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[str, tuple[Entry, Hashable]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: str, entry: Entry, tag: Hashable) -> None:
        """Keep `entry` under `key`; `tag` (model, snapshot) lets `drop` find it."""
        size = len(entry.body)
        if size > self.max_bytes // 4:  # one huge page would push out everything else
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= len(old[0].body)
            self._entries[key] = (entry, tag)
            self.bytes += size
            while self.bytes > self.max_bytes and self._entries:
                _, (gone, _) = self._entries.popitem(last=False)
                self.bytes -= len(gone.body)

    def drop(self, tag: Hashable) -> int:
        """Forget every entry tagged `tag`; how many."""
        with self._lock:
            keys = [k for k, (_, t) in self._entries.items() if t == tag]
            for key in keys:
                self.bytes -= len(self._entries.pop(key)[0].body)
            return len(keys)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            asked = self.hits + self.misses
            return {
                "entries": len(self._entries),
                "bytes": self.bytes,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
                "hit_ratio": round(self.hits / asked, 4) if asked else None,
            }
