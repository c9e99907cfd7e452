"""Read-only figures for the staff money dashboard: sessions, kWh and takings of an
alley per local day, ISO week or calendar month: sessions and kWh by the local time
the sessions ended; takings (income) from the ledger by posting time in the alley's
zone (services/billing/income.py, the one definition every page uses: a session on the
review list is no income until staff assign it)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from ...extensions import db
from ...models import Alley, ChargingSession, Pile
from ..devices import alleys
from . import income

PERIODS = {"day": 31, "week": 12, "month": 12}


def _start_of(period: str, d: date) -> date:
    if period == "week":
        return d - timedelta(days=d.weekday())
    if period == "month":
        return d.replace(day=1)
    return d


def _step(period: str, d: date, back: int) -> date:
    if period == "day":
        return d - timedelta(days=back)
    if period == "week":
        return d - timedelta(weeks=back)
    m = d.year * 12 + d.month - 1 - back
    return date(m // 12, m % 12 + 1, 1)


def series(alley: Alley, period: str, now: datetime) -> list[dict]:
    """Buckets oldest first: {"start": date, "sessions", "energy_wh", "takings_cents"}."""
    if period not in PERIODS:
        period = "day"
    tz = alleys.zone(alley)
    today = _start_of(period, now.astimezone(tz).date())
    starts = [_step(period, today, back) for back in range(PERIODS[period] - 1, -1, -1)]
    buckets = {s: {"start": s, "sessions": 0, "energy_wh": 0, "takings_cents": 0}
               for s in starts}
    since = datetime.combine(starts[0], time(), tzinfo=tz)
    cs = ChargingSession
    rows = db.session.execute(select(cs.ended_at, cs.energy_wh).where(
        cs.pile_id.in_(select(Pile.id).where(Pile.alley_id == alley.id)),
        cs.status.in_(("stopped", "timeout")), cs.ended_at >= since, cs.ended_at <= now))
    for ended, wh in rows:
        key = _start_of(period, ended.astimezone(tz).date())
        b = buckets.get(key)
        if b is None:
            continue
        b["sessions"] += 1
        b["energy_wh"] += int(round(wh or 0))
    money = income.by_bucket(alley, since, None, lambda d: _start_of(period, d))
    for key, fig in money.items():
        if key in buckets:
            buckets[key]["takings_cents"] = fig.takings_cents
    return list(buckets.values())
