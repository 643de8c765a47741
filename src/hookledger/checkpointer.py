"""The checkpoint job: every HOOKLEDGER_CHECKPOINT_INTERVAL, when the tree has
grown, sign its head and publish the checkpoint where the operator's database
access does not reach: a structured log line (Cloud Logging keeps it), a file in
HOOKLEDGER_CHECKPOINT_DIR, and the BigQuery export's checkpoints table."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import tempfile
from pathlib import Path

from events.checkpoint_log import SignedCheckpoint, Signer, sign_checkpoint
from events.connector import Database

log = logging.getLogger(__name__)


class Checkpointer:
    """Signs and publishes checkpoints of the ledger's tree."""

    def __init__(
        self,
        db: Database,
        signer: Signer,
        origin: str,
        *,
        interval: float = 60.0,
        directory: Path | None = None,
    ) -> None:
        self._db = db
        self.signer = signer
        self.origin = origin
        self._interval = interval
        self._directory = directory

    async def run(self) -> None:
        """Run until cancelled."""
        while True:
            await self.checkpoint()
            await asyncio.sleep(self._interval)

    async def checkpoint(self, size: int | None = None) -> SignedCheckpoint:
        """Sign the tree as it stands now (or at ``size``), unless that size is
        signed already, and publish it when new."""
        signed, new = await sign_checkpoint(self._db, self.signer, self.origin, size)
        if new:
            self.publish(signed)
        return signed

    def publish(self, signed: SignedCheckpoint) -> None:
        """Copies of a new checkpoint outside the database."""
        log.info(
            "checkpoint signed",
            extra={
                "checkpoint": {
                    "origin": signed.origin,
                    "size": signed.size,
                    "root": base64.b64encode(signed.root).decode(),
                    "key_fingerprint": signed.key_fingerprint,
                    "note": signed.note,
                }
            },
        )
        if self._directory is not None:
            write_note(self._directory, signed)


def write_note(directory: Path, signed: SignedCheckpoint) -> Path:
    """Write ``checkpoint-<size>.note`` (and ``latest.note``) into ``directory``,
    each whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"checkpoint-{signed.size}.note"
    for target in (path, directory / "latest.note"):
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".checkpoint-")
        with os.fdopen(fd, "w") as out:
            out.write(signed.note)
        os.replace(temporary, target)
    return path
