"""Personal data in the ledger: which values are personal, how long each stays
readable (``policy``). Storage that can forget, erasure and retention sweeps
build on it (issue 14)."""
