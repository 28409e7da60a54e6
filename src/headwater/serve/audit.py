"""The audit trail of the data API: every request, written to the catalog in batches.

A request never waits on the catalog (a run may hold its write lock): entries queue in
memory and a background thread writes them once a second, in one transaction; closing the
server writes what is left. An entry that cannot be written yet stays queued for the next try.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from headwater.zones.catalog import Catalog
from headwater.zones.catalog.products import Audited

log = logging.getLogger("headwater.serve")
MAX_QUEUED = 100_000  # past this, the oldest entries are written first and not dropped


class AuditTrail:
    def __init__(self, catalog: Catalog, *, every: float = 1.0):
        self.catalog, self.every = catalog, every
        self._queue: list[Audited] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hw-audit", daemon=True)
        self._thread.start()

    def record(
        self,
        *,
        actor: str | None,
        role: str | None,
        subject: str | None,
        status: int,
        detail: dict[str, Any],
        action: str = "read",
    ) -> None:
        entry = Audited(datetime.now(UTC), actor, role, action, subject, status, detail)
        with self._lock:
            self._queue.append(entry)
            full = len(self._queue) >= MAX_QUEUED
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            entries, self._queue = self._queue, []
        if not entries:
            return
        try:
            self.catalog.audit(entries)
        except Exception as err:  # the catalog is busy or gone: keep them for the next try
            log.warning("audit entries not written yet (%s); retrying", err)
            with self._lock:
                self._queue = entries + self._queue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()
