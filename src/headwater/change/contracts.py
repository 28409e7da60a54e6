"""Is a contract's change compatible with what its raw table already holds? A breaking change
— a declared column removed, a column retyped other than widened, allowed values narrowed —
needs a new `schema_version`: without one it is refused, before anything lands.

The raw table records the contract it landed under (its table properties, written with every
landing): the `schema_version`, the columns pinned under it (`hw.schema.<version>`) and the
allowed values of its `valid_values` rules (`hw.valid_values.<version>`). datacontract-cli
checks the same between two files; reading the raw table instead means the check holds
whichever file the previous landing used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from headwater.contracts import Contract
from headwater.contracts.specs import sql_type
from headwater.engine.dialect import AUTHORED
from headwater.zones.lake import PREFIX, Lake

# widenings Iceberg allows in place (and readers never lose a value by)
_WIDER = {
    ("TINYINT", "SMALLINT"),
    ("TINYINT", "INT"),
    ("TINYINT", "BIGINT"),
    ("SMALLINT", "INT"),
    ("SMALLINT", "BIGINT"),
    ("INT", "BIGINT"),
    ("FLOAT", "DOUBLE"),
}


@dataclass(frozen=True)
class ContractChange:
    table: str
    recorded_version: str
    version: str
    breaking: list[str] = field(default_factory=list)
    compatible: list[str] = field(default_factory=list)
    impossible: list[str] = field(default_factory=list)  # no schema_version makes it land

    @property
    def refused(self) -> bool:
        """A breaking change under the schema_version the raw table already holds, or one
        the raw table cannot take under any."""
        return bool(self.impossible) or (
            bool(self.breaking) and self.version == self.recorded_version
        )

    def explain(self) -> str:
        if self.impossible:
            return (
                f"{self.table}: {'; '.join(self.impossible)}: a raw table keeps every batch it "
                "landed, and its columns can only widen (int to bigint, float to double)"
            )
        return (
            f"{self.table}: a breaking change under schema_version {self.version!r}, which the "
            f"raw table already holds: {'; '.join(self.breaking)}"
        )

    @property
    def hint(self) -> str:
        if self.impossible:
            return (
                "keep the column's type and add a new column for the new one (e.g. "
                "amount_text), or land the new shape under a new contract"
            )
        return "raise its schema_version to land under the new schema, or undo the change"


def compare(contract: Contract, lake: Lake) -> ContractChange | None:
    """How `contract` differs from what its raw table recorded; None when nothing landed yet
    or nothing was recorded."""
    table = lake.table(contract.table)
    if table is None:
        return None
    props = table.properties
    recorded = props.get(f"{PREFIX}schema_version")
    if recorded is None:
        return None
    before = {c["name"]: c for c in json.loads(props.get(f"{PREFIX}schema.{recorded}", "[]"))}
    enums = json.loads(props.get(f"{PREFIX}valid_values.{recorded}", "{}"))
    change = ContractChange(contract.table, recorded, contract.schema_version)
    now = {c.name: c for c in contract.columns}
    if not contract.columns:  # inferred: nothing declared to compare
        return change
    for name, column in before.items():
        if name not in now:
            change.breaking.append(f"column {name} removed")
            continue
        old, new = _type(column.get("type", "varchar")), _type(now[name].type)
        if old != new and (old, new) in _WIDER:
            change.compatible.append(f"column {name} widened from {old} to {new}")
        elif old != new:
            retyped = f"column {name} retyped from {old} to {new}"
            change.breaking.append(retyped)
            change.impossible.append(retyped)
    change.compatible.extend(f"column {n} added" for n in now if n not in before)
    allowed = contract.allowed_values()
    for column, values in enums.items():
        dropped = sorted(set(values) - set(allowed.get(column, values)))
        if column in allowed and dropped:
            change.breaking.append(
                f"valid values of {column} narrowed: {', '.join(dropped)} no longer allowed"
            )
    return change


def _type(text: str) -> str:
    """A contract's column type as people write it (`VARCHAR`, `DECIMAL(12, 2)`)."""
    shown = sql_type(text).sql(dialect=AUTHORED).upper()
    return "VARCHAR" if shown == "TEXT" else shown
