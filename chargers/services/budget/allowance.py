"""What a prepaid balance and the tariff cover: the `max_wh` and `max_minutes` of an
accepted session, so that it ends on the pile itself at zero balance.

The session is priced with the billing's own pricing (services/billing/pricing.py)
as if it drew `power_w` (the card's usual power, else the port limit) from start to
end. The pair returned is on the price's frontier: whichever limit the pile reaches
first, the bill is at most the balance, because a price never falls when energy or
time grows.
- With the longest session (`cap_minutes`) the balance still buys some energy: that
  energy and the longest session (an energy-priced tariff, or a small time fee).
- Otherwise (time costs much): the longest time T such that T minutes at `power_w`
  fit in the balance, and the energy the balance buys over T.
- A balance that buys more than MAX_WH over the longest session: no energy limit
  (`max_wh` None: no e-bike charge comes near it).
- A balance below one billing step at `power_w` (or the tariff's minimum) covers
  nothing: None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..billing import pricing

MAX_WH = 20_000  # far above any e-bike charge: the search's upper end


@dataclass(frozen=True)
class Allowance:
    max_wh: int | None  # None: the balance covers more than any charge (MAX_WH)
    max_minutes: int


def _price(spec: pricing.TariffSpec, now: datetime, wh: int, minutes: int,
           power_w: float) -> int:
    end = now + timedelta(minutes=minutes)
    # Readings at the session's power for the tier choice (fixed after 15 minutes).
    samples = [pricing.Sample(now + timedelta(minutes=m), power_w)
               for m in range(1, min(minutes, 20) + 1)]
    # A charge is admitted on what it costs: not as a failed one priced to nothing.
    return pricing.price(spec, pricing.Usage(now, end, wh, samples),
                         failed_free=False).amount_cents


def _most_wh(spec, now, minutes: int, power_w: float, balance: int) -> int:
    """The most whole Wh whose price over `minutes` fits in `balance` (0: none)."""
    lo, hi = 0, MAX_WH
    if _price(spec, now, 0, minutes, power_w) > balance:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _price(spec, now, mid, minutes, power_w) <= balance:
            lo = mid
        else:
            hi = mid - 1
    return lo


def minimum_cents(spec: pricing.TariffSpec, now: datetime, power_w: float) -> int:
    """The least a session costs: one billing step at `power_w` (the tariff's minimum
    included)."""
    step = max(1, spec.step_minutes)
    return _price(spec, now, int(power_w * step / 60), step, power_w)


def cover(spec: pricing.TariffSpec, balance: int, power_w: float, cap_minutes: int,
          now: datetime) -> Allowance | None:
    """The session limits `balance` (fen) covers under `spec` (None: not the minimum)."""
    if balance <= 0 or balance < minimum_cents(spec, now, power_w):
        return None
    wh = _most_wh(spec, now, cap_minutes, power_w, balance)
    if wh >= MAX_WH:
        return Allowance(None, cap_minutes)
    if wh >= power_w * max(1, spec.step_minutes) / 60:
        return Allowance(wh, cap_minutes)
    # Time is dear: the longest T at `power_w` that fits, then the energy over T.
    lo, hi = max(1, spec.step_minutes), cap_minutes
    if _price(spec, now, int(power_w * lo / 60), lo, power_w) > balance:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _price(spec, now, int(power_w * mid / 60), mid, power_w) <= balance:
            lo = mid
        else:
            hi = mid - 1
    return Allowance(_most_wh(spec, now, lo, power_w, balance), lo)
