"""Residents report a problem with a pile (报修): which port, what is wrong, an optional
photo and phone. Each report is kept and raises (or bumps) a staff alert: a burning
smell is critical and pages at once, but a report alone never cuts power (an anonymous
word is not a sensor; staff look and decide). `submit` commits.

Photos are untrusted bytes from the street: opened with Pillow only to check they are an
image of sane size, then re-encoded as a fresh JPEG (no EXIF, no GPS, no payload riding
along) under the instance folder with a random name.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from ...extensions import db
from ...models import Pile, ProblemReport
from ...settings import AlertRules, ReportSettings
from .. import photos
from ..errors import Invalid, NotFound
from . import lifecycle as alerts

# What a resident can say is wrong, and the alert code each becomes.
KINDS = {"no_power": "report_no_power", "damaged": "report_damaged",
         "burning": "report_burning", "other": "report_other"}
PHONE_RE = re.compile(r"^\+?[0-9][0-9 -]{4,30}$")
PHOTO_NAME_RE = re.compile(r"^[0-9a-f]{32}\.jpg$")
MAX_SIDE = 1600  # stored photos are scaled down to this
MAX_DETAILS = 500  # characters of free text


@dataclass(frozen=True)
class ReportInput:
    pile_id: str
    port: int | None  # None: the whole pile / not sure
    kind: str
    phone: str = ""
    details: str = ""  # free text: what else is wrong (其他问题)
    photo: bytes | None = None
    remote_addr: str | None = None
    over_limit: bool = False  # a fire report past its address's rate limit


def clean_photo(data: bytes, max_bytes: int) -> bytes:
    """The photo re-encoded as a plain JPEG, or Invalid when it is not a sane image
    (JPEG, PNG or WebP only, at most photos.MAX_PIXELS: services/photos.py)."""
    if len(data) > max_bytes:
        raise Invalid("report.photo_too_big", mb=max_bytes // (1024 * 1024))
    try:
        photos.check_request([data])
        return photos.reencode(data, MAX_SIDE)
    except photos.BadImage:
        raise Invalid("report.photo_invalid") from None


def submit(data: ReportInput, settings: ReportSettings, now: datetime, *,
           rules: AlertRules) -> ProblemReport:
    """Keep the report, store its photo, raise or bump its alert (under `rules`). Commits."""
    pile = db.session.get(Pile, data.pile_id)
    if pile is None:
        raise NotFound("pile.not_found", pile=data.pile_id)
    if data.kind not in KINDS:
        raise Invalid("report.kind", kinds=", ".join(KINDS))
    if data.port is not None and not 1 <= data.port <= pile.port_count:
        raise Invalid("report.port", port=data.port, n=pile.port_count)
    phone = (data.phone or "").strip()
    if phone and not PHONE_RE.match(phone):
        raise Invalid("report.phone")
    details = (data.details or "").strip()
    if len(details) > MAX_DETAILS:
        raise Invalid("report.details", n=MAX_DETAILS)
    name = None
    if data.photo:
        jpeg = clean_photo(data.photo, settings.photo_max_bytes)
        settings.photo_dir.mkdir(parents=True, exist_ok=True)
        name = secrets.token_hex(16) + ".jpg"
        (settings.photo_dir / name).write_bytes(jpeg)
    try:
        alert = alerts.on_report(pile, data.port, KINDS[data.kind], now, rules=rules)
        report = ProblemReport(pile_id=pile.id, port=data.port, kind=data.kind,
                               phone=phone or None, details=details or None, photo=name,
                               remote_addr=data.remote_addr,
                               alert_id=alert.id, created_at=now, over_limit=data.over_limit)
        db.session.add(report)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if name:  # a report that was not kept leaves no photo behind
            (settings.photo_dir / name).unlink(missing_ok=True)
        raise
    return report


def for_alert(alert_id: int) -> list[ProblemReport]:
    """The residents' reports behind an alert, newest first (for the staff page)."""
    return list(db.session.scalars(select(ProblemReport).where(ProblemReport.alert_id == alert_id)
                                   .order_by(ProblemReport.created_at.desc())))


def photo_path(settings: ReportSettings, name: str) -> Path:
    """Where a stored photo is; NotFound for any name we did not make."""
    if not PHOTO_NAME_RE.match(name or "") or not (settings.photo_dir / name).is_file():
        raise NotFound("report.photo_not_found")
    return settings.photo_dir / name
