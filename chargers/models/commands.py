"""Commands to piles, tracked until the pile answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class Command(db.Model):
    """A command to a pile on its `cmd` topic, tracked until the pile acks or 30 s pass."""

    __tablename__ = "commands"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the `id` in the payload
    pile_id: Mapped[str] = mapped_column(ForeignKey("piles.id"), index=True)
    port: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # stop/enable/disable/reset
    # pending (not yet published) → sent → accepted / rejected / timeout
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Our own word on the outcome, a code (`no_ack`, `unsent`, `late`), apart from
    # the pile's own words in its ack (`pile_detail`, column `detail`).
    outcome: Mapped[str | None] = mapped_column(String(16))
    pile_detail: Mapped[str | None] = mapped_column("detail", Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # How many times it was published (a cut-off re-sends the same id until answered).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    # Fields of the command body beyond id/ts/action/port (`config`: version, settings).
    args: Mapped[dict | None] = mapped_column(JSON)

    @property
    def detail(self) -> str | None:
        """The outcome in English for the API and logs: our word on it, then the pile's."""
        from ..outcomes import english

        ours = english(f"command.{self.outcome}") if self.outcome else ""
        parts = [p for p in (ours, self.pile_detail) if p]
        return "; ".join(parts) or None
