"""The import report: what was converted (counts per kind), and every construct that was not,
with its `path:line` in the dbt project and what to do about it. Written as `OUT/IMPORT.md`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# the report's first line: how a later import recognises a folder an import wrote
MARKER = "<!-- written by `headwater import dbt`; importing again overwrites this folder -->"
REPORT_FILE = "IMPORT.md"


@dataclass(frozen=True, order=True)
class Finding:
    """One dbt construct the import could not convert (or converted with a change of meaning).

    Ordered by file, line, construct: the report lists them in that order.
    """

    file: str  # relative to the dbt project
    line: int | None
    construct: str  # what it is, as written in dbt: `dbt_utils.pivot(...)`, `test not_constant`
    action: str  # what the user should do

    @property
    def where(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def render(self) -> str:
        return f"- `{self.where}` {self.construct}: {self.action}"

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "construct": self.construct,
            "action": self.action,
        }


@dataclass
class Report:
    """What one import did; filled in as the conversion goes, rendered once at the end."""

    project: str = ""
    converted: Counter[str] = field(default_factory=Counter)
    findings: set[Finding] = field(default_factory=set)

    def flag(self, file: str, line: int | None, construct: str, action: str) -> None:
        """Record a construct that was not converted (the same one twice is one line)."""
        self.findings.add(Finding(file, line, construct, action))

    def count(self, what: str, n: int = 1) -> None:
        self.converted[what] += n

    @property
    def unconverted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (f.file, f.line or 0, f.construct, f.action))

    def render(self) -> str:
        """The Markdown report, byte-identical for the same dbt project."""
        lines = [
            MARKER,
            f"# Imported from dbt project `{self.project}`",
            "",
            "## Converted",
            "",
            "| what | count |",
            "|---|---|",
        ]
        lines += [f"| {what} | {n} |" for what, n in sorted(self.converted.items())]
        found = self.unconverted
        lines += ["", f"## Not converted ({len(found)})", ""]
        if found:
            lines.append(
                "Each line names the place in the dbt project and what to do in this one. "
                "`headwater run` refuses a model that still holds Jinja, naming the line."
            )
            lines.append("")
            lines += [f.render() for f in found]
        else:
            lines.append("Everything was converted.")
        return "\n".join(lines) + "\n"
