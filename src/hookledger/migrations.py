"""Numbered .sql migrations, applied in order under an advisory lock, recorded
with a checksum so a landed migration that was edited is refused."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import LiteralString

import msgspec

from events.connector import Database
from events.errors import MigrationError

log = logging.getLogger(__name__)

_LOCK_KEY = 7254910834
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# Created only where missing: a service whose login may only write events (no
# CREATE on the schema) still checks the migrations at start, and even
# CREATE TABLE IF NOT EXISTS would be refused to it.
CREATE_TABLE: LiteralString = """
DO $$
BEGIN
    IF to_regclass('schema_migrations') IS NULL THEN
        CREATE TABLE schema_migrations (
            version     integer PRIMARY KEY,
            name        text NOT NULL,
            checksum    text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now()
        );
    END IF;
END
$$"""
TAKE_LOCK: LiteralString = "SELECT pg_advisory_lock(%s)"
RELEASE_LOCK: LiteralString = "SELECT pg_advisory_unlock(%s)"
APPLIED: LiteralString = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
RECORD: LiteralString = (
    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)"
)


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_dir() -> Path:
    """Installed wheels carry the files inside the package; a source tree has them at the top."""
    packaged = Path(__file__).with_name("migrations")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def discover(directory: Path | None = None) -> list[Migration]:
    found = []
    for path in sorted((directory or migrations_dir()).glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a number")
    return found


async def migrate(db: Database, directory: Path | None = None) -> list[Migration]:
    """Apply what is missing; return what was applied. Safe to run concurrently."""
    wanted = discover(directory)
    applied_now: list[Migration] = []
    async with db.dedicated(autocommit=True) as conn:
        session = conn.session()
        await session.execute(TAKE_LOCK, (_LOCK_KEY,))
        try:
            await session.execute(CREATE_TABLE)
            done = {row[0]: row for row in await session.fetch_all(APPLIED)}
            for migration in wanted:
                if migration.version in done:
                    _, name, checksum = done[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{name} was edited after it "
                            "was applied; add a new migration instead"
                        )
                    continue
                async with conn.transaction() as tx:
                    # Our own files, shipped with the code: as literal as a constant.
                    await tx.execute(migration.sql)
                    await tx.execute(
                        RECORD, (migration.version, migration.name, migration.checksum)
                    )
                log.info(
                    "migration applied",
                    extra={"migration": f"{migration.version:04d}_{migration.name}"},
                )
                applied_now.append(migration)
        finally:
            await session.execute(RELEASE_LOCK, (_LOCK_KEY,))
    return applied_now
