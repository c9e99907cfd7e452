"""Staff pages of the monthly close: closed months with their account, reconciliation
(grid bill form) and publication; statements; the money dashboard with server-drawn
charts; exports of statements and the ledger as XLSX and CSV (UTF-8 with BOM).

Pages translate forms into service calls; the rules are in services/monthly_close,
services/reconciliation and services/money_dashboard."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

from flask import Response, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ... import settings
from ...extensions import db
from ...labels import ENDING_LABELS, GUARD_REASON_LABELS, REMINDER_LABELS
from ...models import utcnow
from ...money import yuan_decimal
from ...outcomes import render as outcome
from ...services.billing import exports, money_dashboard, monthly_close, reconciliation, reminders
from ...services.budget import queue as budget_queue
from ...services.devices import alleys
from ...services.errors import DomainError
from ..charts import kwh1, month_charts, series_charts
from ..forms_statements import (
    CorrectionForm,
    GridBillForm,
    PublishConfirmForm,
    PublishForm,
    ReminderSettingsForm,
)
from ..money import yuan
from . import bp
from .billing import _csv, export_words, ledger_header, ledger_row

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
YUAN_FORMAT = '"¥"#,##0.00;-"¥"#,##0.00'


def _rule():
    return settings.close(current_app.config)


@bp.get("/months/<slug>")
def months(slug: str):
    """The alley's closed months with their totals and reconciliation."""
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    rows = [(mc, reconciliation.reconcile(mc, _rule())) for mc in monthly_close.closes(alley.id)]
    low, days = reminders.alley_settings(alley.id, settings.reminders(current_app.config))
    form = ReminderSettingsForm(low_balance=low, monthly_days=days)
    return render_template("staff/statements/months.html", alley=alley, rows=rows, kwh1=kwh1,
                           reminder_form=form)


@bp.route("/months/<slug>/<month>", methods=["GET", "POST"])
def month(slug: str, month: str):
    """One closed month: its account, the grid bill form, publication, statements."""
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    mc = monthly_close.get_close(current_user, slug, month)
    bill = reconciliation.grid_bill(alley.id, month)
    form = GridBillForm(obj=None)
    if request.method == "GET" and bill is not None:
        form.grid_kwh.data = kwh1(bill.grid_wh) if bill.reading_start_wh is None else ""
        form.amount.data = bill.amount_cents
        form.note.data = bill.note
    if form.validate_on_submit():
        try:
            reconciliation.set_grid_bill(current_user, slug, reconciliation.GridInput(
                month=month, grid_kwh=form.grid_kwh.data or None,
                amount_cents=form.amount.data,
                reading_start_kwh=form.reading_start_kwh.data or None,
                reading_end_kwh=form.reading_end_kwh.data or None,
                note=form.note.data or ""), utcnow())
        except DomainError as exc:
            flash(outcome(exc.code, exc.params), "error")
        else:
            flash(_("Grid bill saved: %(amount)s for %(month)s.", amount=yuan(form.amount.data),
                    month=month), "ok")
            return redirect(url_for("staff.month", slug=slug, month=month))
    return render_template("staff/statements/month.html", alley=alley, mc=mc, form=form,
                           publish_form=PublishConfirmForm(), correct_form=CorrectionForm(),
                           versions=monthly_close.versions(mc),
                           rec=reconciliation.reconcile(mc, _rule()),
                           charts=month_charts(mc.daily), kwh1=kwh1, threshold=_rule().loss_pct,
                           statements=monthly_close.statements_for(mc),
                           waits=budget_queue.month_waits(alley, mc.month))


@bp.post("/months/<slug>/<month>/publish")
def month_publish(slug: str, month: str):
    form = PublishConfirmForm()
    if not form.validate_on_submit():
        flash(_("Not published: tick the box to confirm the totals first."), "error")
    else:
        try:
            monthly_close.publish(current_user, slug, month, utcnow())
        except DomainError as exc:
            flash(outcome(exc.code, exc.params), "error")
        else:
            flash(_("Published: the month is on the alley's public page."), "ok")
    return redirect(url_for("staff.month", slug=slug, month=month))


@bp.post("/months/<slug>/<month>/correct")
def month_correct(slug: str, month: str):
    """A correction of the published 公示's grid bill: a new version, shown as such."""
    form = CorrectionForm()
    if not form.validate_on_submit():
        flash(_("Not corrected: give the grid energy, the amount and why."), "error")
        return redirect(url_for("staff.month", slug=slug, month=month))
    try:
        mc = monthly_close.correct(current_user, slug, month,
                                   reconciliation.kwh_to_wh(form.grid_kwh.data),
                                   form.amount.data, form.reason.data, utcnow())
    except DomainError as exc:
        flash(outcome(exc.code, exc.params), "error")
    else:
        flash(_("Corrected: the notice of %(month)s is now version %(n)d.", month=month,
                n=mc.version), "ok")
    return redirect(url_for("staff.month", slug=slug, month=month))


@bp.get("/statements/<int:statement_id>")
def statement(statement_id: int):
    st, acc = monthly_close.get_statement(current_user, statement_id)
    g.tz = acc.alley.timezone
    sessions = [(datetime.fromisoformat(s["ended_at"]), s) for s in st.sessions]
    return render_template("staff/statements/statement.html", st=st, acc=acc, alley=acc.alley,
                           sessions=sessions, kwh1=kwh1)


@bp.get("/money/<slug>")
def money(slug: str):
    """Takings, kWh and sessions per day, week or month, drawn on the server."""
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    period = request.args.get("period", "day")
    if period not in money_dashboard.PERIODS:
        period = "day"
    rows = money_dashboard.series(alley, period, utcnow())
    if period == "day":
        labels = [r["start"].isoformat() for r in rows]
        ticks = [f"{r['start'].month}/{r['start'].day}" for r in rows]
        every = 7
    elif period == "week":
        labels = [r["start"].isoformat() for r in rows]
        ticks = [f"{r['start'].month}/{r['start'].day}" for r in rows]
        every = 3
    else:
        labels = [r["start"].strftime("%Y-%m") for r in rows]
        ticks = [str(r["start"].month) for r in rows]
        every = 1
    return render_template("staff/statements/money.html", alley=alley, period=period,
                           rows=list(zip(labels, rows, strict=True)), kwh1=kwh1,
                           charts=series_charts(rows, labels, ticks, every))


# Exports -----------------------------------------------------------------------------

def _statement_rows(mc):
    """The header and a function yielding the rows (called while the download is
    written, in an application context of its own for a streamed CSV)."""
    header = [_("Account"), _("Household"), _("Cards"), _("Month"), _("Opening (yuan)"),
              _("Top-ups (yuan)"), _("Charges (yuan)"), _("Refunds (yuan)"),
              _("Adjustments (yuan)"), _("Closing (yuan)"), _("Sessions"),
              _("Debt written off (yuan)"), _("Owed (yuan)"),
              _("Top-ups by WeChat Pay (yuan)"), _("Top-ups by Alipay (yuan)"),
              _("Refunds to WeChat Pay (yuan)"), _("Refunds to Alipay (yuan)")]  # new columns last
    rows = [[acc.id, acc.household, " ".join(c.card for c in acc.cards), st.month,
             *(yuan_decimal(v) for v in (st.opening_cents, st.topups_cents, st.charges_cents,
                                         st.refunds_cents, st.adjustments_cents,
                                         st.closing_cents)),
             len(st.sessions), yuan_decimal(st.writeoffs_cents),
             yuan_decimal(max(0, -st.closing_cents)),
             *(yuan_decimal(v) for v in (st.topups_wechat_cents, st.topups_alipay_cents,
                                         st.refunds_wechat_cents, st.refunds_alipay_cents))]
            for st, acc in monthly_close.statements_for(mc)]
    return header, lambda: rows


def _ledger_rows(alley):
    """The header and a function yielding the ledger lines (see _statement_rows)."""
    header = [*ledger_header(), _("Month")]
    words = export_words()
    alley_id, tz = alley.id, alleys.zone(alley)

    def rows():
        counted = dict(db.session.execute(
            select(monthly_close.PostingMonth.posting_id, monthly_close.PostingMonth.month)
            .where(monthly_close.PostingMonth.alley_id == alley_id)).all())
        for p, e, a, payer in exports.iter_ledger(alley_id):
            yield [*ledger_row(tz, words, p, e, a, payer), counted.get(p.id, "")]

    return header, rows


def _xlsx(name: str, title: str, header: list, rows: Callable[[], Iterable[list]]) -> Response:
    """An XLSX download (openpyxl, write-only: rows streamed into the workbook)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])

    def cells(row):
        # Text stays text: openpyxl would store "=…" (a household, a reason) as a formula.
        for v in row:
            if isinstance(v, str):
                c = WriteOnlyCell(ws, value=v)
                c.data_type = "s"
                yield c
            elif isinstance(v, Decimal):  # yuan: a number Excel sums, shown as money
                c = WriteOnlyCell(ws, value=v)
                c.number_format = YUAN_FORMAT
                yield c
            else:
                yield v

    ws.append(list(cells(header)))
    for row in rows():
        ws.append(list(cells(row)))
    buf = io.BytesIO()
    wb.save(buf)
    return Response(buf.getvalue(), mimetype=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/months/<slug>/<month>/statements.<fmt>")
def statements_export(slug: str, month: str, fmt: str):
    mc = monthly_close.get_close(current_user, slug, month)
    header, rows = _statement_rows(mc)
    if fmt == "csv":
        return _csv(f"statements-{slug}-{month}.csv", header, rows)
    if fmt == "xlsx":
        return _xlsx(f"statements-{slug}-{month}.xlsx", month, header, rows)
    abort(404)


@bp.get("/months/<slug>/ledger.<fmt>")
def ledger_export(slug: str, fmt: str):
    alley = alleys.get_alley(current_user, slug)
    header, rows = _ledger_rows(alley)
    if fmt == "csv":
        return _csv(f"ledger-{slug}.csv", header, rows)
    if fmt == "xlsx":
        return _xlsx(f"ledger-{slug}.xlsx", _("Ledger"), header, rows)
    abort(404)


# Account pages: statements, reminders and channels --------------------------------

def init_app(app) -> None:
    """Template helpers for the account pages (staff and 'My account')."""

    def reminder_word(kind: str) -> str:
        return str(REMINDER_LABELS.get(kind, kind))

    def reminder_detail(r) -> str:
        """What a reminder said beyond its kind: why the charge ended, what was seen."""
        data = r.data or {}
        if data.get("reason") and r.kind != "full":  # "full" says it already
            # A stop the system asked is said as its reason ("battery or charger looks
            # dangerous"), not as an ending that repeats the title ("Stopped: …").
            code = data["reason"]
            return str(GUARD_REASON_LABELS.get(code) or ENDING_LABELS.get(code, code))
        if data.get("reasons"):
            return reminders.seen_words(data["reasons"])
        return ""

    def channel_word(channel: str) -> str:
        return {"wechat": _("WeChat"), "sms": _("SMS"), "email": _("E-mail")}.get(channel,
                                                                                channel)

    def delivery_problem(error: str | None) -> tuple[str, str]:
        """A delivery's last refusal in words, and the provider's own text when the
        words are only a summary ("" when they say it all)."""
        text = error or ""
        for needle, words in (
                ("errcode 43101", _("the resident refused WeChat messages (or has not "
                                    "subscribed to them)")),
                ("errcode 40003", _("the WeChat user is not one of this official account's")),
                ("errcode 40037", _("the WeChat template id is wrong")),
                ("errcode 47003", _("the message did not fit the WeChat template")),
                ("no WeChat template for", _("no WeChat template is set up for this message")),
                ("WeChat is not configured", _("WeChat messages are not configured")),
                ("SMS is not configured", _("SMS is not configured on this server")),
                ("SMTP_HOST is not set", _("e-mail is not configured on this server"))):
            if needle in text:
                return str(words), ""
        return str(_("not accepted")), text

    app.jinja_env.globals.update(account_statements=monthly_close.statements_of,
                                 account_reminders=reminders.for_account,
                                 account_messages=lambda aid: reminders.messages_of(aid, utcnow()),
                                 delivery_problem=delivery_problem,
                                 account_channels=reminders.channels,
                                 chosen_channels=reminders.chosen,
                                 message_languages=reminders.LANGUAGES,
                                 reminder_word=reminder_word, reminder_detail=reminder_detail,
                                 channel_word=channel_word)
    app.jinja_env.filters["channel_word"] = channel_word


@bp.record_once
def _register(state) -> None:
    init_app(state.app)


@bp.post("/accounts/<int:account_id>/channels")
def account_channels_set(account_id: int):
    form = PublishForm()  # CSRF only; the fields are read below
    if form.validate_on_submit():
        try:
            reminders.set_channels(current_user, account_id, request.form.get("email", ""),
                                   request.form.get("sms") == "1", utcnow(),
                                   wechat=request.form.get("wechat") == "1",
                                   night=request.form.get("night") == "1",
                                   language=request.form.get("language", ""))
        except DomainError as exc:
            flash(outcome(exc.code, exc.params), "error")
        else:
            flash(_("Saved."), "ok")
    return redirect(url_for("staff.billing_account", account_id=account_id))


@bp.post("/months/<slug>/reminders")
def reminder_settings_set(slug: str):
    form = ReminderSettingsForm()
    if form.validate_on_submit():
        try:
            reminders.set_alley_settings(current_user, slug, form.low_balance.data,
                                         form.monthly_days.data, utcnow())
        except DomainError as exc:
            flash(outcome(exc.code, exc.params), "error")
        else:
            flash(_("Saved: residents are reminded below %(amount)s and %(n)d days before a "
                    "monthly card ends.", amount=yuan(form.low_balance.data),
                    n=form.monthly_days.data), "ok")
    else:
        errors = form.low_balance.errors or form.monthly_days.errors
        flash(_("Check the numbers.") + (f" {errors[0]}" if errors else ""), "error")
    return redirect(url_for("staff.months", slug=slug))
