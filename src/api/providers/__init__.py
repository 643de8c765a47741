"""Provider adapters: one signature scheme each, and how to read their bodies."""
