"""Alerts for staff: raised from fault events and offline piles (issue 4 fills this in).

The functions named `on_*` are called by the MQTT ingest inside its batch
transaction: they add and flush, and never commit (the batch commits).
"""

from __future__ import annotations

from datetime import datetime

from ..models import Pile


def on_fault(pile: Pile, port: int | None, code: str, active: bool, value: float | None,
             detail: str | None, at: datetime, now: datetime) -> None:
    """A pile reported a fault raised (`active`) or cleared, at `at` (already chosen
    between pile time and arrival time). Does not commit."""


def on_pile_online(pile: Pile, now: datetime) -> None:
    """The pile came (back) online. Does not commit."""


def on_pile_offline(pile: Pile, now: datetime) -> None:
    """The pile went offline (last will, retained 0, or missed heartbeats). Does not commit."""
