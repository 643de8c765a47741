"""The personal-data SQL, loaded once from queries.sql."""

from __future__ import annotations

from pathlib import Path

from events.queries import load

QUERIES = load(Path(__file__).with_name("queries.sql"))
