"""The job catalogue is plain data the web reads without APScheduler, and its idea of
the next run agrees with APScheduler's own triggers (which only the worker builds)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from chargers.jobs import all_jobs
from chargers.scheduler import make_trigger

MOMENTS = [datetime(2027, 12, 31, 16, 30, 7, tzinfo=UTC), datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC),
           datetime(2026, 12, 6, 0, 0, 0, tzinfo=UTC)]


@pytest.mark.parametrize("now", MOMENTS)
def test_next_run_matches_apscheduler(now):
    for job in all_jobs().values():
        trigger = make_trigger(job)
        for last in (None, now - timedelta(seconds=3)):
            if job.trigger == "interval" and last is not None:
                expected = trigger.get_next_fire_time(last, now)
            elif job.trigger == "interval":
                expected = now + job.interval  # a trigger made now starts one period on
            else:
                expected = trigger.get_next_fire_time(None, now)
            assert job.next_run_after(last, now) == expected, (job.id, last, now)


def test_the_web_never_imports_apscheduler(tmp_path):
    code = f"""
import sys
from chargers import create_app
from chargers.extensions import db
app = create_app({{"SQLALCHEMY_DATABASE_URI": "sqlite:///{tmp_path}/a.sqlite", "SECRET_KEY": "x",
                  "MQTT_URL": "", "RATELIMIT_STORAGE_URI": "memory://"}}, config_name="testing")
with app.app_context():
    db.create_all()
    from chargers.services import users
    users.create_user("root", "correct-horse-battery", "admin")
c = app.test_client()
c.get("/login")
assert c.get("/staff/jobs").status_code in (200, 302)
bad = sorted(m for m in sys.modules if m.startswith("apscheduler"))
assert not bad, bad
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
