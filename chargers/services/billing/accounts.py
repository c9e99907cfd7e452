"""Resident accounts: cards, household, kind (prepaid / monthly card / exempt), top-ups
and refunds recorded by staff. Every money action posts to the ledger and is audited.
Functions that change data commit."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from ...constants import PayProvider
from ...extensions import db
from ...models import AccountCard, Alley, ChargingSession, Pile, ResidentAccount, User
from ...models.billing import ACCOUNT_KINDS
from ...money import yuan_text
from .. import idempotency, scope
from ..devices import alleys
from ..errors import Conflict, Invalid, NotFound
from . import ledger

CARD_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
METHODS = ("cash", "wechat", "alipay", "bank", "other")
MAX_TOPUP_CENTS = 1_000_000  # 10,000 yuan at once


@dataclass
class AccountInput:
    alley: str
    cards: list[str] = field(default_factory=list)
    kind: str = "prepaid"
    household: str = ""
    name: str = ""
    phone: str = ""
    monthly_from: datetime | None = None
    monthly_until: datetime | None = None
    monthly_hours: int | None = None


def _check(data: AccountInput) -> None:
    if data.kind not in ACCOUNT_KINDS:
        raise Invalid("account.kind", kinds=", ".join(ACCOUNT_KINDS))
    if not data.cards:
        raise Invalid("account.cards")
    for c in data.cards:
        if not CARD_RE.match(c):
            raise Invalid("account.card", card=c)
    if len(set(data.cards)) != len(data.cards):
        raise Invalid("account.cards")
    if data.phone and not re.fullmatch(r"[0-9+ -]{4,32}", data.phone):
        raise Invalid("account.phone")
    if data.monthly_hours is not None and data.monthly_hours < 0:
        raise Invalid("account.monthly")
    if (data.monthly_from and data.monthly_until
            and data.monthly_until <= data.monthly_from):
        raise Invalid("account.monthly")


def create_account(user: User | None, data: AccountInput, now: datetime) -> ResidentAccount:
    """A new resident account with its cards; 409 when a card is already held by
    another account of the alley. Audited. Commits."""
    alley = alleys.get_alley(user, data.alley)
    if user is not None:
        scope.check_alley(user, alley)
    _check(data)
    taken = db.session.scalar(select(AccountCard.card).where(
        AccountCard.alley_id == alley.id, AccountCard.card.in_(data.cards)).limit(1))
    if taken:
        raise Conflict("account.card_taken", card=taken)
    acc = ResidentAccount(alley_id=alley.id, kind=data.kind, household=data.household.strip(),
                          name=data.name.strip(), phone=data.phone.strip(),
                          monthly_from=data.monthly_from, monthly_until=data.monthly_until,
                          monthly_hours=data.monthly_hours, created_at=now)
    acc.cards = [AccountCard(alley_id=alley.id, card=c) for c in data.cards]
    db.session.add(acc)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("account.card_taken", card=",".join(data.cards)) from None
    ledger.resident_account(acc)
    ledger.audit("account.created", alley.id, user.id if user else None, now, account=acc.id,
                 kind=acc.kind, cards=list(data.cards))
    db.session.commit()
    return acc


def get_account(user: User | None, account_id: int) -> ResidentAccount:
    """An account in the user's alleys (404 otherwise)."""
    acc = scope.get_in_alley(user, ResidentAccount, account_id, "account.resident_not_found")
    return acc


def account_kinds(ids: set[int]) -> dict[int, str]:
    """The kind (prepaid, monthly, exempt) of each of these accounts."""
    if not ids:
        return {}
    return dict(db.session.execute(select(ResidentAccount.id, ResidentAccount.kind)
                                   .where(ResidentAccount.id.in_(ids))).all())


def list_accounts(user: User | None, slug: str | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[ResidentAccount]:
    """Accounts in scope, newest first."""
    stmt = select(ResidentAccount)
    if slug:
        stmt = stmt.where(ResidentAccount.alley_id == alleys.get_alley(user, slug).id)
    stmt = scope.limit_to_alleys(stmt, user, ResidentAccount.alley_id)
    return list(db.session.scalars(stmt.order_by(ResidentAccount.id.desc())
                                   .limit(limit).offset(offset)))


def find_by_card(alley_id: int, card: str) -> ResidentAccount | None:
    """The account holding `card` in this alley (its cards loaded when first read: an
    answer to a card presented at a pile does not need them)."""
    return db.session.scalar(select(ResidentAccount).join(AccountCard).where(
        AccountCard.alley_id == alley_id, AccountCard.card == card)
        .options(lazyload(ResidentAccount.cards)))


def active_holders(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], ResidentAccount]:
    """{(alley id, card): its active account} for these pairs, in one query (a batch
    of session messages)."""
    pairs = {(a, c) for a, c in pairs if c}
    if not pairs:
        return {}
    from ...models import bulk

    rows = db.session.execute(select(AccountCard.alley_id, AccountCard.card, ResidentAccount)
                              .join(ResidentAccount, ResidentAccount.id == AccountCard.account_id)
                              .where(bulk.pairs_in((AccountCard.alley_id, AccountCard.card),
                                                   pairs),
                                     ResidentAccount.active.is_(True)))
    return {(a, c): acc for a, c, acc in rows}


def active_holder(alley_id: int, card: str | None) -> ResidentAccount | None:
    """The active account holding `card` in this alley (None without a card): whom a
    message about a session on that card goes to."""
    acc = find_by_card(alley_id, card) if card else None
    return acc if acc is not None and acc.active else None


def _money(amount_cents: int, method: str, receipt: str | None) -> None:
    if not isinstance(amount_cents, int) or not 0 < amount_cents <= MAX_TOPUP_CENTS:
        raise Invalid("money.amount", max=yuan_text(MAX_TOPUP_CENTS))
    if method not in METHODS:
        raise Invalid("money.method", methods=", ".join(METHODS))
    if receipt is not None and len(receipt) > 64:
        raise Invalid("money.receipt")


def top_up(user: User | None, account_id: int, amount_cents: int, method: str,
           receipt: str | None, now: datetime, key: str | None = None,
           request_key: idempotency.RequestKey | None = None):
    """Money received from a resident: cash box debited, resident credited. `key`
    (e.g. a client's request id) makes a retried top-up post once; `request_key` is
    claimed with the posting (Conflict `idempotency.replay` when it was taken before).
    Audited. Commits."""
    acc = get_account(user, account_id)
    _money(amount_cents, method, receipt)
    by = user.id if user else None
    key = f"topup:{key}" if key else f"topup:{acc.id}:{secrets.token_hex(8)}"
    resident, cash = ledger.resident_account(acc), ledger.account(acc.alley_id, "cash")
    lines = [(resident, amount_cents), (cash, -amount_cents)]
    try:
        if request_key is not None:
            idempotency.claim(request_key, now)
        ledger.lock(resident, cash)
        p = ledger.post(key, "topup", acc.alley_id, lines, now=now, by=by, method=method,
                        receipt=receipt)
        ledger.audit("money.topup", acc.alley_id, by, now, account=acc.id,
                     amount_cents=amount_cents, method=method, receipt=receipt)
        db.session.commit()
    except Conflict:
        db.session.rollback()
        raise
    except IntegrityError:
        db.session.rollback()
        raise Conflict("money.duplicate") from None
    return p


def refund(user: User | None, account_id: int, amount_cents: int, method: str,
           receipt: str | None, now: datetime, reason: str = "",
           request_key: idempotency.RequestKey | None = None):
    """Money paid back to a resident, at most the balance: the balance is read and the
    refund posted while the account's row is locked, so two refunds at once cannot both
    pay it out. `request_key` as for `top_up`. Audited. Commits."""
    acc = get_account(user, account_id)
    _money(amount_cents, method, receipt)
    by = user.id if user else None
    resident, cash = ledger.resident_account(acc), ledger.account(acc.alley_id, "cash")
    try:
        if request_key is not None:
            idempotency.claim(request_key, now)
    except Conflict:
        db.session.rollback()
        raise
    ledger.lock(resident, cash)
    balance = ledger.balance(acc)
    if amount_cents > balance:
        db.session.rollback()
        raise Invalid("money.refund_over_balance", balance=yuan_text(balance))
    lines = [(resident, -amount_cents), (cash, amount_cents)]
    p = ledger.post(f"refund:{acc.id}:{secrets.token_hex(8)}", "refund",
                    acc.alley_id, lines, now=now, by=by, method=method, receipt=receipt,
                    reason=reason)
    ledger.audit("money.refund", acc.alley_id, by, now, account=acc.id,
                 amount_cents=amount_cents, method=method, receipt=receipt, reason=reason)
    db.session.commit()
    return p


def write_off(user: User | None, account_id: int, amount_cents: int | None, reason: str,
              now: datetime):
    """Staff give up (part of) a resident's debt, with a reason: a posting that moves it
    from the resident's account to the alley's `written_off` account (never a silent
    drop). `amount_cents` None: the whole debt. Audited. Commits."""
    acc = get_account(user, account_id)
    if not reason.strip():
        raise Invalid("review.reason_required")
    owed = ledger.debt(acc)
    amount = owed if amount_cents is None else amount_cents
    if owed <= 0 or not isinstance(amount, int) or not 0 < amount <= owed:
        raise Invalid("money.writeoff_over_debt", debt=yuan_text(owed))
    by = user.id if user else None
    lines = [(ledger.resident_account(acc), amount),
             (ledger.account(acc.alley_id, "written_off"), -amount)]
    p = ledger.post(f"writeoff:{acc.id}:{secrets.token_hex(8)}", "writeoff", acc.alley_id,
                    lines, now=now, by=by, reason=reason)
    ledger.audit("money.writeoff", acc.alley_id, by, now, account=acc.id,
                 amount_cents=amount, reason=reason)
    db.session.commit()
    return p


def sell_monthly_card(user: User | None, account_id: int, price_cents: int,
                      period_from: datetime, period_until: datetime, hours: int | None,
                      method: str, receipt: str | None, now: datetime):
    """A monthly card sold for a period: the price is a posting (cash in, the alley's
    `card_sales` income), the account becomes a monthly card for that period and hours,
    and the card gets a ledger account of its own (kind `covered`) that bears the
    sessions it covers. Once per account and period start. Audited. Commits."""
    from ...models import CardSale

    acc = get_account(user, account_id)
    _money(price_cents, method, receipt)
    if period_until <= period_from or (hours is not None and hours < 0):
        raise Invalid("account.monthly")
    by = user.id if user else None
    stamp = period_from.strftime("%Y%m%d%H%M")
    card = ledger.account_by_code(f"card:{acc.id}:{stamp}", "covered", acc.alley_id)
    lines = [(ledger.account(acc.alley_id, "cash"), -price_cents),
             (ledger.account(acc.alley_id, "card_sales"), price_cents)]
    try:
        p = ledger.post(f"card_sale:{acc.id}:{stamp}", "card_sale", acc.alley_id, lines,
                        now=now, by=by, method=method, receipt=receipt)
    except IntegrityError:
        db.session.rollback()
        raise Conflict("money.duplicate") from None
    db.session.add(CardSale(alley_id=acc.alley_id, account_id=acc.id, posting_id=p.id,
                            ledger_account_id=card.id, period_from=period_from,
                            period_until=period_until, hours=hours,
                            price_cents=price_cents, created_at=now))
    acc.kind, acc.monthly_from, acc.monthly_until = "monthly", period_from, period_until
    acc.monthly_hours = hours
    ledger.audit("money.card_sale", acc.alley_id, by, now, account=acc.id,
                 amount_cents=price_cents, method=method, receipt=receipt,
                 period=[period_from.isoformat(), period_until.isoformat()], hours=hours)
    db.session.commit()
    return p


def lookup(alley: Alley, card: str, phone_last4: str) -> ResidentAccount | None:
    """'My account': the account holding `card` whose phone ends with `phone_last4`
    (None otherwise: the caller answers the same for both, giving nothing away)."""
    if not CARD_RE.match(card or "") or not re.fullmatch(r"[0-9]{4}", phone_last4 or ""):
        return None
    # Residents type what is printed on the card in any case: `c-00001` is `C-00001`.
    # The exact card first; else the one card equal to it ignoring case.
    acc = find_by_card(alley.id, card)
    if acc is None:
        found = db.session.scalars(select(ResidentAccount).join(AccountCard).where(
            AccountCard.alley_id == alley.id,
            func.lower(AccountCard.card) == card.lower()).limit(2)).all()
        acc = found[0] if len(found) == 1 else None
    if acc is None or len(acc.phone) < 4 or acc.phone[-4:] != phone_last4:
        return None
    return acc


def recent_sessions(acc: ResidentAccount, limit: int = 10) -> list[ChargingSession]:
    """The account's settled sessions, the latest begun first (for 'My account', which
    lists them by their start)."""
    return list(db.session.scalars(
        select(ChargingSession).where(ChargingSession.account_id == acc.id)
        .order_by(ChargingSession.started_at.desc().nulls_last(), ChargingSession.id.desc())
        .limit(limit)))


def charging_now(acc: ResidentAccount) -> list[ChargingSession]:
    """The account's charges under way: sessions on its cards at its alley's piles that
    have not ended (not billed yet, so not among `recent_sessions`)."""
    return list(db.session.scalars(
        select(ChargingSession).join(Pile, Pile.id == ChargingSession.pile_id)
        .join(AccountCard, (AccountCard.alley_id == Pile.alley_id)
              & (AccountCard.card == ChargingSession.card))
        .where(AccountCard.account_id == acc.id, ChargingSession.status == "active",
               ChargingSession.ended_at.is_(None))
        .order_by(ChargingSession.started_at.desc()).limit(10)))


def reverse(user: User | None, posting_id: int, reason: str, now: datetime):
    """Correct a top-up or refund recorded by mistake: a reversal posting with the
    opposite entries (the original stays). Once per posting; a reason is required.
    Audited. Commits."""
    from ...models import Posting

    p = db.session.get(Posting, posting_id)
    if p is None or p.kind not in ("topup", "refund"):
        raise NotFound("money.not_found")
    scope.check_alley(user, db.session.get(Alley, p.alley_id), "money.not_found")
    if p.method in set(PayProvider):
        # The provider holds that money: a reversal here would move the balance while
        # the money stays where it is. An online top-up is refunded to its channel.
        raise Invalid("money.online_not_reversible")
    if not reason.strip():
        raise Invalid("review.reason_required")
    by = user.id if user else None
    try:
        r = ledger.reverse(p, now=now, by=by, reason=reason)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("money.reversed") from None
    ledger.audit("money.reversal", p.alley_id, by, now, posting=p.id, reversal=r.id,
                 kind=p.kind, reason=reason)
    db.session.commit()
    return r
