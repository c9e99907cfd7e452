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

from collections.abc import Callable
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
    return _pricer(spec, now, minutes, power_w)(wh)


def _pricer(spec: pricing.TariffSpec, now: datetime, minutes: int,
            power_w: float) -> Callable[[int], int]:
    """The price (fen) of `wh` over `minutes` from `now`, as a function of `wh`."""
    end = now + timedelta(minutes=minutes)
    # Readings at the session's power for the tier choice (fixed after 15 minutes).
    samples = [pricing.Sample(now + timedelta(minutes=m), power_w)
               for m in range(1, min(minutes, 20) + 1)]
    # A charge is admitted on what it costs: not as a failed one priced to nothing.
    return lambda wh: pricing.price(spec, pricing.Usage(now, end, wh, samples),
                                    failed_free=False).amount_cents


def _largest(fits: Callable[[int], bool], lo: int, hi: int, guess: int) -> int:
    """The largest x in [lo, hi] that `fits`, where fits(lo) holds and `fits` is true up
    to some point and false after it: a bracket grown from `guess` (a good estimate
    needs a handful of probes), then halved."""
    if fits(hi):
        return hi
    hi -= 1  # from here: fits(lo), and not fits(hi + 1)
    g = min(max(guess, lo), hi)
    step = 8
    if fits(g):
        lo = g
        while lo < hi:
            c = min(hi, lo + step)
            if not fits(c):
                hi = c - 1
                break
            lo, step = c, step * 4
    else:
        hi = g - 1
        while lo < hi:
            c = max(lo, hi - step)
            if fits(c):
                lo = c
                break
            hi, step = c - 1, step * 4
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _most_wh(spec, now, minutes: int, power_w: float, balance: int) -> int:
    """The most whole Wh whose price over `minutes` fits in `balance` (0: none). The
    price grows about linearly with the energy: the search starts from that line."""
    price = _pricer(spec, now, minutes, power_w)
    p0 = price(0)
    if p0 > balance:
        return 0
    top = price(MAX_WH)
    if top <= balance:
        return MAX_WH
    guess = (balance - p0) * MAX_WH // max(1, top - p0)
    return _largest(lambda wh: price(wh) <= balance, 0, MAX_WH, guess)


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
    def fits(minutes: int) -> bool:
        return _price(spec, now, int(power_w * minutes / 60), minutes, power_w) <= balance

    lo = max(1, spec.step_minutes)
    if not fits(lo):
        return None
    longest = _largest(fits, lo, cap_minutes, (lo + cap_minutes) // 2)
    return Allowance(_most_wh(spec, now, longest, power_w, balance), longest)
