"""Stopping a task that runs past its timeout: the statement its engine cursor runs is
interrupted (DuckDB's `interrupt()`), its transaction rolls back, and the task fails with
`TimedOut` instead of holding a worker (and the warehouse) for ever.

A model's `timeout:` (default: `defaults.timeout` in headwater.yml) is how long its build may
take. Python models run in the engine's process: their own code is not interrupted, only the
statements they send.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from headwater.engine import Engine


@dataclass
class Watch:
    text: str  # the timeout as the user wrote it
    fired: bool = False


@contextmanager
def deadline(cursor: Engine, seconds: float, text: str) -> Iterator[Watch]:
    """Interrupt `cursor` if the block is still running after `seconds`; `Watch.fired` then
    tells the block's error apart from any other."""
    watch = Watch(text)

    def stop() -> None:
        watch.fired = True
        with suppress(Exception):  # the block ended meanwhile, its cursor closed
            cursor.interrupt()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()
