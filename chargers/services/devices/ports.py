"""The port status machine, as the piles report it.

The pile is the authority on its ports, so every protocol status may follow any
other; what the backend guards is time: a report older than the one that set the
current status (messages arrive out of order across topics) does not overwrite it.
Called by the ingest inside its batch: no commit.
"""

from __future__ import annotations

from datetime import datetime

from ...models import Pile, Port


def port_of(pile: Pile, number: int) -> Port | None:
    """The pile's port `number`, or None."""
    for port in pile.ports:
        if port.number == number:
            return port
    return None


def apply_status(port: Port, status: str, error: str | None, at: datetime) -> bool:
    """Set the port's status as of `at`; False (and no change) when a newer report
    already set it."""
    if port.status_ts is not None and at < port.status_ts:
        return False
    if port.status != status:
        port.status = status
        port.status_since = at
    port.status_ts = at
    # The error code belongs to a faulted port; any other status clears it.
    port.error = error if status == "faulted" else None
    return True
