"""Jobs of the ingest: offline sweep, stale sessions, ledger pruning (issue 3)."""
