"""Enrichment at ingest: device from the user agent, place from the address."""
