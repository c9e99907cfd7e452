"""Online payments as staff see them: the orders (and a refund to the original channel),
the refunds under way, the providers' notifications that were rejected, and the
reconciliation review page (the providers' bills and the findings to resolve)."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from ... import settings
from ...extensions import db
from ...models import Alley, utcnow
from ...outcomes import render as outcome
from ...services import scope
from ...services.errors import DomainError
from ...services.payments import notifications, orders, reconcile, refunds
from ..money import YuanField
from . import bp


class RefundForm(FlaskForm):
    amount = YuanField(_l("Amount (yuan)"), validators=[InputRequired()], min_fen=1,
                       max_fen=10_000_000)
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=200)])


class ResolveForm(FlaskForm):
    note = StringField(_l("What was done"), validators=[DataRequired(), Length(max=2000)])


def _alley_ids() -> list[int] | None:
    ids = scope.visible_alley_ids(current_user)
    return None if ids is None else sorted(ids)


def _alley_names() -> dict[int, str]:
    return {a.id: a.name for a in db.session.query(Alley).all()}


@bp.get("/payments")
def payments():
    """Orders, refunds and rejected notifications, newest first."""
    ids = _alley_ids()
    return render_template("staff/payments/list.html", orders=orders.recent(ids),
                           refunds=refunds.recent(ids), notices=notifications.recent()
                           if ids is None else [], names=_alley_names(),
                           configured=settings.payments(current_app.config).enabled)


@bp.route("/payments/<order_no>/refund", methods=["GET", "POST"])
def payment_refund(order_no: str):
    """A refund of a paid online order to the channel it came from."""
    o = orders.get(order_no)
    scope.check_alley(current_user, db.session.get(Alley, o.alley_id), "pay.order_not_found")
    form = RefundForm()
    if form.validate_on_submit():
        try:
            r = refunds.ask(current_user, order_no, form.amount.data, form.reason.data or "",
                            settings.payments(current_app.config), utcnow())
        except DomainError as exc:
            flash(outcome(exc.code, exc.params), "error")
        else:
            flash(_("Refund %(no)s asked of the payment service.", no=r.refund_no), "ok")
            return redirect(url_for("staff.payments"))
    return render_template("staff/payments/refund.html", order=o, form=form,
                           refunds=refunds.of_order(o.id), names=_alley_names())


@bp.get("/payments/reconcile")
def payments_reconcile():
    """The providers' daily bills and the findings on the review list."""
    return render_template("staff/payments/reconcile.html",
                           bills=reconcile.bills() if _alley_ids() is None else [],
                           findings=reconcile.open_findings(current_user), names=_alley_names(),
                           form=ResolveForm())


@bp.post("/payments/reconcile/<int:mismatch_id>/resolve")
def payments_resolve(mismatch_id: int):
    form = ResolveForm()
    if form.validate_on_submit():
        try:
            reconcile.resolve(current_user, mismatch_id, form.note.data, utcnow())
        except DomainError as exc:
            flash(outcome(exc.code, exc.params), "error")
        else:
            flash(_("Finding resolved."), "ok")
    else:
        flash(outcome("review.reason_required", {}), "error")
    return redirect(url_for("staff.payments_reconcile", _anchor=f"m{mismatch_id}"))
