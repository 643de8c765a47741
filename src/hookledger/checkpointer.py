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

from events.checkpoint_log import SignedCheckpoint, Signer, latest_checkpoint, sign_checkpoint
from events.checkpoint_note import fingerprint, verifier_key
from events.connector import Database
from events.tree import tree_size
from hookledger.checkpoint_key import load_signer
from hookledger.settings import Settings

log = logging.getLogger(__name__)


class Checkpointer:
    """Signs and publishes checkpoints of the ledger's tree. The key is loaded at
    first use (a Cloud KMS key is reached over the network)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self.origin = settings.checkpoint_origin
        self._interval = settings.checkpoint_interval.total_seconds()
        self._directory = Path(settings.checkpoint_dir) if settings.checkpoint_dir else None
        self._signer: Signer | None = None
        self._loaded = False
        self._loading = asyncio.Lock()

    async def signer(self) -> Signer | None:
        """The signing key; None when checkpoints are not signed (no key set on a
        real database)."""
        async with self._loading:
            if not self._loaded:
                self._signer = await load_signer(self._settings)
                self._loaded = True
                if self._signer is None:
                    log.warning(
                        "checkpoints are not signed: set HOOKLEDGER_CHECKPOINT_KEY "
                        "(a PEM, file:, sm:// or kms:// key)"
                    )
                else:
                    log.info("checkpoint key", extra={"origin": self.origin,
                             "key_fingerprint": fingerprint(self._signer.public_key)})  # fmt: skip
        return self._signer

    async def verifier_key(self) -> str | None:
        """The public key as a C2SP verifier key (``origin+hash+base64``)."""
        signer = await self.signer()
        return None if signer is None else verifier_key(self.origin, signer.public_key)

    async def run(self) -> None:
        """Sign every interval while the tree grows; run until cancelled."""
        if await self.signer() is None:
            await asyncio.Event().wait()  # nothing to sign with: idle, not dead
        while True:
            latest = await latest_checkpoint(self._db)
            # Only when the ledger grew: an idle ledger is not signed again and again.
            if await tree_size(self._db) > (latest.size if latest is not None else 0):
                await self.checkpoint()
            await asyncio.sleep(self._interval)

    async def checkpoint(self, size: int | None = None) -> SignedCheckpoint | None:
        """Sign the tree as it stands now (or at ``size``), unless that size is
        signed already, and publish it when new. None without a key."""
        signer = await self.signer()
        if signer is None:
            return None
        if size is None:
            latest = await latest_checkpoint(self._db)
            signed, new = await sign_checkpoint(self._db, signer, self.origin)
            if latest is not None and signed.size < latest.size:
                return latest  # the tree lags a checkpoint already signed
        else:
            signed, new = await sign_checkpoint(self._db, signer, self.origin, size)
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
