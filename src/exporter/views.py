"""The analysts' views: one SQL file each in views/, written in BigQuery's
dialect, and run unchanged on DuckDB over the Parquet export thanks to a few
compatibility macros. In a query, ``{events}`` is the events table and
``{NAME}`` another view; views are created in file name order, so a view may
use those before it."""

from __future__ import annotations

from pathlib import Path

VIEWS_DIR = Path(__file__).with_name("views")

# BigQuery functions the views use that DuckDB spells differently. Dates of
# timestamps are taken in UTC, as BigQuery does.
DUCKDB_PRELUDE = """\
SET TimeZone = 'UTC';
CREATE OR REPLACE MACRO unix_micros(ts) AS epoch_us(ts);
"""


def view_queries() -> dict[str, str]:
    """View name -> its query, with placeholders, in creation order."""
    return {path.stem: path.read_text() for path in sorted(VIEWS_DIR.glob("*.sql"))}


def _resolved(query: str, references: dict[str, str]) -> str:
    for name, reference in references.items():
        query = query.replace("{" + name + "}", reference)
    return query.rstrip().rstrip(";")


def bigquery_statements(project: str, dataset: str, table: str) -> list[str]:
    """``CREATE OR REPLACE VIEW`` for every view, beside the events table."""
    queries = view_queries()
    references = {name: f"`{project}.{dataset}.{name}`" for name in queries}
    references["events"] = f"`{project}.{dataset}.{table}`"
    return [
        f"CREATE OR REPLACE VIEW {references[name]} AS\n{_resolved(query, references)}"
        for name, query in queries.items()
    ]


def duckdb_script(events_source: str) -> str:
    """A DuckDB script: an ``events`` view over ``events_source`` (e.g. a
    ``read_parquet(...)`` call) and every analysts' view on top of it."""
    queries = view_queries()
    references = {name: name for name in [*queries, "events"]}
    # The source is the caller's own constant text, never input.
    events = f"CREATE OR REPLACE VIEW events AS SELECT * FROM {events_source};\n"  # noqa: S608
    parts = [DUCKDB_PRELUDE, events]
    for name, query in queries.items():
        parts.append(f"CREATE OR REPLACE VIEW {name} AS\n{_resolved(query, references)};\n")
    return "\n".join(parts)
