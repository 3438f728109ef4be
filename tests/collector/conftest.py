"""Collector fixtures: ``collector_settings``, ``service`` and ``client`` are the shared ones
in ``tests/conftest.py``."""
