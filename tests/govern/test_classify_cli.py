"""`headwater classify`: proposals with evidence from the warehouse, accepted into the files
that declare the columns, audited; and a new batch whose values change is classified again."""

from __future__ import annotations

import json
from pathlib import Path

from tests.badinput.harness import hw, mentions

UNTAGGED = "  - {name: email, type: varchar}  # from the CRM export\n"


def untag_email(root: Path) -> Path:
    contract = root / "contracts" / "customers.yml"
    text = contract.read_text(encoding="utf-8")
    contract.write_text(
        text.replace("  - {name: email, type: varchar, pii: email}\n", UNTAGGED), encoding="utf-8"
    )
    return contract


def test_proposals_carry_evidence_and_accepting_writes_the_contract(shop: Path) -> None:
    contract = untag_email(shop)
    assert hw(shop, "run").code == 0
    outcome = hw(shop, "classify", "raw.customers", "--format", "json")
    assert outcome.code == 0, outcome
    [proposal] = json.loads(outcome.output)["proposals"]
    assert (proposal["table"], proposal["column"], proposal["tag"]) == (
        "raw.customers",
        "email",
        "email",
    )
    assert proposal["confidence"] >= 0.9
    [values, name] = proposal["evidence"]
    assert values["detector"] == "email" and values["match_rate"] > 0.9 and values["sampled"]
    assert name["name_hint"] == "email"
    assert hw(shop, "classify", "--check").code == 1  # a column looks like PII, untagged
    assert "pii: email" not in contract.read_text(encoding="utf-8")  # nothing applied silently
    accepted = hw(shop, "classify", "raw.customers", "--accept")
    assert accepted.code == 0 and mentions(accepted, "contracts/customers.yml")
    text = contract.read_text(encoding="utf-8")
    assert "{name: email, type: varchar, pii: email} # from the CRM export" in text
    assert "# Customers exported nightly" in text  # the file's comments stay
    assert hw(shop, "classify", "--check").code == 0  # tagged now, and so is what reads it
    audit = json.loads(hw(shop, "audit", "--action", "classify", "--format", "json").output)
    [entry] = audit["entries"]
    assert entry["subject"] == "raw.customers.email" and entry["detail"]["tag"] == "email"


def test_a_model_column_is_accepted_into_its_sidecar(shop: Path) -> None:
    (shop / "models" / "marts" / "contacts.sql").write_text(
        "select customer_id, 'x' || email as reach from clean.customers", encoding="utf-8"
    )
    untag_email(shop)
    assert hw(shop, "run").code == 0
    assert hw(shop, "classify", "marts.contacts", "--accept").code == 0
    sidecar = (shop / "models" / "marts" / "contacts.yml").read_text(encoding="utf-8")
    assert "reach:" in sidecar and "pii: email" in sidecar


def test_a_batch_whose_values_look_different_is_classified_again(shop: Path) -> None:
    assert hw(shop, "run").code == 0
    quiet = json.loads(hw(shop, "run", "--format", "json").output)
    assert not any("now looks like" in note for note in quiet.get("notes", []))
    extra = shop / "data" / "customers" / "more.csv"
    rows = [
        f"{9000 + i},p{i}@example.org,Ann Lee,DE,2026-10-01 10:00:00,backup{i}@example.net"
        for i in range(60)
    ]
    extra.write_text(
        "customer_id,email,full_name,country,signed_up_at,backup_contact\n" + "\n".join(rows),
        encoding="utf-8",
    )
    outcome = hw(shop, "run", "--format", "json")
    assert outcome.code == 0, outcome
    notes = json.loads(outcome.output)["notes"]
    [note] = [n for n in notes if "now looks like" in n]
    assert "raw.customers.backup_contact now looks like email" in note
    assert "headwater classify raw.customers --accept" in note
