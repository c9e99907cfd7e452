"""The answer to a pile's `authorize` (device protocol v1.1), in well under a second:
the ingest calls `on_authorize` inside its batch; the answer is an `authorize` command
(services/devices/commands) that the worker publishes right after the batch commits.

- rejected, with its reason: a disabled port or pile (`disabled`), a fire alarm on the
  pile (`fire`), an unknown card unless the alley allows unbilled charging
  (`unknown_card`), a prepaid balance that cannot cover the minimum charge
  (`no_balance`), a monthly card already charging elsewhere (`not_allowed`);
- queued, with its place, when the alley's budget (or the pile's own limit) has no room
  for the card's expected draw, or others already wait (first come, first served);
- accepted, with `max_wh` and `max_minutes` that the balance and the tariff cover
  (prepaid), the card's remaining hours (monthly), none (exempt, unbilled).

Every answer is an Authorization row (who tried which port with which card, what we
answered, when). Admission is serialized per alley (feeder.lock). No commit here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ...constants import (
    FIRE_CODES,
    OPEN_ALERT,
    AccountKind,
    AuthorizeReason,
    AuthorizeResult,
    CommandAction,
    QueueState,
    SessionStatus,
)
from ...extensions import db
from ...models import Alert, Alley, Authorization, ChargingSession, Pile, ResidentAccount
from ...settings import BudgetRule
from ..billing import accounts, ledger, pricing
from ..billing.settlement import monthly_used_seconds
from ..billing.tariffs import in_force
from ..devices import commands, ports
from ..devices import config as pile_config
from . import allowance, feeder

log = logging.getLogger(__name__)

FEATURE = "authorize"
ANSWER_WAIT_S = 10  # the pile waits this long for an answer, then follows offline_policy


@dataclass(frozen=True)
class Decision:
    result: str
    reason: str | None = None
    max_wh: int | None = None
    max_minutes: int | None = None
    account: ResidentAccount | None = None


def has_feature(pile: Pile) -> bool:
    return FEATURE in (pile.features or ())


def tariff_spec(alley: Alley, now: datetime) -> pricing.TariffSpec:
    """The tariff in force now as pricing's plain values."""
    t = in_force(alley, now)
    return (pricing.TariffSpec.from_row(t, alley.timezone) if t is not None
            else pricing.TariffSpec(alley.tariff_cents_per_kwh))


def _fire(pile: Pile) -> bool:
    return db.session.scalar(select(Alert.id).where(
        Alert.pile_id == pile.id, Alert.code.in_([c.value for c in FIRE_CODES]),
        Alert.status.in_([s.value for s in OPEN_ALERT])).limit(1)) is not None


def _charging_elsewhere(alley: Alley, acc: ResidentAccount, pile: Pile, port: int) -> bool:
    from ...models import AccountCard

    return db.session.scalar(select(ChargingSession.id).join(
        AccountCard, (AccountCard.card == ChargingSession.card)
        & (AccountCard.account_id == acc.id)).join(
        Pile, (Pile.id == ChargingSession.pile_id) & (Pile.alley_id == alley.id)).where(
        ChargingSession.status == SessionStatus.ACTIVE, ChargingSession.ended_at.is_(None),
        ~((ChargingSession.pile_id == pile.id) & (ChargingSession.port == port))).limit(1)) \
        is not None


def decide_money(pile: Pile, port: int, card: str, power_w: float, now: datetime,
                 rule: BudgetRule, limits: pile_config.Limits | None = None) -> Decision:
    """The card's side of the answer (who pays, and how much the session may take):
    rejected, or accepted with its limits (the pile's `limits` when given); the budget
    is not looked at here."""
    alley = pile.alley
    cap = (limits or pile_config.limits(pile, rule.limits)).max_session_s // 60
    acc = accounts.active_holder(alley.id, card)
    if acc is None:
        if alley.allow_unbilled:
            return Decision(AuthorizeResult.ACCEPTED, max_minutes=cap)
        return Decision(AuthorizeResult.REJECTED, AuthorizeReason.UNKNOWN_CARD)
    if acc.kind == AccountKind.EXEMPT:
        return Decision(AuthorizeResult.ACCEPTED, max_minutes=cap, account=acc)
    if (acc.kind == AccountKind.MONTHLY and acc.monthly_from and acc.monthly_until
            and acc.monthly_from <= now < acc.monthly_until):
        if _charging_elsewhere(alley, acc, pile, port):  # one at a time
            return Decision(AuthorizeResult.REJECTED, AuthorizeReason.NOT_ALLOWED, account=acc)
        if acc.monthly_hours is None:
            return Decision(AuthorizeResult.ACCEPTED, max_minutes=cap, account=acc)
        left_min = int(acc.monthly_hours * 60 - monthly_used_seconds(acc) // 60)
        if left_min > 0:
            return Decision(AuthorizeResult.ACCEPTED, max_minutes=min(cap, left_min),
                            account=acc)
        # Past its hours the rest is charged to the balance, as prepaid.
    got = allowance.cover(tariff_spec(alley, now), ledger.balance(acc), power_w, cap, now)
    if got is None:
        return Decision(AuthorizeResult.REJECTED, AuthorizeReason.NO_BALANCE, account=acc)
    return Decision(AuthorizeResult.ACCEPTED, max_wh=got.max_wh, max_minutes=got.max_minutes,
                    account=acc)


def on_authorize(pile: Pile, port_no: int, card: str, message_id: str, at: datetime,
                 received_at: datetime, now: datetime, rule: BudgetRule, *,
                 late: bool = False) -> Authorization:
    """Answer one `authorize` and record it (see the module docstring). A `late` one
    (it reached us after the pile stopped waiting: its offline policy decided) is
    answered and recorded all the same, but neither admitted nor queued: the pile
    ignores the answer. No commit."""
    alley = pile.alley
    feeder.lock(alley.id)
    limits = pile_config.limits(pile, rule.limits)
    expected = feeder.expected_w(pile, card, rule, limits)
    d = _decide(pile, port_no, card, expected, now, rule, limits)
    d, headroom, position = _within_budget(pile, d, expected, now, rule)
    # The answer first: the record names it from its first write.
    cmd = commands.create(pile, port_no, CommandAction.AUTHORIZE, now,
                          args=_answer(d, message_id, position))
    rec = Authorization(
        command_id=cmd.id,
        alley_id=alley.id, pile_id=pile.id, port=port_no, card=card, message_id=message_id,
        account_id=d.account.id if d.account else None, asked_at=at, received_at=received_at,
        answered_at=now, result=d.result, reason=d.reason, position=position,
        max_wh=d.max_wh if d.result == AuthorizeResult.ACCEPTED else None,
        max_minutes=d.max_minutes if d.result == AuthorizeResult.ACCEPTED else None,
        expected_w=expected, headroom_w=None if headroom is None else int(headroom),
        admitted_at=now if d.result == AuthorizeResult.ACCEPTED else None,
        queue_state=QueueState.WAITING if d.result == AuthorizeResult.QUEUED else None)
    if late:
        rec.admitted_at, rec.queue_state, rec.drop_reason = None, None, "late"
    db.session.add(rec)
    log.info("authorize %s port %s card %s: %s %s", pile.id, port_no, card, d.result,
             d.reason or position or "")
    return rec


def _decide(pile: Pile, port_no: int, card: str, expected: float, now: datetime,
            rule: BudgetRule, limits: pile_config.Limits) -> Decision:
    """The answer before the budget: fire first (a fire cut-off also disables the pile),
    then a disabled pile or port, then the card and its money."""
    port = ports.port_of(pile, port_no)
    if _fire(pile):
        return Decision(AuthorizeResult.REJECTED, AuthorizeReason.FIRE)
    if not pile.enabled or (port is not None and not port.enabled):
        return Decision(AuthorizeResult.REJECTED, AuthorizeReason.DISABLED)
    return decide_money(pile, port_no, card, expected, now, rule, limits)


def _within_budget(pile: Pile, d: Decision, expected: float, now: datetime,
                   rule: BudgetRule) -> tuple[Decision, float | None, int | None]:
    """An accepted card under a feeder or pile limit: queued when others wait or the
    headroom (the smaller of the alley's and the pile's) is short of its expected
    draw. Returns the decision, the headroom seen and the queue position."""
    alley = pile.alley
    if d.result != AuthorizeResult.ACCEPTED or (alley.feeder_limit_w is None
                                                and pile.power_limit_w is None):
        return d, None, None
    b = feeder.budget(alley, now, rule)
    headroom, waiting = b.headroom_w, b.queue
    room = feeder.pile_headroom_w(pile, now, rule)
    if room is not None:
        headroom = room if headroom is None else min(headroom, room)
    if waiting or headroom < expected:
        return (Decision(AuthorizeResult.QUEUED, account=d.account, max_wh=d.max_wh,
                         max_minutes=d.max_minutes), headroom, waiting + 1)
    return d, headroom, None


def _answer(d: Decision, message_id: str, position: int | None) -> dict:
    """The `authorize` command's arguments (protocol v1.1)."""
    args: dict = {"ref": message_id, "result": d.result.value}
    if d.result == AuthorizeResult.REJECTED:
        args["reason"] = d.reason.value
    elif d.result == AuthorizeResult.QUEUED:
        args["position"] = position
    else:
        if d.max_wh is not None:
            args["max_wh"] = d.max_wh
        if d.max_minutes is not None:
            args["max_minutes"] = d.max_minutes
    return args


def authorized_session_ids(session_ids: list[int]) -> set[int]:
    """Of these sessions, those that began on an answer of ours (their limits are the
    pile's to keep: the balance guard leaves them alone)."""
    if not session_ids:
        return set()
    return set(db.session.scalars(select(Authorization.session_id).where(
        Authorization.session_id.in_(session_ids))))
