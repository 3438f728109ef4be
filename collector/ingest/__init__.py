"""Ingest: validate a batch, drop replays and suppressed ids, build columns, insert."""
