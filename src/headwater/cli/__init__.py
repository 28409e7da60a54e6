"""The command line (band 6)."""
