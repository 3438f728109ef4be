"""Every table, its TTLs and its indexes, in one place, as versioned migrations."""
