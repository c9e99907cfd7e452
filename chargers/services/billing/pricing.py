"""Pricing of one charging session: pure functions, no database, no clock.

Rules (printed on the receipt, tested in tests/test_pricing.py):

- **Which tariff**: the one in force at the session's start (latest `effective_from`
  at or before `started_at`); a later change never reprices it.
- **Duration** is `ended_at - started_at` in whole UTC seconds (fractions dropped), so
  midnight, month ends and the alley's time zone change nothing.
- **Free minutes**: a session that lasts no longer than them pays nothing at all. A longer
  one pays from its start.
- **Float after full**: when the battery is reported full (stop reason `full`, or power
  staying at or below FULL_POWER_W to the end), time and energy after `full + float`
  minutes are not charged.
- **Billing step**: the charged time is the billable time rounded UP to a whole number of
  steps (1 = per started minute, 30 = per started half hour, 60 = per started hour).
- **Electricity** = kWh metered × fen/kWh. **Service** by scheme: power tier per hour or
  flat per hour (× charged hours), per kWh (× kWh), or none.
- **Rounding**: amounts are computed exactly (Decimal) and rounded ONCE per component
  to whole fen, half up (0.5 fen → 1 fen). No float ever holds an amount.
- **Minimum** then **cap** apply to the total: a total below the minimum is raised to it
  (the difference is service), above the cap is lowered to it (service first, then
  electricity).
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
from decimal import ROUND_HALF_UP, Decimal

TIER_HOLD = timedelta(minutes=2)
TIER_RAISE_READINGS = 3
TIER_FIX = timedelta(minutes=15)
FULL_POWER_W = Decimal(10)
ONE_FEN = Decimal(1)


def fen(amount: Decimal) -> int:
    """The one rounding rule: exact amount in fen → whole fen, half up."""
    return int(amount.quantize(ONE_FEN, rounding=ROUND_HALF_UP))


def dec(value) -> Decimal:
    """A meter value (int, str, Decimal or a float read from the database) as Decimal,
    through its shortest text form so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


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

    @classmethod
    def from_row(cls, t) -> TariffSpec:
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
    amount_cents: int
    energy_wh: str  # Decimal as text (exact)
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
    rules: tuple[str, ...]  # applied: free, float_after_full, minimum, cap
    tariff_id: int | None = None

    def as_dict(self) -> dict:
        """Plain JSON values (shallow: the tier evidence is already plain)."""
        d = {name: getattr(self, name) for name in _PRICED_FIELDS}
        d["full_at"] = self.full_at.isoformat() if self.full_at else None
        d["rules"] = list(self.rules)
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


def tier_of(tiers: Sequence[Tier], power_w: Decimal) -> int:
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


def _energy_until(usage: Usage, until: datetime) -> Decimal:
    """Energy metered up to `until` (the highest reading at or before it)."""
    best = Decimal(0)
    for s in usage.samples:
        if s.ts <= until and s.energy_wh is not None:
            best = max(best, dec(s.energy_wh))
    return best


def price(tariff: TariffSpec, usage: Usage) -> Priced:
    """Price one session under `tariff` (exact; see the module docstring)."""
    duration_s = max(0, int((usage.ended_at - usage.started_at).total_seconds()))
    energy_wh = max(Decimal(0), dec(usage.energy_wh))
    rules: list[str] = []
    choice = (choose_tier(tariff.tiers, usage.started_at, usage.samples)
              if tariff.service_scheme == "tier_hour" else None)
    full_at = full_time(usage)
    billable_s = duration_s
    if tariff.full_float_minutes is not None and full_at is not None:
        cut = full_at + timedelta(minutes=tariff.full_float_minutes)
        if cut < usage.ended_at:
            billable_s = max(0, int((cut - usage.started_at).total_seconds()))
            energy_wh = min(energy_wh, _energy_until(usage, cut)) if usage.samples else energy_wh
            rules.append("float_after_full")
    step = max(1, tariff.step_minutes)
    steps = math.ceil(billable_s / (step * 60)) if billable_s > 0 else 0
    charged_minutes = steps * step
    kwh = energy_wh / Decimal(1000)
    tier_max_w = None

    if duration_s <= tariff.free_minutes * 60 and tariff.free_minutes > 0:
        rules = ["free"]
        e_cents = s_cents = 0
        unit, qty = 0, "0"
    else:
        e_cents = fen(kwh * tariff.electricity_cents_per_kwh)
        hours = Decimal(charged_minutes) / Decimal(60)
        if tariff.service_scheme == "tier_hour" and tariff.tiers:
            t = tariff.tiers[choice.tier]
            unit, qty, tier_max_w = t.cents_per_hour, hours, t.max_w
            s_cents = fen(hours * t.cents_per_hour)
        elif tariff.service_scheme == "flat_hour":
            unit, qty = tariff.service_cents, hours
            s_cents = fen(hours * tariff.service_cents)
        elif tariff.service_scheme == "kwh":
            unit, qty = tariff.service_cents, kwh
            s_cents = fen(kwh * tariff.service_cents)
        else:
            unit, qty, s_cents = 0, Decimal(0), 0
        qty = _text(qty)
        total = e_cents + s_cents
        if total < tariff.minimum_cents:
            s_cents += tariff.minimum_cents - total
            rules.append("minimum")
        total = e_cents + s_cents
        if tariff.cap_cents is not None and total > tariff.cap_cents:
            over = total - tariff.cap_cents
            cut_s = min(over, s_cents)
            s_cents -= cut_s
            e_cents -= over - cut_s
            rules.append("cap")
    return Priced(
        energy_cents=e_cents, service_cents=s_cents, amount_cents=e_cents + s_cents,
        energy_wh=_text(energy_wh), electricity_cents_per_kwh=tariff.electricity_cents_per_kwh,
        service_scheme=tariff.service_scheme, service_unit_cents=unit, service_quantity=qty,
        duration_s=duration_s, billable_s=billable_s, charged_minutes=charged_minutes,
        step_minutes=step, tier=choice.tier if choice else None, tier_max_w=tier_max_w,
        tier_evidence=choice.evidence() if choice else None, full_at=full_at,
        rules=tuple(rules), tariff_id=tariff.id)


def limit_to(priced: Priced, limit_cents: int) -> Priced:
    """The same bill lowered to at most `limit_cents` (a prepaid balance): service is
    cut first, then electricity; the rule `balance` is added."""
    if priced.amount_cents <= limit_cents:
        return priced
    limit_cents = max(0, limit_cents)
    over = priced.amount_cents - limit_cents
    cut_s = min(over, priced.service_cents)
    s = priced.service_cents - cut_s
    e = priced.energy_cents - (over - cut_s)
    from dataclasses import replace

    return replace(priced, energy_cents=e, service_cents=s, amount_cents=e + s,
                   rules=priced.rules + ("balance",))


def _text(value: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros ("1.5", "0")."""
    value = Decimal(value)
    if value == value.to_integral():
        return str(value.quantize(ONE_FEN))
    return format(value.normalize(), "f")
