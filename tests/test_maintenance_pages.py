"""Staff maintenance pages (issue 10): the phone checklist with photos (location data
dropped, non-images refused with a clear error), a failed item taking a port out of
service until its work order is done, the printable form and CSV, scope, and the
jobs page after a real run of the worker."""

from __future__ import annotations

import io
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from chargers import settings
from chargers.extensions import db
from chargers.jobs import all_jobs
from chargers.models import Command, InspectionPlan, InspectionRecord, JobRun, WorkOrder
from chargers.services import onboarding

from .conftest import PASSWORD
from .ingest_support import Worker, poll

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def app_config(app_config, tmp_path):
    app_config["MAINTENANCE_PHOTO_DIR"] = str(tmp_path / "photos")
    return app_config


def csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return CSRF.search(page.get_data(as_text=True)).group(1)


def login(client, name: str) -> None:
    token = csrf(client, "/login?lang=en")
    r = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)


@pytest.fixture
def staff(app, client, admin, make_staff, alley_with_pile):
    """lane-staff logged in (English pages); `other` is an alley they cannot see."""
    with app.app_context():
        from chargers.services.devices import alleys

        onboarding.create_alley(alleys.AlleyInput(slug="other", name="Other"),
                            settings.alley_defaults(app.config))
        make_staff("lane-staff", ["lane"])
    login(client, "lane-staff")
    return client


def plan_id(app, kind: str, slug: str = "lane") -> int:
    with app.app_context():
        from chargers.services.devices import alleys

        alley = alleys.find_alley(slug)
        return db.session.scalar(select(InspectionPlan.id).where(
            InspectionPlan.alley_id == alley.id, InspectionPlan.kind == kind))


def gps_jpeg() -> bytes:
    img = Image.new("RGB", (120, 80), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (31.0, 18.0, 30.0), 3: "E", 4: (120.0, 37.0, 10.0)}
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def marks(app, pid: int, **results) -> dict:
    with app.app_context():
        plan = db.session.get(InspectionPlan, pid)
        return {f"r_{i['key']}": results.get(i["key"], "pass") for i in plan.checklist}


def test_checklist_signed_with_photo_without_location_and_port_out_of_service(app, staff, tmp_path):
    client = staff
    pid = plan_id(app, "monthly")
    page = client.get(f"/staff/maintenance/plans/{pid}/check")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "插座、插头无变色" in html and 'type="file"' in html
    data = {**marks(app, pid, sockets_plugs="fail"),
            "n_sockets_plugs": "3号口插座发黑", "p_sockets_plugs": "P-1", "port_sockets_plugs": "3",
            "o_sockets_plugs": "y", "notes": "雨后检查",
            "photos": [(io.BytesIO(gps_jpeg()), "IMG_0001.jpg")],
            "csrf_token": csrf(client, f"/staff/maintenance/plans/{pid}/check")}
    r = client.post(f"/staff/maintenance/plans/{pid}/check", data=data,
                    content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)
    with app.app_context():
        record = db.session.scalar(select(InspectionRecord))
        assert record.signer.name == "lane-staff" and record.notes == "雨后检查"
        assert [i["result"] for i in record.items].count("fail") == 1
        assert len(record.photos) == 1
        stored = Path(app.config["MAINTENANCE_PHOTO_DIR"], record.photos[0]).read_bytes()
        order = db.session.scalar(select(WorkOrder))
        assert (order.pile_id, order.port, order.status) == ("P-1", 3, "open")
        assert [(c.action, c.port, c.status) for c in db.session.scalars(select(Command))] == \
            [("disable", 3, "pending")]
        rid, oid = record.id, order.id
    with Image.open(io.BytesIO(stored)) as img:
        assert not img.getexif() and "exif" not in img.info
    assert b"PhoneMaker" not in stored
    # The record page shows the photo, served only through the record.
    page = client.get(f"/staff/maintenance/records/{rid}").get_data(as_text=True)
    assert "3号口插座发黑" in page and f"/photos/{record.photos[0]}" in page
    photo = client.get(f"/staff/maintenance/records/{rid}/photos/{record.photos[0]}")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert client.get(f"/staff/maintenance/records/{rid}/photos/../../etc.jpg").status_code == 404

    # Work order: start, then done (a note is required), which puts the port back.
    token = csrf(client, f"/staff/maintenance/orders/{oid}")
    assert client.post(f"/staff/maintenance/orders/{oid}/start",
                       data={"note": "", "csrf_token": token}).status_code == 302
    client.post(f"/staff/maintenance/orders/{oid}/done", data={"note": "", "csrf_token": token})
    with app.app_context():
        assert db.session.get(WorkOrder, oid).status == "in_progress"  # refused: no note
    client.post(f"/staff/maintenance/orders/{oid}/done",
                data={"note": "更换插座", "csrf_token": token})
    with app.app_context():
        order = db.session.get(WorkOrder, oid)
        assert order.status == "done"
        cmds = db.session.scalars(select(Command).order_by(Command.created_at, Command.id))
        assert [(c.action, c.port) for c in cmds] == [("disable", 3), ("enable", 3)]
    page = client.get(f"/staff/maintenance/orders/{oid}").get_data(as_text=True)
    assert "back in service" in page and "更换插座" in page


def test_not_an_image_is_refused_with_a_clear_error(app, staff):
    client = staff
    pid = plan_id(app, "daily")
    data = {**marks(app, pid), "photos": [(io.BytesIO(b"%PDF-1.7 minutes"), "minutes.pdf")],
            "csrf_token": csrf(client, f"/staff/maintenance/plans/{pid}/check")}
    r = client.post(f"/staff/maintenance/plans/{pid}/check", data=data,
                    content_type="multipart/form-data")
    assert r.status_code == 400  # a bad upload is the client's error (issue 20)
    assert "That file is not a photo" in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(InspectionRecord)) is None
    folder = Path(app.config["MAINTENANCE_PHOTO_DIR"])
    assert not folder.exists() or not any(folder.iterdir())


def test_a_phone_photo_larger_than_the_api_body_limit_is_taken(app, staff):
    """Photos may be megabytes; only the checklist takes such a body, not the API."""
    client = staff
    pid = plan_id(app, "daily")
    image = io.BytesIO()
    Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3)).save(image, "PNG")
    assert image.tell() > app.config["MAX_CONTENT_LENGTH"]
    image.seek(0)
    data = {**marks(app, pid), "photos": [(image, "phone.png")],
            "csrf_token": csrf(client, f"/staff/maintenance/plans/{pid}/check")}
    r = client.post(f"/staff/maintenance/plans/{pid}/check", data=data,
                    content_type="multipart/form-data")
    assert r.status_code == 302
    with app.app_context():
        assert len(db.session.scalar(select(InspectionRecord)).photos) == 1


def test_every_item_must_be_marked(app, staff):
    client = staff
    pid = plan_id(app, "daily")
    data = marks(app, pid)
    data.pop(next(iter(data)))
    data["csrf_token"] = csrf(client, f"/staff/maintenance/plans/{pid}/check")
    r = client.post(f"/staff/maintenance/plans/{pid}/check", data=data)
    assert r.status_code == 422 and "Mark this item." in r.get_data(as_text=True)


def test_scope_other_alleys_plans_are_404(app, staff):
    other = plan_id(app, "daily", "other")
    assert staff.get(f"/staff/maintenance/plans/{other}/check").status_code == 404
    assert staff.get(f"/staff/maintenance/plans/{other}/edit").status_code == 404
    page = staff.get("/staff/maintenance").get_data(as_text=True)
    assert "Lane" in page and f"plan-{other}" not in page


def test_plan_edit_changes_checklist_and_period(app, staff):
    client = staff
    pid = plan_id(app, "daily")
    token = csrf(client, f"/staff/maintenance/plans/{pid}/edit")
    r = client.post(f"/staff/maintenance/plans/{pid}/edit", data={
        "csrf_token": token, "name": "夜间巡查", "kind": "daily", "pile_id": "", "every": "2",
        "unit": "day", "next_due": "2026-12-05", "active": "y",
        # Staff edit the wording only (issue 19): the first item, reworded in place,
        # keeps its key; a new item gets a new one. No key is typed or shown.
        "checklist": "消防通道畅通，无杂物堵塞（含楼道）\n照明正常"})
    assert r.status_code == 302, r.get_data(as_text=True)
    with app.app_context():
        plan = db.session.get(InspectionPlan, pid)
        assert plan.name == "夜间巡查" and plan.every == 2
        assert [i["key"] for i in plan.checklist] == ["fire_lane", "item_2"]
        assert plan.next_due.isoformat() == "2026-12-05"
    html = client.get(f"/staff/maintenance/plans/{pid}/edit").get_data(as_text=True)
    assert "fire_lane" not in html and "消防通道畅通，无杂物堵塞（含楼道）\n照明正常" in html


def test_printable_form_and_csv(app, staff):
    client = staff
    pid = plan_id(app, "daily")
    data = {**marks(app, pid, fire_lane="fail"), "n_fire_lane": "电动车堵塞通道",
            "notes": "=HYPERLINK(\"http://x\")",
            "csrf_token": csrf(client, f"/staff/maintenance/plans/{pid}/check")}
    assert client.post(f"/staff/maintenance/plans/{pid}/check", data=data).status_code == 302
    today = datetime.now(UTC).astimezone().date()
    start, end = today - timedelta(days=2), today + timedelta(days=2)
    q = f"alley=lane&start={start.isoformat()}&end={end.isoformat()}"
    page = client.get(f"/staff/maintenance/records/print?{q}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for words in ("Fire-safety patrol and check record", "Lane", "日常巡查", "电动车堵塞通道",
                  "lane-staff", "Inspector", "Findings", "Actions", "Work order #"):
        assert words in html, words
    csv = client.get(f"/staff/maintenance/records.csv?{q}")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    text = csv.get_data(as_text=True)
    assert text.startswith("\ufeffRecord,Signed (alley time)")  # the page's language
    assert "电动车堵塞通道" in text and ",fail,Fail," in text and "lane-staff" in text
    zh = client.get(f"/staff/maintenance/records.csv?{q}&lang=zh").get_data(as_text=True)
    assert zh.startswith("\ufeff记录") and "结果（代码）" in zh and ",fail,不合格," in zh
    assert "'=HYPERLINK" in text and ',"=HYPERLINK' not in text  # never a live formula
    assert len(text.strip().splitlines()) == 1 + 4  # header + one line per daily item


def test_failed_job_shows_on_the_dashboard(app, staff):
    with app.app_context():
        db.session.add(JobRun(job_id="retention", status="error", summary="OperationalError: x",
                              started_at=datetime.now(UTC), finished_at=datetime.now(UTC)))
        db.session.commit()
    html = staff.get("/staff/").get_data(as_text=True)
    assert "Scheduled jobs failed" in html and "retention" in html


def test_jobs_page_after_a_real_worker_run(app, staff, broker, tmp_path):
    """The real `flask --app wsgi worker`: every job runs once at start; the page lists
    each with its schedule, last run and next run."""
    worker = Worker(app.config["SQLALCHEMY_DATABASE_URI"], broker, tmp_path)
    worker.start()
    try:
        worker.wait_log("subscribed to")
        ids = sorted(all_jobs())
        with app.app_context():
            poll(lambda: {r.job_id for r in db.session.scalars(select(JobRun))
                          if r.finished_at is not None} >= set(ids), timeout=60,
                 what="every job to run once")
        html = staff.get("/staff/jobs").get_data(as_text=True)
    finally:
        assert worker.stop("term") in (0, None), worker.output()[-3000:]
    assert "Traceback" not in worker.output(), worker.output()[-3000:]
    for job_id in ("inspections-due", "overstay", "retention", "fault-inspections", *ids):
        block = html.split(f'id="job-{job_id}"', 1)[1].split("</li>\n", 1)[0]
        last = re.search(r'class="last-run">([^<]*)', block).group(1).strip()
        nxt = re.search(r'class="next-run">([^<]*)', block).group(1).strip()
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", last), (job_id, last)
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", nxt), (job_id, nxt)
    # Schedules in words, a cron time in the deployment's zone (19:30 UTC is 03:30).
    assert ("every hour at :00" in html or "每小时第 00 分" in html), html
    assert ("every day at 03:30" in html or "每天 03:30" in html), html



def test_overstay_include_says_how_long_in_chinese(app):
    from flask import render_template
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale("zh"):
        html = render_template("resident/_overstay.html", minutes=40, ended="full")
        stopped = render_template("resident/_overstay.html", minutes=40, ended="staff")
    assert "充满 40 分钟，请挪车" in html
    assert "已停止 40 分钟，请挪车" in stopped and "充满" not in stopped
    with app.test_request_context("/"), force_locale("en"):
        assert "Full for 40 min" in render_template("resident/_overstay.html", minutes=40,
                                                    ended="full")
        assert render_template("resident/_overstay.html", minutes=0).strip() == ""


def test_jobs_list_names_the_contract_ids(app):
    out = app.test_cli_runner().invoke(args=["jobs", "list"]).output
    for job_id in ("inspections-due", "overstay", "retention", "fault-inspections"):
        assert f"\n{job_id}\t" in out, out
