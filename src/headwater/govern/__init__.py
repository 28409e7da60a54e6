"""Governance (band 4): catalog docs, lineage, PII tags and masking. Arrives with its issue."""
