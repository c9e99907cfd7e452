"""Monthly close: per alley, every past local calendar month not yet closed gets a
frozen account (`MonthClose`) and each resident account a `Statement`. Commits (one
transaction per alley-month).

Rules (documented decisions):
- Months are calendar months in the alley's own zone; a month may close from
  `CloseRule.hour` (02:00) local on the 1st of the next month. Every run closes every
  closable month not yet closed, oldest first, so a missed run does no harm.
- A month waits while a session that ended in it is finished but not yet settled
  (settlement runs every minute; its charge then belongs to this month).
- Postings belong to months by their *posting time* (记账时间, when the ledger
  recorded them, in the alley's zone): the one definition of income every page uses
  (services/billing/income.py), so a closed month's totals equal the ledger's figures
  for that month. At a close every posting of the alley not yet counted posted before
  the month's end is counted in that month (`PostingMonth`, written once). So a posting
  made after a month closed — a reversal, an approved adjustment, a late charge — is
  counted in the next month still open.
- Top-ups and refunds are net of their reversals: a reversed top-up is not received.
- Sessions (count, kWh, per-day figures) belong to the month their end falls in; the
  month's and each day's kWh are the exact sum of the sessions' Wh, rounded once.
- Debts: each statement whose closing balance is below zero owes that much; the close
  sums them (`debts_cents`) and the month's write-offs (`writeoffs_cents`).
- The close records the ledger's hash-chain head and length at that moment
  (`chain_head`, `chain_postings`), printed on the 公示: a later rewrite of any posting
  up to then changes every hash after it (`flask billing verify` walks the chain).
- A closed month's rows are never updated (publication only adds its stamp and the
  grid bill copied at that moment).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    Alley,
    ChargingSession,
    LedgerAccount,
    LedgerChain,
    LedgerEntry,
    MonthClose,
    NoticeVersion,
    Pile,
    Posting,
    PostingMonth,
    ResidentAccount,
    Statement,
)
from ...settings import CloseRule
from ..devices import alleys
from . import pricing

FINISHED = ("stopped", "timeout")


def month_str(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def parse_month(month: str) -> tuple[int, int]:
    y, m = month.split("-")
    return int(y), int(m)


def next_month(month: str) -> str:
    y, m = parse_month(month)
    return month_str(y + (m == 12), 1 if m == 12 else m + 1)


def bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of the local month's first and next month's first midnight."""
    y, m = parse_month(month)
    ny, nm = parse_month(next_month(month))
    return (datetime(y, m, 1, tzinfo=tz).astimezone(UTC),
            datetime(ny, nm, 1, tzinfo=tz).astimezone(UTC))


def local_month(at: datetime, tz: ZoneInfo) -> str:
    loc = at.astimezone(tz)
    return month_str(loc.year, loc.month)


def _prev(month: str) -> str:
    y, m = parse_month(month)
    return month_str(y - (m == 1), 12 if m == 1 else m - 1)


def latest_closable(now: datetime, tz: ZoneInfo, hour: int) -> str:
    """The newest month that may close at `now` (its next month's 1st, `hour` local)."""
    loc = now.astimezone(tz)
    prev = _prev(month_str(loc.year, loc.month))
    return _prev(prev) if loc.day == 1 and loc.hour < hour else prev


def _alley_session_filter(alley_id: int):
    return ChargingSession.pile_id.in_(select(Pile.id).where(Pile.alley_id == alley_id))


def _first_activity(alley: Alley, tz: ZoneInfo) -> str | None:
    """The local month of the alley's first posting or finished session."""
    firsts = [db.session.scalar(select(func.min(Posting.created_at))
                                .where(Posting.alley_id == alley.id)),
              db.session.scalar(select(func.min(ChargingSession.ended_at))
                                .where(_alley_session_filter(alley.id)))]
    firsts = [f for f in firsts if f is not None]
    return local_month(min(firsts), tz) if firsts else None


def _effective_at(posting: Posting, session_end: datetime | None) -> datetime:
    """A posting's month is that of its posting time (services/billing/income.py)."""
    return posting.created_at


def unsettled_before(alley_id: int, end: datetime) -> int:
    """Finished sessions of the alley that ended before `end` and are not settled."""
    cs = ChargingSession
    return int(db.session.scalar(select(func.count()).select_from(cs).where(
        _alley_session_filter(alley_id), cs.status.in_(FINISHED), cs.settled_at.is_(None),
        cs.started_at.is_not(None), cs.ended_at.is_not(None), cs.ended_at < end)) or 0)


@dataclass
class CloseResult:
    closed: list[str]
    waiting: list[str]


def close_due(now: datetime, rule: CloseRule | None = None) -> CloseResult:
    """Close every closable month of every alley not yet closed (commits each)."""
    rule = rule or CloseRule()
    result = CloseResult([], [])
    for alley in db.session.scalars(select(Alley).order_by(Alley.id)).all():
        tz = alleys.zone(alley)
        last = latest_closable(now, tz, rule.hour)
        done = db.session.scalar(select(func.max(MonthClose.month))
                                 .where(MonthClose.alley_id == alley.id))
        month = next_month(done) if done else _first_activity(alley, tz)
        n = 0
        while month is not None and month <= last and n < rule.max_months:
            _, end = bounds(month, tz)
            if unsettled_before(alley.id, end):
                result.waiting.append(f"{alley.slug} {month}")
                break
            if close_month(alley, month, now) is None:
                break  # an overlapping run closed it: it goes on from there
            result.closed.append(f"{alley.slug} {month}")
            month = next_month(month)
            n += 1
    return result


def close_month(alley: Alley, month: str, now: datetime) -> MonthClose | None:
    """Close one month of an alley (the caller checked it is due). Commits; None when
    another run closed it first. Load → total (pure) → write."""
    tz = alleys.zone(alley)
    start, end = bounds(month, tz)
    counted = _load_counted(alley.id, start, end, now)
    entries = _load_entries(counted)
    sessions = _load_sessions(alley.id, start, end)
    mc = MonthClose(alley_id=alley.id, month=month, period_start=start, period_end=end,
                    closed_at=now, sessions=0, energy_wh=0, electricity_cents=0,
                    service_cents=0, topups_cents=0, refunds_cents=0, adjustments_cents=0,
                    covered_cents=0, waived_cents=0, postings=len(counted),
                    occupancy_cents=0, writeoffs_cents=0, debts_cents=0,
                    card_sales_cents=0, online_cents=0, fees_cents=0)
    daily = _empty_days(start, end, tz)
    per_resident = _ledger_totals(mc, counted, entries, daily, tz, _reversed_kinds(counted))
    by_account = _session_totals(mc, sessions, daily, tz)
    mc.daily = list(daily.values())
    return _write_close(mc, alley.id, month, counted, per_resident, by_account, now)


def _load_counted(alley_id: int, start: datetime, end: datetime,
                  now: datetime) -> dict[int, tuple[Posting, datetime]]:
    """Postings not yet counted whose effective time is before the month's end, with
    that time (not before the month's start)."""
    rows = db.session.execute(
        select(Posting, ChargingSession.ended_at)
        .outerjoin(ChargingSession, ChargingSession.id == Posting.session_id)
        .outerjoin(PostingMonth, PostingMonth.posting_id == Posting.id)
        .where(Posting.alley_id == alley_id, PostingMonth.posting_id.is_(None),
               Posting.created_at <= now)
        .order_by(Posting.id)).all()
    counted: dict[int, tuple[Posting, datetime]] = {}
    for p, ended in rows:
        eff = _effective_at(p, ended)
        if eff < end:
            counted[p.id] = (p, max(eff, start))
    return counted


def _load_entries(counted: dict) -> list:
    if not counted:
        return []
    return db.session.execute(
        select(LedgerEntry.posting_id, LedgerEntry.amount_cents, LedgerAccount.kind,
               LedgerAccount.resident_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.posting_id.in_(list(counted)))).all()


def _reversed_kinds(counted: dict) -> dict[int, str]:
    """The kind of each posting a counted reversal reverses."""
    ids = {p.reverses_id for p, _ in counted.values() if p.reverses_id}
    if not ids:
        return {}
    return dict(db.session.execute(select(Posting.id, Posting.kind).where(Posting.id.in_(ids))).all())


def _load_sessions(alley_id: int, start: datetime, end: datetime) -> list[ChargingSession]:
    """Sessions that ended in the month."""
    cs = ChargingSession
    return list(db.session.scalars(select(cs).where(
        _alley_session_filter(alley_id), cs.status.in_(FINISHED), cs.ended_at >= start,
        cs.ended_at < end).order_by(cs.ended_at, cs.id)))


def _empty_days(start: datetime, end: datetime, tz: ZoneInfo) -> dict[str, dict]:
    daily: dict[str, dict] = {}
    d = start.astimezone(tz).date()
    while datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC) < end:
        daily[d.isoformat()] = {"day": d.isoformat(), "sessions": 0, "energy_wh": 0,
                                "takings_cents": 0}
        d += timedelta(days=1)
    return daily


_ONLINE = {"pay_wechat": "wechat", "pay_alipay": "alipay"}
_RESIDENT_BUCKET = {"topup": "topups", "charge": "charges", "refund": "refunds",
                    "writeoff": "writeoffs"}


def _ledger_totals(mc: MonthClose, counted: dict, entries: list, daily: dict,
                   tz: ZoneInfo, reversed_kinds: dict[int, str]) -> dict[int, dict[str, int]]:
    """Pure: the counted postings' entries summed into `mc` (by account kind and posting
    kind) and `daily`; returns each resident's moves by bucket."""
    per_resident: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    # A posting touching the alley's money at a provider moved money online (a top-up
    # paid, a refund to the channel, or the reversal of one); the rest is cash and
    # other ways staff record.
    channel = {pid: _ONLINE[k] for pid, _c, k, _r in entries if k in _ONLINE}
    for pid, cents, acc_kind, resident_id in entries:
        p, eff = counted[pid]
        cents = int(cents)
        if acc_kind in ("electricity", "service", "occupancy"):
            setattr(mc, f"{acc_kind}_cents", getattr(mc, f"{acc_kind}_cents") + cents)
            day = eff.astimezone(tz).date().isoformat()
            if day in daily:
                daily[day]["takings_cents"] += cents
            if p.kind in ("adjustment", "reversal"):
                mc.adjustments_cents += cents
        elif acc_kind in ("covered", "waived"):
            setattr(mc, f"{acc_kind}_cents", getattr(mc, f"{acc_kind}_cents") - cents)
        elif acc_kind == "written_off":
            mc.writeoffs_cents -= cents
        elif acc_kind == "card_sales":
            mc.card_sales_cents += cents
        elif acc_kind in ("pay_wechat", "pay_alipay"):
            if p.kind != "fee":
                mc.online_cents -= cents
        elif acc_kind == "pay_fees":
            mc.fees_cents -= cents
        elif acc_kind == "resident":
            # A reversal of a top-up or refund counts as less top-up or refund.
            about = p.kind
            if p.kind == "reversal" and reversed_kinds.get(p.reverses_id) in ("topup", "refund"):
                about = reversed_kinds[p.reverses_id]
            bucket = _RESIDENT_BUCKET.get(about, "adjustments")
            per_resident[resident_id][bucket] += cents
            if bucket in ("topups", "refunds") and pid in channel:
                per_resident[resident_id][f"{bucket}_{channel[pid]}"] += cents
            if about == "topup":
                mc.topups_cents += cents
            elif about == "refund":
                mc.refunds_cents -= cents
    return per_resident


def _session_totals(mc: MonthClose, sessions: list, daily: dict,
                    tz: ZoneInfo) -> dict[int, list[dict]]:
    """Pure: the month's sessions counted into `mc` and `daily`; returns each
    account's session lines for its statement. kWh: the exact Wh are summed, then
    rounded half up once (the month's and each day's), never session by session."""
    by_account: dict[int, list[dict]] = defaultdict(list)
    month_wh = Fraction(0)
    day_wh: dict[str, Fraction] = defaultdict(Fraction)
    for s in sessions:
        exact = pricing.frac(s.energy_wh or 0)
        month_wh += exact
        mc.sessions += 1
        day = s.ended_at.astimezone(tz).date().isoformat()
        daily[day]["sessions"] += 1
        day_wh[day] += exact
        if s.account_id is not None:
            by_account[s.account_id].append({
                "id": s.id, "ended_at": s.ended_at.astimezone(UTC).isoformat(),
                "pile": s.pile_id, "port": s.port, "energy_wh": pricing.fen(exact),
                "amount_cents": s.amount_cents, "billing": s.billing,
                "covered_cents": s.covered_cents, "shortfall_cents": s.shortfall_cents})
    mc.energy_wh = pricing.fen(month_wh)
    for day, wh in day_wh.items():
        daily[day]["energy_wh"] = pricing.fen(wh)
    return by_account


def _write_close(mc: MonthClose, alley_id: int, month: str, counted: dict,
                 per_resident: dict, by_account: dict, now: datetime) -> MonthClose | None:
    """Step 3: the close, its posting months and the statements (opening = the
    resident's entries counted in earlier months). Commits; None if closed already."""
    chain = db.session.get(LedgerChain, 1)
    mc.chain_head = chain.head if chain else None
    mc.chain_postings = chain.postings if chain else 0
    db.session.add(mc)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return None
    db.session.add_all(PostingMonth(posting_id=pid, alley_id=alley_id, month=month)
                       for pid in counted)
    openings = dict(db.session.execute(
        select(LedgerAccount.resident_id, func.sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(PostingMonth, PostingMonth.posting_id == LedgerEntry.posting_id)
        .where(LedgerAccount.alley_id == alley_id, LedgerAccount.resident_id.is_not(None),
               PostingMonth.month < month)
        .group_by(LedgerAccount.resident_id)).all())
    for acc in db.session.scalars(select(ResidentAccount).where(
            ResidentAccount.alley_id == alley_id).order_by(ResidentAccount.id)):
        moves = per_resident.get(acc.id, {})
        opening = int(openings.get(acc.id) or 0)
        if (not moves and not opening and not by_account.get(acc.id) and acc.created_at is not None
                and _aware(acc.created_at) >= _aware(mc.period_end)):
            continue  # opened after the month (a late close): no statement of it
        st = Statement(close_id=mc.id, alley_id=alley_id, resident_id=acc.id, month=month,
                       opening_cents=opening, topups_cents=moves.get("topups", 0),
                       charges_cents=moves.get("charges", 0),
                       refunds_cents=moves.get("refunds", 0),
                       adjustments_cents=moves.get("adjustments", 0),
                       writeoffs_cents=moves.get("writeoffs", 0),
                       topups_wechat_cents=moves.get("topups_wechat", 0),
                       topups_alipay_cents=moves.get("topups_alipay", 0),
                       refunds_wechat_cents=moves.get("refunds_wechat", 0),
                       refunds_alipay_cents=moves.get("refunds_alipay", 0),
                       sessions=by_account.get(acc.id, []), created_at=now)
        st.closing_cents = (opening + st.topups_cents + st.charges_cents + st.refunds_cents
                            + st.adjustments_cents + st.writeoffs_cents)
        mc.debts_cents += max(0, -st.closing_cents)
        db.session.add(st)
    db.session.commit()
    return mc


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def closes(alley_id: int) -> list[MonthClose]:
    """The alley's closed months, newest first."""
    return list(db.session.scalars(select(MonthClose).where(MonthClose.alley_id == alley_id)
                                   .order_by(MonthClose.month.desc())))


def statements_of(resident_id: int) -> list[Statement]:
    """A resident account's statements, newest first."""
    return list(db.session.scalars(select(Statement).where(
        Statement.resident_id == resident_id).order_by(Statement.month.desc())))


def statements_for(close: MonthClose) -> list[tuple[Statement, ResidentAccount]]:
    """The statements of a closed month, by account."""
    return list(db.session.execute(
        select(Statement, ResidentAccount)
        .join(ResidentAccount, ResidentAccount.id == Statement.resident_id)
        .where(Statement.close_id == close.id).order_by(ResidentAccount.id)).all())


def get_close(user, slug: str, month: str) -> MonthClose:
    """A closed month of an alley in the user's scope (404 otherwise)."""
    from ..devices import alleys
    from ..errors import NotFound

    alley = alleys.get_alley(user, slug)
    mc = db.session.scalar(select(MonthClose).where(MonthClose.alley_id == alley.id,
                                                    MonthClose.month == month))
    if mc is None:
        raise NotFound("month.not_found", month=month)
    return mc


def publish(user, slug: str, month: str, now: datetime) -> MonthClose:
    """Publish (公示) a closed month: stamped, with the grid bill as entered now copied
    in (and locked). Once only. Audited. Commits."""
    from ..errors import Conflict
    from . import ledger, reconciliation

    mc = get_close(user, slug, month)
    if mc.published_at is not None:
        raise Conflict("month.published", month=month)
    bill = reconciliation.grid_bill(mc.alley_id, month)
    mc.published_at, mc.published_by = now, user.id if user else None
    mc.published_grid_wh = bill.grid_wh if bill else None
    mc.published_grid_cents = bill.amount_cents if bill else None
    mc.version = 1
    db.session.add(NoticeVersion(close_id=mc.id, version=1, published_at=now,
                                 published_by=user.id if user else None,
                                 grid_wh=mc.published_grid_wh, grid_cents=mc.published_grid_cents,
                                 reason=""))
    ledger.audit("month.published", mc.alley_id, user.id if user else None, now, month=month)
    db.session.commit()
    return mc


def correct(user, slug: str, month: str, grid_wh: int, grid_cents: int, reason: str,
            now: datetime) -> MonthClose:
    """A correction of a published 公示 (the grid bill: kWh and amount): a new version,
    shown as such with why; the earlier versions stay as they were shown. The month's
    income is never corrected here: a change of money is a posting, counted in the next
    open month. Audited. Commits."""
    from ..errors import Conflict, Invalid
    from . import ledger

    mc = get_close(user, slug, month)
    if mc.published_at is None:
        raise Conflict("month.not_published", month=month)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("month.correction_reason")
    if not (isinstance(grid_wh, int) and 0 <= grid_wh and isinstance(grid_cents, int)
            and 0 <= grid_cents <= 10**10):
        raise Invalid("grid.kwh")
    if (grid_wh, grid_cents) == (mc.published_grid_wh, mc.published_grid_cents):
        raise Conflict("month.correction_same", month=month)
    mc.version = (mc.version or 1) + 1
    mc.published_grid_wh, mc.published_grid_cents = grid_wh, grid_cents
    db.session.add(NoticeVersion(close_id=mc.id, version=mc.version, published_at=now,
                                 published_by=user.id if user else None, grid_wh=grid_wh,
                                 grid_cents=grid_cents, reason=reason[:500]))
    ledger.audit("month.corrected", mc.alley_id, user.id if user else None, now, month=month,
                 version=mc.version, grid_wh=grid_wh, amount_cents=grid_cents)
    db.session.commit()
    return mc


def versions(mc: MonthClose) -> list[NoticeVersion]:
    """The month's 公示 as each version showed it, newest first."""
    return list(db.session.scalars(select(NoticeVersion).where(NoticeVersion.close_id == mc.id)
                                   .order_by(NoticeVersion.version.desc())))


def published(alley_id: int) -> list[MonthClose]:
    """The alley's published months, newest first (for the public page)."""
    return list(db.session.scalars(select(MonthClose).where(
        MonthClose.alley_id == alley_id, MonthClose.published_at.is_not(None))
        .order_by(MonthClose.month.desc())))


def published_month(alley_id: int, month: str) -> MonthClose:
    """One published month (404 for a month not closed or not published)."""
    from ..errors import NotFound

    mc = db.session.scalar(select(MonthClose).where(
        MonthClose.alley_id == alley_id, MonthClose.month == month,
        MonthClose.published_at.is_not(None)))
    if mc is None:
        raise NotFound("month.not_found", month=month)
    return mc


def get_statement(user, statement_id: int) -> tuple[Statement, ResidentAccount]:
    """A statement with its account, in the user's alleys (404 otherwise)."""
    from .. import scope
    from ..errors import NotFound

    st = db.session.get(Statement, statement_id)
    acc = db.session.get(ResidentAccount, st.resident_id) if st else None
    if st is None or acc is None:
        raise NotFound("statement.not_found")
    scope.check_alley(user, acc.alley, "statement.not_found")
    return st, acc
