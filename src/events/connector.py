"""The only module that imports psycopg: connections, pooling, and the
translation of driver errors into hookledger's own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import msgspec
import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg.types.json import set_json_loads

from events.errors import DatabaseRefused, DatabaseUnavailable, DataRefused, WriteConflict
from events.queries import QUERIES, UNPREPARED

log = logging.getLogger(__name__)

# jsonb comes back parsed by msgspec: several times faster than the json module,
# which matters when a rebuild reads every payload of the ledger.
set_json_loads(msgspec.json.decode)

Row = tuple[Any, ...]

# Errors after which the connection (or the server) cannot be trusted: the caller
# may retry later. Everything else is the database refusing what we sent.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
    psycopg_pool.PoolClosed,
    OSError,
)
# SQLSTATE classes of a lost or refusing server: connection exception, operator
# intervention (shutdown, restart), insufficient resources.
_UNAVAILABLE_STATES = ("08", "57P", "53")
# Serialization failure, deadlock, unique violation: another transaction won a race
# (the ledger's unique keys are how concurrent appenders find out).
_CONFLICT_STATES = ("40001", "40P01", "23505")
# Data exception, integrity constraint violation, program limit exceeded (a value
# too large for an index): refused for the values, so refused again next time.
_DATA_STATES = ("22", "23", "54")
_CAUGHT: tuple[type[BaseException], ...] = (psycopg.Error, *_UNAVAILABLE)


def _prepare(query: str) -> bool | None:
    """Never prepare the queries marked ``[unprepared]``; leave the rest to psycopg."""
    return False if query in UNPREPARED else None


def _translate(exc: BaseException) -> Exception:
    message = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, _UNAVAILABLE):
        return DatabaseUnavailable(message)
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        lost = state is None and isinstance(exc, psycopg.OperationalError)
        if lost or (state is not None and state.startswith(_UNAVAILABLE_STATES)):
            return DatabaseUnavailable(message)
        if state in _CONFLICT_STATES:
            return WriteConflict(message)
        if state is not None and state.startswith(_DATA_STATES):
            return DataRefused(message)
    return DatabaseRefused(message)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except _CAUGHT as exc:
        raise _translate(exc) from exc


class Session:
    """One connection inside one transaction (or autocommit), driver hidden."""

    def __init__(
        self, conn: psycopg.AsyncConnection[TupleRow], *, prepare_all: bool = False
    ) -> None:
        self._conn = conn
        self._prepare_all = prepare_all

    def _prepare(self, query: str) -> bool | None:
        return None if self._prepare_all else _prepare(query)

    async def execute(self, query: LiteralString, params: Sequence[Any] = ()) -> None:
        async with _translated():
            # Without parameters the simple protocol runs, which allows several statements.
            await self._conn.execute(query, params or None, prepare=self._prepare(query))

    async def fetch_all(
        self, query: LiteralString, params: Sequence[Any] = (), *, binary: bool = False
    ) -> list[Row]:
        """All rows; ``binary`` asks for binary results (cheaper to parse for bulk reads)."""
        async with _translated():
            cur = await self._conn.execute(
                query, params, prepare=self._prepare(query), binary=binary
            )
            return await cur.fetchall()

    async def fetch_one(self, query: LiteralString, params: Sequence[Any] = ()) -> Row | None:
        async with _translated():
            cur = await self._conn.execute(query, params, prepare=self._prepare(query))
            return await cur.fetchone()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A block inside this transaction that is undone alone if it raises."""
        async with _translated(), self._conn.transaction():
            yield

    async def import_snapshot(self, snapshot: str) -> None:
        """Read, in this (repeatable read) transaction, the snapshot another
        transaction exported with ``pg_export_snapshot()``."""
        query = sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot))
        async with _translated():
            await self._conn.execute(query)

    async def execute_on(self, template: LiteralString, **tables: str) -> None:
        """Run DDL naming tables chosen at run time (``{name}`` placeholders)."""
        query = sql.SQL(template).format(**{k: sql.Identifier(v) for k, v in tables.items()})
        async with _translated():
            await self._conn.execute(query)

    async def copy_rows(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Bulk-load rows into ``table`` with COPY."""
        query = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        async with _translated(), self._conn.cursor().copy(query) as copy:
            for row in rows:
                await copy.write_row(row)

    async def copy_text(self, table: str, columns: Sequence[str], chunks: Iterable[str]) -> None:
        """Bulk-load ``chunks``, already in COPY's text format (one line per row,
        tab-separated), for rows simple enough to format faster than row by row.
        Each chunk is sent as soon as it is made: the server loads one while the
        next is computed."""
        query = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        async with _translated(), self._conn.cursor().copy(query) as copy:
            for chunk in chunks:
                await copy.write(chunk)

    async def stream_rows(
        self, query: LiteralString, params: Sequence[Any] = (), size: int = 2000
    ) -> AsyncIterator[Row]:
        """Iterate a large result through a server-side cursor."""
        async for rows in self.stream_batches(query, params, size):
            for row in rows:
                yield row

    async def stream_batches(
        self,
        query: LiteralString,
        params: Sequence[Any] = (),
        size: int = 2000,
        cursor: str = "hookledger_stream",
    ) -> AsyncGenerator[list[Row]]:
        """A large result in lists of up to ``size`` rows; the next list is asked
        for before this one is handed over, so the server works while we do.
        Two results read side by side need cursors of different names."""
        async with _translated(), self._conn.cursor(name=cursor) as cur:
            await cur.execute(query, params)
            rows = await cur.fetchmany(size)
            while rows:
                following = asyncio.ensure_future(cur.fetchmany(size))
                await asyncio.sleep(0)  # let it send the FETCH before we get busy
                try:
                    yield rows
                finally:
                    rows = await following


class Database:
    """A pool for ordinary work, plus dedicated connections for long-lived jobs."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        acquire_timeout: float = 3.0,
        connect_timeout: int = 5,
    ) -> None:
        self.url = url
        # Connections opened outside the pool, for the record (a test counts them).
        self.opened = 0
        self._shared: Connection | None = None
        self._shared_lock = asyncio.Lock()
        self._connect_kwargs: dict[str, Any] = {"connect_timeout": connect_timeout}
        self._acquire_timeout = acquire_timeout
        self._pool = psycopg_pool.AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs=self._connect_kwargs,
            timeout=acquire_timeout,
            # A stale connection (the server restarted) is found before use.
            check=psycopg_pool.AsyncConnectionPool.check_connection,
            reconnect_timeout=0,
        )

    async def open(self) -> None:
        """Open the pool without waiting for the database to answer."""
        await self._pool.open(wait=False)

    async def close(self) -> None:
        if self._shared is not None:
            await self._shared.close()
            self._shared = None
        await self._pool.close()

    async def shared(self) -> Connection:
        """The process's one long-lived autocommit connection for short statements
        that must outlive a pooled checkout (session-level advisory locks), made
        on first use and made again once broken; closed with the database."""
        async with self._shared_lock:
            if self._shared is None or self._shared.broken:
                if self._shared is not None:
                    await self._shared.close()
                    self._shared = None
                self._shared = await self.connect(autocommit=True)
            return self._shared

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """A pooled connection inside one transaction, committed on success."""
        async with _translated(), self._pool.connection() as conn, conn.transaction():
            yield Session(conn)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Session]:
        """A pooled connection inside one read-only REPEATABLE READ transaction:
        every read in it sees the same moment of the database."""
        async with _translated(), self._pool.connection() as conn, conn.transaction():
            session = Session(conn)
            await session.execute(QUERIES["snapshot_transaction"])
            yield session

    async def connect(self, *, autocommit: bool = False, prepare_all: bool = False) -> Connection:
        """A connection of its own, outside the pool; the caller closes it.
        ``prepare_all`` prepares even the queries marked ``[unprepared]``."""
        async with _translated():
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=autocommit, **self._connect_kwargs
            )
        self.opened += 1
        return Connection(conn, prepare_all=prepare_all)

    async def connect_writer(self, *, durable: bool = True) -> Connection:
        """A connection of its own for appends: autocommit, and every query prepared.

        Even the queries marked ``[unprepared]`` are, because this connection
        plans with sequential scans off: a plan made while the ledger was small
        cannot become a scan of the whole ledger once it has grown, and a batch
        saves the planning of its read. Not ``durable``: its commits do not wait
        for the disk (see ``Appender``).
        """
        conn = await self.connect(autocommit=True, prepare_all=True)
        try:
            await conn.session().execute(QUERIES["plan_with_indexes"])
            if not durable:
                await conn.session().execute(QUERIES["commits_without_waiting"])
        except BaseException:
            await conn.close()
            raise
        return conn

    @asynccontextmanager
    async def dedicated(self, *, autocommit: bool = False) -> AsyncIterator[Connection]:
        """A connection of its own, outside the pool, closed on exit."""
        conn = await self.connect(autocommit=autocommit)
        try:
            yield conn
        finally:
            await conn.close()

    async def fetch_all(
        self, query: LiteralString, params: Sequence[Any] = (), *, binary: bool = False
    ) -> list[Row]:
        async with self.transaction() as session:
            return await session.fetch_all(query, params, binary=binary)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection in autocommit, lent for a while, as a ``Connection``."""
        async with _translated(), self._pool.connection() as conn:
            await conn.set_autocommit(True)
            try:
                yield Connection(conn)
            finally:
                if not (conn.broken or conn.closed):  # a lost one is dropped by the pool
                    await conn.set_autocommit(False)

    async def fetch_one(self, query: LiteralString, params: Sequence[Any] = ()) -> Row | None:
        async with self.transaction() as session:
            return await session.fetch_one(query, params)


class Connection:
    """A dedicated connection: transactions on demand, and LISTEN."""

    def __init__(
        self, conn: psycopg.AsyncConnection[TupleRow], *, prepare_all: bool = False
    ) -> None:
        self._conn = conn
        self._prepare_all = prepare_all

    @property
    def broken(self) -> bool:
        return self._conn.broken or self._conn.closed

    async def close(self) -> None:
        await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with _translated(), self._conn.transaction():
            yield Session(self._conn, prepare_all=self._prepare_all)

    def session(self) -> Session:
        """Statements outside an explicit transaction (autocommit connections)."""
        return Session(self._conn, prepare_all=self._prepare_all)

    async def listen(self, channel: LiteralString) -> None:
        async with _translated():
            await self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    async def wait_notify(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a notification; True if one came."""
        async with _translated():
            async for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                return True
        return False
