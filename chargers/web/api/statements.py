"""Staff calls of the monthly close (openapi_statements.yaml): closed months with their
account and reconciliation, the grid bill, publication, and an account's statements."""

from __future__ import annotations

from flask import current_app, jsonify

from ... import settings
from ...models import utcnow
from ...services.billing import accounts, monthly_close, reconciliation
from ...services.devices import alleys
from ..access import token_required
from . import bp
from .common import body, iso
from .schemas import GridIn


def month_json(mc, daily: bool = False) -> dict:
    from ...services.billing import income

    rec = reconciliation.reconcile(mc, settings.close(current_app.config))
    split = income.figures(mc.alley_id, mc.period_start, mc.period_end)
    out = {"month": mc.month, "period_start": iso(mc.period_start),
           "period_end": iso(mc.period_end), "closed_at": iso(mc.closed_at),
           "published_at": iso(mc.published_at), "sessions": mc.sessions,
           "energy_wh": mc.energy_wh, "electricity_cents": mc.electricity_cents,
           "service_cents": mc.service_cents, "covered_cents": mc.covered_cents,
           "covered_monthly_cents": split.covered_monthly_cents,
           "covered_exempt_cents": split.covered_exempt_cents,
           "waived_cents": mc.waived_cents, "topups_cents": mc.topups_cents,
           "refunds_cents": mc.refunds_cents, "adjustments_cents": mc.adjustments_cents,
           "postings": mc.postings, "occupancy_cents": mc.occupancy_cents,
           "card_sales_cents": mc.card_sales_cents, "debts_cents": mc.debts_cents,
           "writeoffs_cents": mc.writeoffs_cents, "chain_head": mc.chain_head,
           "chain_postings": mc.chain_postings,
           "reconciliation": {"metered_wh": rec.metered_wh, "grid_wh": rec.grid_wh,
                              "grid_cents": rec.grid_cents, "loss_wh": rec.loss_wh,
                              "loss_permille": rec.loss_permille, "flagged": rec.flagged,
                              "difference_cents": rec.difference_cents}}
    if daily:
        out["daily"] = mc.daily
    return out


def statement_json(st) -> dict:
    return {"id": st.id, "account": st.resident_id, "month": st.month,
            "opening_cents": st.opening_cents, "topups_cents": st.topups_cents,
            "charges_cents": st.charges_cents, "refunds_cents": st.refunds_cents,
            "adjustments_cents": st.adjustments_cents, "writeoffs_cents": st.writeoffs_cents,
            "topups_by_channel": {"cash": st.topups_cash_cents, "wechat": st.topups_wechat_cents,
                                  "alipay": st.topups_alipay_cents},
            "refunds_by_channel": {"cash": st.refunds_cash_cents,
                                   "wechat": st.refunds_wechat_cents,
                                   "alipay": st.refunds_alipay_cents},
            "closing_cents": st.closing_cents, "owed_cents": max(0, -st.closing_cents),
            "sessions": st.sessions}


@bp.get("/alleys/<slug>/months")
@token_required
def list_months(user, slug: str):
    alley = alleys.get_alley(user, slug)
    return jsonify([month_json(mc) for mc in monthly_close.closes(alley.id)])


@bp.get("/alleys/<slug>/months/<month>")
@token_required
def get_month(user, slug: str, month: str):
    return jsonify(month_json(monthly_close.get_close(user, slug, month), daily=True))


@bp.put("/alleys/<slug>/months/<month>/grid")
@token_required
def put_grid(user, slug: str, month: str):
    data = body(GridIn)
    row = reconciliation.set_grid_bill(user, slug, reconciliation.GridInput(
        month=month, **data.model_dump()), utcnow())
    return jsonify({"month": row.month, "grid_wh": row.grid_wh,
                    "reading_start_wh": row.reading_start_wh,
                    "reading_end_wh": row.reading_end_wh, "amount_cents": row.amount_cents,
                    "note": row.note, "entered_at": iso(row.entered_at)})


@bp.post("/alleys/<slug>/months/<month>/publish")
@token_required
def publish_month(user, slug: str, month: str):
    return jsonify(month_json(monthly_close.publish(user, slug, month, utcnow())))


@bp.get("/accounts/<int:account_id>/statements")
@token_required
def account_statements(user, account_id: int):
    acc = accounts.get_account(user, account_id)
    return jsonify([statement_json(st) for st in monthly_close.statements_of(acc.id)])
