"""Pricing of one charging session: pure functions, no database, no clock.

Rules (printed on the receipt, tested in tests/test_pricing.py; docs/billing.md works
each one through by hand):

- **Which tariff**: the one in force at the session's start (latest `effective_from`
  at or before `started_at`); a later change never reprices it.
- **Duration** is `ended_at - started_at` in whole UTC seconds (fractions dropped), so
  midnight, month ends and the alley's time zone change nothing.
- **Energy** is the sum of the meter's segments: a cumulative reading that falls
  within a session is a counter reset and starts a new segment (`unwrap`).
- **Free minutes**: a session that lasts no longer than them pays nothing at all. A longer
  one pays from its start.
- **A charge that failed** (未能充电): stopped within FAILED_MAX_S (5 minutes) having
  metered under FAILED_MAX_WH (10 Wh): nothing flowed, nothing is charged (no minimum,
  no service, no occupancy; a monthly card's hours are not used either).
- **Float after full**: when the battery is reported full (stop reason `full`, or power
  staying at or below FULL_POWER_W to the end), time and energy after `full + float`
  minutes are not charged.
- **Billing step**: the charged time is the billable time rounded UP to a whole number of
  steps (1 = per started minute, 30 = per started half hour, 60 = per started hour).
- **Electricity** = kWh metered × price per kWh, the price to 0.001 fen (厘 and below).
  With time-of-use windows (local time; a window may pass midnight) the session's
  energy is split across the windows from its meter readings, linearly interpolated
  between readings (no readings: evenly over the time), and electricity = Σ (window kWh
  × window price). **Service** by scheme: power tier per hour or flat per hour
  (× charged hours), per kWh (× kWh), or none; a regulator's service cap (per kWh and
  / or per hour) lowers the exact service fee before rounding.
- **Rounding**: amounts are computed exactly (fractions.Fraction: no float, no decimal
  context) and rounded ONCE per component to whole fen, half up (0.5 fen → 1 fen).
- **Minimum** then **cap** apply to electricity + service: a total below the minimum is
  raised to it (the difference is service), above the cap is lowered to it by cutting
  service only; electricity is never cut below kWh × price.
- **Occupancy fee** (占位费): per started minute plugged in after full + grace, a line
  of its own (outside minimum and cap).
- **Power tier** (tier_hour scheme) from metered power with the firmware's hysteresis:
  decided once readings have stayed in one tier for TIER_HOLD (2 min); raised only after
  TIER_RAISE_READINGS (3) readings in a row in a higher tier (to the lowest of them);
  never lowered; fixed TIER_FIX (15 min) after the start. Power above the last tier's
  limit counts in the last tier. With no decision (too few readings) the highest tier
  any reading reached is used, or the lowest tier when there is no reading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from ...settings import AlleyDefaults

TIER_HOLD = timedelta(minutes=2)
TIER_RAISE_READINGS = 3
TIER_FIX = timedelta(minutes=15)
FULL_POWER_W = Fraction(10)
HALF = Fraction(1, 2)
ROUNDING_RULE = "half_up_once_per_component"
FAILED_MAX_S = 300
FAILED_MAX_WH = Fraction(10)


def failed_charge(duration_s: float, energy_wh) -> bool:
    """A charge that failed: stopped within FAILED_MAX_S with under FAILED_MAX_WH."""
    return duration_s <= FAILED_MAX_S and frac(energy_wh) < FAILED_MAX_WH


def fen(amount) -> int:
    """The one rounding rule: an exact amount in fen → whole fen, half up."""
    q = Fraction(amount)
    return math.floor(q + HALF) if q >= 0 else -math.floor(-q + HALF)


def frac(value) -> Fraction:
    """A meter value (int, str, Decimal, Fraction or a float read from the database) as
    an exact Fraction, floats through their shortest text form so 0.1 stays 1/10."""
    if isinstance(value, Fraction | int):
        return Fraction(value)
    if isinstance(value, Decimal):
        return Fraction(value)
    return Fraction(Decimal(str(value)))


dec = frac  # the old name


@dataclass(frozen=True)
class Window:
    """A time-of-use window: local minutes of the day [start, end) (end < start passes
    midnight) and its electricity price in milli-fen per kWh."""

    start_min: int
    end_min: int
    millifen_per_kwh: int
    name: str = ""

    def holds(self, minute: float) -> bool:
        if self.start_min <= self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min

    @classmethod
    def from_json(cls, w: dict) -> Window:
        def mins(text: str) -> int:
            h, m = str(text).split(":")
            return int(h) * 60 + int(m)

        return cls(mins(w["from"]), mins(w["to"]), int(w["millifen_per_kwh"]),
                   str(w.get("name", "")))

    def label(self) -> str:
        return (f"{self.start_min // 60:02d}:{self.start_min % 60:02d}–"
                f"{self.end_min // 60:02d}:{self.end_min % 60:02d}")


@dataclass(frozen=True)
class Tier:
    max_w: int
    cents_per_hour: int


@dataclass(frozen=True)
class TariffSpec:
    """A tariff's prices as plain values (from a Tariff row, a draft form or a test)."""

    electricity_cents_per_kwh: int
    service_scheme: str = "none"  # tier_hour / kwh / flat_hour / none
    tiers: tuple[Tier, ...] = ()
    service_cents: int = 0  # kwh: fen/kWh; flat_hour: fen/hour
    step_minutes: int = 1
    free_minutes: int = 0
    minimum_cents: int = 0
    cap_cents: int | None = None
    full_float_minutes: int | None = None
    effective_from: datetime | None = None
    id: int | None = None
    # To 0.001 fen; None: electricity_cents_per_kwh × 1000.
    electricity_millifen_per_kwh: int | None = None
    windows: tuple[Window, ...] = ()
    timezone: str = AlleyDefaults.timezone  # the alley's: windows are in local time
    service_cap_millifen_per_kwh: int | None = None
    service_cap_cents_per_hour: int | None = None
    occupancy_cents_per_hour: int | None = None
    occupancy_grace_minutes: int = 0

    @property
    def millifen_per_kwh(self) -> int:
        if self.electricity_millifen_per_kwh is not None:
            return self.electricity_millifen_per_kwh
        return self.electricity_cents_per_kwh * 1000

    @classmethod
    def from_row(cls, t, timezone: str | None = None) -> TariffSpec:
        """From a Tariff model row (or anything with the same attributes)."""
        return cls(
            electricity_cents_per_kwh=t.electricity_cents_per_kwh,
            service_scheme=t.service_scheme,
            tiers=tuple(Tier(int(x["max_w"]), int(x["cents_per_hour"]))
                        for x in (t.service_tiers or [])),
            service_cents=t.service_cents or 0,
            step_minutes=t.step_minutes or 1,
            free_minutes=t.free_minutes or 0,
            minimum_cents=t.minimum_cents or 0,
            cap_cents=t.cap_cents,
            full_float_minutes=t.full_float_minutes,
            effective_from=t.effective_from,
            id=getattr(t, "id", None),
            electricity_millifen_per_kwh=getattr(t, "electricity_millifen_per_kwh", None),
            windows=tuple(Window.from_json(w) for w in (getattr(t, "tou_windows", None) or [])),
            timezone=timezone or AlleyDefaults.timezone,
            service_cap_millifen_per_kwh=getattr(t, "service_cap_millifen_per_kwh", None),
            service_cap_cents_per_hour=getattr(t, "service_cap_cents_per_hour", None),
            occupancy_cents_per_hour=getattr(t, "occupancy_cents_per_hour", None),
            occupancy_grace_minutes=getattr(t, "occupancy_grace_minutes", None) or 0,
        )


@dataclass(frozen=True)
class Sample:
    """One meter reading: time, power (W) and the session's energy so far (Wh)."""

    ts: datetime
    power_w: Decimal | float | int
    energy_wh: Decimal | float | int | None = None


@dataclass(frozen=True)
class Usage:
    """What a session measured."""

    started_at: datetime
    ended_at: datetime
    energy_wh: Decimal | float | int
    samples: Sequence[Sample] = ()
    stop_reason: str | None = None


@dataclass
class TierChoice:
    tier: int | None  # index into the tariff's tiers
    reason: str  # held / raised / undecided_max / no_readings / not_tiered
    decided_at: datetime | None = None
    readings: list = field(default_factory=list)  # [(iso ts, power W), ...] that chose it
    raises: list = field(default_factory=list)

    def evidence(self) -> dict:
        return {"tier": self.tier, "reason": self.reason,
                "decided_at": self.decided_at.isoformat() if self.decided_at else None,
                "readings": self.readings, "raises": self.raises}


@dataclass(frozen=True)
class Priced:
    """A priced session: every figure the receipt shows."""

    energy_cents: int
    service_cents: int
    amount_cents: int  # electricity + service + occupancy
    energy_wh: str  # exact, as text
    electricity_cents_per_kwh: int
    service_scheme: str
    service_unit_cents: int  # per hour or per kWh, per the scheme
    service_quantity: str  # hours or kWh, as text
    duration_s: int
    billable_s: int
    charged_minutes: int
    step_minutes: int
    tier: int | None
    tier_max_w: int | None
    tier_evidence: dict | None
    full_at: datetime | None
    rules: tuple[str, ...]  # applied: free, float_after_full, minimum, cap, service_cap
    tariff_id: int | None = None
    electricity_millifen_per_kwh: int = 0
    # Time-of-use: [{"name", "from", "to", "kwh", "millifen_per_kwh", "exact_cents"}]
    windows: tuple = ()
    electricity_exact: str = "0"  # fen before the one rounding
    service_exact: str = "0"
    occupancy_cents: int = 0
    occupancy_minutes: int = 0
    meter_resets: int = 0
    rounding: str = ROUNDING_RULE

    def as_dict(self) -> dict:
        """Plain JSON values (shallow: the tier evidence is already plain)."""
        d = {name: getattr(self, name) for name in _PRICED_FIELDS}
        d["full_at"] = self.full_at.isoformat() if self.full_at else None
        d["rules"] = list(self.rules)
        d["windows"] = [dict(w) for w in self.windows]
        return d


_PRICED_FIELDS = tuple(f.name for f in fields(Priced))  # fields() is slow per call


def tariff_at(tariffs: Sequence, at: datetime):
    """The tariff in force at `at`: the latest effective_from at or before it (drafts,
    with no effective_from, never count). None when none was in force yet."""
    best = None
    for t in tariffs:
        if t.effective_from is None or t.effective_from > at:
            continue
        if best is None or t.effective_from > best.effective_from:
            best = t
    return best


def tier_of(tiers: Sequence[Tier], power_w: Fraction) -> int:
    """Index of the first tier whose limit holds `power_w` (the last one above all)."""
    for i, t in enumerate(tiers):
        if power_w <= t.max_w:
            return i
    return len(tiers) - 1


def choose_tier(tiers: Sequence[Tier], started_at: datetime,
                samples: Sequence[Sample]) -> TierChoice:
    """The power tier with hysteresis (see the module docstring)."""
    if not tiers:
        return TierChoice(None, "not_tiered")
    readings = sorted((s for s in samples if s.ts >= started_at), key=lambda s: s.ts)
    if not readings:
        return TierChoice(0, "no_readings")
    fixed_at = started_at + TIER_FIX
    decided: TierChoice | None = None
    run: list[Sample] = []
    run_tier = None
    higher: list[tuple[Sample, int]] = []
    seen_max = 0
    for s in readings:
        if s.ts > fixed_at:
            break
        t = tier_of(tiers, dec(s.power_w))
        seen_max = max(seen_max, t)
        if decided is None:
            if t != run_tier:
                run, run_tier = [], t
            run.append(s)
            if s.ts - run[0].ts >= TIER_HOLD:
                decided = TierChoice(t, "held", s.ts,
                                     [(r.ts.isoformat(), str(dec(r.power_w))) for r in run])
            continue
        if t > decided.tier:
            higher.append((s, t))
            if len(higher) >= TIER_RAISE_READINGS:
                new = min(x for _, x in higher)
                decided.raises.append({"from": decided.tier, "to": new, "at": s.ts.isoformat(),
                                       "readings": [(r.ts.isoformat(), str(dec(r.power_w)))
                                                    for r, _ in higher]})
                decided.tier, decided.reason = new, "raised"
                higher = []
        else:
            higher = []
    if decided is None:
        return TierChoice(seen_max, "undecided_max", None,
                          [(r.ts.isoformat(), str(dec(r.power_w))) for r in readings
                           if r.ts <= fixed_at])
    return decided


def full_time(usage: Usage) -> datetime | None:
    """When the battery was full: the stop time for stop reason `full`, else the first
    reading from which power stays at or below FULL_POWER_W to the end (needs 2+)."""
    if usage.stop_reason == "full":
        return usage.ended_at
    readings = sorted(usage.samples, key=lambda s: s.ts)
    tail: list[Sample] = []
    for s in reversed(readings):
        if dec(s.power_w) <= FULL_POWER_W:
            tail.append(s)
        else:
            break
    if len(tail) >= 2 and len(tail) < len(readings):
        return tail[-1].ts
    return None


def unwrap(samples: Sequence[Sample]) -> tuple[list[tuple[datetime, Fraction]], int]:
    """The readings in time order as the session's energy so far (Wh), counter resets
    undone: a cumulative reading below the previous one starts a new segment, added to
    the segments before. Returns [(ts, Wh)] and the number of resets."""
    out: list[tuple[datetime, Fraction]] = []
    base, last, resets = Fraction(0), None, 0
    for s in sorted((s for s in samples if s.energy_wh is not None), key=lambda s: s.ts):
        e = frac(s.energy_wh)
        if last is not None and e < last:
            base += last
            resets += 1
        last = e
        out.append((s.ts, base + e))
    return out, resets


def metered_wh(recorded_wh, samples: Sequence[Sample], ended_at: datetime,
               last_reading_wh=None) -> Fraction:
    """A session's energy: the larger of what the ingest recorded (segments summed as
    readings arrived) and the segments of every kept reading in time order plus the
    last one (the stop's). Readings arriving out of order can hide a reset from the
    ingest; the kept readings do not."""
    readings = list(samples)
    if last_reading_wh is not None:
        readings.append(Sample(ended_at, 0, last_reading_wh))
    points, _ = unwrap(readings)
    return max(frac(recorded_wh or 0), points[-1][1] if points else Fraction(0))


def _energy_until(usage: Usage, until: datetime) -> Fraction:
    """Energy metered up to `until` (the highest unwrapped reading at or before it)."""
    best = Fraction(0)
    for ts, e in unwrap(usage.samples)[0]:
        if ts <= until:
            best = max(best, e)
    return best


def _curve(usage: Usage, end: datetime, energy_wh: Fraction) -> list[tuple[datetime, Fraction]]:
    """The session's energy over time, (start, 0) … (end, energy_wh): the unwrapped
    readings between, never falling and never above the total."""
    points = [(usage.started_at, Fraction(0))]
    for ts, e in unwrap(usage.samples)[0]:
        if usage.started_at < ts < end:
            points.append((ts, min(max(e, points[-1][1]), energy_wh)))
    points.append((end, energy_wh))
    return points


def _micro(d: timedelta) -> int:
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def _at(points: list[tuple[datetime, Fraction]], t: datetime) -> Fraction:
    """Energy at `t`, linearly interpolated between the points (exact)."""
    for (t0, e0), (t1, e1) in zip(points, points[1:], strict=False):
        if t0 <= t <= t1:
            span = _micro(t1 - t0)
            return e1 if span == 0 else e0 + (e1 - e0) * Fraction(_micro(t - t0), span)
    return points[-1][1]


def _cuts(tariff: TariffSpec, start: datetime, end: datetime) -> list[datetime]:
    """Every window boundary (local time) strictly inside (start, end), in order."""
    tz = ZoneInfo(tariff.timezone)
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    edges = sorted({m for w in tariff.windows for m in (w.start_min, w.end_min)})
    out = []
    day = first
    while day <= last:
        for m in edges:
            t = datetime(day.year, day.month, day.day, m // 60, m % 60, tzinfo=tz)
            if start < t < end:
                out.append(t.astimezone(start.tzinfo))
        day += timedelta(days=1)
    return sorted(out)


def split_windows(tariff: TariffSpec, usage: Usage, end: datetime,
                  energy_wh: Fraction) -> list[tuple[Window, Fraction]]:
    """Time-of-use: the session's Wh in each window (in the tariff's order, windows
    with no energy left out); Wh between readings is interpolated linearly."""
    points = _curve(usage, end, energy_wh)
    instants = [usage.started_at, *_cuts(tariff, usage.started_at, end), end]
    tz = ZoneInfo(tariff.timezone)
    default = Window(0, 0, tariff.millifen_per_kwh, "")
    wh: dict[Window, Fraction] = {}
    for a, b in zip(instants, instants[1:], strict=False):
        if b <= a:
            continue
        mid = (a + (b - a) / 2).astimezone(tz)
        minute = mid.hour * 60 + mid.minute + mid.second / 60
        w = next((w for w in tariff.windows if w.holds(minute)), default)
        wh[w] = wh.get(w, Fraction(0)) + _at(points, b) - _at(points, a)
    order = [*tariff.windows, default]
    return [(w, wh[w]) for w in order if wh.get(w)]


def _electricity(tariff: TariffSpec, usage: Usage, end: datetime,
                 energy_wh: Fraction) -> tuple[Fraction, tuple]:
    """Exact electricity in fen and, with time-of-use, each window's line."""
    if not tariff.windows:
        return energy_wh / 1000 * tariff.millifen_per_kwh / 1000, ()
    total, lines = Fraction(0), []
    for w, wh in split_windows(tariff, usage, end, energy_wh):
        exact = wh / 1000 * w.millifen_per_kwh / 1000
        total += exact
        start, end_ = w.label().split("–") if w in tariff.windows else ("", "")
        lines.append({"name": w.name, "from": start, "to": end_,
                      "kwh": _text(wh / 1000, 4), "millifen_per_kwh": w.millifen_per_kwh,
                      "exact_cents": _text(exact, 4)})
    return total, tuple(lines)


def _service(tariff: TariffSpec, choice: TierChoice | None, hours: Fraction,
             kwh: Fraction) -> tuple[Fraction, int, Fraction, int | None, list[str]]:
    """Exact service fee in fen, its unit, quantity, tier limit and rules applied (the
    regulator's caps on the service fee alone)."""
    tier_max_w = None
    if tariff.service_scheme == "tier_hour" and tariff.tiers:
        t = tariff.tiers[choice.tier]
        unit, qty, tier_max_w = t.cents_per_hour, hours, t.max_w
        exact = hours * t.cents_per_hour
    elif tariff.service_scheme == "flat_hour":
        unit, qty = tariff.service_cents, hours
        exact = hours * tariff.service_cents
    elif tariff.service_scheme == "kwh":
        unit, qty = tariff.service_cents, kwh
        exact = kwh * tariff.service_cents
    else:
        unit, qty, exact = 0, Fraction(0), Fraction(0)
    rules = []
    caps = []
    if tariff.service_cap_millifen_per_kwh is not None:
        caps.append(kwh * tariff.service_cap_millifen_per_kwh / 1000)
    if tariff.service_cap_cents_per_hour is not None:
        caps.append(hours * tariff.service_cap_cents_per_hour)
    if caps and min(caps) < exact:
        exact = min(caps)
        rules.append("service_cap")
    return exact, unit, qty, tier_max_w, rules


def _occupancy(tariff: TariffSpec, usage: Usage, full_at: datetime | None) -> tuple[int, int]:
    """Occupancy fee (fen) and its minutes: per started minute after full + grace."""
    if not tariff.occupancy_cents_per_hour or full_at is None:
        return 0, 0
    since = full_at + timedelta(minutes=tariff.occupancy_grace_minutes)
    seconds = int((usage.ended_at - since).total_seconds())
    if seconds <= 0:
        return 0, 0
    minutes = math.ceil(seconds / 60)
    return fen(Fraction(minutes * tariff.occupancy_cents_per_hour, 60)), minutes


def price(tariff: TariffSpec, usage: Usage, *, failed_free: bool = True) -> Priced:
    """Price one session under `tariff` (exact; see the module docstring). With
    `failed_free` False a charge too small to count as one is priced all the same (what
    a balance must cover before a session is admitted: services/budget/allowance.py)."""
    duration_s = max(0, int((usage.ended_at - usage.started_at).total_seconds()))
    energy_wh = max(Fraction(0), frac(usage.energy_wh))
    rules: list[str] = []
    choice = (choose_tier(tariff.tiers, usage.started_at, usage.samples)
              if tariff.service_scheme == "tier_hour" else None)
    full_at = full_time(usage)
    billable_s, billed_until = duration_s, usage.ended_at
    if tariff.full_float_minutes is not None and full_at is not None:
        cut = full_at + timedelta(minutes=tariff.full_float_minutes)
        if cut < usage.ended_at:
            billable_s = max(0, int((cut - usage.started_at).total_seconds()))
            billed_until = max(cut, usage.started_at)
            energy_wh = min(energy_wh, _energy_until(usage, cut)) if usage.samples else energy_wh
            rules.append("float_after_full")
    step = max(1, tariff.step_minutes)
    steps = math.ceil(billable_s / (step * 60)) if billable_s > 0 else 0
    charged_minutes = steps * step
    kwh = energy_wh / 1000
    tier_max_w = None
    windows: tuple = ()
    e_exact = s_exact = Fraction(0)
    occupancy, occ_minutes = 0, 0
    if failed_free and failed_charge(duration_s, energy_wh):
        rules = ["failed"]
        e_cents = s_cents = 0
        unit, qty = 0, "0"
    elif duration_s <= tariff.free_minutes * 60 and tariff.free_minutes > 0:
        rules = ["free"]
        e_cents = s_cents = 0
        unit, qty = 0, "0"
    else:
        e_exact, windows = _electricity(tariff, usage, billed_until, energy_wh)
        s_exact, unit, qty, tier_max_w, s_rules = _service(
            tariff, choice, Fraction(charged_minutes, 60), kwh)
        rules += s_rules
        qty = _text(qty)
        e_cents, s_cents = fen(e_exact), fen(s_exact)
        if e_cents + s_cents < tariff.minimum_cents:
            s_cents += tariff.minimum_cents - e_cents - s_cents
            rules.append("minimum")
        if tariff.cap_cents is not None and e_cents + s_cents > tariff.cap_cents:
            # Service only: electricity is never cut below kWh × price.
            s_cents = max(0, tariff.cap_cents - e_cents)
            rules.append("cap")
        occupancy, occ_minutes = _occupancy(tariff, usage, full_at)
        if occupancy:
            rules.append("occupancy")
    return Priced(
        energy_cents=e_cents, service_cents=s_cents,
        amount_cents=e_cents + s_cents + occupancy, energy_wh=_text(energy_wh),
        electricity_cents_per_kwh=tariff.electricity_cents_per_kwh,
        service_scheme=tariff.service_scheme, service_unit_cents=unit, service_quantity=qty,
        duration_s=duration_s, billable_s=billable_s, charged_minutes=charged_minutes,
        step_minutes=step, tier=choice.tier if choice else None, tier_max_w=tier_max_w,
        tier_evidence=choice.evidence() if choice else None, full_at=full_at,
        rules=tuple(rules), tariff_id=tariff.id,
        electricity_millifen_per_kwh=tariff.millifen_per_kwh, windows=windows,
        electricity_exact=_text(e_exact, 4), service_exact=_text(s_exact, 4),
        occupancy_cents=occupancy, occupancy_minutes=occ_minutes,
        meter_resets=unwrap(usage.samples)[1])


def split_paid(amount_cents: int, available_cents: int) -> tuple[int, int]:
    """What a prepaid balance pays of a charge and the shortfall (the resident's debt):
    nothing is cut, nothing disappears. A balance already negative pays nothing."""
    paid = min(amount_cents, max(0, available_cents))
    return paid, amount_cents - paid


def _text(value, places: int | None = None) -> str:
    """An exact number as plain text: every digit when it ends, else rounded half up to
    `places` (6 by default) decimals; no exponent, no trailing zeros ("1.5", "0")."""
    q = Fraction(value)
    sign, q = ("-" if q < 0 else ""), abs(q)
    d, twos, fives = q.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    k = max(twos, fives) if d == 1 else (places or 6)
    n = q.numerator * 10 ** k // q.denominator if d == 1 else fen(q * 10 ** k)
    whole, part = divmod(n, 10 ** k)
    part_text = f"{part:0{k}d}".rstrip("0") if k else ""
    return sign + str(whole) + ("." + part_text if part_text else "")


def cover_split(priced: Priced, usage: Usage, covered_s: int) -> int:
    """A monthly card whose hours cover the first `covered_s` seconds of a session:
    what the resident still pays, in fen = electricity fee × (Wh metered after the
    covered time ÷ the session's Wh), rounded half up, + service fee × (seconds not
    covered ÷ the session's seconds), rounded half up, + the occupancy fee."""
    duration = priced.duration_s
    if covered_s >= duration:
        return 0
    total = frac(priced.energy_wh)
    if total > 0:
        points = _curve(usage, usage.ended_at, total)
        tail = total - _at(points, usage.started_at + timedelta(seconds=covered_s))
        e = fen(priced.energy_cents * tail / total)
    else:
        e = 0
    s = fen(Fraction(priced.service_cents * (duration - covered_s), duration))
    return e + s + priced.occupancy_cents
