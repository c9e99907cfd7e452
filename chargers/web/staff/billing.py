"""Staff pages of billing: tariffs (with a preview of a draft), resident accounts,
top-ups and refunds, the review list, adjustments, sessions with amounts, and CSV
exports of sessions and ledger (UTF-8 with BOM, so Excel keeps the Chinese text).

Pages translate forms into service calls; every rule and every audit entry is in
the services (residents, tariffs, settlement)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal

from flask import Response, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ... import settings
from ...models import utcnow
from ...money import MoneyError, parse_yuan, yuan_decimal
from ...outcomes import render as outcome
from ...services import idempotency
from ...services.billing import accounts, exports, income, ledger, settlement, tariffs
from ...services.devices import alleys
from ...services.errors import DomainError
from ...services.payments import limits
from .. import csvout
from ..forms_billing import (
    AccountForm,
    DecisionForm,
    MoneyForm,
    SessionFilterForm,
    TariffForm,
    TopupLimitsForm,
)
from ..money import covered_code, yuan
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
    now = utcnow()
    return render_template("staff/billing/home.html", alley=alley,
                           figures=[(_("Today"), income.today(alley, now)),
                                    (_("This month"), income.this_month(alley, now))],
                           balances=exports.ledger_balances(alley),
                           all_time=income.figures(alley),
                           audit=exports.audit_trail(alley, 30), **_limits_page(alley))


def _limits_page(alley, form: TopupLimitsForm | None = None) -> dict:
    rules = settings.payments(current_app.config)
    lim = limits.of(alley, rules)
    if form is None:
        form = TopupLimitsForm(prefix="lim", data={"topup_min": alley.topup_min_cents,
                                                   "topup_max": alley.topup_max_cents})
    return {"limits_form": form, "limits": lim, "pay_rules": rules}


@bp.post("/billing/<slug>/topup-limits")
def billing_topup_limits(slug: str):
    """The alley's online top-up limits (yuan; empty: the deployment's default)."""
    alleys.get_alley(current_user, slug)  # another alley's staff: 404 before the form
    form = TopupLimitsForm(prefix="lim")
    if form.validate_on_submit():
        try:
            lim = limits.set_limits(current_user, slug, form.topup_min.data, form.topup_max.data,
                                    settings.payments(current_app.config), utcnow())
            flash(_("Online top-ups of this alley: %(min)s to %(max)s.",
                    min=yuan(lim.min_cents), max=yuan(lim.max_cents)), "ok")
        except DomainError as exc:
            _fail(exc)
    else:
        flash(_("Type the limits in yuan, e.g. 10 or 500."), "error")
    return redirect(url_for("staff.billing_home", slug=slug) + "#topup-limits")


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
                w, _sep, price = line.replace("：", ":").partition(":")
                try:
                    tiers.append({"max_w": int(w), "cents_per_hour": parse_yuan(price)})
                except (ValueError, MoneyError):
                    tiers.append({"max_w": "?", "cents_per_hour": "?"})
    cap_kwh = form.service_cap_cents_per_kwh.data
    return tariffs.TariffInput(
        electricity_millifen_per_kwh=_millifen(form.electricity_yuan_exact.data),
        tou_windows=_windows(form.tou_windows.data),
        service_cap_cents_per_hour=form.service_cap_cents_per_hour.data,
        service_cap_millifen_per_kwh=None if cap_kwh is None else cap_kwh * 1000,
        occupancy_cents_per_hour=form.occupancy_cents_per_hour.data,
        occupancy_grace_minutes=form.occupancy_grace_minutes.data,
        electricity_cents_per_kwh=form.electricity_per_kwh.data,
        service_scheme=form.service_scheme.data, service_tiers=tiers,
        service_cents=form.service_price.data or 0, step_minutes=form.step_minutes.data,
        free_minutes=form.free_minutes.data or 0, minimum_cents=form.minimum.data or 0,
        cap_cents=form.cap.data, full_float_minutes=form.full_float_minutes.data,
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
                flash(_("The new tariff is saved: electricity %(price)s per kWh, from %(when)s.",
                        price=yuan(data.electricity_cents_per_kwh),
                        when=data.effective_from.astimezone(alleys.zone(alley))
                        .strftime("%Y-%m-%d %H:%M")), "ok")
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
    back = redirect(url_for("staff.billing_account", account_id=account_id))
    if not form.validate_on_submit():
        errors = form.amount.errors or form.method.errors
        flash(_("Check the amount and method.") + (f" {errors[0]}" if errors else ""), "error")
        return back
    key = (form.request_key.data or "").strip()
    rk = idempotency.RequestKey(scope=f"user:{current_user.id}", key=key,
                                request=f"{request.method} {request.path}") if key else None
    if rk is not None and idempotency.recall(rk) is not None:
        return _money_replayed(rk, refund, back)
    try:
        if refund:
            accounts.refund(current_user, account_id, form.amount.data,
                            form.method.data, form.receipt.data or None, utcnow(),
                            reason=form.reason.data or "", request_key=rk)
        else:
            accounts.top_up(current_user, account_id, form.amount.data,
                            form.method.data, form.receipt.data or None, utcnow(),
                            request_key=rk)
    except DomainError as exc:
        if exc.code == "idempotency.replay":
            return _money_replayed(rk, refund, back)
        _fail(exc)
    else:
        if rk is not None:
            idempotency.answer(rk, 302, {"recorded": True})
        acc = accounts.get_account(current_user, account_id)
        who = acc.household or acc.name or f"#{acc.id}"
        if refund:
            flash(_("Refunded %(amount)s to %(who)s.", amount=yuan(form.amount.data),
                    who=who), "ok")
        else:
            flash(_("Topped up %(amount)s for %(who)s.", amount=yuan(form.amount.data),
                    who=who), "ok")
    return back


def _money_replayed(rk, refund: bool, back):
    """The same form sent again (double click, resubmitted page): nothing is posted;
    the page says what the first one did."""
    row = idempotency.recall(rk)
    if row is not None and row.status is not None:
        flash(_("Refund recorded.") if refund else _("Top-up recorded."), "ok")
    else:
        flash(outcome("idempotency.pending", {}), "error")
    return back


@bp.post("/billing/accounts/<int:account_id>/topup")
def billing_topup(account_id: int):
    return _money_action(account_id, refund=False)


@bp.post("/billing/accounts/<int:account_id>/refund")
def billing_refund(account_id: int):
    return _money_action(account_id, refund=True)


@bp.post("/billing/accounts/<int:account_id>/writeoff")
def billing_writeoff(account_id: int):
    """Write off (part of) a resident's debt, with a reason."""
    # Typed in yuan. An empty or unreadable amount is the service's counted refusal (0),
    # never None, which would write off the whole debt.
    try:
        fen = parse_yuan(request.form.get("amount") or "") or 0
    except MoneyError:
        fen = 0
    try:
        accounts.write_off(current_user, account_id, fen, request.form.get("note") or "",
                           utcnow())
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
    kinds = accounts.account_kinds({s.account_id for s in rows if s.account_id})
    return render_template("staff/billing/sessions.html", alley=alley, form=form,
                           rows=rows[:PAGE_SIZE], account_kinds=kinds, more=len(rows) > PAGE_SIZE,
                           page=page, args=args, totals=exports.session_totals(alley, f))


def _csv(name: str, header: list[str], rows: Callable[[], Iterable[list]]) -> Response:
    """A CSV download through the web's one CSV writer (UTF-8 with a BOM, formula cells
    neutralised: web/csvout.py)."""
    return csvout.response(name, header, rows)


def _local(tz, value: datetime | None) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else ""


@bp.get("/billing/<slug>/sessions.csv")
def billing_sessions_csv(slug: str):
    alley = alleys.get_alley(current_user, slug)
    tz = alleys.zone(alley)
    f = _session_filter()[1]
    header = [_("Session"), _("Pile"), _("Port"), _("Card"), _("Start"), _("End"),
              _("Energy (Wh)"), _("Electricity (yuan)"), _("Service (yuan)"), _("Total (yuan)"),
              _("Tariff"), _("Tier"), _("Billing (code)"), _("Billing"), _("Receipt")]
    base = request.host_url.rstrip("/")
    words = export_words()
    kinds = exports.account_kinds_of(alley)

    def rows():
        return ([s.id, s.pile_id, s.port, s.card or "", _local(tz, s.started_at),
                 _local(tz, s.ended_at), s.energy_wh, yuan_decimal(s.energy_cents),
                 yuan_decimal(s.service_cents), yuan_decimal(s.amount_cents),
                 s.tariff_id or "", s.tier or "", s.billing or "",
                 words.get(covered_code(s.billing, kinds.get(s.account_id)), ""),
                 f"{base}/r/{s.receipt_token}" if s.receipt_token else ""]
                for s in exports.iter_alley_sessions(alleys.find_alley(slug), f))

    return _csv(f"sessions-{slug}.csv", header, rows)


@bp.get("/billing/<slug>/ledger.csv")
def billing_ledger_csv(slug: str):
    alley = alleys.get_alley(current_user, slug)
    alley_id, tz = alley.id, alleys.zone(alley)
    header = ledger_header()
    words = export_words()

    def rows():
        return (ledger_row(tz, words, p, e, a, payer)
                for p, e, a, payer in exports.iter_ledger(alley_id))

    return _csv(f"ledger-{slug}.csv", header, rows)


def export_words() -> dict[str, str]:
    """Every billing code's label in the request's language, read once before a
    streamed export (its rows are written outside the request)."""
    from ...labels import BILLING_LABELS

    return {code: str(label) for code, label in BILLING_LABELS.items()}


def ledger_header() -> list[str]:
    """The ledger export's columns: each code column is followed by its words."""
    return [_("Posting"), _("Key"), _("Kind (code)"), _("Kind"), _("Time"),
            _("Account (code)"), _("Account"), _("Amount (yuan)"), _("Method (code)"),
            _("Method"), _("Receipt number"), _("Session"), _("Reverses"), _("By"),
            _("Reason")]


def ledger_row(tz, words: dict[str, str], p, e, a, payer_kind: str | None = None) -> list:
    """One ledger line of an export (amount in yuan as an exact Decimal); a line of the
    covered account says who bore it (a monthly card, or the community)."""
    account = words.get(covered_code(a.kind, payer_kind), a.kind)
    if a.resident_id is not None:
        account = f"{account} #{a.resident_id}"
    return [p.id, p.key, p.kind, words.get(p.kind, p.kind), _local(tz, p.created_at),
            a.code, account, yuan_decimal(e.amount_cents), p.method or "",
            words.get(f"method:{p.method}", p.method) if p.method else "",
            p.receipt or "", p.session_id or "", p.reverses_id or "", p.created_by or "",
            p.reason]


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
