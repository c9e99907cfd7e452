"""A few weeks of a demo alley's past, made through the services as they would have
happened, each step with its own `now` in the past (local times of the alley's zone):

- the accounts open on the 1st of the last closable month (or six weeks ago, if that
  is later) and staff record the residents' top-ups (services.residents → the
  ledger), some more top-ups later, and a household whose balance ran low tops up
  again the next day;
- residents charge: each charge is recorded as the ingest records it (services.sessions
  inside an IngestBatch: start, a meter reading every 10 minutes, stop), and the
  settlement service prices and posts every day's charges that night;
- staff resolve the review list (strangers' cards, waived) after two days;
- the close job closes the month on the 1st (services.monthly_close); staff enter the
  grid bill (services.reconciliation) and publish the month (公示) on the 3rd;
- the daily patrol and the monthly and quarterly checks are signed
  (services.maintenance); the latest monthly check of an alley may find a fault, which
  leaves a repair work order open.

The charger model is the simulator's: a constant draw up to 80 % of what the battery
takes, then an exponential taper until the draw falls below 12 W (`full`); some
residents unplug early. `plan_charges` is pure (a list of past charges); `replay`
writes them and commits step by step.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ...extensions import db
from ...models import (
    Alley,
    ChargingSession,
    InspectionPlan,
    LedgerAccount,
    MonthClose,
    Pile,
    ReviewItem,
    User,
)
from ...settings import CloseRule, SettleRule
from ..billing import accounts, monthly_close, reconciliation, settlement
from ..charging import sessions
from ..devices import alleys
from ..ingest import message_log
from ..maintenance import inspections
from . import cards as demo_cards

# The past begins on the 1st of the last closable month, or at most this long ago (a
# seed late in a month: that month closes with its last weeks only, the seed stays fast).
MAX_HISTORY = timedelta(days=42)
REF_PREFIX = "demo-"  # session ids of the past charges (the simulator's start with S)
SAMPLE_EVERY_H = 10 / 60
TRICKLE_W = 12.0
NEED_WH = (300.0, 1100.0)
POWER_W = (300.0, 450.0)
EARLY_LEAVE = 0.12
MEAN_STAY_H = 25 / 60
# Relative arrivals by local hour: a little at night, the evening rush after work.
HOURLY = (2, 1, 1, 1, 1, 2, 4, 6, 5, 3, 3, 3, 4, 3, 3, 3, 4, 6, 9, 10, 9, 7, 5, 3)
LOW_BALANCE_CENTS = 500  # a household that keeps topped up pays again below this
REVIEW_AFTER = timedelta(days=2)
REVIEW_NOTE = "访客临时充电，经核实免收"
GRID_CENTS_PER_KWH = 62  # what the grid bills the alley's supply
METHODS = ("wechat", "wechat", "alipay", "cash")


@dataclass(frozen=True)
class PastCharge:
    """One charge of the past: where, with which card, when, and its meter readings
    (time, W, Wh, V, A, °C)."""

    pile_id: str
    port: int
    ref: str
    card: str
    started_at: datetime
    ended_at: datetime
    energy_wh: float
    reason: str
    samples: tuple[tuple[datetime, float, float, float, float, float], ...]


@dataclass(frozen=True)
class DemoAlleyPlan:
    """How busy the alley was, and the fault its latest monthly check finds (pile,
    port, note; None: every check passes)."""

    sessions_per_day: float
    repair: tuple[str, int, str] | None = None


@dataclass
class Replayed:
    """What `replay` made (for the summary)."""

    accounts: int = 0
    cards: int = 0
    sessions: int = 0
    settled: Counter = field(default_factory=Counter)
    reviews_waived: int = 0
    closed: list[str] = field(default_factory=list)
    published: str | None = None
    records: int = 0
    orders: int = 0


# --- the plan (pure) ----------------------------------------------------------------


def _curve(rng: random.Random, start: datetime):
    """A charge on the simulator's model from `start`: (end, Wh, reason, readings)."""
    need, p0 = rng.uniform(*NEED_WH), rng.uniform(*POWER_W)
    k = p0 / (0.2 * need)  # per hour, of the taper
    t_cc = 0.8 * need / p0

    def at(t: float) -> tuple[float, float]:
        if t <= t_cc:
            return p0 * t, p0
        fall = math.exp(-k * (t - t_cc))
        return need - 0.2 * need * fall, p0 * fall

    if rng.random() < EARLY_LEAVE:
        leave = rng.uniform(0.1, 0.9) * need
        t_end = leave / p0 if leave <= 0.8 * need else t_cc + math.log(0.2 * need / (need - leave)) / k
        reason = "unplugged"
    else:
        t_end, reason = t_cc + math.log(p0 / TRICKLE_W) / k, "full"
    readings = []
    ts = [SAMPLE_EVERY_H * i for i in range(1, int(t_end / SAMPLE_EVERY_H) + 1)] + [t_end]
    for t in ts:
        wh, w = at(t)
        if t <= t_cc:
            w *= rng.uniform(0.97, 1.03)
        if reason == "full" and t == t_end:
            w = min(w, TRICKLE_W - 0.5)
        v = rng.uniform(218, 232)
        readings.append((start + timedelta(hours=t), round(w, 1), round(wh, 1), round(v, 1),
                         round(w / v, 2), round(24 + w / 40 + rng.uniform(-1, 1), 1)))
    end = start + timedelta(hours=t_end)
    return end, round(at(t_end)[0], 1), reason, tuple(readings)


def plan_charges(rng: random.Random, ports: list[tuple[str, int]], picker: demo_cards.CardPicker,
                 start: datetime, end: datetime, tz: ZoneInfo,
                 per_day: float) -> list[PastCharge]:
    """The alley's charges between `start` and `end` (all finished by then), oldest
    first: arrivals by the local hour's weight, on a free port, with a card that is not
    charging elsewhere (the simulator's picker)."""
    weight = sum(HOURLY)
    port_free: dict[tuple[str, int], datetime] = dict.fromkeys(ports, start)
    card_free: dict[str, datetime] = {}
    out: list[PastCharge] = []
    day = start.astimezone(tz).date()
    while datetime.combine(day, time(), tz) < end:
        busy_day = rng.uniform(0.8, 1.2) * (1.15 if day.weekday() >= 5 else 1.0)
        arrivals = []
        for hour, w in enumerate(HOURLY):
            expect = per_day * w / weight * busy_day
            n = int(expect) + (rng.random() < expect - int(expect))
            arrivals += [datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tz)
                         for _ in range(n)]
        for t in sorted(arrivals):
            t = t.astimezone(UTC)
            if t < start:
                continue
            free = [p for p in ports if port_free[p] <= t]
            if not free:
                continue
            pile_id, port = rng.choice(free)
            card = picker.pick(rng, {c for c, until in card_free.items() if until > t})
            ended, wh, reason, readings = _curve(rng, t)
            if ended > end:
                continue
            port_free[(pile_id, port)] = ended + timedelta(hours=rng.expovariate(1 / MEAN_STAY_H))
            card_free[card] = ended
            out.append(PastCharge(pile_id, port, f"{REF_PREFIX}{t:%y%m%d%H%M%S}-{port}", card,
                                  t, ended, wh, reason, readings))
        day += timedelta(days=1)
    return sorted(out, key=lambda c: c.ended_at)


# --- writing it --------------------------------------------------------------------


def has_history(alley: Alley) -> bool:
    """Whether the alley's past was made already (its demo sessions exist)."""
    return db.session.scalar(
        select(ChargingSession.id).join(Pile, Pile.id == ChargingSession.pile_id)
        .where(Pile.alley_id == alley.id, ChargingSession.session_ref.like(f"{REF_PREFIX}%"))
        .limit(1)) is not None


def open_accounts(staff: User, alley: Alley, opened: datetime, monthly: tuple[datetime, datetime],
                  rng: random.Random, until: datetime) -> tuple[dict, int, list]:
    """An account for every demo household whose cards the alley does not know yet;
    its top-ups as (when, account id, fen, key) to post in their turn. Returns
    ({account id: its DemoResident}, cards, top-ups). Commits."""
    made: dict[int, demo_cards.DemoResident] = {}
    n_cards = 0
    later = []
    for i, r in enumerate(demo_cards.roster(alley.slug)):
        if any(accounts.find_by_card(alley.id, c) for c in r.cards):
            continue
        at = opened + timedelta(minutes=3 * i)
        acc = accounts.create_account(staff, accounts.AccountInput(
            alley=alley.slug, cards=list(r.cards), kind=r.kind, household=r.household,
            name=r.name, phone=r.phone,
            monthly_from=monthly[0] if r.kind == "monthly" else None,
            monthly_until=monthly[1] if r.kind == "monthly" else None), at)
        made[acc.id] = r
        n_cards += len(r.cards)
        for n, cents in enumerate(r.topups):
            key = f"demo:{alley.slug}:{r.cards[0]}:{n}"
            when = at + timedelta(minutes=1) if n == 0 else (
                opened + (until - opened) * rng.uniform(0.3, 0.9))
            later.append((when, acc.id, cents, key))
    return made, n_cards, later


def _topup(staff: User, account_id: int, cents: int, key: str, at: datetime,
           rng: random.Random) -> None:
    accounts.top_up(staff, account_id, cents, rng.choice(METHODS), None, at, key=key)


def record_charges(charges: list[PastCharge], meters: dict[str, float], now: datetime) -> None:
    """Record charges as the ingest would (one batch, one commit)."""
    batch = message_log.IngestBatch(now=now)
    # The batch's piles in one query (the last commit expired them).
    piles = {p.id: p for p in db.session.scalars(
        select(Pile).where(Pile.id.in_({c.pile_id for c in charges})))}
    sessions.prefetch({(c.pile_id, c.ref) for c in charges}, batch.sessions)
    for c in charges:
        pile = piles[c.pile_id]
        sessions.on_start(pile, sessions.Start(c.port, c.ref, c.card, round(meters[c.pile_id], 1),
                                               c.started_at, "device"), batch.sessions)
        for ts, w, wh, v, a, temp in c.samples:
            sessions.on_meter(pile, sessions.Reading(c.port, c.ref, w, wh, v, a, temp, ts, ts,
                                                     "device"), batch.sessions, batch.samples)
        sessions.on_stop(pile, sessions.Stop(c.port, c.ref, c.energy_wh, c.reason, c.ended_at,
                                             "device"), batch.sessions)
        meters[c.pile_id] += c.energy_wh
    batch.flush()
    db.session.commit()


def waive_old_reviews(staff: User, alley: Alley, now: datetime) -> int:
    """Staff waive the open review items of sessions that ended REVIEW_AFTER ago."""
    ids = db.session.scalars(
        select(ReviewItem.id).join(ChargingSession, ChargingSession.id == ReviewItem.session_id)
        .where(ReviewItem.alley_id == alley.id, ReviewItem.status == "open",
               ChargingSession.ended_at < now - REVIEW_AFTER).order_by(ReviewItem.id)).all()
    for item_id in ids:
        settlement.resolve_review(staff, item_id, account_id=None, waive=True, note=REVIEW_NOTE,
                                  now=now)
    return len(ids)


def _top_up_again(households: dict[int, demo_cards.DemoResident], day: date, tz: ZoneInfo,
                  rng: random.Random) -> list[tuple[datetime, int, int, str]]:
    """Top-ups on `day` of the households that keep topped up and ran low."""
    ids = [i for i, r in households.items() if r.kind == "prepaid" and r.tops_up]
    low = db.session.scalars(select(LedgerAccount.resident_id).where(
        LedgerAccount.resident_id.in_(ids), LedgerAccount.balance_cents < LOW_BALANCE_CENTS))
    return [(_local(day, rng.randrange(8, 21), rng.randrange(60), tz), i,
             rng.choice((3000, 5000, 5000, 10000)) * min(2, len(households[i].cards)),
             f"demo:{households[i].cards[0]}:{day.isoformat()}") for i in low]


def _local(day: date, hour: int, minute: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour, minute), tz).astimezone(UTC)


def _plans(alley: Alley) -> dict[str, InspectionPlan]:
    return {p.kind: p for p in db.session.scalars(select(InspectionPlan).where(
        InspectionPlan.alley_id == alley.id, InspectionPlan.pile_id.is_(None),
        InspectionPlan.active.is_(True)))}


def _inspect(staff: User, plan: InspectionPlan, at: datetime,
             fail: tuple[str, int, str] | None = None) -> int:
    """Sign a check of `plan` at `at`, all items passed except the `fail` (pile, port,
    note) on the first item about sockets. Returns the work orders it opened."""
    items = []
    for line in plan.checklist:
        if fail and line["key"] == "sockets_plugs":
            items.append(inspections.ItemResult(line["key"], "fail", fail[2], pile_id=fail[0],
                                                port=fail[1]))
        else:
            items.append(inspections.ItemResult(line["key"], "pass"))
    inspections.record_inspection(staff, plan.id, inspections.RecordInput(items=items), at)
    return 1 if fail else 0


def replay(staff: User, alley: Alley, plan: DemoAlleyPlan, now: datetime,
           close_rule: CloseRule, settle_rule: SettleRule) -> Replayed:
    """Make the alley's past from the 1st of its last closable month (at most
    MAX_HISTORY ago) up to `now` (see the module docstring). Commits step by step."""
    out = Replayed()
    tz = alleys.zone(alley)
    rng = random.Random(f"chargers-demo-history:{alley.slug}")
    month = monthly_close.latest_closable(now, tz, close_rule.hour)
    start, month_end = monthly_close.bounds(month, tz)
    quarter_end, _ = monthly_close.bounds(
        monthly_close.next_month(monthly_close.next_month(monthly_close.next_month(month))), tz)
    first_day = max(start, now - MAX_HISTORY).astimezone(tz).date()
    opened = _local(first_day, 8, 30, tz)
    households, out.cards, topups = open_accounts(staff, alley, opened, (start, quarter_end),
                                                  rng, now)
    out.accounts = len(households)
    piles = {p.id: p for p in db.session.scalars(select(Pile).where(Pile.alley_id == alley.id)
                                                 .order_by(Pile.id))}
    ports = [(p.id, n) for p in piles.values() for n in range(1, p.port_count + 1)]
    charges = plan_charges(rng, ports, demo_cards.picker(alley.slug), opened + timedelta(hours=1),
                           now - timedelta(minutes=5), tz, plan.sessions_per_day)
    close_at = min(now, _local(month_end.astimezone(tz).date(), close_rule.hour, 5, tz))
    past = _Past(staff=staff, alley=alley, plan=plan, now=now, tz=tz, rng=rng, month=month,
                 close_rule=close_rule, settle_rule=settle_rule, households=households,
                 topups=sorted(topups), charges=charges,
                 meters={pid: rng.uniform(200_000, 900_000) for pid in piles},
                 close_at=close_at,
                 publish_at=min(now, max(close_at + timedelta(minutes=30),
                                         _local(month_end.astimezone(tz).date()
                                                + timedelta(days=2), 10, 0, tz))),
                 plans=_plans(alley))
    past.checks, past.last_monthly = _inspection_plan(first_day, now, tz, rng, past.plans)
    # Day by day: its top-ups, its checks, its charges, settled that night; the review
    # list; the close on the 1st and the publication on the 3rd.
    day = first_day
    while day <= now.astimezone(tz).date():
        _replay_day(past, day, out)
        day += timedelta(days=1)
    return out


@dataclass
class _Past:
    """What the replay of an alley's past carries from day to day."""

    staff: User
    alley: Alley
    plan: DemoAlleyPlan
    now: datetime
    tz: ZoneInfo
    rng: random.Random
    month: str
    close_rule: CloseRule
    settle_rule: SettleRule
    households: list
    topups: list
    charges: list
    meters: dict
    close_at: datetime
    publish_at: datetime
    plans: dict
    checks: list = field(default_factory=list)
    last_monthly: datetime | None = None
    next_charge: int = 0
    closed: bool = False
    published: bool = False


def _inspection_plan(first_day, now: datetime, tz: ZoneInfo, rng: random.Random,
                     plans: dict) -> tuple[list[tuple[datetime, str]], datetime | None]:
    """The checks staff sign: most days a daily patrol, the monthly check on the 10th,
    the quarterly one in the first week; and when the last monthly one is."""
    checks: list[tuple[datetime, str]] = []
    day = first_day
    while day <= now.astimezone(tz).date():
        if rng.random() > 0.05:
            checks.append((_local(day, 9, rng.randrange(60), tz), "daily"))
        if day.day == 10:
            checks.append((_local(day, 15, rng.randrange(60), tz), "monthly"))
        if day == first_day + timedelta(days=4):
            checks.append((_local(day, 14, rng.randrange(60), tz), "quarterly"))
        day += timedelta(days=1)
    checks = [(at, kind) for at, kind in checks if at <= now and kind in plans]
    return checks, max((at for at, kind in checks if kind == "monthly"), default=None)


def _replay_day(past: _Past, day, out: Replayed) -> None:
    """One day of the alley's past (see `replay`)."""
    tz, now = past.tz, past.now
    day_end = _local(day + timedelta(days=1), 0, 0, tz)
    if not past.closed and past.close_at < day_end:
        out.closed += monthly_close.close_due(past.close_at, past.close_rule).closed
        past.closed = True
    while past.topups and past.topups[0][0] < day_end and past.topups[0][0] <= now:
        when, acc_id, cents, key = past.topups.pop(0)
        _topup(past.staff, acc_id, cents, key, when, past.rng)
    for at, kind in past.checks:
        if at.astimezone(tz).date() == day:
            fail = past.plan.repair if kind == "monthly" and at == past.last_monthly else None
            out.orders += _inspect(past.staff, past.plans[kind], at, fail)
            out.records += 1
    todays = []
    while past.next_charge < len(past.charges) and past.charges[past.next_charge].ended_at < day_end:
        todays.append(past.charges[past.next_charge])
        past.next_charge += 1
    if todays:
        record_charges(todays, past.meters, min(day_end, now))
        out.sessions += len(todays)
    settle_at = min(now, day_end + timedelta(minutes=1))
    out.settled.update(settlement.settle(settle_at, past.settle_rule))
    out.reviews_waived += waive_old_reviews(past.staff, past.alley, settle_at)
    past.topups = sorted(past.topups + _top_up_again(past.households, day + timedelta(days=1),
                                                     tz, past.rng))
    if past.closed and not past.published and past.publish_at < day_end:
        out.published = publish(past.staff, past.alley, past.month, past.publish_at, past.rng)
        past.published = True


def publish(staff: User, alley: Alley, month: str, at: datetime, rng: random.Random) -> str | None:
    """Staff enter the month's grid bill (a few percent of line loss over the metered
    energy) and publish it (公示). None when the month is not closed."""
    mc = db.session.scalar(select(MonthClose).where(MonthClose.alley_id == alley.id,
                                                    MonthClose.month == month))
    if mc is None:
        return None
    if mc.published_at is None:
        grid_wh = int(mc.energy_wh * rng.uniform(1.03, 1.06))
        reconciliation.set_grid_bill(staff, alley.slug, reconciliation.GridInput(
            month=month, grid_kwh=f"{grid_wh / 1000:.1f}",
            amount_cents=round(grid_wh * GRID_CENTS_PER_KWH / 1000),
            note="国网电费账单（户号尾号 0731）"), at)
        monthly_close.publish(staff, alley.slug, month, at)
    return month


def sessions_count(alley: Alley) -> int:
    """The alley's settled demo sessions (for the summary of a later run)."""
    return int(db.session.scalar(
        select(func.count()).select_from(ChargingSession).join(Pile, Pile.id == ChargingSession.pile_id)
        .where(Pile.alley_id == alley.id, ChargingSession.session_ref.like(f"{REF_PREFIX}%"),
               ChargingSession.settled_at.is_not(None))) or 0)
