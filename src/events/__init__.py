"""The ledger: event types, group-commit append, ordered reads, hash chain."""
