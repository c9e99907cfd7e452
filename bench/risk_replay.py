"""The risk grade's no_taper rule over many rounds, without the database: a pure replay.

    .venv/bin/python bench/risk_replay.py [--cards 600] [--rounds 12] [--min-sessions 3]
        [--no-taper-high 1.3] [--seed 16]

bench/risk_eval.py runs the real ingest (25 minutes) on three learning charges and one
graded charge per card. This feeds the same generated curves (risk_eval's `Pack` and
`curve`) straight through `risk.step`, with each card's usual charge learned as
`cards.learn` does (healthy full charges that tapered; bulk power a moving average,
the pack's energy the largest and least full charges: `cards.fold`; the usual energy
`cards.full_energy`), for as many rounds as asked, in
seconds. It shows what the four-round bench cannot:
- false highs per 1,000 healthy charges in each round, and by reason: whether they
  die out as the cards learn, or stay;
- a charge graded high is stopped in the ingest, never ends full, and so never
  teaches its card the larger energy: the replay does the same (censored learning);
- every `--no-taper-bad` rounds a card's pack fails (never tapers): how soon after
  the card's usual energy it grades high.
Readings every 60 s with ±3 % power noise (no loss or jitter: the rule reads energy,
which loss does not change). Temperatures are left out (peer warming needs the
alley's other ports: risk_eval.py).
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from risk_eval import Pack, curve  # noqa: E402

from chargers.constants import RiskGrade, RiskReason  # noqa: E402
from chargers.services.safety import cards as card_rules  # noqa: E402
from chargers.services.safety import risk  # noqa: E402
from chargers.settings import LimitRule, RiskRule  # noqa: E402

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def grade_charge(points, base: risk.Baseline, limits: risk.Limits, rule: RiskRule,
                 start: datetime):
    """(the grade's reasons at the end, first high's seconds or None, energy Wh, whether
    it tapered, its bulk power, whether a high stopped it)."""
    st, e, first_high = None, 0.0, None
    verdict = risk.Verdict()
    for t, p, _temp in points:
        e += p * 60 / 3600
        st, verdict = risk.step(st, risk.Point(start + timedelta(seconds=t), p, e), start,
                                limits, base, rule)
        if verdict.grade == RiskGrade.HIGH and first_high is None:
            first_high = t
            break  # the backend stops a high charge: it never ends full
        if verdict.stop:
            break
    return verdict.reasons, first_high, e, bool((st or {}).get("tp")), (st or {}).get("bk")


def new_profile() -> SimpleNamespace:
    """A card's profile as `cards.fold` and `cards.full_energy` read it."""
    return SimpleNamespace(sessions=0, bulk_w=None, energy_wh=None, energy_low_wh=None)


def minutes_past(points, energy: float | None, first_high: float) -> float | None:
    """Minutes from the reading that reached `energy` to the first high."""
    if not energy:
        return None
    e = 0.0
    for t, p, _ in points:
        e += p * 60 / 3600
        if e >= energy:
            return (first_high - t) / 60
    return None


def run(n_cards: int, rounds: int, rule: RiskRule, seed: int, bad_every: int) -> dict:
    rng = random.Random(seed)
    lim = LimitRule()
    limits = risk.Limits(lim.max_power_w, lim.full_stop_power_w, lim.full_stop_hold_s,
                         lim.max_session_s, lim.overload_readings)
    packs = [Pack(rng) for _ in range(n_cards)]
    profiles = [new_profile() for _ in packs]
    per_round, reasons_seen = [], {}
    late: list[float] = []  # minutes past the usual energy (the estimate of full)
    late_max: list[float] = []  # minutes past the largest learned full charge
    caught = bad = 0
    for rnd in range(rounds):
        healthy = highs = 0
        for i, pack in enumerate(packs):
            # From the fourth round on, every `bad_every`-th round a tenth of the packs
            # fail (a different tenth each time).
            failing = (bad_every and rnd >= 3 and rnd % bad_every == 0
                       and i % 10 == (rnd // bad_every) % 10)
            kind = "no_taper" if failing else "healthy"
            prof = profiles[i]
            base = card_rules.baseline_of(prof, rule)
            start = T0 + timedelta(days=rnd, minutes=i)
            points = curve(pack, kind, rng)
            reasons, first_high, energy, tapered, bulk = grade_charge(
                points, base, limits, rule, start)
            if kind == "healthy":
                healthy += 1
                if first_high is not None:
                    highs += 1
                    for r, g in reasons.items():
                        if g == RiskGrade.HIGH:
                            reasons_seen[r] = reasons_seen.get(r, 0) + 1
                grade = risk.grade_of(reasons)
                ok = grade == RiskGrade.LOW or (
                    set(reasons) <= {RiskReason.NO_TAPER.value} and grade == RiskGrade.MID)
                if first_high is None and ok and tapered and bulk:
                    card_rules.fold(prof, bulk, energy)
            else:
                bad += 1
                if first_high is not None:
                    caught += 1
                    for out, ref in ((late, base.full_wh), (late_max, base.energy_wh)):
                        m = minutes_past(points, ref, first_high)
                        if m is not None:
                            out.append(m)
        per_round.append(round(1000 * highs / max(1, healthy), 2))
    late.sort()
    late_max.sort()
    return {"false_highs_per_1000_by_round": per_round,
            "false_highs_per_1000_after_round_3": round(
                sum(per_round[3:]) / max(1, len(per_round[3:])), 2),
            "false_high_reasons": reasons_seen,
            "no_taper_caught": f"{caught}/{bad}",
            "no_taper_minutes_after_usual_p50": late[len(late) // 2] if late else None,
            "no_taper_minutes_after_usual_max": late[-1] if late else None,
            "no_taper_minutes_after_largest_p50": late_max[len(late_max) // 2] if late_max else None,
            "no_taper_minutes_after_largest_max": late_max[-1] if late_max else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cards", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--bad-every", type=int, default=3,
                    help="every this many rounds a tenth of the cards' packs fail (0: never)")
    ap.add_argument("--min-sessions", type=int, default=None,
                    help="RiskRule.no_taper_min_sessions to try (default: the product's)")
    ap.add_argument("--no-taper-high", type=float, default=None,
                    help="RiskRule.no_taper_high to try (default: the product's)")
    ap.add_argument("--spread", type=float, default=None,
                    help="RiskRule.no_taper_spread to try (default: the product's)")
    ap.add_argument("--forget", type=float, default=None,
                    help="cards.ENERGY_FORGET to try (default: the product's)")
    args = ap.parse_args(argv)
    rule = RiskRule()
    if args.min_sessions is not None:
        rule = replace(rule, no_taper_min_sessions=args.min_sessions)
    if args.no_taper_high is not None:
        rule = replace(rule, no_taper_high=args.no_taper_high)
    if args.spread is not None:
        rule = replace(rule, no_taper_spread=args.spread)
    if args.forget is not None:
        card_rules.ENERGY_FORGET = args.forget
    import json

    print(json.dumps({"rule": {"no_taper_min_sessions": rule.no_taper_min_sessions,
                               "no_taper_high": rule.no_taper_high,
                               "no_taper_high_max_s": rule.no_taper_high_max_s,
                               "no_taper_spread": rule.no_taper_spread,
                               "energy_forget": card_rules.ENERGY_FORGET},
                      **run(args.cards, args.rounds, rule, args.seed, args.bad_every)},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
