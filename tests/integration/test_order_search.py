"""The console's order search by the start of an id, as a property against
Postgres: every page walked by its keyset cursor together lists exactly the
orders whose id starts with what was typed, each once, in byte order,
whatever characters the ids hold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from events.connector import Database
from hookledger.console_reads import PAGE, ConsoleReads, successor
from tests.integration.test_projections import EXAMPLES

# Few letters, so that prefixes are shared; and the edges of Unicode.
ALPHABET = st.sampled_from(["a", "b", "-", "A", "1", "é", "\u00ff", "\uffff", "\U0010ffff"])
IDS = st.lists(st.text(ALPHABET, min_size=1, max_size=6), min_size=1, max_size=160, unique=True)


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


@given(prefix=st.text(ALPHABET, min_size=1, max_size=4), text=st.text(ALPHABET, max_size=8))
def test_the_successor_bounds_exactly_the_strings_with_that_start(prefix: str, text: str) -> None:
    above = successor(prefix)
    inside = utf8(prefix) <= utf8(text) and (above is None or utf8(text) < utf8(above))
    assert inside == text.startswith(prefix)


@EXAMPLES
@given(ids=IDS, typed=st.text(ALPHABET, min_size=1, max_size=3))
async def test_every_page_of_a_search_together_lists_each_matching_order_once_in_byte_order(
    db: Database, ids: list[str], typed: str
) -> None:
    async with db.connection() as conn:
        await conn.session().execute("DELETE FROM orders")
    await db.fetch_all(
        "INSERT INTO orders (order_id, status, updated_at)"
        " SELECT unnest(%s::text[]), 'created', now() RETURNING 1",
        (ids,),
    )
    reads = ConsoleReads(db)
    found: list[str] = []
    after = ""
    while True:
        page, by_email = await reads.orders(typed, "", "", after)
        assert not by_email
        found.extend(row["order_id"] for row in page)
        if len(page) < PAGE:
            break
        after = page[-1]["order_id"]
    assert found == sorted((i for i in ids if i.startswith(typed)), key=utf8)
