"""Bar charts drawn on the server as SVG geometry (templates/_chart.html renders it):
they work without JavaScript and print. Values are integers; coordinates are computed
here so the template only places rectangles and labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str
    text: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    top: int
    base: int  # y of the axis
    left: int
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    max_text: str = ""
    total_text: str = ""


def bar_chart(title: str, labels: Sequence[str], values: Sequence[int], *,
              fmt: Callable[[int], str] = str, tick_labels: Sequence[str] | None = None,
              tick_every: int = 5, width: int = 360, height: int = 150) -> Chart:
    """One bar per value; ticks under every `tick_every`-th bar (and the first)."""
    left, top, bottom, right = 4, 18, 20, 4
    base = height - bottom
    n = max(len(values), 1)
    slot = (width - left - right) / n
    gap = min(2.0, slot * 0.2)
    peak = max([v for v in values if v is not None] + [0])
    bars, ticks = [], []
    for i, v in enumerate(values):
        v = v or 0
        h = 0.0 if peak <= 0 else max(0.0, (base - top) * max(v, 0) / peak)
        if v > 0 and h < 1:
            h = 1.0
        x = left + i * slot + gap / 2
        bars.append(Bar(round(x, 2), round(base - h, 2), round(slot - gap, 2), round(h, 2),
                        labels[i], fmt(v)))
        if i == 0 or (i + 1) % tick_every == 0:
            tl = (tick_labels or labels)[i]
            ticks.append((round(left + i * slot + slot / 2, 2), tl))
    return Chart(title, width, height, top, base, left, bars, ticks, fmt(peak),
                 fmt(sum(v or 0 for v in values)))


def kwh1(wh: int) -> str:
    """Wh → kWh with one decimal, half up, integer arithmetic ("12345" → "12.3")."""
    q, r = divmod(abs(int(wh)) + 50, 100)
    return f"{'-' if wh < 0 else ''}{q // 10}.{q % 10}"


def series_charts(rows: Sequence[dict], labels: Sequence[str],
                  tick_labels: Sequence[str] | None = None, tick_every: int = 5, *,
                  width: int = 360, height: int = 150) -> list[Chart]:
    """kWh, sessions and takings charts of rows with energy_wh, sessions, takings_cents."""
    from flask_babel import gettext as _

    from .money import yuan

    kw = {"tick_labels": tick_labels, "tick_every": tick_every, "width": width,
          "height": height}
    return [
        bar_chart(_("Energy (kWh)"), labels, [r["energy_wh"] for r in rows], fmt=kwh1, **kw),
        bar_chart(_("Sessions"), labels, [r["sessions"] for r in rows], **kw),
        bar_chart(_("Takings"), labels, [r["takings_cents"] for r in rows], fmt=yuan, **kw),
    ]


def month_charts(daily: Sequence[dict], *, wide: bool = False) -> list[Chart]:
    """The three day-by-day charts of a closed month (MonthClose.daily); `wide` for
    the A4 notice (one chart per row, flatter)."""
    labels = [d["day"] for d in daily]
    ticks = [str(int(d["day"][8:])) for d in daily]
    if wide:
        return series_charts(daily, labels, ticks, width=720, height=100)
    return series_charts(daily, labels, ticks)


@dataclass(frozen=True)
class Line:
    """One curve: its polyline points ("x,y x,y …"), colour, axis side, scale text."""

    name: str
    points: str
    colour: str
    max_text: str
    side: str  # "left" or "right": which axis label it uses


@dataclass(frozen=True)
class LineChart:
    title: str
    width: int
    height: int
    top: int
    base: int
    left: int
    right: int
    lines: list[Line] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)  # vertical lines (x, label)
    levels: list[tuple[float, str]] = field(default_factory=list)  # horizontal lines (y, label)


def line_chart(title: str, seconds: Sequence[float], series: Sequence[tuple[str, Sequence, str, str]],
               *, tick_every_s: int = 1800, marks: Sequence[tuple[float, str]] = (),
               levels: Sequence[tuple[float, str]] = (), tick_offset_s: float = 0,
               width: int = 640, height: int = 220, min_span: float = 1.0) -> LineChart:
    """Curves over time on one chart: `seconds` since the start, then for each series
    (name, values (None = no reading), colour, unit); the first series scales to the
    left axis, the others each to their own maximum (their maximum is printed).
    `levels` are horizontal lines on the first axis (a limit), which they stretch to
    show; tick labels count from `tick_offset_s` (a clock time of day). The others'
    axes span `min_span` at least (a port warming 1 °C is not drawn bottom to top)."""
    left, right, top, bottom = 36, 36, 18, 22
    base = height - bottom
    span = max(max(seconds or [0]), 1.0)
    sx = (width - left - right) / span

    def x(t: float) -> float:
        return round(left + t * sx, 1)

    lines = []
    first_hi = 1.0
    for i, (name, values, colour, unit) in enumerate(series):
        vals = [v for v in values if v is not None]
        lo = 0.0 if i == 0 else min(vals or [0.0])
        hi = max(vals or [1.0])
        if i == 0:
            hi = max([hi, *(v for v, _label in levels)])
            first_hi = hi if hi > 0 else 1.0
        hi = hi if hi > lo else lo + 1.0
        if i > 0 and hi - lo < min_span:
            mid = (hi + lo) / 2
            lo, hi = mid - min_span / 2, mid + min_span / 2
        pts = " ".join(f"{x(t)},{round(base - (base - top) * (v - lo) / (hi - lo), 1)}"
                       for t, v in zip(seconds, values, strict=False) if v is not None)
        lines.append(Line(name, pts, colour, f"{hi:.0f} {unit}" if i == 0 else
                          f"{lo:.0f}–{hi:.0f} {unit}", "left" if i == 0 else "right"))
    ticks = [(x(t), f"{int((t + tick_offset_s) // 3600)}:{int((t + tick_offset_s) % 3600 // 60):02d}")
             for t in range(0, int(span) + 1, tick_every_s)]
    return LineChart(title, width, height, top, base, left, right, lines, ticks,
                     [(x(t), label) for t, label in marks],
                     [(round(base - (base - top) * v / first_hi, 1), label) for v, label in levels])
