"""The demo alleys' residents and the cards they charge with: one deterministic list
that `seed-demo` turns into accounts and the simulator presents at the piles, so the
two always agree. Pure: no database, no clock.

- Each household (a door of the alley) has one account holding one to four cards (a
  family's e-bikes); most are prepaid, a few are monthly cards (one card each: a
  monthly card charges one bike at a time), and the neighbourhood committee's own
  bikes are exempt.
- A card is in one place at a time: the picker never hands out a card that is
  charging already (while a free one is left).
- UNKNOWN_SHARE of the sessions are a stranger's card (a visitor, a card not yet
  registered): the backend stops them after its grace and puts them on the review
  list, as it should.
"""

from __future__ import annotations

import random
from collections.abc import Container
from dataclasses import dataclass
from functools import lru_cache

UNKNOWN_SHARE = 0.01

# slug → how the roster is made: card prefix, households, the street's name, and how
# many stranger cards turn up. Sized so that the simulator's busiest hour (about two
# thirds of the ports charging at once) still finds free cards.
ROSTERS = {
    "jiuru": {"prefix": "JR", "households": 72, "street": "九如巷", "strangers": 40,
              "committee": "九如社区居委会"},
    "tiyuchang": {"prefix": "TY", "households": 30, "street": "体育场路", "strangers": 20,
                  "committee": "体育场路社区居委会"},
}
MONTHLY_EVERY = 17  # every 17th household holds a monthly card
LOW_BALANCE_EVERY = 29  # … and every 29th tops up only a little (reminders have work)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡沈顾"
_TITLES = ("先生", "女士", "阿姨", "师傅", "老师")


@dataclass(frozen=True)
class DemoResident:
    """One household's account as the demo has it: top-ups in fen, the first on the
    day the alley's accounts opened, any later ones spread over the weeks after; a
    household that `tops_up` pays again when its balance runs low."""

    household: str
    name: str
    phone: str
    kind: str  # prepaid / monthly / exempt
    cards: tuple[str, ...]
    topups: tuple[int, ...] = ()
    tops_up: bool = True


@lru_cache(maxsize=8)
def roster(slug: str) -> tuple[DemoResident, ...]:
    """The alley's demo residents (empty for an alley the demo does not know)."""
    spec = ROSTERS.get(slug)
    if spec is None:
        return ()
    rng = random.Random(f"chargers-demo-roster:{slug}")
    prefix, out, n_card = spec["prefix"], [], 0

    def cards(k: int) -> tuple[str, ...]:
        nonlocal n_card
        made = tuple(f"{prefix}-{n_card + i + 1:04d}" for i in range(k))
        n_card += k
        return made

    def phone() -> str:
        return "1" + rng.choice("3578") + "".join(rng.choice("0123456789") for _ in range(9))

    out.append(DemoResident(spec["committee"], "网格员", phone(), "exempt", cards(2)))
    for h in range(1, spec["households"] + 1):
        name = rng.choice(_SURNAMES) + rng.choice(_TITLES)
        household = f"{spec['street']}{(h + 1) // 2}号" + ("" if h % 2 else " 后院")
        if h % MONTHLY_EVERY == 0:
            out.append(DemoResident(household, name, phone(), "monthly", cards(1)))
        elif h % LOW_BALANCE_EVERY == 0:
            out.append(DemoResident(household, name, phone(), "prepaid", cards(1), (1000,),
                                    tops_up=False))
        else:
            k = rng.choices((1, 2, 3, 4), (30, 35, 25, 10))[0]
            first = rng.choice((3000, 5000, 5000, 10000, 10000, 20000))
            later = (rng.choice((3000, 5000, 10000)),) if rng.random() < 0.5 else ()
            out.append(DemoResident(household, name, phone(), "prepaid", cards(k),
                                    (first, *later)))
    return tuple(out)


def strangers(slug: str) -> tuple[str, ...]:
    """Cards that turn up at the alley's piles but belong to no account of it. For an
    alley without a demo roster: the simulator's old anonymous cards."""
    spec = ROSTERS.get(slug)
    if spec is None:
        return tuple(f"C-{n:05d}" for n in range(1, 601))
    return tuple(f"V-{spec['prefix']}{n:03d}" for n in range(1, spec["strangers"] + 1))


def demo_card(slug: str) -> tuple[str, str]:
    """(card, last 4 phone digits) of a prepaid household to try "My account" with."""
    r = next(r for r in roster(slug) if r.kind == "prepaid" and len(r.topups) > 1)
    return r.cards[0], r.phone[-4:]


class CardPicker:
    """Which card the next session of an alley is started with."""

    def __init__(self, known: tuple[str, ...], unknown: tuple[str, ...],
                 unknown_share: float = UNKNOWN_SHARE):
        self.known = known
        self.unknown = unknown
        self.unknown_share = unknown_share if known else 1.0

    def pick(self, rng: random.Random, busy: Container[str] = ()) -> str:
        """A stranger's card UNKNOWN_SHARE of the time, else a known card that is not
        `busy` (charging elsewhere); a busy one only when every card is."""
        if self.unknown and rng.random() < self.unknown_share:
            return rng.choice(self.unknown)
        free = [c for c in self.known if c not in busy]
        return rng.choice(free or self.known)


def picker(slug: str) -> CardPicker:
    """The card picker of an alley: its residents' cards and its strangers'."""
    known = tuple(c for r in roster(slug) for c in r.cards)
    return CardPicker(known, strangers(slug))


def anonymous() -> CardPicker:
    """Strangers' cards only (an alley the demo does not know)."""
    return CardPicker((), strangers(""))
