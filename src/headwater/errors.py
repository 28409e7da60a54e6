"""Every error headwater raises, on two axes: what went wrong and whether a retry can help.

    HeadwaterError                 base; `retryable` says whether trying again may succeed
    ├── UsageError                 a command's argument names nothing there is (exit 2)
    ├── Denied                     a policy refuses a read: no grant, a restricted column (exit 5)
    ├── SpecError                  a project file is wrong (YAML, contract, model header, rule)
    │   ├── ModelError             a model's SQL is wrong: syntax, cycle, unknown table/column
    │   └── LeakError              a public model would show a PII column unmasked
    ├── DataError                  records break their contract beyond what quarantine absorbs
    ├── EngineError                the engine refused or failed a statement
    │   └── TransientEngineError   ... because of another transaction (a write conflict) retryable
    ├── TimedOut                   a task ran past its timeout and was stopped
    ├── StoreError                 a store (catalog, lake, warehouse) cannot be opened
    ├── SourceError                a source cannot be read (missing path, unreadable file)
    │   └── TransientSourceError   ... but may be readable on retry (timeouts, 5xx)   retryable
    └── UserCodeError              the user's own Python raised; reported as theirs, not ours

`retryable` is the transient/permanent axis: the executor retries a task only after a
transient error (with exponential backoff and full jitter), never after a permanent one (a
wrong spec, SQL, contract breach, user code, a timeout), which would fail the same way again.

Each error carries a `where` (file, line, field) so the CLI prints one line a user can act on,
and an `exit_code`, the CLI's exit status when it stops a command:

    0   done                    1   ran, and something failed (a model, a rule, an ingest)
    2   usage: a wrong flag     3   the project is wrong: fix a file (SpecError)
    4   a store or source cannot be reached or read
    5   a policy refused it (policies.yml: a role without the grant)
    75  temporary: the same command may succeed later (`retryable`, EX_TEMPFAIL)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in the user's project an error points: a file, optionally a line and a field."""

    file: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        text = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{text}: {self.field}" if self.field else text


class HeadwaterError(Exception):
    """Base of every error headwater raises on purpose."""

    retryable = False
    exit_code = 1

    def __init__(self, message: str, *, where: Location | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.render())

    def __str__(self) -> str:
        return self.render()  # as it is now: a `where` set after raising shows too

    def render(self) -> str:
        """The one line the CLI prints: `where: message (hint)`."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}; {self.hint}" if self.hint else text


class UsageError(HeadwaterError):
    """A command's argument or option names nothing there is (`-k` matching no test, a
    lineage target that is no column)."""

    exit_code = 2


class SpecError(HeadwaterError):
    """A project file (settings, contract, model header, sidecar, rule) is invalid."""

    exit_code = 3


class ModelError(SpecError):
    """A model's SQL cannot be used: syntax error, dependency cycle, unknown table or column."""


class LeakError(SpecError):
    """A model marked `privacy: public` (or a product served to a role without a PII grant)
    would show a PII-tagged column unmasked; the message names the lineage path."""


class Denied(HeadwaterError):
    """A policy refuses a read: the role has no grant on the table, or the column is
    restricted and the role does not unmask its tag."""

    exit_code = 5


class DataError(HeadwaterError):
    """Data breaks its contract in a way that cannot be quarantined record by record."""


class EngineError(HeadwaterError):
    """The engine failed a statement headwater sent it."""


class TransientEngineError(EngineError):
    """The engine failed a statement in a way a retry may fix: a write conflict with another
    transaction, which is gone once that one commits."""

    retryable = True


class TimedOut(HeadwaterError):
    """A task ran past its `timeout` and was stopped (its statement interrupted, its
    transaction rolled back): nothing it did is kept."""


class StoreError(HeadwaterError):
    """A store `headwater.yml` names (catalog, lake, warehouse) cannot be opened or created:
    an unwritable path, a file where a folder belongs, a database refusing connections."""

    exit_code = 4


class StoreBusy(StoreError):
    """A store is held by another process (DuckDB lets one process open a warehouse file at a
    time) for longer than headwater waits: the same command may succeed once it lets go."""

    retryable = True
    exit_code = 75


class SourceError(HeadwaterError):
    """A source cannot be read."""

    exit_code = 4


class TransientSourceError(SourceError):
    """A source failed in a way a retry may fix (timeout, connection reset, 5xx)."""

    retryable = True
    exit_code = 75


class UserCodeError(HeadwaterError):
    """The user's own code (a Python model, a custom check) raised."""


EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def exit_code(err: BaseException) -> int:
    """The CLI's exit status for `err` (see the table above)."""
    return err.exit_code if isinstance(err, HeadwaterError) else EXIT_FAILED
