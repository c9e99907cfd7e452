"""Commands to piles on their `cmd` topic, tracked until acked (issue 4 fills this in).

`on_ack` is called by the MQTT ingest inside its batch transaction; it does not commit.
"""

from __future__ import annotations

from datetime import datetime

from ..models import Pile


def on_ack(pile: Pile, command_id: str, result: str, detail: str | None, now: datetime) -> None:
    """The pile answered command `command_id` with `accepted` or `rejected`. Does not commit."""
