"""Retrying a task on an error a retry may fix (`HeadwaterError.retryable`: a timeout, a
connection reset, an HTTP 5xx after the connector's own retries), never on any other.

`headwater.yml`'s `defaults.retries` is how many more attempts a task gets, and
`defaults.timeout` the time after which no new attempt starts (an attempt under way is not
interrupted: cancelling one comes with the scheduler). Waits grow exponentially from one
second, with jitter, so workers retrying the same source do not retry in step.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from headwater.errors import HeadwaterError

T = TypeVar("T")
FIRST_WAIT = 1.0  # seconds before the second attempt
LONGEST_WAIT = 60.0


@dataclass
class Retrying:
    retries: int
    budget: float  # seconds after the first attempt started, past which none starts
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    failures: list[HeadwaterError] = field(default_factory=list)  # the attempts that failed

    def call(self, attempt: Callable[[], T]) -> T:
        """`attempt()`, again after each retryable error while retries and time remain;
        the last error is raised when they run out."""
        started = self.clock()
        for number in range(self.retries + 1):
            try:
                return attempt()
            except HeadwaterError as err:
                wait = min(LONGEST_WAIT, FIRST_WAIT * 2**number) * random.uniform(0.5, 1.5)
                over = self.clock() + wait - started > self.budget
                if not err.retryable or number == self.retries or over:
                    raise
                self.failures.append(err)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
