"""What an export destination answers when it does not take a batch."""

from __future__ import annotations

from events.errors import HookledgerError, Unavailable


class DestinationUnavailable(Unavailable):
    """The destination (BigQuery) does not answer: the batch waits and is retried."""

    code = "destination_unavailable"


class DestinationRefused(HookledgerError):
    """The destination refused a write (schema, access, busy): retrying will not help."""

    code = "destination_refused"
