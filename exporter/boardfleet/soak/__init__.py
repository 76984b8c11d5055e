"""Soak runs and their verdict: runs and alert history in SQLite, reports per board."""
