"""The group-commit appender against a real Postgres."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, LiteralString

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.appender import OPTIMISTIC_ATTEMPTS, Appender, write
from events.connector import Connection, Database, Row, Session
from events.errors import AppenderStopped, DatabaseUnavailable
from events.queries import QUERIES
from events.store import read_after, read_stream, verify_chains
from tests.factories import new_event


async def test_concurrent_appends_share_batches_and_all_commit(db: Database) -> None:
    sizes: list[int] = []
    appender = Appender(db, observe=lambda size, _: sizes.append(size))
    await appender.start()
    events = [new_event(stream=f"order-{i % 7}") for i in range(300)]
    outcomes = await asyncio.gather(*(appender.append(e) for e in events))
    await appender.stop()

    assert len({o.position for o in outcomes}) == 300
    assert not any(o.duplicate for o in outcomes)
    assert sum(sizes) == 300
    assert max(sizes) > 1, "concurrent appends should be grouped into batches"
    assert (await verify_chains(db)).events == 300


async def test_duplicate_key_answers_original_position(db: Database) -> None:
    appender = Appender(db)
    await appender.start()
    first = await appender.append(new_event(event_id="evt-1", body={"a": 1}))
    again = await appender.append(new_event(event_id="evt-1", body={"a": 1}))
    changed = await appender.append(new_event(event_id="evt-1", body={"a": 2}))
    await appender.stop()

    assert not first.duplicate
    assert again.duplicate and not again.conflict and again.position == first.position
    assert changed.duplicate and changed.conflict and changed.position == first.position
    assert len(await read_after(db, 0)) == 1


async def test_same_key_twice_in_one_batch_is_recorded_once(db: Database) -> None:
    appender = Appender(db)
    await appender.start()
    outcomes = await appender.append_many(
        [new_event(event_id="dup", body={"a": 1}), new_event(event_id="dup", body={"a": 1})]
    )
    await appender.stop()
    assert [o.duplicate for o in outcomes] == [False, True]
    assert outcomes[0].position == outcomes[1].position
    assert len(await read_after(db, 0)) == 1


async def test_refused_event_fails_alone_and_leaves_nothing_partial(db: Database) -> None:
    appender = Appender(db)
    await appender.start()
    # A key longer than a btree index entry allows: Postgres refuses that row.
    poison = new_event(event_id=secrets.token_hex(5_000))
    good = [new_event(stream="order-ok") for _ in range(5)]
    results = await asyncio.gather(
        *(appender.append(e) for e in [*good[:2], poison, *good[2:]]), return_exceptions=True
    )
    await appender.stop()

    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1
    recorded = await read_after(db, 0)
    assert sorted(e.event_id for e in recorded) == sorted(e.event_id for e in good)
    assert (await verify_chains(db)).events == 5


async def test_unreachable_database_fails_the_batch_as_unavailable() -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/nowhere", acquire_timeout=0.5)
    await db.open()
    appender = Appender(db)
    await appender.start()
    try:
        with pytest.raises(DatabaseUnavailable):
            await appender.append(new_event())
    finally:
        await appender.stop()
        await db.close()


async def test_stopped_appender_refuses_new_events_after_draining_queued_ones(
    db: Database,
) -> None:
    appender = Appender(db)
    await appender.start()
    pending = [asyncio.ensure_future(appender.append(new_event())) for _ in range(50)]
    await asyncio.sleep(0)
    await appender.stop()
    outcomes = await asyncio.gather(*pending)
    assert len({o.position for o in outcomes}) == 50
    assert len(await read_after(db, 0)) == 50
    with pytest.raises(AppenderStopped):
        await appender.append(new_event())


async def test_one_commit_per_request_mode_records_the_same(db: Database) -> None:
    appender = Appender(db, group_commit=False)
    await appender.start()
    outcomes = await asyncio.gather(*(appender.append(new_event()) for _ in range(20)))
    await appender.stop()
    assert len({o.position for o in outcomes}) == 20
    assert (await verify_chains(db)).events == 20


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET type = 'changed'", "DELETE FROM events", "TRUNCATE events"],
)
async def test_database_refuses_changes_to_recorded_events(
    db: Database, database_url: str, statement: str
) -> None:
    appender = Appender(db)
    await appender.start()
    await appender.append(new_event())
    await appender.stop()
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.Error) as refused:
        conn.execute(statement)
    assert "append-only" in str(refused.value)
    assert len(await read_after(db, 0)) == 1


keys = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 12)), min_size=1, max_size=40)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=keys, chunk=st.integers(1, 10))
async def test_any_append_sequence_keeps_streams_contiguous_and_in_position_order(
    db: Database, keys: list[tuple[int, int]], chunk: int
) -> None:
    provider = f"p{uuid.uuid4().hex}"
    appender = Appender(db)
    await appender.start()
    events = [
        new_event(stream=f"{provider}-s{s}", event_id=f"e{e}", provider=provider, body={"e": e})
        for s, e in keys
    ]
    batches = [events[i : i + chunk] for i in range(0, len(events), chunk)]
    results = await asyncio.gather(*(appender.append_many(b) for b in batches))
    await appender.stop()
    outcomes = [o for batch in results for o in batch]

    first_position: dict[str, int] = {}
    for event, outcome in zip(events, outcomes, strict=True):
        first_position.setdefault(event.event_id, outcome.position)
        assert outcome.position == first_position[event.event_id]
    for stream in {e.stream for e in events}:
        recorded = await read_stream(db, stream)
        assert [e.stream_version for e in recorded] == list(range(1, len(recorded) + 1))
        positions = [e.position for e in recorded]
        assert positions == sorted(positions)
        await verify_chains(db, stream)


async def test_writer_role_may_append_but_never_change_events(
    db: Database, database_url: str
) -> None:
    appender = Appender(db)
    await appender.start()
    await appender.append(new_event())
    await appender.stop()
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE hookledger_writer")
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            conn.execute("UPDATE events SET type = 'changed'")
        # Refused by the grants, before the append-only trigger is even reached.
        assert "permission denied for table events" in str(refused.value)


class _RacedOnce:
    """A connection on which another writer appends to the stream after the
    batch's first read of its state, before its insert."""

    def __init__(self, conn: Connection, db: Database, *, races: int = 1) -> None:
        self.conn = conn
        self.db = db
        self.races = races
        self.reads = 0

    def session(self) -> _RacingSession:
        return _RacingSession(self, self.conn.session())

    def transaction(self) -> AbstractAsyncContextManager[Session]:
        return self.conn.transaction()


class _RacingSession:
    def __init__(self, owner: _RacedOnce, inner: Session) -> None:
        self.owner = owner
        self.inner = inner

    async def fetch_all(
        self, query: LiteralString, params: Sequence[Any] = (), *, binary: bool = False
    ) -> list[Row]:
        rows = await self.inner.fetch_all(query, params, binary=binary)
        if query == QUERIES["read_batch_state"]:
            self.owner.reads += 1
            if self.owner.reads <= self.owner.races:
                intruder = new_event(stream="order-raced", event_id=f"intruder-{self.owner.reads}")
                await write(self.owner.db, [intruder])
        return rows


async def test_a_head_moved_by_another_writer_is_detected_and_the_batch_prepared_again(
    db: Database,
) -> None:
    async with db.dedicated(autocommit=True) as conn:
        target = _RacedOnce(conn, db)
        [outcome] = await write(target, [new_event(stream="order-raced", event_id="mine")])  # type: ignore[arg-type]

    assert target.reads == 2
    recorded = await read_stream(db, "order-raced")
    assert [(e.event_id, e.stream_version) for e in recorded] == [("intruder-1", 1), ("mine", 2)]
    assert outcome.position == recorded[1].position
    await verify_chains(db)


async def test_a_writer_that_keeps_losing_races_takes_the_lock_before_reading(
    db: Database,
) -> None:
    async with db.dedicated(autocommit=True) as conn:
        # Every optimistic attempt is raced; the locked one cannot be (the intruder
        # would wait for the lock), so it is not raced here.
        target = _RacedOnce(conn, db, races=OPTIMISTIC_ATTEMPTS)
        [outcome] = await write(target, [new_event(stream="order-raced", event_id="mine")])  # type: ignore[arg-type]

    assert target.reads == OPTIMISTIC_ATTEMPTS  # the locked read went through conn.transaction()
    recorded = await read_stream(db, "order-raced")
    assert [e.event_id for e in recorded][-1] == "mine"
    assert [e.stream_version for e in recorded] == list(range(1, OPTIMISTIC_ATTEMPTS + 2))
    assert outcome.position == recorded[-1].position
    await verify_chains(db)


_DIRECT_INSERT = """INSERT INTO events (provider, event_id, stream, stream_version, type,
    recorded_at, payload, raw, prev_hash, hash)
VALUES ('direct', %s, 'order-direct', %s, 'test', now(), '{}', '', %s, %s)"""


async def test_any_insert_into_events_waits_for_the_append_lock_and_moves_its_stream_head(
    database_url: str,
) -> None:
    with (
        psycopg.connect(database_url) as holder,
        psycopg.connect(database_url, autocommit=True) as writer,
    ):
        holder.execute(QUERIES["take_append_lock"])
        writer.execute("SET lock_timeout = '200ms'")
        # Not written by the appender, still serialised with every other append.
        with pytest.raises(psycopg.errors.LockNotAvailable):
            writer.execute(_DIRECT_INSERT, ("first", 1, "0" * 64, "a" * 64))
        holder.rollback()

        writer.execute(_DIRECT_INSERT, ("first", 1, "0" * 64, "a" * 64))
        writer.execute(_DIRECT_INSERT, ("second", 2, "a" * 64, "b" * 64))
        head = writer.execute(
            "SELECT version, last_hash FROM streams WHERE stream = 'order-direct'"
        ).fetchone()
    assert head == (2, "b" * 64)


async def test_bodies_are_compressed_with_lz4_where_the_server_has_it(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        available = conn.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        ).fetchone()
        methods = conn.execute(
            "SELECT attname, attcompression FROM pg_attribute"
            " WHERE attrelid = 'events'::regclass AND attname IN ('payload', 'raw', 'metadata')"
        ).fetchall()
    # Without lz4 the migration leaves the default ('' = pglz) and says so.
    expected = "l" if available == (True,) else ""
    assert sorted(methods) == [("metadata", expected), ("payload", expected), ("raw", expected)]


@pytest.mark.parametrize(("durable", "expected"), [(True, "on"), (False, "off")])
async def test_only_a_derived_appenders_commits_skip_waiting_for_the_disk(
    db: Database, durable: bool, expected: str
) -> None:
    # The intake's appends are acknowledged: they wait for the disk. A consumer's
    # decisions are made again after a crash: theirs need not.
    conn = await db.connect_writer(durable=durable)
    try:
        row = await conn.session().fetch_one("SELECT current_setting('synchronous_commit')")
    finally:
        await conn.close()
    assert row is not None and row[0] == expected
