"""Shared fixtures: app → client → runner (flaskr style), a fresh temp-file SQLite
database per test, staff users with tokens, and (from tests/brokers.py) a real MQTT
broker: `broker`, a private Mosquitto or the embedded broker (CHARGERS_TEST_BROKER=
mosquitto|embedded; default Mosquitto where installed), and `mosquitto`.

As in the Flask tutorial, no fixture holds an app context across requests: each
request gets its own (and its own `g`), and a test that touches the database directly
opens one itself with `with app.app_context():`, or takes `app_ctx` when it makes no
request at all. The client refuses a request made inside a held context."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import time_machine
from flask import has_app_context
from flask.testing import FlaskClient

from chargers import create_app
from chargers.extensions import db as _db
from chargers.services import users

pytest_plugins = ["tests.brokers", "tests.device_clients", "tests.ingest_support",
                  "tests.payments_support"]

PASSWORD = "correct-horse-battery"

# CHARGERS_TEST_NOW=2027-12-31T16:30:00+00:00 moves the wall clock of the whole run to
# that moment (still ticking), so that a test that leans on the real date fails on
# any day, not only in some December: `.ci/run` runs the time-dependent tests again at
# a moment where UTC and Asia/Shanghai fall in different days, months and years, and
# on a 29 February. Subprocesses (the worker of the end-to-end tests) keep the real
# clock, so those passes take only tests that run in this process.
TEST_NOW = os.environ.get("CHARGERS_TEST_NOW", "").strip()


# Lanes: `make check` runs what needs no broker, PostgreSQL, browser or long wait.
_NEEDS = {
    "broker": {"broker", "mosquitto", "worker", "peers"},
}
_POSTGRES_FILES = {"test_api_fuzz", "test_bulk", "test_deploy_smoke", "test_ingest_fuzz",
                   "test_ingest_scale", "test_migrations", "test_monthly_close",
                   "test_settlement_concurrent", "test_web_hardening", "test_factory",
                   "test_web_ratelimit_redis", "test_worker_lease",
                   "test_messages_postgres"}
_BROWSER_FILES = {"test_web_browser", "test_web_browser_flows"}
_SLOW_FILES = {"test_api_fuzz", "test_ingest_fuzz", "test_ingest_scale", "test_deploy_smoke",
               "test_settlement_concurrent", "test_devices_end_to_end", "test_devices_simulator",
               "test_billing_e2e", "test_ingest_worker", "test_worker_lease", "test_cutoff"}


def pytest_collection_modifyitems(config, items):
    """Mark each test by what it needs (from its fixtures and its file), so that a lane
    can leave them out: `-m "not broker and not postgres and not browser and not slow"`."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        names = set(getattr(item, "fixturenames", ()))
        if names & _NEEDS["broker"]:
            item.add_marker(pytest.mark.broker)
        if module in _POSTGRES_FILES:
            item.add_marker(pytest.mark.postgres)
            # One xdist worker takes all of them, one after another: their advisory
            # locks and the shared database `test` are not split by schema.
            item.add_marker(pytest.mark.xdist_group("postgres"))
        if module in _BROWSER_FILES:
            item.add_marker(pytest.mark.browser)
        if module in _SLOW_FILES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes():
    """Passwords hashed with one PBKDF2 round instead of scrypt: the suite makes and
    checks hundreds of them, at 0.15 s of a core each with scrypt (about 50 s of the
    suite's CPU). (Worker and
    web processes a test starts keep scrypt; the stored hash names its method.)"""
    from werkzeug.security import generate_password_hash

    cheap = "pbkdf2:sha256:1"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "HASH_METHOD", cheap)
        mp.setattr(users, "_DUMMY_HASH", generate_password_hash("not-a-real-password",
                                                                method=cheap))
        yield


@pytest.fixture(autouse=True, scope="session")
def _shifted_wall_clock():
    if not TEST_NOW:
        yield None
        return
    with time_machine.travel(datetime.fromisoformat(TEST_NOW), tick=True) as traveller:
        yield traveller


@pytest.fixture
def app_config(tmp_path):
    """Overrides for create_app(); a test may change them before `app` is built."""
    return {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite'}",
        "SECRET_KEY": "test-secret",
        "EMBEDDED_BROKER_FILE": str(tmp_path / "broker.json"),
        "MAINTENANCE_PHOTO_DIR": str(tmp_path / "photos"),
        "MQTT_URL": "",
        "RATELIMIT_STORAGE_URI": "memory://",
    }


@pytest.fixture(scope="session")
def _schema_template(tmp_path_factory) -> Path:
    """One SQLite file holding the schema, made once per run: each test's database
    starts as a copy of it instead of building every table again."""
    path = tmp_path_factory.mktemp("template") / "schema.sqlite"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "t",
                      "MQTT_URL": "", "RATELIMIT_STORAGE_URI": "memory://"}, config_name="testing")
    with app.app_context():
        _db.create_all()
        _db.engine.dispose()
    return path


@pytest.fixture
def app(app_config, _schema_template, tmp_path):
    """The app on a fresh database (a copy of the schema template when the test keeps
    the default SQLite file; PostgreSQL and other URLs get their tables made). No app
    context is held: as in the Flask tutorial, every request gets its own, and a test
    that touches the database directly opens one itself (`with app.app_context():`)."""
    url = app_config["SQLALCHEMY_DATABASE_URI"]
    fresh = url == f"sqlite:///{tmp_path / 'test.sqlite'}" and not (tmp_path / "test.sqlite").exists()
    if fresh:
        shutil.copyfile(_schema_template, tmp_path / "test.sqlite")
    app = create_app(app_config, config_name="testing")
    if not fresh:
        with app.app_context():
            _db.create_all()
    yield app
    with app.app_context():
        _db.engine.dispose()


class Client(FlaskClient):
    """The test client, refusing a request made while the test holds an app context:
    the request would share that context's `g` and database session instead of
    getting its own, as it does in production."""

    def open(self, *args, **kwargs):
        assert not has_app_context(), "make requests outside `with app.app_context():`"
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = Client
    return app.test_client()


@pytest.fixture
def app_ctx(app):
    """An app context for the whole test, for tests that call services and models
    directly and make no request (the client refuses to run inside it)."""
    with app.app_context():
        yield app


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def admin(app):
    """An admin account and its API token: (user, token)."""
    with app.app_context():
        user = users.create_user("root", PASSWORD, "admin")
        token = users.issue_token(user)
        return loaded(user), token


def loaded(obj):
    """`obj` with its columns loaded, to be read (id, name, ...) after its app context
    has ended; use its id to load it again in another context."""
    _db.session.refresh(obj)
    return obj


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_staff(app):
    """make_staff(name, [slugs]) → (user, token) for a staff member of those alleys."""

    def make(name: str, slugs: list[str]):
        with app.app_context():
            user = users.create_user(name, PASSWORD, "staff", slugs)
            token = users.issue_token(user)
            return loaded(user), token

    return make


@pytest.fixture
def alley_with_pile(client, admin):
    """An alley `lane` with pile P-1 of 4 ports, via the API; returns the pile's secret."""
    _, token = admin
    r = client.post("/api/v1/alleys", json={"slug": "lane", "name": "Lane"}, headers=bearer(token))
    assert r.status_code == 201, r.json
    r = client.post("/api/v1/piles", json={"id": "P-1", "alley": "lane", "ports": 4},
                    headers=bearer(token))
    assert r.status_code == 201, r.json
    return r.json["secret"]
