"""Serving (band 6): data API, features, vectors, web UI. Arrives with its issue."""
