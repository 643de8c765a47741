"""The ledger's SQL, loaded once from queries.sql."""

from __future__ import annotations

import re
from pathlib import Path
from typing import LiteralString

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load(path: Path) -> dict[str, LiteralString]:
    """Split a .sql file into named queries at its ``-- name: NAME`` headers."""
    text = path.read_text()
    parts = _HEADER.split(text)
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        # The file is ours and read-only at run time: its text is as literal as a constant.
        queries[name] = "\n".join(lines).strip()  # type: ignore[assignment,unused-ignore]
    return queries


QUERIES = load(Path(__file__).with_name("queries.sql"))
