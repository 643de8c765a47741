"""The one exception hierarchy of hookledger. The base classes and the ledger's
own errors live here; an error that only one package raises lives in that
package (``api.rejections``, ``exporter.errors``, ``scheduler.errors``), so
``events`` imports none of them.

    HookledgerError (events.errors)
    ├── InputError (events.errors)        the caller sent something we refuse (4xx)
    │   ├── MalformedBody (api)           400: not JSON, or not a body the provider sends
    │   ├── SignatureRejected (api)       401: missing/bad signature, stale timestamp, no secret
    │   │   └── Rejected (api)            ... and the reason, for the metrics
    │   ├── Unauthorized (api)            401: a read or task call without valid credentials
    │   ├── NotFound (api)                404: unknown provider, unknown order
    │   ├── BodyTooLarge (api)            413
    │   └── UnsupportedMediaType (api)    415
    ├── Unavailable (events.errors)       retrying later can help (503 + Retry-After)
    │   ├── DatabaseUnavailable           the database does not answer
    │   ├── AppenderStopped               the process is shutting down
    │   ├── Overloaded                    the appender is behind: new deliveries wait outside
    │   ├── UpstreamUnavailable           a Google Cloud service did not answer
    │   ├── TreeBehind                    the tree or its checkpoints lag the events asked for
    │   ├── DestinationUnavailable (exporter)  an export destination (BigQuery) does not answer
    │   └── NotDueYet (scheduler)         a timer's task came before its time
    ├── DatabaseRefused                   the database rejected a statement for another reason (500)
    │   ├── DataRefused                   ... for the values in it (out of range, a check failed)
    │   └── WriteConflict                 a concurrent writer got there first; retry the batch
    │       └── CheckpointMoved           another runner advanced a consumer's checkpoint
    ├── DestinationRefused (exporter)     a destination refused a write (schema, access, busy)
    ├── MigrationError                    a migration is missing, edited or failed
    ├── ReplayFailed                      a rebuild of projections failed (the live tables stand)
    ├── ChainBroken                       a stream's hash chain does not verify
    └── TreeBroken                        the Merkle tree or a checkpoint disagrees with the ledger

Unmarked classes are in this module; ``(api)`` is ``api.rejections``,
``(exporter)`` ``exporter.errors``, ``(scheduler)`` ``scheduler.errors``.
HTTP statuses are assigned in exactly one place: ``api.errors`` (through the
base classes where it may not import the package that holds the error).
"""

from __future__ import annotations


class HookledgerError(Exception):
    """Base of every error hookledger raises on purpose."""

    code = "internal_error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail


class InputError(HookledgerError):
    code = "bad_request"


class Unavailable(HookledgerError):
    code = "unavailable"


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"


class AppenderStopped(Unavailable):
    code = "shutting_down"


class Overloaded(Unavailable):
    """The appender's queue is deeper, or older, than allowed: refused before it
    is accepted, so the provider retries rather than times out."""

    code = "overloaded"


class UpstreamUnavailable(Unavailable):
    code = "upstream_unavailable"


class TreeBehind(Unavailable):
    code = "tree_behind"


class DatabaseRefused(HookledgerError):
    code = "database_refused"


class DataRefused(DatabaseRefused):
    """Refused for the values sent, not the statement or the server: the same
    values will be refused again (a consumer sets the event aside)."""

    code = "data_refused"


class WriteConflict(DatabaseRefused):
    code = "write_conflict"


class CheckpointMoved(WriteConflict):
    code = "checkpoint_moved"


class MigrationError(HookledgerError):
    code = "migration_error"


class ReplayFailed(HookledgerError):
    code = "replay_failed"


class ChainBroken(HookledgerError):
    code = "chain_broken"

    def __init__(self, stream: str, version: int, reason: str) -> None:
        super().__init__(f"stream {stream!r} breaks at version {version}: {reason}")
        self.stream = stream
        self.version = version
        self.reason = reason


class TreeBroken(HookledgerError):
    """The ledger is not the one the tree or a checkpoint describes; ``position``
    is the first event known to differ (0 when only a range is known)."""

    code = "tree_broken"

    def __init__(self, reason: str, position: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position
