"""Staff pages of maintenance and the fire-safety routine: plans (list, add, edit),
the phone checklist (pass / fail / n.a. per item, notes, photos, signed by the
logged-in staff member), records (list, one, printable A4 form of a period, CSV),
work orders (open → in progress → done) and the worker's jobs page.

Views translate only: forms in, one service call, a page out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ... import outcomes, settings
from ...models import utcnow
from ...services import jobruns, photos
from ...services.devices import alleys
from ...services.errors import DomainError
from ...services.maintenance import inspections
from .. import csvout
from ..ordering import by_label
from ..validation import accepts_upload
from . import bp

KIND_LABELS = {"daily": _l("Daily patrol"), "monthly": _l("Monthly check"),
               "quarterly": _l("Quarterly electrical check"), "custom": _l("Other check"),
               "repair": _l("Repair"), "inspection": _l("Unscheduled inspection")}
UNIT_LABELS = {"day": _l("day(s)"), "week": _l("week(s)"), "month": _l("month(s)")}
RESULT_LABELS = {"pass": _l("Pass"), "fail": _l("Fail"), "na": _l("N/A")}
STATE_LABELS = {"upcoming": _l("upcoming"), "due": _l("due today"), "overdue": _l("overdue")}
ORDER_STATUS_LABELS = {"open": _l("Open"), "in_progress": _l("In progress"), "done": _l("Done"),
                       "all": _l("All")}
REASON_LABELS = {"checklist_fail": _l("Failed checklist item"),
                 "fault_burst": _l("Repeated faults"),
                 "over_temperature": _l("High meter temperature"), "staff": _l("Opened by staff")}
EVENT_LABELS = {"opened": _l("opened"), "out_of_service": _l("taken out of service"),
                "started": _l("started"), "note": _l("note"), "done": _l("done"),
                "back_in_service": _l("back in service"),
                "still_out_of_service": _l("stays out of service (another order)")}


def _say(exc: DomainError) -> str:
    return outcomes.render(exc.code, exc.params)


# --- forms -------------------------------------------------------------------------


class PlanForm(FlaskForm):
    """A plan as staff edit it: the checklist one item per line."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    kind = SelectField(_l("Kind"), choices=[SelectChoice(k, v) for k, v in KIND_LABELS.items()
                                            if k in inspections.KINDS])
    pile_id = SelectField(_l("Where"), choices=[], validate_choice=False)
    every = IntegerField(_l("Every"), validators=[InputRequired(), NumberRange(1, 366)])
    unit = SelectField(_l("Unit"), choices=[SelectChoice(k, v) for k, v in UNIT_LABELS.items()])
    next_due = DateField(_l("Next due (last day)"), validators=[InputRequired()])
    checklist = TextAreaField(_l("Checklist, one item per line"),
                              validators=[DataRequired(), Length(max=8000)])
    active = BooleanField(_l("Active"), default=True)


class CheckForm(FlaskForm):
    """Notes and photos of a check; the items are added per plan (checklist_form)."""

    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=4000)])
    photos = MultipleFileField(_l("Photos"))


def checklist_form(plan, pile_choices):
    """A CheckForm with, per checklist item, its result, a note, and for a fail the
    pile (site plans) and port, and whether to take it out of service."""

    class Form(CheckForm):
        pass

    for item in plan.checklist:
        key = item["key"]
        setattr(Form, f"r_{key}", RadioField(
            item["text"], choices=[SelectChoice(k, v) for k, v in RESULT_LABELS.items()],
            validators=[InputRequired(_l("Mark this item."))]))
        setattr(Form, f"n_{key}", StringField(_l("Finding"), validators=[Optional(), Length(max=500)]))
        if plan.pile_id is None:
            setattr(Form, f"p_{key}", SelectField(_l("Pile"), choices=pile_choices,
                                                  validate_choice=False))
        setattr(Form, f"port_{key}", IntegerField(_l("Port"), validators=[Optional(),
                                                                          NumberRange(1, 32)]))
        setattr(Form, f"o_{key}", BooleanField(_l("Take out of service until repaired")))
    return Form()


class OrderNoteForm(FlaskForm):
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])


class OrderNewForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=[SelectChoice("repair", KIND_LABELS["repair"]),
                                            SelectChoice("inspection", KIND_LABELS["inspection"])])
    pile_id = SelectField(_l("Pile"), choices=[], validate_choice=False)
    port = IntegerField(_l("Port"), validators=[Optional(), NumberRange(1, 32)])
    out_of_service = BooleanField(_l("Take out of service until done"))
    note = TextAreaField(_l("What is wrong"), validators=[DataRequired(), Length(max=2000)])


class PeriodForm(FlaskForm):
    """The period of the records list, the printed form and the CSV (GET, no CSRF)."""

    class Meta:
        csrf = False

    alley = SelectField(_l("Alley"), choices=[], validate_choice=False)
    start = DateField(_l("From"), validators=[Optional()])
    end = DateField(_l("To"), validators=[Optional()])


def _pile_choices(alley) -> list[SelectChoice]:
    return [SelectChoice("", _("Whole site"))] + [
        SelectChoice(p.id, f"{p.label} ({p.id})") for p in by_label(alley.piles)]


def _rule() -> photos.PhotoRule:
    return settings.photos(current_app.config)


# --- overview and plans --------------------------------------------------------------


@bp.get("/maintenance")
def maintenance_home():
    """Every plan in scope with whether it is due, open work orders, links to the rest."""
    now = datetime.now(UTC)
    rows = []
    for plan in inspections.list_plans(current_user):
        today = inspections.local_today(plan.alley, now)
        rows.append((plan, inspections.due_state(plan, today)))
    return render_template("staff/maintenance/index.html", rows=rows,
                           orders=inspections.list_orders(current_user, status="open", limit=20),
                           alleys=alleys.list_alleys(current_user), kinds=KIND_LABELS,
                           states=STATE_LABELS, reasons=REASON_LABELS,
                           statuses=ORDER_STATUS_LABELS, units=UNIT_LABELS)


def _plan_input(form: PlanForm) -> inspections.PlanInput:
    return inspections.PlanInput(
        name=form.name.data, kind=form.kind.data, every=form.every.data, unit=form.unit.data,
        checklist=(form.checklist.data or "").splitlines(), next_due=form.next_due.data,
        pile_id=form.pile_id.data or None, active=form.active.data)


@bp.route("/alleys/<slug>/maintenance/plans/new", methods=["GET", "POST"])
def plan_new(slug: str):
    alley = alleys.get_alley(current_user, slug)
    form = PlanForm()
    form.pile_id.choices = _pile_choices(alley)
    if request.method == "GET":
        form.next_due.data = inspections.local_today(alley, datetime.now(UTC))
        form.every.data, form.active.data = 1, True
    if form.validate_on_submit():
        try:
            plan = inspections.create_plan(current_user, slug, _plan_input(form))
        except DomainError as exc:
            flash(_say(exc), "error")
        else:
            flash(_("Plan added."), "ok")
            return redirect(url_for("staff.maintenance_home", _anchor=f"plan-{plan.id}"))
    return render_template("staff/maintenance/plan_form.html", form=form, alley=alley, plan=None)


@bp.route("/maintenance/plans/<int:plan_id>/edit", methods=["GET", "POST"])
def plan_edit(plan_id: int):
    plan = inspections.get_plan(current_user, plan_id)
    form = PlanForm(obj=plan)
    form.pile_id.choices = _pile_choices(plan.alley)
    if request.method == "GET":
        form.pile_id.data = plan.pile_id or ""
        form.checklist.data = "\n".join(i["text"] for i in plan.checklist)
    if form.validate_on_submit():
        try:
            inspections.update_plan(current_user, plan_id, _plan_input(form))
        except DomainError as exc:
            flash(_say(exc), "error")
        else:
            flash(_("Plan saved."), "ok")
            return redirect(url_for("staff.maintenance_home", _anchor=f"plan-{plan_id}"))
    return render_template("staff/maintenance/plan_form.html", form=form, alley=plan.alley,
                           plan=plan)


# --- the checklist ---------------------------------------------------------------------


@bp.route("/maintenance/plans/<int:plan_id>/check", methods=["GET", "POST"])
@accepts_upload("MAINTENANCE_PHOTO_MAX_BYTES")
def plan_check(plan_id: int):
    """The phone checklist: mark every item, add notes and photos, sign."""
    plan = inspections.get_plan(current_user, plan_id)
    g.tz = plan.alley.timezone
    form = checklist_form(plan, _pile_choices(plan.alley))
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            record = _sign(plan, form)
            if record is not None:
                flash(_("Check signed. Next due %(d)s.", d=plan.next_due.isoformat()), "ok")
                return redirect(url_for("staff.record_detail", record_id=record.id))
        else:
            flash(_("Mark every item before signing."), "error")
        status = 400 if g.get("photo_refused") else 422
    state = inspections.due_state(plan, inspections.local_today(plan.alley, datetime.now(UTC)))
    return render_template("staff/maintenance/check.html", plan=plan, form=form, state=state,
                           states=STATE_LABELS, kinds=KIND_LABELS,
                           max_mb=current_app.config["MAINTENANCE_PHOTO_MAX_BYTES"] // 2**20), status


def _sign(plan, form):
    """Store the photos, then sign the record; on a refusal, flash it and keep no file."""
    rule = _rule()
    names = []
    try:
        # All the photos are checked (bytes, pixels each and together) before any is
        # decoded, and all stored or none.
        names = photos.store_all([upload.read(rule.max_bytes + 1)
                                  for upload in form.photos.data or []
                                  if getattr(upload, "filename", "")], rule)
        items = []
        for line in plan.checklist:
            key = line["key"]
            pile_field = getattr(form, f"p_{key}", None)
            items.append(inspections.ItemResult(
                key=key, result=getattr(form, f"r_{key}").data,
                note=getattr(form, f"n_{key}").data or "",
                pile_id=(pile_field.data or None) if pile_field is not None else None,
                port=getattr(form, f"port_{key}").data, out_of_service=getattr(form, f"o_{key}").data))
        return inspections.record_inspection(current_user, plan.id, inspections.RecordInput(
            items=items, notes=form.notes.data or "", photos=names))
    except DomainError as exc:
        for name in names:
            photos.discard(name, rule)
        if exc.status == 404:
            raise
        if exc.code.startswith("photo."):
            g.photo_refused = True  # a bad upload: 400, the form kept with the reason
        flash(_say(exc), "error")
        return None
    except BaseException:
        for name in names:  # a check that was not signed keeps no file
            photos.discard(name, rule)
        raise


# --- records -------------------------------------------------------------------------


def _alley_today(slug: str | None) -> date:
    shown = [a for a in alleys.list_alleys(current_user) if slug is None or a.slug == slug]
    zones = {a.timezone for a in shown}
    tz = (alleys.zone(shown[0]) if len(zones) == 1
          else ZoneInfo(current_app.config["DEFAULT_TIMEZONE"]))
    return utcnow().astimezone(tz).date()


def _period(form: PeriodForm) -> dict:
    """The chosen alley and dates; the last 31 days by default, ending on the alley's
    today (the deployment's default zone when all alleys are shown and their zones
    differ), never the server's."""
    today = _alley_today(form.alley.data or None)
    start = form.start.data if form.start.data else today - timedelta(days=30)
    end = form.end.data if form.end.data else today
    return {"slug": form.alley.data or None, "start": start, "end": end}


def _period_form():
    form = PeriodForm(request.args)
    form.alley.choices = [SelectChoice("", _("All alleys"))] + [
        SelectChoice(a.slug, a.name) for a in alleys.list_alleys(current_user)]
    form.validate()
    return form


@bp.get("/maintenance/records")
def records():
    form = _period_form()
    p = _period(form)
    rows = inspections.list_records(current_user, slug=p["slug"], start=p["start"], end=p["end"])
    return render_template("staff/maintenance/records.html", rows=rows, form=form, period=p,
                           kinds=KIND_LABELS, args={k: v for k, v in request.args.items() if v})


@bp.get("/maintenance/records/<int:record_id>")
def record_detail(record_id: int):
    record = inspections.get_record(current_user, record_id)
    g.tz = record.alley.timezone
    orders = inspections.orders_by_record([record.id]).get(record.id, [])
    return render_template("staff/maintenance/record.html", record=record, orders=orders,
                           kinds=KIND_LABELS, results=RESULT_LABELS, statuses=ORDER_STATUS_LABELS)


@bp.get("/maintenance/records/<int:record_id>/photos/<name>")
def record_photo(record_id: int, name: str):
    record = inspections.get_record(current_user, record_id)
    if name not in record.photos:
        abort(404)
    try:
        path = photos.path_of(name, _rule())
    except DomainError:
        abort(404)
    return send_file(path, mimetype="image/jpeg", max_age=3600)


def _form_rows(rows):
    """The printed form's rows: date, place, items, findings, actions, inspector."""
    out = []
    by_record = inspections.orders_by_record([r.id for r in rows])
    for r in sorted(rows, key=lambda r: r.signed_at):
        tz = alleys.zone(r.alley)
        place = r.alley.name + (f" · {r.pile.label}" if r.pile_id else "")
        findings = [f"{i['text']}：{i['note']}" if i.get("note") else i["text"] for i in r.failed]
        noted = [f"{i['text']}：{i['note']}" for i in r.items if i["result"] != "fail" and i.get("note")]
        orders = by_record.get(r.id, [])
        out.append({"record": r, "date": r.signed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    "place": place, "findings": findings + noted, "orders": orders,
                    "passed": sum(1 for i in r.items if i["result"] == "pass"),
                    "na": sum(1 for i in r.items if i["result"] == "na")})
    return out


@bp.get("/maintenance/records/print")
def records_print():
    """The patrol and check record form of a period, A4, for the fire brigade."""
    form = _period_form()
    p = _period(form)
    rows = inspections.list_records(current_user, slug=p["slug"], start=p["start"], end=p["end"],
                                    limit=2000)
    alley = alleys.get_alley(current_user, p["slug"]) if p["slug"] else None
    return render_template("staff/maintenance/print.html", rows=_form_rows(rows), period=p,
                           alley=alley, kinds=KIND_LABELS, statuses=ORDER_STATUS_LABELS,
                           printed=datetime.now(UTC))


@bp.get("/maintenance/records.csv")
def records_csv():
    """The same records as CSV (UTF-8 with BOM so spreadsheet programs read Chinese),
    through the web's one CSV writer (formula cells neutralised: staff type the notes)."""
    form = _period_form()
    p = _period(form)
    rows = inspections.list_records(current_user, slug=p["slug"], start=p["start"], end=p["end"],
                                    limit=100_000)
    lines = []
    # Headers in the reader's language; a column holding a code keeps it and is followed
    # by its words.
    header = [_("Record"), _("Signed (alley time)"), _("Time zone"), _("Alley"), _("Pile"),
              _("Kind (code)"), _("Kind"), _("Title"), _("Item"), _("Result (code)"),
              _("Result"), _("Finding"), _("Notes"), _("Inspector"), _("Work orders")]
    for row in _form_rows(rows):
        r = row["record"]
        orders = " ".join(f"#{o.id} {ORDER_STATUS_LABELS.get(o.status, o.status)}"
                          for o in row["orders"])
        for i in r.items:
            lines.append([r.id, row["date"], r.alley.timezone, r.alley.name, r.pile_id or "",
                          r.kind, str(KIND_LABELS.get(r.kind, r.kind)), r.title, i["text"],
                          i["result"], str(RESULT_LABELS.get(i["result"], i["result"])),
                          i.get("note", ""), r.notes, r.signer.name, orders])
    name = f"inspections-{p['slug'] or 'all'}-{p['start']}-{p['end']}.csv"
    return csvout.response(name, header, lambda: lines)


# --- work orders -----------------------------------------------------------------------


@bp.get("/maintenance/orders")
def orders():
    status = request.args.get("status") or "open"
    if status not in ORDER_STATUS_LABELS:
        status = "open"
    return render_template("staff/maintenance/orders.html", status=status,
                           rows=inspections.list_orders(current_user, status=status),
                           kinds=KIND_LABELS, reasons=REASON_LABELS, statuses=ORDER_STATUS_LABELS)


@bp.route("/alleys/<slug>/maintenance/orders/new", methods=["GET", "POST"])
def order_new(slug: str):
    alley = alleys.get_alley(current_user, slug)
    form = OrderNewForm()
    form.pile_id.choices = _pile_choices(alley)
    if form.validate_on_submit():
        try:
            order = inspections.open_order(current_user, slug, form.kind.data, form.note.data,
                                           pile_id=form.pile_id.data or None, port=form.port.data,
                                           out_of_service=form.out_of_service.data)
        except DomainError as exc:
            flash(_say(exc), "error")
        else:
            flash(_("Work order opened."), "ok")
            return redirect(url_for("staff.order_detail", order_id=order.id))
    return render_template("staff/maintenance/order_new.html", form=form, alley=alley)


@bp.get("/maintenance/orders/<int:order_id>")
def order_detail(order_id: int):
    order = inspections.get_order(current_user, order_id)
    g.tz = order.alley.timezone
    return render_template("staff/maintenance/order.html", order=order, form=OrderNoteForm(),
                           kinds=KIND_LABELS, reasons=REASON_LABELS, statuses=ORDER_STATUS_LABELS,
                           events=EVENT_LABELS)


@bp.post("/maintenance/orders/<int:order_id>/<any(start, note, done):step>")
def order_step(order_id: int, step: str):
    form = OrderNoteForm()
    if not form.validate_on_submit():
        abort(400)
    action = {"start": inspections.start_order, "note": inspections.note_order,
              "done": inspections.finish_order}[step]
    try:
        action(current_user, order_id, form.note.data or "")
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(_say(exc), "error")
    else:
        flash({"start": _("Work started."), "note": _("Note added."),
               "done": _("Work order done.")}[step], "ok")
    return redirect(url_for("staff.order_detail", order_id=order_id))


# --- jobs ------------------------------------------------------------------------------


@bp.get("/jobs")
def jobs_page():
    """Every job of the worker: schedule, last runs (outcome, duration, summary), next
    run and recent failures."""
    from ...jobs import all_jobs  # the catalogue: plain data, no scheduler

    now = datetime.now(UTC)
    jobs = all_jobs()
    hist = jobruns.histories(sorted(jobs), now)
    rows = []
    for job_id in sorted(jobs):
        job, h = jobs[job_id], hist[job_id]
        started = h.last.started_at if h.last else None
        nxt = job.next_run_after(started, now)
        rows.append({"job": job, "schedule": job.schedule(), "h": h, "next": nxt,
                     "late": nxt is not None and nxt < now - timedelta(minutes=2)})
    return render_template("staff/jobs.html", rows=rows, now=now, refresh=60,
                           tz=ZoneInfo(current_app.config["DEFAULT_TIMEZONE"]),
                           run_status_labels={"ok": _("ok"), "error": _("failed"),
                                              "running": _("running")})
