"""Problems residents report from a pile's page (报修)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class ProblemReport(db.Model):
    """One resident's report: which port, what is wrong, an optional photo (a re-encoded
    JPEG under the instance folder) and phone; it raises or bumps a staff alert."""

    __tablename__ = "problem_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    pile_id: Mapped[str] = mapped_column(ForeignKey("piles.id"), index=True)
    port: Mapped[int | None] = mapped_column(Integer)  # None: the whole pile
    kind: Mapped[str] = mapped_column(String(16))  # services.alerts.reports.KINDS
    phone: Mapped[str | None] = mapped_column(String(32))
    # What the resident wrote (most of all for "other": 其他问题); plain text, shown
    # escaped to staff.
    details: Mapped[str | None] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(64))  # file name under REPORT_PHOTO_DIR
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A fire report beyond its address's rate limit: still kept and shown to staff
    # (a fire is never silenced by a limit), but marked so they can weigh it.
    over_limit: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    pile = relationship("Pile")
    alert = relationship("Alert")
