"""Tariffs of an alley, versioned by the moment they take effect; drafts are only
previewed. Functions that commit say so."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from ...extensions import db
from ...models import Alley, Tariff, User
from ...models.billing import SERVICE_SCHEMES
from ..devices import alleys
from ..errors import Conflict, Invalid
from . import pricing
from .ledger import audit


@dataclass
class TariffInput:
    """A tariff as staff type it (money in fen)."""

    electricity_cents_per_kwh: int
    service_scheme: str = "none"
    service_tiers: list = field(default_factory=list)
    service_cents: int = 0
    step_minutes: int = 1
    free_minutes: int = 0
    minimum_cents: int = 0
    cap_cents: int | None = None
    full_float_minutes: int | None = None
    effective_from: datetime | None = None
    note: str = ""
    # To 0.001 fen (¥0.5583/kWh = 55830); time-of-use windows
    # [{"from": "08:00", "to": "21:00", "millifen_per_kwh": 55830, "name": "peak"}, ...];
    # a regulator's service-fee caps; an occupancy fee after full + grace.
    electricity_millifen_per_kwh: int | None = None
    tou_windows: list | None = None
    service_cap_millifen_per_kwh: int | None = None
    service_cap_cents_per_hour: int | None = None
    occupancy_cents_per_hour: int | None = None
    occupancy_grace_minutes: int | None = None


def check(data: TariffInput) -> None:
    """Refuse a tariff that cannot price (codes of chargers.outcomes)."""
    if data.service_scheme not in SERVICE_SCHEMES:
        raise Invalid("tariff.scheme", schemes=", ".join(SERVICE_SCHEMES))
    ints = (data.electricity_cents_per_kwh, data.service_cents, data.minimum_cents)
    if any(not isinstance(v, int) or not 0 <= v <= 100_000 for v in ints):
        raise Invalid("tariff.amount")
    if not 1 <= data.step_minutes <= 24 * 60 or not 0 <= data.free_minutes <= 24 * 60:
        raise Invalid("tariff.minutes")
    if data.cap_cents is not None and data.cap_cents < 0:
        raise Invalid("tariff.amount")
    if data.full_float_minutes is not None and not 0 <= data.full_float_minutes <= 24 * 60:
        raise Invalid("tariff.minutes")
    _check_new_prices(data)
    if data.service_scheme == "tier_hour":
        tiers = data.service_tiers
        try:
            limits = [int(t["max_w"]) for t in tiers]
            rates = [int(t["cents_per_hour"]) for t in tiers]
        except (KeyError, TypeError, ValueError):
            raise Invalid("tariff.tiers") from None
        if not tiers or limits != sorted(set(limits)) or min(rates) < 0 or min(limits) <= 0:
            raise Invalid("tariff.tiers")


def _check_new_prices(data: TariffInput) -> None:
    """Milli-fen prices, caps and the occupancy fee non-negative; time-of-use windows
    well formed ("HH:MM", a price each) and covering every minute of the day once."""
    for v in (data.electricity_millifen_per_kwh, data.service_cap_millifen_per_kwh,
              data.service_cap_cents_per_hour, data.occupancy_cents_per_hour):
        if v is not None and (not isinstance(v, int) or not 0 <= v <= 100_000_000):
            raise Invalid("tariff.amount")
    if data.occupancy_grace_minutes is not None and not 0 <= data.occupancy_grace_minutes <= 1440:
        raise Invalid("tariff.minutes")
    if not data.tou_windows:
        return
    try:
        windows = [pricing.Window.from_json(w) for w in data.tou_windows]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Invalid("tariff.windows") from None
    if any(not (0 <= w.start_min < 1440 and 0 <= w.end_min < 1440) or w.start_min == w.end_min
           or w.millifen_per_kwh < 0 for w in windows):
        raise Invalid("tariff.windows")
    if any(sum(w.holds(m) for w in windows) != 1 for m in range(1440)):
        raise Invalid("tariff.windows")


def first_tariff(alley: Alley, now: datetime | None = None) -> Tariff:
    """The alley's first tariff: its electricity price, no service fee, in force since
    the alley began. Adds, does not commit."""
    t = Tariff(alley_id=alley.id, effective_from=alley.created_at or now,
               electricity_cents_per_kwh=alley.tariff_cents_per_kwh, service_scheme="none",
               service_tiers=[], service_cents=0, step_minutes=1, free_minutes=0,
               minimum_cents=0)
    db.session.add(t)
    return t


def new_electricity_price(alley: Alley, user: User | None,
                          now: datetime | None = None) -> Tariff:
    """A version of the tariff in force now with the alley's new electricity price,
    taking effect now. Audited. Adds, does not commit."""
    from ...models import utcnow

    now = now or utcnow()
    cur = in_force(alley, now)
    fields = ({k: getattr(cur, k) for k in ("service_scheme", "service_tiers", "service_cents",
                                            "step_minutes", "free_minutes", "minimum_cents",
                                            "cap_cents", "full_float_minutes",
                                            "service_cap_millifen_per_kwh",
                                            "service_cap_cents_per_hour",
                                            "occupancy_cents_per_hour",
                                            "occupancy_grace_minutes")}
              if cur else {"service_scheme": "none", "service_tiers": []})
    t = Tariff(alley_id=alley.id, effective_from=now, created_at=now,
               created_by=user.id if user else None,
               electricity_cents_per_kwh=alley.tariff_cents_per_kwh, **fields)
    db.session.add(t)
    db.session.flush()
    audit("tariff.created", alley.id, user.id if user else None, now, tariff=t.id,
          effective_from=now.isoformat(), electricity_cents_per_kwh=t.electricity_cents_per_kwh,
          service_scheme=t.service_scheme)
    return t


def versions(alley: Alley) -> list[Tariff]:
    """The alley's tariffs that take effect, newest first."""
    return list(db.session.scalars(
        select(Tariff).where(Tariff.alley_id == alley.id, Tariff.effective_from.is_not(None))
        .order_by(Tariff.effective_from.desc())))


def in_force(alley: Alley, at: datetime) -> Tariff | None:
    """The tariff in force at `at` (the latest that took effect at or before it)."""
    return db.session.scalar(
        select(Tariff).where(Tariff.alley_id == alley.id, Tariff.effective_from.is_not(None),
                             Tariff.effective_from <= at)
        .order_by(Tariff.effective_from.desc()).limit(1))


def current(alley: Alley, now: datetime) -> Tariff | None:
    """What a resident pays now (for the posted prices)."""
    return in_force(alley, now)


def create(user: User | None, slug: str, data: TariffInput, now: datetime) -> Tariff:
    """A new tariff version taking effect at `effective_from` (not in the past: a change
    never reprices the past). Audited. Commits."""
    alley = alleys.get_alley(user, slug)
    check(data)
    if data.effective_from is None or data.effective_from < now:
        raise Invalid("tariff.effective_past")
    if db.session.scalar(select(Tariff.id).where(Tariff.alley_id == alley.id,
                                                 Tariff.effective_from == data.effective_from)):
        raise Conflict("tariff.overlap", at=data.effective_from.isoformat())
    t = Tariff(alley_id=alley.id, created_by=user.id if user else None, created_at=now,
               **data.__dict__)
    db.session.add(t)
    db.session.flush()
    audit("tariff.created", alley.id, user.id if user else None, now, tariff=t.id,
          effective_from=data.effective_from.isoformat(),
          electricity_cents_per_kwh=data.electricity_cents_per_kwh,
          service_scheme=data.service_scheme)
    db.session.commit()
    return t


def spec_of(data: TariffInput) -> pricing.TariffSpec:
    """A draft as a pricing spec (for the preview)."""
    check(data)
    row = Tariff(**{**data.__dict__, "effective_from": None})
    return pricing.TariffSpec.from_row(row)


# Sample sessions a draft is previewed on: (label, minutes, Wh, steady power W).
PREVIEW_SAMPLES = (
    ("short", 4, 10, 150),
    ("1h_150w", 60, 150, 150),
    ("3h_300w", 180, 900, 300),
    ("8h_400w", 480, 3200, 400),
    ("10h_full_after_5", 600, 2100, 400),
)


def preview(data: TariffInput, start: datetime) -> list[tuple[str, pricing.Priced]]:
    """Price the sample sessions under a draft before it takes effect (no database)."""
    from datetime import timedelta

    spec = spec_of(data)
    out = []
    for label, minutes, wh, watts in PREVIEW_SAMPLES:
        end = start + timedelta(minutes=minutes)
        full_after = 300 if label.endswith("full_after_5") else None
        samples = []
        for m in range(0, minutes + 1, 5):
            w = watts if full_after is None or m < full_after else 5
            e = min(wh, wh * m // (full_after or minutes))
            samples.append(pricing.Sample(start + timedelta(minutes=m), w, e))
        out.append((label, pricing.price(spec, pricing.Usage(start, end, wh, samples))))
    return out
