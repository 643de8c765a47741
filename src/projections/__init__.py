"""Projections: state folded from the ledger, and their rebuilds."""
