"""The one error of the data API: an HTTP status, what went wrong and what to do."""

from __future__ import annotations


class ApiError(Exception):
    """Answered as `{"error": message, "hint": hint}` with `status`."""

    def __init__(self, status: int, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint

    def body(self) -> dict[str, str]:
        return {"error": self.message, **({"hint": self.hint} if self.hint else {})}
