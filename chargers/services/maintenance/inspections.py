"""Maintenance and the fire-safety routine: inspection plans and when they are due,
signed inspection records, work orders, reminders, and the fault rule.

Dates of plans are local dates in the alley's zone (`alleys.zone`): a daily patrol is
due "today" for the people of that alley, whatever zone the server runs in.

- A plan's `next_due` is the last day its check should be done. On that day the
  alley's level-1 contacts are reminded (`due`), the day after again (`overdue`), and
  once it has been overdue INSPECTION_ESCALATE_DAYS the level-2 contacts hear of it
  (`escalation`). Each (plan, due date, stage) is sent once: InspectionReminder rows.
  Reminders go out from INSPECTION_REMIND_HOUR local time; the job runs every hour
  and evaluates every alley in its own zone.
- Recording a check (`record_inspection`) resets the plan: next_due = the record's
  local date + the plan's period. A record is never changed afterwards.
- A failed item opens a repair work order; it can take the port (or the pile) out of
  service through the command service (`disable`) until the order is done (`enable`).
- The fault rule (`open_fault_inspections`, job `fault-inspections`): a pile with
  FAULT_INSPECTION_COUNT faults in FAULT_INSPECTION_WINDOW_DAYS, or a meter
  temperature above FAULT_INSPECTION_TEMP_C, gets ONE unscheduled inspection order;
  while it is open no other is opened, and after it is done only new evidence counts.

Functions whose docstring says "Commits" own their transaction; the others add and
flush. Settings come in as frozen dataclasses built by the door (job / view).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from ...constants import OPEN_FILTER, WorkOrderStatus
from ...extensions import db
from ...models import (
    Alley,
    FaultEvent,
    InspectionPlan,
    InspectionRecord,
    InspectionReminder,
    MeterSample,
    Pile,
    User,
    WorkOrder,
    utcnow,
)
from ...settings import MaintenanceRule
from .. import scope
from ..alerts import notify
from ..devices import alleys, commands
from ..errors import Conflict, Invalid

KINDS = ("daily", "monthly", "quarterly", "custom")
UNITS = ("day", "week", "month")
RESULTS = ("pass", "fail", "na")
ORDER_KINDS = ("repair", "inspection")
ORDER_STATUSES = tuple(WorkOrderStatus)
OPEN_ORDERS = (WorkOrderStatus.OPEN, WorkOrderStatus.IN_PROGRESS)
STAGES = ("due", "overdue", "escalation")
KEY_RE = re.compile(r"^[a-z0-9_]{1,32}$")

# The defaults seeded for every alley (staff change them afterwards). Texts are the
# alley's working language; the keys stay stable across edits.
DEFAULT_PLANS = [
    {"kind": "daily", "name": "日常巡查", "every": 1, "unit": "day", "checklist": [
        {"key": "fire_lane", "text": "消防通道畅通，无杂物堵塞"},
        {"key": "no_flying_wires", "text": "无飞线充电，无车辆在桩外私拉电线充电"},
        {"key": "no_blocking", "text": "车辆停放整齐，不挡通道"},
        {"key": "extinguisher_reach", "text": "灭火器在位，伸手可及"},
    ]},
    {"kind": "monthly", "name": "月度检查", "every": 1, "unit": "month", "checklist": [
        {"key": "sockets_plugs", "text": "插座、插头无变色、烧蚀、变形、松动"},
        {"key": "cables_enclosure", "text": "线缆、箱体完好，无破损、无进水"},
        {"key": "smoke_detector", "text": "烟感探测器工作正常"},
        {"key": "extinguisher_pressure", "text": "灭火器压力正常，在有效期内"},
        {"key": "rcd_test", "text": "漏电保护器按试验按钮能跳闸"},
        {"key": "signs_phone", "text": "安全警示标识和应急电话已张贴"},
    ]},
    {"kind": "quarterly", "name": "季度电气检测", "every": 3, "unit": "month", "checklist": [
        {"key": "insulation", "text": "绝缘电阻测试合格（电工）"},
        {"key": "earthing", "text": "接地电阻测试合格（电工）"},
    ]},
]



# --- dates -------------------------------------------------------------------------


def add_period(start: date, every: int, unit: str) -> date:
    """`start` moved on by the period; months keep the day, clamped to the month's end."""
    if unit == "day":
        return start + timedelta(days=every)
    if unit == "week":
        return start + timedelta(weeks=every)
    month0 = start.month - 1 + every
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def local_today(alley: Alley, now: datetime) -> date:
    """The alley's date at `now`."""
    return now.astimezone(alleys.zone(alley)).date()


@dataclass(frozen=True)
class DueState:
    """Where a plan stands on a local day: `upcoming`, `due` (today is the last day)
    or `overdue` by `days_overdue`."""

    state: str
    days_overdue: int = 0
    days_left: int = 0


def due_state(plan: InspectionPlan, today: date) -> DueState:
    """The plan's state on the alley's local day `today`."""
    delta = (today - plan.next_due).days
    if delta < 0:
        return DueState("upcoming", days_left=-delta)
    if delta == 0:
        return DueState("due")
    return DueState("overdue", days_overdue=delta)


# --- plans -------------------------------------------------------------------------


def seed_default_plans(alley: Alley, now: datetime | None = None) -> list[InspectionPlan]:
    """The default site plans of a new alley (daily patrol, monthly check, quarterly
    electrical check), first due on the alley's current day. Skips kinds the alley
    already has. Adds and flushes, no commit."""
    now = now or utcnow()
    have = set(db.session.scalars(select(InspectionPlan.kind).where(
        InspectionPlan.alley_id == alley.id, InspectionPlan.pile_id.is_(None))))
    today = local_today(alley, now)
    out = []
    for spec in DEFAULT_PLANS:
        if spec["kind"] in have:
            continue
        plan = InspectionPlan(alley_id=alley.id, pile_id=None, kind=spec["kind"],
                              name=spec["name"], every=spec["every"], unit=spec["unit"],
                              checklist=[dict(i) for i in spec["checklist"]], next_due=today,
                              active=True, created_at=now, updated_at=now)
        db.session.add(plan)
        out.append(plan)
    db.session.flush()
    return out


def get_plan(user: User | None, plan_id: int) -> InspectionPlan:
    """One plan of an alley in the user's scope."""
    plan = scope.get_in_alley(user, InspectionPlan, plan_id, "maintenance.no_plan")
    return plan


def list_plans(user: User | None, slug: str | None = None, *,
               active_only: bool = True) -> list[InspectionPlan]:
    """Plans in scope (of one alley), by alley, site plans first, then by due date."""
    stmt = select(InspectionPlan).join(Alley, Alley.id == InspectionPlan.alley_id)
    stmt = scope.limit_to_alleys(stmt, user, InspectionPlan.alley_id)
    if slug:
        alley = alleys.get_alley(user, slug)
        stmt = stmt.where(InspectionPlan.alley_id == alley.id)
    if active_only:
        stmt = stmt.where(InspectionPlan.active.is_(True))
    stmt = stmt.order_by(Alley.name, InspectionPlan.pile_id.is_not(None), InspectionPlan.pile_id,
                         InspectionPlan.next_due, InspectionPlan.id)
    return list(db.session.scalars(stmt))


@dataclass
class PlanInput:
    """A plan as staff write it; checklist lines are `text`, or `key: text`."""

    name: str
    kind: str
    every: int
    unit: str
    checklist: list[str]
    next_due: date
    pile_id: str | None = None
    active: bool = True


def _alike(a: str, b: str) -> bool:
    """Two wordings of one checklist item (an edit, not a different item)."""
    from difflib import SequenceMatcher

    return SequenceMatcher(None, a, b).ratio() >= 0.6


def _checklist(lines: list[str], old: list[dict]) -> list[dict]:
    """Checklist items from the lines staff typed (the wording only: keys are derived,
    never typed). A line keeps the key of the old item with the same text; a line whose
    wording changed in place keeps the key of the old item at its position when the two
    wordings are mostly alike (and that item's text is not still on another line); any
    other line gets `item_N`. `key: text` (an
    ASCII key) still sets a key, for lists written before."""
    by_text = {i["text"]: i["key"] for i in old}
    cleaned = [raw.strip() for raw in lines]
    kept = {by_text[line] for line in cleaned if line in by_text}
    out, keys = [], set()
    for n, line in enumerate(cleaned, 1):
        if not line:
            continue
        key, sep, text = line.partition(":")
        if sep and KEY_RE.match(key.strip()):
            key, text = key.strip(), text.strip()
        elif line in by_text:
            key, text = by_text[line], line
        elif (n <= len(old) and old[n - 1]["key"] not in kept | keys
              and _alike(old[n - 1]["text"], line)):
            key, text = old[n - 1]["key"], line
        else:
            key, text = f"item_{n}", line
        if not text or len(text) > 200:
            raise Invalid("maintenance.bad_checklist", line=n)
        while key in keys:
            key += "_"
        keys.add(key)
        out.append({"key": key, "text": text})
    if not out:
        raise Invalid("maintenance.empty_checklist")
    return out


def _check_plan(data: PlanInput) -> None:
    if not (data.name or "").strip() or len(data.name) > 120:
        raise Invalid("maintenance.bad_name")
    if data.kind not in KINDS:
        raise Invalid("maintenance.bad_kind", kinds=", ".join(KINDS))
    if data.unit not in UNITS or not 1 <= (data.every or 0) <= 366:
        raise Invalid("maintenance.bad_period")


def create_plan(user: User | None, slug: str, data: PlanInput,
                now: datetime | None = None) -> InspectionPlan:
    """A new plan for an alley in scope (or one of its piles). Commits."""
    now = now or utcnow()
    alley = alleys.get_alley(user, slug)
    _check_plan(data)
    pile_id = _pile_of(alley, data.pile_id)
    plan = InspectionPlan(alley_id=alley.id, pile_id=pile_id, kind=data.kind,
                          name=data.name.strip(), every=data.every, unit=data.unit,
                          checklist=_checklist(data.checklist, []), next_due=data.next_due,
                          active=data.active, created_at=now, updated_at=now)
    db.session.add(plan)
    db.session.commit()
    return plan


def _pile_of(alley: Alley, pile_id: str | None) -> str | None:
    if not pile_id:
        return None
    pile = db.session.get(Pile, pile_id)
    if pile is None or pile.alley_id != alley.id:
        raise Invalid("maintenance.bad_pile", pile=pile_id)
    return pile.id


def update_plan(user: User | None, plan_id: int, data: PlanInput,
                now: datetime | None = None) -> InspectionPlan:
    """Change a plan (name, period, checklist, next due date, active). Records made
    before keep the checklist as it was. Commits."""
    now = now or utcnow()
    plan = get_plan(user, plan_id)
    _check_plan(data)
    plan.name, plan.kind = data.name.strip(), data.kind
    plan.every, plan.unit = data.every, data.unit
    plan.checklist = _checklist(data.checklist, plan.checklist)
    plan.next_due, plan.active = data.next_due, data.active
    plan.pile_id = _pile_of(plan.alley, data.pile_id)
    plan.updated_at = now
    db.session.commit()
    return plan


# --- records -----------------------------------------------------------------------


@dataclass
class ItemResult:
    """One checklist line as the inspector marked it. For a fail: optionally which
    pile (site plans) and port it concerns, and whether to take it out of service."""

    key: str
    result: str
    note: str = ""
    pile_id: str | None = None
    port: int | None = None
    out_of_service: bool = False


@dataclass
class RecordInput:
    """A filled checklist, ready to sign."""

    items: list[ItemResult]
    notes: str = ""
    photos: list[str] = field(default_factory=list)  # names from services.photos.store


def record_inspection(user: User, plan_id: int, data: RecordInput,
                      now: datetime | None = None) -> InspectionRecord:
    """Sign a check of a plan: every checklist item must be marked. Resets the plan
    (next due = today + period, local date) and opens a repair work order for each
    failed item (taking its port or pile out of service when asked). Commits."""
    now = now or utcnow()
    plan = get_plan(user, plan_id)
    marks = {i.key: i for i in data.items}
    items = []
    for line in plan.checklist:
        mark = marks.get(line["key"])
        if mark is None:
            raise Invalid("maintenance.missing_item", item=line["text"])
        if mark.result not in RESULTS:
            raise Invalid("maintenance.bad_result", item=line["text"])
        items.append({"key": line["key"], "text": line["text"], "result": mark.result,
                      "note": (mark.note or "").strip()[:500]})
    today = local_today(plan.alley, now)
    record = InspectionRecord(plan_id=plan.id, alley_id=plan.alley_id, pile_id=plan.pile_id,
                              kind=plan.kind, title=plan.name, items=items,
                              notes=(data.notes or "").strip()[:4000], photos=list(data.photos),
                              due_date=plan.next_due, signed_by=user.id, signed_at=now)
    db.session.add(record)
    db.session.flush()
    plan.next_due = add_period(today, plan.every, plan.unit)
    plan.updated_at = now
    for item in items:
        if item["result"] != "fail":
            continue
        mark = marks[item["key"]]
        pile_id = plan.pile_id or _pile_of(plan.alley, mark.pile_id)
        pile = db.session.get(Pile, pile_id) if pile_id else None
        port = mark.port if pile is not None else None
        if port is not None and not 1 <= port <= pile.port_count:
            raise Invalid("maintenance.bad_port", port=port, ports=pile.port_count)
        _open_order(plan.alley, pile, port, "repair", "checklist_fail",
                    {"item": item["key"], "text": item["text"], "note": item["note"]},
                    now, user=user, record=record,
                    out_of_service=bool(mark.out_of_service and pile is not None))
    db.session.commit()
    return record


def get_record(user: User | None, record_id: int) -> InspectionRecord:
    """One record of an alley in scope."""
    record = scope.get_in_alley(user, InspectionRecord, record_id, "maintenance.no_record")
    return record


def list_records(user: User | None, *, slug: str | None = None, start: date | None = None,
                 end: date | None = None, limit: int = 500) -> list[InspectionRecord]:
    """Signed records in scope, newest first; `start`/`end` are local dates of the
    alley (inclusive), as the printed form asks for a period."""
    stmt = select(InspectionRecord)
    stmt = scope.limit_to_alleys(stmt, user, InspectionRecord.alley_id)
    alley = None
    if slug:
        alley = alleys.get_alley(user, slug)
        stmt = stmt.where(InspectionRecord.alley_id == alley.id)
    # A UTC window a day wider than the local dates (every zone is within ±14 h of
    # UTC), then the exact local dates of each record's alley.
    if start:
        stmt = stmt.where(InspectionRecord.signed_at >= datetime.combine(
            start - timedelta(days=1), datetime.min.time(), tzinfo=UTC))
    if end:
        stmt = stmt.where(InspectionRecord.signed_at < datetime.combine(
            end + timedelta(days=2), datetime.min.time(), tzinfo=UTC))
    rows = list(db.session.scalars(stmt.order_by(InspectionRecord.signed_at.desc(),
                                                 InspectionRecord.id.desc())))
    if start or end:
        def local(r):
            return r.signed_at.astimezone(alleys.zone(r.alley)).date()
        rows = [r for r in rows if (not start or local(r) >= start) and (not end or local(r) <= end)]
    return rows[:limit]


# --- work orders -------------------------------------------------------------------


def _open_order(alley: Alley, pile: Pile | None, port: int | None, kind: str, reason: str,
                data: dict, now: datetime, *, user: User | None = None,
                record: InspectionRecord | None = None,
                out_of_service: bool = False) -> WorkOrder:
    order = WorkOrder(alley_id=alley.id, pile_id=pile.id if pile else None, port=port,
                      kind=kind, reason=reason, data=data, status=WorkOrderStatus.OPEN,
                      record_id=record.id if record else None, opened_at=now,
                      opened_by=user.id if user else None)
    db.session.add(order)
    order.record_event("opened", now, user, data={"reason": reason})
    if out_of_service and pile is not None:
        cmd = commands.create(pile, port, "disable", now, user=user)
        order.took_out_of_service = True
        order.record_event("out_of_service", now, user, data={"command": cmd.id, "port": port})
    db.session.flush()
    return order


def open_order(user: User, slug: str, kind: str, note: str, *, pile_id: str | None = None,
               port: int | None = None, out_of_service: bool = False,
               now: datetime | None = None) -> WorkOrder:
    """Staff open a work order by hand (a repair, or an unscheduled inspection). Commits."""
    now = now or utcnow()
    alley = alleys.get_alley(user, slug)
    if kind not in ORDER_KINDS:
        raise Invalid("maintenance.bad_kind", kinds=", ".join(ORDER_KINDS))
    if not (note or "").strip():
        raise Invalid("maintenance.note_required")
    pile = db.session.get(Pile, _pile_of(alley, pile_id)) if pile_id else None
    if port is not None and (pile is None or not 1 <= port <= pile.port_count):
        raise Invalid("maintenance.bad_port", port=port, ports=pile.port_count if pile else 0)
    order = _open_order(alley, pile, port, kind, "staff", {"note": note.strip()[:2000]}, now,
                        user=user, out_of_service=out_of_service)
    db.session.commit()
    return order


def get_order(user: User | None, order_id: int) -> WorkOrder:
    """One work order of an alley in scope."""
    order = scope.get_in_alley(user, WorkOrder, order_id, "maintenance.no_order")
    return order


def list_orders(user: User | None, *, status: str | None = "open", slug: str | None = None,
                limit: int = 200) -> list[WorkOrder]:
    """Work orders in scope, open ones (open + in progress) by default, newest first."""
    stmt = select(WorkOrder)
    stmt = scope.limit_to_alleys(stmt, user, WorkOrder.alley_id)
    if slug:
        stmt = stmt.where(WorkOrder.alley_id == alleys.get_alley(user, slug).id)
    if status == OPEN_FILTER:
        stmt = stmt.where(WorkOrder.status.in_(OPEN_ORDERS))
    elif status in ORDER_STATUSES:
        stmt = stmt.where(WorkOrder.status == status)
    return list(db.session.scalars(stmt.order_by(WorkOrder.opened_at.desc(),
                                                 WorkOrder.id.desc()).limit(limit)))


def orders_by_record(record_ids: list[int]) -> dict[int, list[WorkOrder]]:
    """The work orders each record opened (for the record page and the printed form)."""
    out: dict[int, list[WorkOrder]] = {}
    if not record_ids:
        return out
    stmt = select(WorkOrder).where(WorkOrder.record_id.in_(record_ids)).order_by(WorkOrder.id)
    for order in db.session.scalars(stmt):
        out.setdefault(order.record_id, []).append(order)
    return out


def count_open_orders(user: User | None) -> int:
    """Open work orders in scope (for a badge)."""
    stmt = select(func.count()).select_from(WorkOrder).where(WorkOrder.status.in_(OPEN_ORDERS))
    return db.session.scalar(scope.limit_to_alleys(stmt, user, WorkOrder.alley_id)) or 0


def start_order(user: User, order_id: int, note: str = "",
                now: datetime | None = None) -> WorkOrder:
    """open → in_progress, by this staff member. Commits."""
    now = now or utcnow()
    order = get_order(user, order_id)
    if order.status != WorkOrderStatus.OPEN:
        raise Conflict("maintenance.transition", frm=order.status, to="in_progress")
    order.status = WorkOrderStatus.IN_PROGRESS
    order.record_event("started", now, user, note=(note or "").strip() or None)
    db.session.commit()
    return order


def note_order(user: User, order_id: int, note: str, now: datetime | None = None) -> WorkOrder:
    """Add a note to an order's history. Commits."""
    now = now or utcnow()
    order = get_order(user, order_id)
    if not (note or "").strip():
        raise Invalid("maintenance.note_required")
    order.record_event("note", now, user, note=note.strip()[:2000])
    db.session.commit()
    return order


def finish_order(user: User, order_id: int, note: str, now: datetime | None = None) -> WorkOrder:
    """→ done, with what was done (required). A port or pile the order took out of
    service is enabled again, unless another open order still holds it. Commits."""
    now = now or utcnow()
    order = get_order(user, order_id)
    if order.status == WorkOrderStatus.DONE:
        raise Conflict("maintenance.transition", frm=order.status, to="done")
    if not (note or "").strip():
        raise Invalid("maintenance.note_required")
    order.status = WorkOrderStatus.DONE
    order.closed_at, order.closed_by = now, user.id
    order.record_event("done", now, user, note=note.strip()[:2000])
    if order.took_out_of_service and order.pile_id:
        held = db.session.scalar(select(func.count()).select_from(WorkOrder).where(
            WorkOrder.id != order.id, WorkOrder.pile_id == order.pile_id,
            WorkOrder.status.in_(OPEN_ORDERS), WorkOrder.took_out_of_service.is_(True),
            WorkOrder.port.is_(None) if order.port is None else WorkOrder.port == order.port))
        if held:
            order.record_event("still_out_of_service", now, user, data={"orders": held})
        else:
            cmd = commands.create(db.session.get(Pile, order.pile_id), order.port, "enable", now,
                                  user=user)
            order.record_event("back_in_service", now, user,
                               data={"command": cmd.id, "port": order.port})
    db.session.commit()
    return order


# --- the fault rule ----------------------------------------------------------------


def open_fault_inspections(rule: MaintenanceRule, now: datetime | None = None) -> int:
    """One unscheduled inspection order per pile with a burst of faults (at least
    `fault_count` raised within `fault_window_days`) or a meter temperature above
    `temp_c` in that window; none while one is open, and after one is done only
    faults and readings after its closing count. Returns orders opened. Commits."""
    now = now or utcnow()
    window_start = now - timedelta(days=rule.fault_window_days)
    counts = dict(db.session.execute(
        select(FaultEvent.pile_id, func.count()).where(
            FaultEvent.active.is_(True), FaultEvent.received_at >= window_start,
            FaultEvent.received_at <= now).group_by(FaultEvent.pile_id)).all())
    hot = dict(db.session.execute(
        select(MeterSample.pile_id, func.max(MeterSample.temp_c)).where(
            MeterSample.received_at >= window_start, MeterSample.received_at <= now,
            MeterSample.temp_c > rule.temp_c).group_by(MeterSample.pile_id)).all())
    candidates = {p for p, n in counts.items() if n >= rule.fault_count} | set(hot)
    opened = 0
    for pile_id in sorted(candidates):
        pile = db.session.get(Pile, pile_id)
        if pile is None:
            continue
        last = db.session.scalar(
            select(WorkOrder).where(WorkOrder.pile_id == pile_id, WorkOrder.kind == "inspection",
                                    WorkOrder.reason.in_(("fault_burst", "over_temperature")))
            .order_by(WorkOrder.opened_at.desc(), WorkOrder.id.desc()).limit(1))
        if last is not None and last.status in OPEN_ORDERS:
            continue
        since = window_start
        if last is not None:
            since = max(since, last.closed_at or last.opened_at)
        n = db.session.scalar(select(func.count()).select_from(FaultEvent).where(
            FaultEvent.pile_id == pile_id, FaultEvent.active.is_(True),
            FaultEvent.received_at > since, FaultEvent.received_at <= now)) or 0
        temp = db.session.scalar(select(func.max(MeterSample.temp_c)).where(
            MeterSample.pile_id == pile_id, MeterSample.received_at > since,
            MeterSample.received_at <= now, MeterSample.temp_c > rule.temp_c))
        if n >= rule.fault_count:
            reason, data = "fault_burst", {"faults": n, "days": rule.fault_window_days}
        elif temp is not None:
            reason, data = "over_temperature", {"temp_c": temp, "limit_c": rule.temp_c}
        else:
            continue
        _open_order(pile.alley, pile, None, "inspection", reason, data, now)
        opened += 1
    db.session.commit()
    return opened


# --- reminders ---------------------------------------------------------------------

STAGE_ZH = {"due": "【巡检到期】", "overdue": "【巡检逾期】", "escalation": "【巡检逾期·升级】"}


def _compose(plan: InspectionPlan, stage: str, state: DueState, rule: MaintenanceRule) -> tuple[str, str]:
    alley = plan.alley
    where = f"{alley.name} · {plan.pile.label}" if plan.pile_id else alley.name
    subject = f"{STAGE_ZH[stage]} {plan.name} · {where}"
    lines = [subject, f"应完成日期 due: {plan.next_due.isoformat()} ({alley.timezone})"]
    if state.days_overdue:
        lines.append(f"已逾期 {state.days_overdue} 天 overdue by {state.days_overdue} day(s)")
    lines.append(f"{rule.base_url}/staff/maintenance/plans/{plan.id}/check")
    return subject, "\n".join(lines)


def send_reminders(rule: MaintenanceRule, now: datetime | None = None) -> dict[str, int]:
    """Remind the contacts of every active plan that is due or overdue on its alley's
    local day, once that day has reached `remind_hour`: `due` and `overdue` to level 1,
    `escalation` to level 2 after `escalate_days`. Each (plan, due date, stage) once.
    Returns reminders by stage, and under "messages" the outbox rows queued (a
    reminder of an alley with no contacts is kept but reaches nobody). Commits."""
    now = now or utcnow()
    sent = dict.fromkeys(STAGES, 0)
    messages = 0
    plans = db.session.scalars(select(InspectionPlan).where(InspectionPlan.active.is_(True))
                               .order_by(InspectionPlan.id))
    for plan in list(plans):
        local = now.astimezone(alleys.zone(plan.alley))
        if local.hour < rule.remind_hour:
            continue
        state = due_state(plan, local.date())
        stages = []
        if state.state == "due":
            stages.append("due")
        elif state.state == "overdue":
            stages.append("overdue")
            if state.days_overdue >= rule.escalate_days:
                stages.append("escalation")
        for stage in stages:
            if _already(plan, stage):
                continue
            subject, text = _compose(plan, stage, state, rule)
            level = 2 if stage == "escalation" else 1
            n = notify.queue_message(plan.alley_id, level, stage, subject, text, now)
            db.session.add(InspectionReminder(plan_id=plan.id, due_date=plan.next_due,
                                              stage=stage, contacts=n, sent_at=now))
            db.session.flush()
            sent[stage] += 1
            messages += n
    db.session.commit()
    return {**sent, "messages": messages}


def _already(plan: InspectionPlan, stage: str) -> bool:
    return db.session.scalar(select(InspectionReminder.id).where(
        InspectionReminder.plan_id == plan.id, InspectionReminder.due_date == plan.next_due,
        InspectionReminder.stage == stage)) is not None


def reminders_for(plan_id: int) -> list[InspectionReminder]:
    """Reminders sent for a plan, newest first (for its page)."""
    return list(db.session.scalars(select(InspectionReminder).where(
        InspectionReminder.plan_id == plan_id).order_by(InspectionReminder.id.desc()).limit(20)))
