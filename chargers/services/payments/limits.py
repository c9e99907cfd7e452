"""An alley's online top-up limits: its own minimum and maximum (fen) when staff set
them, else the deployment's PAYMENTS_MIN_CENTS / PAYMENTS_MAX_CENTS. Each limit must
lie within the deployment's bounds (PAYMENTS_MIN_CENTS … PAYMENTS_MAX_CENTS): an alley
narrows the range, never widens it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ...extensions import db
from ...models import Alley, User
from ...money import yuan_text
from ...settings import PaymentRule
from ..billing.ledger import audit
from ..devices import alleys
from ..errors import Invalid


@dataclass(frozen=True)
class Limits:
    min_cents: int
    max_cents: int
    own: bool  # set for this alley (False: the deployment's defaults)

    def allows(self, amount_cents) -> bool:
        return (isinstance(amount_cents, int) and not isinstance(amount_cents, bool)
                and self.min_cents <= amount_cents <= self.max_cents)


def of(alley: Alley, rules: PaymentRule) -> Limits:
    lo = alley.topup_min_cents if alley.topup_min_cents is not None else rules.min_cents
    hi = alley.topup_max_cents if alley.topup_max_cents is not None else rules.max_cents
    # A deployment bound tightened after an alley set its own still holds.
    lo, hi = max(lo, rules.min_cents), min(hi, rules.max_cents)
    return Limits(lo, hi, alley.topup_min_cents is not None or alley.topup_max_cents is not None)


def check(amount_cents, limits: Limits) -> None:
    """Refuses an amount outside the alley's limits (`pay.amount`, in yuan)."""
    if not limits.allows(amount_cents):
        raise Invalid("pay.amount", min=yuan_text(limits.min_cents),
                      max=yuan_text(limits.max_cents))


def set_limits(user: User | None, slug: str, min_cents: int | None, max_cents: int | None,
               rules: PaymentRule, now: datetime) -> Limits:
    """Set (or, with None, reset to the deployment's default) the alley's minimum and
    maximum top-up. Audited. Commits."""
    alley = alleys.get_alley(user, slug)
    lo = rules.min_cents if min_cents is None else min_cents
    hi = rules.max_cents if max_cents is None else max_cents
    for v in (min_cents, max_cents):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise Invalid("pay.limits", floor=yuan_text(rules.min_cents),
                          ceiling=yuan_text(rules.max_cents))
    if not rules.min_cents <= lo <= hi <= rules.max_cents:
        raise Invalid("pay.limits", floor=yuan_text(rules.min_cents),
                      ceiling=yuan_text(rules.max_cents))
    alley.topup_min_cents, alley.topup_max_cents = min_cents, max_cents
    audit("pay.limits", alley.id, user.id if user else None, now, min=yuan_text(lo),
          max=yuan_text(hi), min_cents=min_cents, max_cents=max_cents)
    db.session.commit()
    return of(alley, rules)
