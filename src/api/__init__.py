"""The HTTP face of hookledger: webhook intake, reads, health, metrics."""
