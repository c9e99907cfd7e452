"""Alembic migrations (Flask-Migrate): `flask db upgrade` from empty on SQLite and on
PostgreSQL, and the models match the migrations (autogenerate finds no difference).

The upgrade runs as the real command in a child process: Alembic's env.py reconfigures
logging, which must not leak into the rest of the test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import chargers.models  # noqa: F401  (every table on db.metadata)
from chargers.extensions import db

from .pg_schema import schema_of, throwaway_schema

ROOT = Path(__file__).resolve().parent.parent
# Tables every later feature stands on (the registry and the staff accounts).
CORE_TABLES = {"alembic_version", "alleys", "piles", "ports", "users", "user_alleys", "api_tokens"}


def flask_db_upgrade(url: str) -> None:
    """Run `flask --app wsgi db upgrade` against `url` in a child process."""
    env = {**os.environ, "DATABASE_URL": url, "CHARGERS_ENV": "development",
           "SECRET_KEY": "migration-test"}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def differences(url: str, **engine_args) -> list:
    """What autogenerate would add to a new migration for this database."""
    engine = create_engine(url, **engine_args)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": False})
            return compare_metadata(ctx, db.metadata)
    finally:
        engine.dispose()


def tables(url: str, **engine_args) -> set[str]:
    engine = create_engine(url, **engine_args)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    flask_db_upgrade(url)
    assert CORE_TABLES <= tables(url)
    # Upgrading again is a no-op, not an error.
    flask_db_upgrade(url)


def test_models_match_migrations_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    flask_db_upgrade(url)
    diff = differences(url)
    assert diff == [], "models and migrations differ; run `flask db migrate`:\n" + "\n".join(
        map(str, diff))


@pytest.fixture
def pg_url():
    """A private schema in the `test` database on 127.0.0.1:5432, dropped afterwards:
    (its URL, its name)."""
    with throwaway_schema() as url:
        yield url, schema_of(url)


def test_upgrade_from_empty_on_postgresql(pg_url):
    url, schema = pg_url
    flask_db_upgrade(url)
    assert CORE_TABLES <= tables(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select current_schema()")).scalar() == schema
            assert conn.execute(text("select count(*) from alembic_version")).scalar() == 1
    finally:
        engine.dispose()
    flask_db_upgrade(url)


def test_models_match_migrations_on_postgresql(pg_url):
    url, _ = pg_url
    flask_db_upgrade(url)
    diff = differences(url)
    assert diff == [], "models and migrations differ; run `flask db migrate`:\n" + "\n".join(
        map(str, diff))


def test_guard_command_id_is_filled_for_the_stops_before_it(tmp_path):
    """y26_guard01: a session the system stopped before the command was kept on it gets
    its command where one alone matches (the system's stop of its port at that moment);
    two matches, or a staff member's or an alert's stop, leave it empty."""
    import sqlite3

    path = tmp_path / "m.sqlite"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "CHARGERS_ENV": "development",
           "SECRET_KEY": "migration-test"}

    def upgrade(*target):
        r = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade",
                            *target], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr[-3000:]

    upgrade("y25_risk03")
    at = "2026-12-01 10:00:00.000000"
    with sqlite3.connect(path) as c:
        for sid, port in ((1, 1), (2, 2), (3, 3)):
            c.execute("INSERT INTO charging_sessions (id, pile_id, port, session_ref, status, "
                      "energy_wh, time_source, created_at, guard_stop_at, guard_reason) "
                      "VALUES (?, 'P-1', ?, ?, 'active', 0, 'device', ?, ?, 'risk')",
                      (sid, port, f"S{sid}", at, at))
        for cid, port, by, alert in (("c-1", 1, None, None), ("c-2a", 2, None, None),
                                     ("c-2b", 2, None, None), ("c-3", 3, 7, None)):
            c.execute("INSERT INTO commands (id, pile_id, port, action, status, created_at, "
                      "created_by, alert_id) VALUES (?, 'P-1', ?, 'stop', 'accepted', ?, ?, ?)",
                      (cid, port, at, by, alert))
    upgrade()
    with sqlite3.connect(path) as c:
        got = dict(c.execute("SELECT id, guard_command_id FROM charging_sessions"))
    assert got == {1: "c-1", 2: None, 3: None}
