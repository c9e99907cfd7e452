"""Screenshots of the fire-safety routine (issue 10), repeatably: the demo alleys with a
month of signed patrols and checks, the phone checklist being filled in, the printable
record form and the jobs page. Uses docs/screenshot.py's server and Chromium helpers.

    .venv/bin/python docs/screenshot_maintenance.py      # writes docs/maintenance-*.png

"Being filled in": a bare headless Chromium cannot type, so the staff server of this
script adds one script of its own origin (the pages' CSP allows that) to the checklist
page, which ticks the items as a patrol would, types a finding and opens the fail
details, then the shot is taken.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

import screenshot as shots  # noqa: E402

from chargers import create_app, settings  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.jobs import all_jobs, run_job  # noqa: E402
from chargers.models import InspectionPlan, Pile, User, WorkOrder  # noqa: E402
from chargers.services import alleys, demo, maintenance  # noqa: E402
from chargers.services.maintenance import ItemResult, RecordInput  # noqa: E402

DOCS = ROOT / "docs"

FILL_JS = b"""
(function () {
  "use strict";
  var items = document.querySelectorAll(".check-item");
  items.forEach(function (li, i) {
    if (i === items.length - 1) return;  /* the last one is still to be done */
    var want = i === 0 ? "fail" : (i === 3 ? "na" : "pass");
    var r = li.querySelector('input[type=radio][value="' + want + '"]');
    if (r) r.checked = true;
  });
  var first = items[0];
  if (first) {
    first.querySelector("input[name^=n_]").value =
      "7\\u53f7\\u53e3\\u63d2\\u5ea7\\u53d1\\u9ed1\\uff0c\\u6709\\u7126\\u5473";
    var d = first.querySelector("details"); if (d) d.open = true;
    var sel = first.querySelector("select"); if (sel) sel.value = "JRX-004";
    var port = first.querySelector("input[name^=port_]"); if (port) port.value = "7";
    var oos = first.querySelector("input[type=checkbox]"); if (oos) oos.checked = true;
  }
})();
"""


class Filler:
    """WSGI wrapper: serves /__shot/fill.js and adds it to the checklist page."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/__shot/fill.js":
            start_response("200 OK", [("Content-Type", "text/javascript")])
            return [FILL_JS]
        if not environ.get("PATH_INFO", "").endswith("/check"):
            return self.app(environ, start_response)
        captured = {}

        def keep(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        body = b"".join(self.app(environ, keep))
        body = body.replace(b"</body>", b'<script src="/__shot/fill.js"></script></body>')
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], headers + [("Content-Length", str(len(body)))])
        return [body]


def seed_records(now: datetime) -> int:
    """A month of the routine in 九如巷: daily patrols most days, the monthly check with
    one failed socket (its repair done), a fault burst on one pile. Returns the monthly
    plan's id."""
    admin = db.session.scalar(db.select(User).where(User.name == demo.DEMO_ADMIN[0]))
    jiuru = alleys.find_alley("jiuru")
    plans = {p.kind: p for p in db.session.scalars(db.select(InspectionPlan).where(
        InspectionPlan.alley_id == jiuru.id))}
    notes = {3: ("no_blocking", "3号门前两辆车挡道，已联系车主挪走"),
             11: ("no_flying_wires", "12号门二楼有飞线充电，已劝阻并拆除"),
             19: ("fire_lane", "消防通道堆放纸箱，已清理")}
    for days_ago in range(27, 0, -1):
        if days_ago in (6, 13):
            continue  # nobody went: the kind of gap the reminders catch
        at = now - timedelta(days=days_ago, hours=2)
        fail = notes.get(days_ago)
        items = [ItemResult(i["key"], "fail" if fail and fail[0] == i["key"] else "pass",
                            note=fail[1] if fail and fail[0] == i["key"] else "")
                 for i in plans["daily"].checklist]
        maintenance.record_inspection(admin, plans["daily"].id, RecordInput(items), now=at)
    at = now - timedelta(days=9, hours=1)
    monthly = plans["monthly"]
    items = [ItemResult(i["key"], "pass") for i in monthly.checklist]
    items[0] = ItemResult("sockets_plugs", "fail", note="4号桩7号口插座发黑变形", pile_id="JRX-004",
                          port=7, out_of_service=True)
    items[3] = ItemResult("extinguisher_pressure", "pass", note="压力正常，有效期至2027-06")
    maintenance.record_inspection(admin, monthly.id, RecordInput(items, notes="雨后检查，箱体无进水"),
                                  now=at)
    order = db.session.scalar(db.select(WorkOrder).where(WorkOrder.pile_id == "JRX-004"))
    maintenance.start_order(admin, order.id, "电工张师傅到场", now=at + timedelta(hours=3))
    maintenance.finish_order(admin, order.id, "更换7号口插座，测试正常", now=at + timedelta(days=1))
    # The next monthly check is due today: the plans page shows it.
    monthly = db.session.get(InspectionPlan, monthly.id)
    monthly.next_due = maintenance.local_today(jiuru, now)
    plans["quarterly"].next_due = maintenance.local_today(jiuru, now) - timedelta(days=4)
    db.session.commit()
    return monthly.id


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shot.sqlite",
            "SECRET_KEY": "screenshot", "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False, "PUBLIC_BASE_URL": "https://chargers.example.cn",
            "MAINTENANCE_PHOTO_DIR": f"{tmp}/photos",
        }, config_name="testing")
        now = datetime.now(UTC)
        with app.app_context():
            db.create_all()
            demo.seed(Path(tmp) / "secrets.json", settings.alley_defaults(app.config))
            shots.seed_states(now)
            monthly_id = seed_records(now)
            assert db.session.get(Pile, "JRX-004") is not None
        for job in all_jobs().values():  # the jobs page with a last run for each
            if job.id not in ("commands-dispatch",):
                run_job(app, job, None, shots_ctx())
        staff_base, server = shots.serve(Filler(shots.LoggedIn(app, shots.admin_cookie(app))))
        today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
        period = f"alley=jiuru&start={(today - timedelta(days=30)).isoformat()}&end={today.isoformat()}"
        try:
            shots.shoot(f"{staff_base}/staff/maintenance/plans/{monthly_id}/check",
                        DOCS / "maintenance-check-phone.png", size=(390, 1500))
            shots.shoot(f"{staff_base}/staff/maintenance", DOCS / "maintenance-plans-phone.png")
            shots.shoot(f"{staff_base}/staff/maintenance/records/print?{period}",
                        DOCS / "maintenance-print-phone.png", size=(390, 1300))
            shots.shoot(f"{staff_base}/staff/maintenance/records/print?{period}",
                        DOCS / "maintenance-print-a4.png", size=(794, 1123))
            shots.shoot(f"{staff_base}/staff/jobs", DOCS / "maintenance-jobs-phone.png",
                        size=(390, 1400))
        finally:
            server.shutdown()


class shots_ctx:  # noqa: N801
    """Publishing goes nowhere: the screenshot has no broker."""

    def publish(self, topic: str, payload: dict) -> None:
        pass


if __name__ == "__main__":
    main()
