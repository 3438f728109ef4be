"""Every table with its TTLs and indexes (``tables``), applied as versioned ``migrations``."""
