"""The visitor's rights: export, purge and suppress, with receipts and a hash-chained audit."""
