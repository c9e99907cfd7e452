"""Our top-up orders: which channel a browser gets, an order placed with its provider,
its state as the resident's page polls it, the one place where a confirmed payment
is posted to the ledger, and the query-then-close of an order never confirmed.

A payment is posted once: the posting's key is `paytopup:<order_no>` (unique in the
ledger) and the order's row is locked while its state moves."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...constants import AccountKind, OrderState, PayChannel, PayProvider
from ...extensions import db
from ...models import Alley, PaymentOrder, ResidentAccount, ResidentChannels
from ...settings import PaymentRule
from ..billing import ledger
from ..errors import Invalid, NotFound
from . import limits, providers

log = logging.getLogger("chargers.payments")
PRESETS_CENTS = (1000, 2000, 5000, 10000)
ORDER_NO_RE = re.compile(r"^T[0-9]{14}[0-9a-f]{16}$")


def ledger_kind(provider: str) -> str:
    """The alley's ledger account holding the money at this provider."""
    return "pay_alipay" if provider == PayProvider.ALIPAY else "pay_wechat"


def is_wechat(user_agent: str) -> bool:
    return "MicroMessenger" in (user_agent or "")


def is_phone(user_agent: str) -> bool:
    return bool(re.search(r"Mobile|Android|iPhone|iPad|HarmonyOS", user_agent or ""))


def channels_for(user_agent: str, rules: PaymentRule) -> list[str]:
    """The channels to offer this browser, in order: inside WeChat, JSAPI; another
    phone browser, Alipay wap pay and WeChat H5; a desktop, the Native QR code. Only
    configured providers."""
    if is_wechat(user_agent):
        wanted = [PayChannel.WECHAT_JSAPI]
    elif is_phone(user_agent):
        wanted = [PayChannel.ALIPAY_WAP, PayChannel.WECHAT_H5]
    else:
        wanted = [PayChannel.WECHAT_NATIVE]
    on = {PayProvider.WECHAT: rules.wechat.enabled, PayProvider.ALIPAY: rules.alipay.enabled}
    return [c for c in wanted if on[providers.provider_of(c)]]


def can_top_up(account: ResidentAccount, rules: PaymentRule) -> bool:
    """Whether a resident may top up this account online: a channel is configured and
    the account is active and pays for its charges (prepaid or monthly, not exempt)."""
    return rules.enabled and account.active and account.kind != AccountKind.EXEMPT


def new_order_no(now: datetime) -> str:
    """T + UTC yyyymmddHHMMSS + 16 hex: unguessable, within WeChat's 32 characters."""
    return f"T{now.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(8)}"


@dataclass
class Placed:
    """A placed order and the page's next step (see providers.WeChat.create; Alipay:
    {"pay_url"})."""

    order: PaymentOrder
    next: dict


def place(account_id: int, amount_cents: int, channel: str, rules: PaymentRule,
          now: datetime, *, openid: str = "", client_ip: str = "",
          return_url: str = "") -> Placed:
    """A new order for a prepaid or monthly account, sent to its provider (`return_url`:
    where Alipay sends the browser back, `{order_no}` filled in). The order is
    committed first (state created), so a provider that answers late still finds it;
    a provider that refuses closes it at once. Commits."""
    acc = db.session.get(ResidentAccount, account_id)
    if acc is None or not acc.active:
        raise NotFound("account.resident_not_found")
    alley = db.session.get(Alley, acc.alley_id)
    lim = limits.of(alley, rules)
    if not lim.allows(amount_cents):
        log.warning("payment order refused: %r fen outside the limits of alley %s (%d to %d)",
                    amount_cents, alley.slug, lim.min_cents, lim.max_cents)
        limits.check(amount_cents, lim)
    if channel not in tuple(PayChannel):
        raise Invalid("pay.channel")
    if channel == PayChannel.WECHAT_JSAPI and not openid:
        raise Invalid("pay.openid")
    api = providers.for_channel(rules, channel)
    order = PaymentOrder(order_no=new_order_no(now), alley_id=acc.alley_id, account_id=acc.id,
                         channel=channel, provider=providers.provider_of(channel),
                         amount_cents=amount_cents, state=OrderState.CREATED, created_at=now)
    db.session.add(order)
    db.session.commit()
    subject = f"{alley.name} 充电充值"[:120]
    expire_at = now + timedelta(seconds=rules.order_expire_s)
    try:
        if channel == PayChannel.ALIPAY_WAP:
            back = return_url.replace("{order_no}", order.order_no)
            nxt = {"pay_url": api.pay_url(order.order_no, amount_cents, subject, back, expire_at)}
        else:
            nxt = api.create(channel, order.order_no, amount_cents, subject, expire_at,
                             openid=openid, client_ip=client_ip)
    except providers.ProviderError as exc:
        log.warning("payment order %s not placed: %s", order.order_no, exc)
        order.state, order.closed_at = OrderState.CLOSED, now
        db.session.commit()
        raise Invalid("pay.provider_down") from None
    log.info("payment order %s placed: %s %d fen, account %d", order.order_no, channel,
             amount_cents, acc.id)
    return Placed(order, nxt)


def get(order_no: str) -> PaymentOrder:
    o = db.session.scalar(select(PaymentOrder).where(PaymentOrder.order_no == order_no)) \
        if ORDER_NO_RE.match(order_no or "") else None
    if o is None:
        raise NotFound("pay.order_not_found")
    return o


def _locked(order_no: str) -> PaymentOrder | None:
    return db.session.scalar(select(PaymentOrder).where(PaymentOrder.order_no == order_no)
                             .with_for_update())


def mark_paid(order_no: str, txn: str, amount_cents: int, paid_at: datetime | None,
              now: datetime, by: str) -> str:
    """The provider confirmed the payment (a verified notification, or a signed query):
    post the top-up once. Returns a NoticeOutcome code: `posted`, `replayed` (already
    paid: nothing changes), `unknown_order` or `amount_mismatch`. Commits."""
    order = _locked(order_no)
    if order is None:
        db.session.rollback()
        return "unknown_order"
    if amount_cents != order.amount_cents:
        db.session.rollback()
        return "amount_mismatch"
    key = f"paytopup:{order.order_no}"
    if order.posting_id is not None or ledger.exists(key):
        db.session.rollback()
        return "replayed"
    acc = db.session.get(ResidentAccount, order.account_id)
    resident = ledger.resident_account(acc)
    held = ledger.account(order.alley_id, ledger_kind(order.provider))
    try:
        ledger.lock(resident, held)
        p = ledger.post(key, "topup", order.alley_id, [(resident, amount_cents),
                                                       (held, -amount_cents)],
                        now=now, by=None, method=order.provider, receipt=order.order_no)
        ledger.audit("money.topup", order.alley_id, None, now, account=acc.id,
                     amount_cents=amount_cents, method=order.provider, receipt=order.order_no,
                     channel=order.channel, txn=txn)
        # An order closed here but paid there (a late payment) is still money received.
        order.state, order.posting_id, order.provider_txn = OrderState.PAID, p.id, txn
        order.paid_at, order.paid_by = paid_at or now, by
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return "replayed"
    log.info("payment order %s paid (%s): %d fen posted to account %d", order_no, by,
             amount_cents, acc.id)
    return "posted"


def public_state(order: PaymentOrder) -> str:
    """What the resident's page is told: paid (confirmed and posted), closed, or
    pending. A refunded order was paid."""
    if order.posting_id is not None:
        return "paid"
    return "closed" if order.state == OrderState.CLOSED else "pending"


def close_unconfirmed(rules: PaymentRule, now: datetime, limit: int = 200) -> dict:
    """Orders still `created` after PAYMENTS_ORDER_EXPIRE_S: asked of their provider;
    paid there → posted (as its notification would have); else closed there, then
    here. An unreachable provider leaves the order for the next run. Commits."""
    cutoff = now - timedelta(seconds=rules.order_expire_s)
    due = list(db.session.scalars(
        select(PaymentOrder.order_no).where(PaymentOrder.state == OrderState.CREATED,
                                            PaymentOrder.created_at <= cutoff)
        .order_by(PaymentOrder.id).limit(limit)))
    counts = {"paid": 0, "closed": 0, "failed": 0}
    for order_no in due:
        order = get(order_no)
        try:
            api = providers.for_provider(rules, order.provider)
            st = api.query(order_no)
            if st.state == "paid" and st.amount_cents is not None:
                outcome = mark_paid(order_no, st.txn, st.amount_cents, st.paid_at, now, "query")
                counts["paid" if outcome in ("posted", "replayed") else "failed"] += 1
                if outcome not in ("posted", "replayed"):
                    log.error("payment order %s paid at the provider but not posted: %s",
                              order_no, outcome)
                continue
            if st.state != "closed" and st.state != "missing":
                api.close(order_no)
            elif st.state == "missing" and order.provider == PayProvider.WECHAT:
                api.close(order_no)
        except providers.ProviderError as exc:
            db.session.rollback()
            log.warning("payment order %s: query/close failed, tried again later: %s",
                        order_no, exc)
            counts["failed"] += 1
            continue
        order = _locked(order_no)
        if order is not None and order.state == OrderState.CREATED:
            order.state, order.closed_at = OrderState.CLOSED, now
            log.info("payment order %s closed: never confirmed", order_no)
            counts["closed"] += 1
        db.session.commit()
    return counts


def remember_openid(account_id: int, openid: str) -> None:
    """The resident's openid under the official account (from OAuth), kept on the
    account's channels for JSAPI payments. Commits."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{6,64}", openid or ""):
        raise Invalid("pay.openid")
    row = db.session.get(ResidentChannels, account_id)
    if row is None:
        row = ResidentChannels(resident_id=account_id)
        db.session.add(row)
    row.wechat_openid = openid
    db.session.commit()


def openid_of(account_id: int) -> str:
    row = db.session.get(ResidentChannels, account_id)
    return row.wechat_openid if row is not None else ""


def recent(alley_ids: list[int] | None, limit: int = 200) -> list[PaymentOrder]:
    """Orders, newest first (all alleys when `alley_ids` is None)."""
    stmt = select(PaymentOrder).order_by(PaymentOrder.id.desc()).limit(limit)
    if alley_ids is not None:
        stmt = stmt.where(PaymentOrder.alley_id.in_(alley_ids))
    return list(db.session.scalars(stmt))
