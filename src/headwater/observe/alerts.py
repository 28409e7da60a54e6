"""Alert channels: where an alert event (an incident opened or resolved) is sent.

Two kinds here — a JSON webhook (POST, any 2xx is delivered) and a JSON-lines log file; the
observability stage adds Slack, e-mail and PagerDuty. Sending never raises: a channel that
fails says why, and the event is kept to be sent again (see `zones.catalog.alerts`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class Channel(Protocol):
    @property
    def name(self) -> str:
        """Names the channel in the catalog (stable across restarts)."""
        ...

    def send(self, body: dict[str, Any]) -> str | None:
        """Send one alert event; None when delivered, else why not."""
        ...


@dataclass(frozen=True)
class Webhook:
    url: str  # as sent: `${VAR}`s expanded
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    written: str = ""  # the URL as headwater.yml writes it (a secret stays a `${VAR}`)

    @property
    def name(self) -> str:
        return f"webhook:{self.written or self.url}"

    def send(self, body: dict[str, Any]) -> str | None:
        import httpx

        try:
            answer = httpx.post(self.url, json=body, headers=self.headers, timeout=self.timeout_s)
        except httpx.HTTPError as err:
            return f"{type(err).__name__}: {err}"
        if answer.is_success:
            return None
        return f"HTTP {answer.status_code}: {answer.text[:200]}"


@dataclass(frozen=True)
class LogFile:
    path: Path

    @property
    def name(self) -> str:
        return f"log:{self.path}"

    def send(self, body: dict[str, Any]) -> str | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(body, default=str, sort_keys=True) + "\n")
        except OSError as err:
            return f"cannot write {self.path}: {err.strerror or err}"
        return None
