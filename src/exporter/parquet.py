"""The local export: date-partitioned Parquet files that DuckDB (or a BigQuery
external table) reads, with the export's position kept beside them.

Layout of the directory::

    events/recorded_date=YYYY-MM-DD/part-<first>-<last>.parquet
    views.sql                   DuckDB: the events view and the analysts' views
    _hookledger/checkpoint.json the last position whose files are complete
    _hookledger/lock            held while an export writes here

Exactly once: a batch's files are written under hidden temporary names, renamed
into place, flushed, and only then is the checkpoint replaced (atomically). A
run that dies in between leaves files beyond the checkpoint; the next run
deletes them before it writes the same events again. The checkpoint lives with
the files, not in the ledger, so two directories never share a position.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from exporter.batch import ExportBatch
from exporter.errors import DestinationRefused
from exporter.schema import COLUMNS
from exporter.views import duckdb_script

EVENTS_DIR = "events"
PARTITION = "recorded_date"
STATE_DIR = "_hookledger"
CHECKPOINT_FILE = "checkpoint.json"
VIEWS_FILE = "views.sql"
EVENTS_GLOB = f"{EVENTS_DIR}/{PARTITION}=*/*.parquet"

_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_TEMPORARY_PREFIX = ".part-"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "INT64": pa.int64(),
    "STRING": pa.string(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "JSON": pa.json_(pa.string()),
}

# Dictionaries pay off only for the few distinct providers and types; statistics
# only where a reader prunes by them.
_WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": ["provider", "type"],
    "write_statistics": ["position", "recorded_at", "provider", "type"],
}

SCHEMA = pa.schema(
    [pa.field(c.name, _ARROW_TYPES[c.type], nullable=not c.required) for c in COLUMNS]
)


def to_arrow(batch: ExportBatch) -> pa.Table:
    """The batch as an Arrow table of the exported schema."""
    columns = batch.columns()
    return pa.Table.from_arrays([_array(columns[f.name], f.type) for f in SCHEMA], schema=SCHEMA)


def _array(values: list[Any], type_: pa.DataType) -> pa.Array[Any]:
    if isinstance(type_, pa.ExtensionType):
        # Built as plain strings, then labelled: several times faster than converting
        # straight into the extension type.
        return pa.ExtensionArray.from_storage(type_, pa.array(values, type=type_.storage_type))
    if pa.types.is_timestamp(type_):
        return pa.array(values, type=pa.int64()).cast(type_)  # microseconds since 1970
    return pa.array(values, type=type_)


class ParquetDestination:
    """A directory of Parquet files; open it with ``parquet_destination``."""

    name = "parquet"
    # Large batches: fewer, larger files, and fewer flushes (a few ms each).
    batch_size = 20_000

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.events_dir = directory / EVENTS_DIR
        self._state_dir = directory / STATE_DIR
        self._checkpoint = self._state_dir / CHECKPOINT_FILE

    # -- the runner's side ------------------------------------------------------

    async def prepare(self) -> int:
        """Remove what a dead run left beyond the checkpoint; return the checkpoint."""
        return await asyncio.to_thread(self._recover)

    async def write(self, batch: ExportBatch) -> None:
        await asyncio.to_thread(self._write, batch)

    async def commit(self, previous: int, batch: ExportBatch) -> None:
        await asyncio.to_thread(self._commit, previous, batch.last_position)

    # -- files -----------------------------------------------------------------

    def position(self) -> int:
        """The last position whose files are complete; 0 before the first export."""
        try:
            return int(json.loads(self._checkpoint.read_text())["position"])
        except FileNotFoundError:
            return 0
        except (ValueError, KeyError, TypeError) as exc:
            raise DestinationRefused(f"{self._checkpoint} is damaged: {exc}") from None

    def parts(self) -> Iterator[tuple[Path, int, int]]:
        """Every finished part file, with the first and last position it holds."""
        for path in sorted(self.events_dir.glob(f"{PARTITION}=*/part-*.parquet")):
            if match := _PART.match(path.name):
                yield path, int(match[1]), int(match[2])

    def reset(self) -> None:
        """Forget everything exported here (``--from-start``)."""
        for path, _, _ in self.parts():
            path.unlink()
        self._checkpoint.unlink(missing_ok=True)

    def write_views(self) -> None:
        """``views.sql``: run it in DuckDB from the directory (``duckdb -init views.sql``)."""
        source = f"read_parquet('{EVENTS_GLOB}', hive_partitioning = true)"
        _replace(self.directory / VIEWS_FILE, duckdb_script(source).encode())

    def _recover(self) -> int:
        position = self.position()
        for leftover in self.events_dir.glob(f"{PARTITION}=*/{_TEMPORARY_PREFIX}*"):
            leftover.unlink()
        for path, first, last in self.parts():
            if first > position:
                path.unlink()  # written by a run that died before its checkpoint
            elif last > position:
                raise DestinationRefused(
                    f"{path} holds positions {first}-{last} across the checkpoint {position}: "
                    "the directory was changed by hand; export again with --from-start"
                )
        return position

    def _write(self, batch: ExportBatch) -> None:
        table = to_arrow(batch)
        dates = pc.cast(table.column("recorded_at"), pa.date32())
        written: set[Path] = set()
        for day in pc.unique(dates).to_pylist():
            assert day is not None, "recorded_at is never null"
            part = table.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
            positions = part.column("position")
            first, last = pc.min(positions).as_py(), pc.max(positions).as_py()
            folder = self.events_dir / f"{PARTITION}={day.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{first:012d}-{last:012d}.parquet"
            temporary = folder / f"{_TEMPORARY_PREFIX}{name}.tmp"
            with temporary.open("wb") as handle:
                pq.write_table(part, handle, **_WRITE_OPTIONS)
                _flush(handle)
            temporary.rename(folder / name)
            written.add(folder)
        for folder in written:
            _sync_directory(folder)
        _sync_directory(self.events_dir)

    def _commit(self, previous: int, position: int) -> None:
        current = self.position()
        if current != previous:
            raise DestinationRefused(
                f"the checkpoint of {self.directory} moved from {previous} to {current}"
            )
        self._state_dir.mkdir(parents=True, exist_ok=True)
        _replace(self._checkpoint, json.dumps({"position": position}).encode())


@contextlib.contextmanager
def parquet_destination(directory: Path) -> Iterator[ParquetDestination]:
    """The directory, locked against other exports for the block."""
    destination = ParquetDestination(directory)
    (directory / STATE_DIR).mkdir(parents=True, exist_ok=True)
    with (directory / STATE_DIR / "lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DestinationRefused(
                f"another export is writing to {directory} (its lock is held)"
            ) from None
        try:
            yield destination
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _flush(handle: IO[bytes]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _sync_directory(path: Path) -> None:
    """Make the renames in a directory durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(path: Path, content: bytes) -> None:
    """Write a file whole or not at all."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(content)
        _flush(handle)
    temporary.replace(path)
    _sync_directory(path.parent)
