"""Retrying a task on an error a retry may fix (`HeadwaterError.retryable`: a timeout, a
connection reset, an HTTP 5xx after the connector's own retries, a write conflict), never on
any other.

`headwater.yml`'s `defaults.retries` (or a contract's or model's `retries:`) is how many more
attempts a task gets, and its `timeout` the time after which no new attempt starts. Waits
grow exponentially from `defaults.backoff` with full jitter (each wait is drawn between zero
and its cap: 1 s, 2 s, 4 s … at most 10 minutes), so workers retrying the same source spread
out instead of retrying in step.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from headwater.errors import HeadwaterError

T = TypeVar("T")
FIRST_WAIT = 1.0  # seconds: the cap of the wait before the second attempt
LONGEST_WAIT = 600.0


@dataclass
class Retrying:
    retries: int
    budget: float  # seconds after the first attempt started, past which none starts
    first_wait: float = FIRST_WAIT
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    uniform: Callable[[float, float], float] = random.uniform  # the jitter's draw
    on_retry: Callable[[HeadwaterError, float], None] | None = None  # (error, wait) before it
    failures: list[HeadwaterError] = field(default_factory=list)  # the attempts that failed

    def call(self, attempt: Callable[[], T]) -> T:
        """`attempt()`, again after each retryable error while retries and time remain;
        the last error is raised when they run out."""
        started = self.clock()
        for number in range(self.retries + 1):
            try:
                return attempt()
            except HeadwaterError as err:
                wait = self.uniform(0.0, self.cap(number))
                over = self.clock() + wait - started > self.budget
                if not err.retryable or number == self.retries or over:
                    raise
                self.failures.append(err)
                if self.on_retry is not None:
                    self.on_retry(err, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def cap(self, number: int) -> float:
        """The longest wait after failed attempt `number` (0: the first)."""
        return min(LONGEST_WAIT, self.first_wait * 2.0**number)

    @property
    def attempts(self) -> int:
        """Attempts made so far by a `call` that returned."""
        return len(self.failures) + 1
