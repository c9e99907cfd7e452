"""How long until a charging port is free: an estimate from the session's own power
curve and the alley's history of similar sessions. Pure: plain values in, an
`Estimate` out; no database, no clock (services/charging/time_left.py feeds it).

An e-bike charger draws a steady power while the battery fills (constant current), then
less and less as it nears full (constant voltage), and stops when the draw falls low.

- Tapering (the power has fallen well below its peak and keeps falling): the fall is
  close to exponential, so a log-linear fit of the samples since the peak tells how long
  until the draw reaches the end threshold. The session's own curve is the best basis.
- Rising or flat: the curve alone cannot say how big the battery is. Similar past
  sessions of the alley (a comparable peak power, ended `full`) say how much energy such
  a charge takes and at what mean power relative to its peak (which includes their
  taper): time left = energy still to go / that mean power.
- Otherwise there is no basis, and the estimate says so (`minutes` None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median

# A charge is "tapering" once its power is below this share of the peak…
TAPER_FRACTION = 0.8
# …and it ends when the draw falls below this share of the peak (or END_MIN_W).
END_FRACTION = 0.1
END_MIN_W = 5.0
# Past sessions count as similar when their peak is within this factor of ours.
SIMILAR_PEAK_FACTOR = 1.6
MIN_HISTORY = 3  # fewer similar sessions than this are no basis
MAX_MINUTES = 12 * 60  # longer than this is not an estimate worth showing


@dataclass(frozen=True)
class Sample:
    """One meter reading of the session: seconds since it started, power, energy so far."""

    t_s: float
    power_w: float
    energy_wh: float


@dataclass(frozen=True)
class PastSession:
    """A finished session of the alley: how long it took, how much energy, its peak."""

    duration_s: float
    energy_wh: float
    peak_w: float | None


@dataclass(frozen=True)
class Estimate:
    """Time left, rounded up to whole minutes (0 = any moment now; None = no basis).
    `basis`: "curve" (the session's own taper), "history" (similar past sessions) or
    "none"; `power_w` and `energy_wh` are the latest reading (None without one)."""

    minutes: int | None
    basis: str
    power_w: float | None = None
    energy_wh: float | None = None
    similar: int = 0  # how many past sessions the history basis used

    @property
    def known(self) -> bool:
        return self.minutes is not None


def _taper_minutes(samples: list[Sample], peak: float) -> float | None:
    """Minutes until the draw falls to the end threshold, from a log-linear fit of the
    samples since the peak; None when the curve is not (yet) falling."""
    current = samples[-1].power_w
    if current >= TAPER_FRACTION * peak:
        return None
    end_w = max(END_FRACTION * peak, END_MIN_W)
    if current <= end_w:
        return 0.0
    # The taper starts where the power last stood near its peak: fit only what follows
    # (a long flat stretch before it would flatten the fitted fall).
    start = max(i for i, s in enumerate(samples) if s.power_w >= 0.95 * peak)
    tail = [s for s in samples[start:] if s.power_w > 0]
    if len(tail) < 3:
        return None
    xs = [s.t_s for s in tail]
    ys = [math.log(s.power_w) for s in tail]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    if slope >= 0:
        return None  # a dip, not a taper
    return math.log(current / end_w) / -slope / 60


def _history_minutes(samples: list[Sample], elapsed_s: float, peak: float | None,
                     history: list[PastSession]) -> tuple[float | None, int]:
    """Minutes left judged by similar past sessions, and how many were used."""
    similar = [h for h in history if h.duration_s > 0 and h.energy_wh > 0]
    if peak:
        similar = [h for h in similar if h.peak_w and
                   peak / SIMILAR_PEAK_FACTOR <= h.peak_w <= peak * SIMILAR_PEAK_FACTOR]
    if len(similar) < MIN_HISTORY:
        return None, 0
    energy = samples[-1].energy_wh if samples else None
    if peak and energy is not None:
        target = median(h.energy_wh for h in similar)
        # Mean power relative to the peak, over a whole charge (taper included).
        ratios = [h.energy_wh / (h.duration_s / 3600) / h.peak_w for h in similar if h.peak_w]
        if target > energy and ratios:
            return (target - energy) / (median(ratios) * peak) * 60, len(similar)
    # No curve (or already past the usual energy): how much longer did the past
    # sessions that lasted at least this long go on?
    longer = [h.duration_s - elapsed_s for h in similar if h.duration_s > elapsed_s]
    if len(longer) < MIN_HISTORY:
        return None, 0
    return median(longer) / 60, len(similar)


def estimate(samples: list[Sample], elapsed_s: float, history: list[PastSession]) -> Estimate:
    """Time left for a session `elapsed_s` seconds in, with its meter `samples` (oldest
    first) and the alley's `history` of finished sessions."""
    samples = sorted(samples, key=lambda s: s.t_s)
    power = samples[-1].power_w if samples else None
    energy = samples[-1].energy_wh if samples else None
    peak = max((s.power_w for s in samples), default=None) or None
    minutes, basis, used = None, "none", 0
    if peak:
        minutes = _taper_minutes(samples, peak)
        if minutes is not None:
            basis = "curve"
    if minutes is None:
        minutes, used = _history_minutes(samples, elapsed_s, peak, history)
        if minutes is not None:
            basis = "history"
    if minutes is None or minutes > MAX_MINUTES:
        return Estimate(None, "none", power, energy)
    return Estimate(math.ceil(minutes), basis, power, energy, used)


def next_free(estimates: list[Estimate]) -> int | None:
    """Minutes until the first of these ports is expected free (None: no basis)."""
    known = [e.minutes for e in estimates if e.minutes is not None]
    return min(known) if known else None
