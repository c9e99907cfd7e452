"""Two `settle` runs started together, each the real command
`flask --app wsgi jobs run settle` in its own process: on PostgreSQL (a throwaway
schema in the `test` database, as tests/test_migrations.py) and on SQLite; every
session is charged exactly once and `billing verify` agrees."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from chargers import create_app
from chargers.extensions import db
from chargers.models import ChargingSession, JobRun, Posting
from chargers.services import onboarding, users
from chargers.services.billing import accounts as residents
from chargers.services.billing import ledger
from chargers.services.devices import alleys, piles
from chargers.settings import AlleyDefaults

from .billing_support import T0, finished, set_tariff
from .ingest_support import ROOT
from .pg_schema import throwaway_schema

SESSIONS = 1200


@pytest.fixture
def pg_schema_url():
    with throwaway_schema("chargers_settle", user="postgres") as url:
        yield url


def populate(url: str) -> tuple[int, int]:
    """An alley, a pile, two prepaid accounts with money and SESSIONS finished sessions.
    Returns (account id, expected total charged to it)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "MQTT_URL": ""},
                     config_name="testing")
    with app.app_context():
        db.create_all()
        admin = users.create_user("root", "correct-horse-battery", "admin")
        onboarding.create_alley(alleys.AlleyInput(slug="lane", name="Lane"), AlleyDefaults(), by=admin)
        piles.register_pile(admin, piles.PileInput(id="P-1", alley="lane", ports=4))
        set_tariff("lane", electricity_cents_per_kwh=100)
        a = residents.create_account(admin, residents.AccountInput(alley="lane", cards=["A"]), T0)
        b = residents.create_account(admin, residents.AccountInput(alley="lane", cards=["B"]), T0)
        residents.top_up(admin, a.id, 1_000_000, "cash", None, T0)
        residents.top_up(admin, b.id, 1_000_000, "cash", None, T0)
        for i in range(SESSIONS):
            finished("P-1", f"s{i}", "A" if i % 2 else "B", 60, 10 * (i % 7 + 1),
                     start=T0 + timedelta(minutes=i))
        # `jobs run` records its run in one row per job id; make it exist so two runs
        # started together update it rather than both inserting it.
        db.session.add(JobRun(job_id="settle", status="never"))
        db.session.commit()
        expected = sum(i % 7 + 1 for i in range(SESSIONS) if i % 2)
        acc_id = a.id
        db.session.remove()
        db.engine.dispose()
    return acc_id, expected


def two_runs_together(url: str) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "DATABASE_URL": url, "CHARGERS_ENV": "development",
           "SECRET_KEY": "x", "SETTLE_BATCH_SIZE": "40", "MQTT_URL": ""}
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "run",
                               "settle"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def check(url: str, acc_id: int, expected: int, runs) -> None:
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    assert any("charged" in r.stdout for r in runs), [r.stdout for r in runs]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "MQTT_URL": ""},
                     config_name="testing")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ChargingSession)
                                 .where(ChargingSession.settled_at.is_(None))) == 0
        per_session = db.session.execute(select(Posting.session_id, func.count())
                                         .where(Posting.kind == "charge")
                                         .group_by(Posting.session_id)).all()
        assert len(per_session) == SESSIONS and {c for _, c in per_session} == {1}
        assert ledger.verify() == []
        from chargers.models import ResidentAccount

        assert ledger.balance(db.session.get(ResidentAccount, acc_id)) == 1_000_000 - expected
        db.session.remove()
        db.engine.dispose()
    env = {**os.environ, "DATABASE_URL": url, "CHARGERS_ENV": "development", "SECRET_KEY": "x"}
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "billing", "verify"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_two_settle_runs_on_postgresql_charge_each_session_once(pg_schema_url):
    acc_id, expected = populate(pg_schema_url)
    check(pg_schema_url, acc_id, expected, two_runs_together(pg_schema_url))


def test_two_settle_runs_on_sqlite_charge_each_session_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'settle.sqlite'}"
    acc_id, expected = populate(url)
    check(url, acc_id, expected, two_runs_together(url))
