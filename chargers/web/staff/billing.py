"""Staff pages of billing: tariffs (with a preview of a draft), resident accounts,
top-ups and refunds, the review list, adjustments, sessions with amounts, and CSV
exports of sessions and ledger (UTF-8 with BOM, so Excel keeps the Chinese text).

Pages translate forms into service calls; every rule and every audit entry is in
the services (residents, tariffs, settlement)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal

from flask import Response, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ...models import utcnow
from ...outcomes import render as outcome
from ...services.billing import accounts, exports, ledger, settlement, tariffs
from ...services.devices import alleys
from ...services.errors import DomainError
from ..forms_billing import (
    AccountForm,
    DecisionForm,
    MoneyForm,
    SessionFilterForm,
    TariffForm,
)
from . import bp

BOM = "\ufeff"


def _fail(exc: DomainError) -> None:
    flash(outcome(exc.code, exc.params), "error")


def _aware(alley, value: datetime | None) -> datetime | None:
    """A naive alley-time form value as aware UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=alleys.zone(alley)).astimezone(UTC)


@bp.get("/billing/<slug>")
def billing_home(slug: str):
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    return render_template("staff/billing/home.html", alley=alley,
                           balances=exports.ledger_balances(alley),
                           audit=exports.audit_trail(alley, 30))


def _millifen(yuan: str | None) -> int | None:
    """"0.5583" yuan per kWh → 55830 (0.001 fen), exactly."""
    if not yuan or not yuan.strip():
        return None
    return int(Decimal(yuan.strip()) * 100_000)


def _windows(text: str | None) -> list | None:
    """Lines 'HH:MM-HH:MM yuan name' → time-of-use windows (a line that does not read
    is passed on malformed, for the service to refuse with its code)."""
    out = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parts = line.split()
        try:
            start, end = parts[0].split("-")
            out.append({"from": start, "to": end, "millifen_per_kwh": _millifen(parts[1]),
                        "name": " ".join(parts[2:])[:32]})
        except (IndexError, ValueError, ArithmeticError):
            out.append({"from": "?", "to": "?", "millifen_per_kwh": -1})
    return out or None


def _tariff_input(alley, form: TariffForm) -> tariffs.TariffInput:
    tiers = []
    if form.service_scheme.data == "tier_hour":
        for line in (form.service_tiers.data or "").splitlines():
            if line.strip():
                w, _sep, fen = line.partition(":")
                try:
                    tiers.append({"max_w": int(w), "cents_per_hour": int(fen)})
                except ValueError:
                    tiers.append({"max_w": "?", "cents_per_hour": "?"})
    cap_kwh = form.service_cap_cents_per_kwh.data
    return tariffs.TariffInput(
        electricity_millifen_per_kwh=_millifen(form.electricity_yuan_exact.data),
        tou_windows=_windows(form.tou_windows.data),
        service_cap_cents_per_hour=form.service_cap_cents_per_hour.data,
        service_cap_millifen_per_kwh=None if cap_kwh is None else cap_kwh * 1000,
        occupancy_cents_per_hour=form.occupancy_cents_per_hour.data,
        occupancy_grace_minutes=form.occupancy_grace_minutes.data,
        electricity_cents_per_kwh=form.electricity_cents_per_kwh.data,
        service_scheme=form.service_scheme.data, service_tiers=tiers,
        service_cents=form.service_cents.data or 0, step_minutes=form.step_minutes.data,
        free_minutes=form.free_minutes.data or 0, minimum_cents=form.minimum_cents.data or 0,
        cap_cents=form.cap_cents.data, full_float_minutes=form.full_float_minutes.data,
        effective_from=_aware(alley, form.effective_from.data))


@bp.route("/billing/<slug>/tariffs", methods=["GET", "POST"])
def billing_tariffs(slug: str):
    """The alley's tariff versions; a draft is previewed on sample sessions first and
    takes effect at a chosen moment (never in the past)."""
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    form = TariffForm()
    preview = None
    if form.validate_on_submit():
        data = _tariff_input(alley, form)
        try:
            if form.preview_only.data or data.effective_from is None:
                preview = tariffs.preview(data, utcnow())
            else:
                tariffs.create(current_user, slug, data, utcnow())
                flash(_("The new tariff is saved and takes effect as set."), "ok")
                return redirect(url_for("staff.billing_tariffs", slug=slug))
        except DomainError as exc:
            _fail(exc)
    return render_template("staff/billing/tariffs.html", alley=alley, form=form,
                           versions=tariffs.versions(alley), now=utcnow(), preview=preview)


@bp.route("/billing/<slug>/accounts", methods=["GET", "POST"])
def billing_accounts(slug: str):
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    form = AccountForm()
    if form.validate_on_submit():
        try:
            acc = accounts.create_account(current_user, accounts.AccountInput(
                alley=slug, cards=form.cards.data.split(), kind=form.kind.data,
                household=form.household.data or "", name=form.name.data or "",
                phone=form.phone.data or "",
                monthly_from=_aware(alley, form.monthly_from.data),
                monthly_until=_aware(alley, form.monthly_until.data),
                monthly_hours=form.monthly_hours.data), utcnow())
        except DomainError as exc:
            _fail(exc)
        else:
            flash(_("Account added."), "ok")
            return redirect(url_for("staff.billing_account", account_id=acc.id))
    rows = accounts.list_accounts(current_user, slug, limit=500)
    return render_template("staff/billing/accounts.html", alley=alley, form=form,
                           rows=[(a, ledger.balance(a)) for a in rows])


@bp.get("/billing/accounts/<int:account_id>")
def billing_account(account_id: int):
    acc = accounts.get_account(current_user, account_id)
    g.tz = acc.alley.timezone
    return render_template("staff/billing/account.html", acc=acc, alley=acc.alley,
                           balance=ledger.balance(acc), topup=MoneyForm(prefix="t"),
                           refund=MoneyForm(prefix="r"),
                           postings=exports.account_postings(acc),
                           sessions=accounts.recent_sessions(acc, 50))


def _money_action(account_id: int, refund: bool):
    form = MoneyForm(prefix="r" if refund else "t")
    if not form.validate_on_submit():
        flash(_("Check the amount and method."), "error")
    else:
        try:
            if refund:
                accounts.refund(current_user, account_id, form.amount_cents.data,
                                 form.method.data, form.receipt.data or None, utcnow(),
                                 reason=form.reason.data or "")
            else:
                accounts.top_up(current_user, account_id, form.amount_cents.data,
                                 form.method.data, form.receipt.data or None, utcnow())
        except DomainError as exc:
            _fail(exc)
        else:
            flash(_("Refund recorded.") if refund else _("Top-up recorded."), "ok")
    return redirect(url_for("staff.billing_account", account_id=account_id))


@bp.post("/billing/accounts/<int:account_id>/topup")
def billing_topup(account_id: int):
    return _money_action(account_id, refund=False)


@bp.post("/billing/accounts/<int:account_id>/refund")
def billing_refund(account_id: int):
    return _money_action(account_id, refund=True)


@bp.post("/billing/accounts/<int:account_id>/writeoff")
def billing_writeoff(account_id: int):
    """Write off (part of) a resident's debt, with a reason."""
    raw = (request.form.get("amount_cents") or "").strip()
    try:
        accounts.write_off(current_user, account_id, int(raw) if raw.isdigit() else None,
                           request.form.get("note") or "", utcnow())
    except DomainError as exc:
        _fail(exc)
    else:
        flash(_("Debt written off."), "ok")
    return redirect(url_for("staff.billing_account", account_id=account_id))


def _decide(decide, back: str):
    """A staff decision on a review item or an adjustment: the form's reason is
    required; the service's refusal is flashed; back to the list."""
    form = DecisionForm()
    if form.validate_on_submit():
        try:
            decide(form)
        except DomainError as exc:
            _fail(exc)
        else:
            flash(_("Saved."), "ok")
    else:
        flash(_("Give a reason."), "error")
    return redirect(url_for(back))


@bp.get("/billing/review")
def billing_review():
    return render_template("staff/billing/review.html",
                           items=settlement.list_review(current_user),
                           form=DecisionForm())


@bp.post("/billing/review/<int:item_id>")
def billing_review_decide(item_id: int):
    return _decide(lambda form: settlement.resolve_review(
        current_user, item_id, account_id=form.account_id.data,
        waive=request.form.get("action") == "waive", note=form.note.data, now=utcnow()),
        "staff.billing_review")


@bp.get("/billing/adjustments")
def billing_adjustments():
    return render_template("staff/billing/adjustments.html",
                           items=settlement.list_adjustments(current_user),
                           form=DecisionForm())


@bp.post("/billing/adjustments/<int:adjustment_id>")
def billing_adjustment_decide(adjustment_id: int):
    return _decide(lambda form: settlement.decide_adjustment(
        current_user, adjustment_id, request.form.get("action") == "approve",
        form.note.data, utcnow()), "staff.billing_adjustments")


PAGE_SIZE = 100


def _session_filter() -> tuple[SessionFilterForm, exports.SessionFilter, int]:
    """The list's filter from the query string (a bad value is ignored, not an error)."""
    form = SessionFilterForm(request.args)
    form.validate()

    def ok(field):
        return None if field.errors else field.data

    f = exports.SessionFilter(ok(form.start), ok(form.end),
                                      (ok(form.card) or "").strip() or None)
    return form, f, ok(form.page) or 1


@bp.get("/billing/<slug>/sessions")
def billing_sessions(slug: str):
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    form, f, page = _session_filter()
    rows = exports.alley_sessions(alley, f, offset=(page - 1) * PAGE_SIZE,
                                          limit=PAGE_SIZE + 1)
    args = {k: v for k, v in request.args.items() if v and k != "page"}
    return render_template("staff/billing/sessions.html", alley=alley, form=form,
                           rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, page=page,
                           args=args, totals=exports.session_totals(alley, f))


def _csv(name: str, header: list[str], rows: Callable[[], Iterable[list]]) -> Response:
    """A CSV download in UTF-8 with a BOM (Excel then reads Chinese correctly), streamed.
    `rows` is called while the body is sent, inside an application context of its own
    (held only while the body is read, so an unread download holds nothing)."""
    app = current_app._get_current_object()

    def generate():
        buf = io.StringIO()
        w = csv.writer(buf)
        buf.write(BOM)
        w.writerow(header)
        with app.app_context():
            for row in rows():
                w.writerow(row)
                if buf.tell() > 64_000:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue()

    return Response(generate(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _local(tz, value: datetime | None) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else ""


@bp.get("/billing/<slug>/sessions.csv")
def billing_sessions_csv(slug: str):
    alley = alleys.get_alley(current_user, slug)
    tz = alleys.zone(alley)
    f = _session_filter()[1]
    header = [_("Session"), _("Pile"), _("Port"), _("Card"), _("Start"), _("End"),
              _("Energy (Wh)"), _("Electricity (fen)"), _("Service (fen)"), _("Total (fen)"),
              _("Tariff"), _("Tier"), _("Billing"), _("Receipt")]
    base = request.host_url.rstrip("/")

    def rows():
        return ([s.id, s.pile_id, s.port, s.card or "", _local(tz, s.started_at),
                 _local(tz, s.ended_at), s.energy_wh, s.energy_cents, s.service_cents,
                 s.amount_cents, s.tariff_id or "", s.tier or "", s.billing or "",
                 f"{base}/r/{s.receipt_token}" if s.receipt_token else ""]
                for s in exports.iter_alley_sessions(alleys.find_alley(slug), f))

    return _csv(f"sessions-{slug}.csv", header, rows)


@bp.get("/billing/<slug>/ledger.csv")
def billing_ledger_csv(slug: str):
    alley = alleys.get_alley(current_user, slug)
    alley_id, tz = alley.id, alleys.zone(alley)
    header = [_("Posting"), _("Key"), _("Kind"), _("Time"), _("Account"), _("Amount (fen)"),
              _("Method"), _("Receipt number"), _("Session"), _("Reverses"), _("By"),
              _("Reason")]

    def rows():
        return ([p.id, p.key, p.kind, _local(tz, p.created_at), a.code, e.amount_cents,
                 p.method or "", p.receipt or "", p.session_id or "", p.reverses_id or "",
                 p.created_by or "", p.reason]
                for p, e, a in exports.iter_ledger(alley_id))

    return _csv(f"ledger-{slug}.csv", header, rows)


@bp.post("/billing/postings/<int:posting_id>/reverse")
def billing_reverse(posting_id: int):
    """Correct a mistaken top-up or refund by a reversal posting."""
    form = DecisionForm()
    account_id = request.form.get("account", type=int)
    if form.validate_on_submit():
        try:
            accounts.reverse(current_user, posting_id, form.note.data, utcnow())
        except DomainError as exc:
            _fail(exc)
        else:
            flash(_("Reversed."), "ok")
    else:
        flash(_("Give a reason."), "error")
    if account_id:
        return redirect(url_for("staff.billing_account", account_id=account_id))
    return redirect(url_for("staff.dashboard"))
