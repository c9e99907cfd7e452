"""Staff calls of billing (openapi_billing.yaml): resident accounts, top-ups and refunds,
tariff versions and their preview, the review list and adjustments."""

from __future__ import annotations

import time

from flask import jsonify, request

from ...extensions import db
from ...models import ResidentAccount, utcnow
from ...services import idempotency
from ...services.billing import accounts, ledger, settlement, tariffs
from ...services.devices import alleys
from ...services.errors import Conflict
from ..access import token_required
from . import bp
from .common import body, iso, page_args
from .schemas import AccountCreate, CardSaleIn, Decision, Money, RefundIn, TariffCreate, WriteOff


def account_json(a: ResidentAccount) -> dict:
    return {"id": a.id, "alley": a.alley.slug, "cards": [c.card for c in a.cards],
            "kind": a.kind, "household": a.household, "name": a.name, "phone": a.phone,
            "monthly_from": iso(a.monthly_from), "monthly_until": iso(a.monthly_until),
            "monthly_hours": a.monthly_hours, "balance_cents": ledger.balance(a),
            "debt_cents": ledger.debt(a),
            "created_at": iso(a.created_at)}


@bp.post("/accounts")
@token_required
def create_account(user):
    data = body(AccountCreate)
    acc = accounts.create_account(user, accounts.AccountInput(**data.model_dump()), utcnow())
    return jsonify(account_json(acc)), 201


@bp.get("/accounts")
@token_required
def list_accounts(user):
    limit, offset = page_args()
    rows = accounts.list_accounts(user, request.args.get("alley") or None, limit=limit,
                                   offset=offset)
    return jsonify([account_json(a) for a in rows])


@bp.get("/accounts/<int:account_id>")
@token_required
def get_account(user, account_id: int):
    return jsonify(account_json(accounts.get_account(user, account_id)))


def _replay(rk: idempotency.RequestKey):
    """The answer the first request with this key got (nothing is posted again). A
    repeat racing the first may arrive between its commit and its recorded answer:
    it waits for the answer a moment."""
    row = idempotency.recall(rk)
    for _ in range(40):
        if row is None or row.status is not None:
            break
        time.sleep(0.05)
        db.session.rollback()  # a fresh snapshot
        row = idempotency.recall(rk)
    if row is None or row.request != rk.request[:200]:
        raise Conflict("idempotency.other_request" if row is not None
                       else "idempotency.pending")
    if row.status is None:
        raise Conflict("idempotency.pending")
    return jsonify(row.body), row.status, {"Idempotent-Replayed": "true"}


def _once(user, run):
    """Run a money call at most once per `Idempotency-Key` header (per user): a repeat
    of the key answers what the first request got and posts nothing."""
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if not key:
        body_, status = run(None)
        return jsonify(body_), status
    rk = idempotency.RequestKey(scope=f"user:{user.id}", key=key,
                                request=f"{request.method} {request.path}")
    if idempotency.recall(rk) is not None:
        return _replay(rk)
    try:
        body_, status = run(rk)
    except Conflict as exc:
        if exc.code != "idempotency.replay":
            raise
        return _replay(rk)
    idempotency.answer(rk, status, body_)
    return jsonify(body_), status


def _money_json(p, account_id: int, data, user) -> dict:
    acc = accounts.get_account(user, account_id)
    return {"id": p.id, "account": account_id, "amount_cents": data.amount_cents,
            "method": data.method, "receipt": data.receipt, "reason": p.reason or "",
            "created_at": iso(p.created_at), "balance_cents": ledger.balance(acc)}


@bp.post("/accounts/<int:account_id>/topups")
@token_required
def top_up(user, account_id: int):
    data = body(Money)

    def run(rk):
        p = accounts.top_up(user, account_id, data.amount_cents, data.method, data.receipt,
                             utcnow(), request_key=rk)
        return _money_json(p, account_id, data, user), 201

    return _once(user, run)


@bp.post("/accounts/<int:account_id>/refunds")
@token_required
def refund(user, account_id: int):
    data = body(RefundIn)

    def run(rk):
        p = accounts.refund(user, account_id, data.amount_cents, data.method, data.receipt,
                             utcnow(), reason=(data.reason or "").strip(), request_key=rk)
        return _money_json(p, account_id, data, user), 201

    return _once(user, run)


@bp.post("/accounts/<int:account_id>/monthly-cards")
@token_required
def sell_monthly_card(user, account_id: int):
    """Sell a monthly card: the price is a posting; the account becomes a monthly card."""
    data = body(CardSaleIn)
    p = accounts.sell_monthly_card(user, account_id, data.price_cents, data.period_from,
                                   data.period_until, data.hours, data.method, data.receipt,
                                   utcnow())
    acc = accounts.get_account(user, account_id)
    return jsonify({"id": p.id, "account": account_json(acc), "price_cents": data.price_cents,
                    "created_at": iso(p.created_at)}), 201


@bp.post("/accounts/<int:account_id>/writeoffs")
@token_required
def write_off(user, account_id: int):
    """Write off a resident's debt (all of it, or `amount_cents`), with a `reason`."""
    data = body(WriteOff)
    p = accounts.write_off(user, account_id, data.amount_cents, data.reason, utcnow())
    acc = accounts.get_account(user, account_id)
    return jsonify({"id": p.id, "account": account_id,
                    "amount_cents": sum(e.amount_cents for e in p.entries
                                        if e.amount_cents > 0),
                    "reason": p.reason, "created_at": iso(p.created_at),
                    "balance_cents": ledger.balance(acc)}), 201


def tariff_json(t) -> dict:
    return {"id": t.id, "effective_from": iso(t.effective_from),
            "electricity_cents_per_kwh": t.electricity_cents_per_kwh,
            "service_scheme": t.service_scheme, "service_tiers": t.service_tiers,
            "service_cents": t.service_cents, "step_minutes": t.step_minutes,
            "free_minutes": t.free_minutes, "minimum_cents": t.minimum_cents,
            "cap_cents": t.cap_cents, "full_float_minutes": t.full_float_minutes,
            "electricity_millifen_per_kwh": t.electricity_millifen_per_kwh,
            "tou_windows": t.tou_windows,
            "service_cap_millifen_per_kwh": t.service_cap_millifen_per_kwh,
            "service_cap_cents_per_hour": t.service_cap_cents_per_hour,
            "occupancy_cents_per_hour": t.occupancy_cents_per_hour,
            "occupancy_grace_minutes": t.occupancy_grace_minutes}


def _tariff_input(data: TariffCreate) -> tariffs.TariffInput:
    d = data.model_dump(by_alias=True)
    return tariffs.TariffInput(**d)


@bp.get("/alleys/<slug>/tariffs")
@token_required
def list_tariffs(user, slug: str):
    return jsonify([tariff_json(t) for t in tariffs.versions(alleys.get_alley(user, slug))])


@bp.post("/alleys/<slug>/tariffs")
@token_required
def create_tariff(user, slug: str):
    data = body(TariffCreate)
    alleys.get_alley(user, slug)
    return jsonify(tariff_json(tariffs.create(user, slug, _tariff_input(data), utcnow()))), 201


@bp.post("/alleys/<slug>/tariffs/preview")
@token_required
def preview_tariff(user, slug: str):
    data = body(TariffCreate)
    alleys.get_alley(user, slug)
    out = tariffs.preview(_tariff_input(data), utcnow())
    return jsonify([{"sample": label, "energy_cents": p.energy_cents,
                     "service_cents": p.service_cents, "amount_cents": p.amount_cents,
                     "rules": list(p.rules)} for label, p in out])


def review_json(i) -> dict:
    return {"id": i.id, "session": i.session_id, "reason": i.reason, "status": i.status,
            "account": i.account_id, "note": i.note, "created_at": iso(i.created_at),
            "resolved_at": iso(i.resolved_at)}


def adjustment_json(a) -> dict:
    return {"id": a.id, "session": a.session_id, "cause": a.cause,
            "delta_cents": a.delta_cents, "status": a.status, "note": a.note,
            "created_at": iso(a.created_at), "decided_at": iso(a.decided_at)}


@bp.get("/review")
@token_required
def list_review(user):
    return jsonify([review_json(i) for i in settlement.list_review(
        user, request.args.get("status", "open"))])


@bp.post("/review/<int:item_id>")
@token_required
def decide_review(user, item_id: int):
    data = body(Decision)
    item = settlement.resolve_review(user, item_id, account_id=data.account,
                                     waive=bool(data.waive), note=data.note, now=utcnow())
    return jsonify(review_json(item))


@bp.get("/adjustments")
@token_required
def list_adjustments(user):
    return jsonify([adjustment_json(a) for a in settlement.list_adjustments(
        user, request.args.get("status", "pending"))])


@bp.post("/adjustments/<int:adjustment_id>")
@token_required
def decide_adjustment(user, adjustment_id: int):
    data = body(Decision)
    adj = settlement.decide_adjustment(user, adjustment_id, bool(data.approve), data.note,
                                       utcnow())
    return jsonify(adjustment_json(adj))


@bp.post("/postings/<int:posting_id>/reverse")
@token_required
def reverse_posting(user, posting_id: int):
    data = body(Decision)
    r = accounts.reverse(user, posting_id, data.note, utcnow())
    return jsonify({"id": r.id, "reverses": posting_id, "kind": r.kind,
                    "created_at": iso(r.created_at)}), 201
