"""Capture: what a page sends, queued off the request path, built and sent in batches."""
