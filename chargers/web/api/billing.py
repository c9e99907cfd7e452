"""Staff calls of billing: resident accounts and top-ups (openapi_billing.yaml)."""

from __future__ import annotations

from flask import jsonify, request

from ...models import ResidentAccount, utcnow
from ...services import ledger, residents
from ..access import token_required
from . import bp
from .common import body, iso, page_args
from .schemas import AccountCreate, Money


def account_json(a: ResidentAccount) -> dict:
    return {"id": a.id, "alley": a.alley.slug, "cards": [c.card for c in a.cards],
            "kind": a.kind, "household": a.household, "name": a.name, "phone": a.phone,
            "monthly_from": iso(a.monthly_from), "monthly_until": iso(a.monthly_until),
            "monthly_hours": a.monthly_hours, "balance_cents": ledger.balance(a),
            "created_at": iso(a.created_at)}


@bp.post("/accounts")
@token_required
def create_account(user):
    data = body(AccountCreate)
    acc = residents.create_account(user, residents.AccountInput(**data.model_dump()), utcnow())
    return jsonify(account_json(acc)), 201


@bp.get("/accounts")
@token_required
def list_accounts(user):
    limit, offset = page_args()
    rows = residents.list_accounts(user, request.args.get("alley") or None, limit=limit,
                                   offset=offset)
    return jsonify([account_json(a) for a in rows])


@bp.get("/accounts/<int:account_id>")
@token_required
def get_account(user, account_id: int):
    return jsonify(account_json(residents.get_account(user, account_id)))


@bp.post("/accounts/<int:account_id>/topups")
@token_required
def top_up(user, account_id: int):
    data = body(Money)
    key = request.headers.get("Idempotency-Key") or None
    p = residents.top_up(user, account_id, data.amount_cents, data.method, data.receipt,
                         utcnow(), key=f"{account_id}:{key}"[:80] if key else None)
    acc = residents.get_account(user, account_id)
    return jsonify({"id": p.id, "account": account_id, "amount_cents": data.amount_cents,
                    "method": data.method, "receipt": data.receipt,
                    "created_at": iso(p.created_at), "balance_cents": ledger.balance(acc)}), 201


@bp.post("/accounts/<int:account_id>/refunds")
@token_required
def refund(user, account_id: int):
    data = body(Money)
    p = residents.refund(user, account_id, data.amount_cents, data.method, data.receipt,
                         utcnow())
    acc = residents.get_account(user, account_id)
    return jsonify({"id": p.id, "account": account_id, "amount_cents": data.amount_cents,
                    "method": data.method, "receipt": data.receipt,
                    "created_at": iso(p.created_at), "balance_cents": ledger.balance(acc)}), 201
