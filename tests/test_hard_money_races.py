"""Money races (issue 20, item 3), on PostgreSQL with the app served by werkzeug and
threads doing concurrent requests (each its own connection): refunds at once never pay
out more than the balance (the account's row is locked across the check and the
posting); an `Idempotency-Key` makes a request post once, a repeat answers the first
result; the staff form's hidden key does the same; and an error page after a failed
SQL statement still renders (the handler rolls the session back)."""

from __future__ import annotations

import http.client
import json
import re
import threading

import pytest
from sqlalchemy import func, select, text
from werkzeug.serving import make_server

from chargers import create_app
from chargers.extensions import db
from chargers.models import IdempotencyKey, Posting, ResidentAccount
from chargers.services import onboarding, users
from chargers.services.billing import accounts as residents
from chargers.services.billing import ledger
from chargers.services.devices import alleys
from chargers.settings import AlleyDefaults

from .brokers import free_port
from .conftest import PASSWORD
from .pg_schema import throwaway_schema
from .webtools import csrf_from, login

N = 6


@pytest.fixture
def served(tmp_path):
    """The app on a PostgreSQL schema, served by a threaded werkzeug server: (app,
    port, token, account id)."""
    with throwaway_schema("chargers_money") as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "MQTT_URL": "",
                          "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": N + 2},
                          "EMBEDDED_BROKER_FILE": str(tmp_path / "b.json")},
                         config_name="testing")
        with app.app_context():
            db.create_all()
            admin = users.create_user("root", PASSWORD, "admin")
            token = users.issue_token(admin)
            onboarding.create_alley(alleys.AlleyInput(slug="lane", name="Lane"), AlleyDefaults(),
                                by=admin)
            acc = residents.create_account(admin, residents.AccountInput(
                alley="lane", cards=["A"]), datetime_now())
            acc_id = acc.id
        port = free_port()
        server = make_server("127.0.0.1", port, app.wsgi_app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield app, port, token, acc_id
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def datetime_now():
    from chargers.models import utcnow

    return utcnow()


def call(port: int, token: str, path: str, payload: dict, key: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    conn.request("POST", path, body=json.dumps(payload), headers=headers)
    r = conn.getresponse()
    out = r.status, json.loads(r.read() or b"null")
    conn.close()
    return out


def together(fn, n: int = N) -> list:
    """`fn(i)` in n threads released at once; their results in order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_concurrent_full_balance_refunds_pay_out_once(served):
    app, port, token, acc = served
    assert call(port, token, f"/api/v1/accounts/{acc}/topups",
                {"amount_cents": 1000, "method": "cash"})[0] == 201
    results = together(lambda i: call(port, token, f"/api/v1/accounts/{acc}/refunds",
                                      {"amount_cents": 1000, "method": "cash"}))
    statuses = sorted(s for s, _ in results)
    assert statuses == [201] + [422] * (N - 1), results
    with app.app_context():
        assert ledger.verify() == []
        acc_row = db.session.get(ResidentAccount, acc)
        assert ledger.balance(acc_row) == 0
        assert db.session.scalar(select(func.count()).select_from(Posting)
                                 .where(Posting.kind == "refund")) == 1


def test_a_repeated_idempotency_key_posts_once_and_answers_the_first_result(served):
    app, port, token, acc = served
    path = f"/api/v1/accounts/{acc}/topups"
    results = together(lambda i: call(port, token, path, {"amount_cents": 500, "method": "cash"},
                                      key="till-42"))
    assert [s for s, _ in results] == [201] * N, results
    assert len({json.dumps(b, sort_keys=True) for _, b in results}) == 1  # the same answer
    again = call(port, token, path, {"amount_cents": 500, "method": "cash"}, key="till-42")
    assert again == results[0]
    # A refund with the same key is another call: refused, nothing posted.
    assert call(port, token, f"/api/v1/accounts/{acc}/refunds",
                {"amount_cents": 100, "method": "cash"}, key="till-42")[0] == 409
    # Concurrent refunds, each sent twice with its own key: each posts once at most.
    call(port, token, path, {"amount_cents": 1500, "method": "cash"})  # balance 2000
    results = together(lambda i: call(port, token, f"/api/v1/accounts/{acc}/refunds",
                                      {"amount_cents": 700, "method": "cash"},
                                      key=f"refund-{i // 2}"))
    assert sorted(s for s, _ in results) == [201, 201, 201, 201, 422, 422], results
    with app.app_context():
        assert ledger.verify() == []
        assert ledger.balance(db.session.get(ResidentAccount, acc)) == 2000 - 2 * 700
        kinds = dict(db.session.execute(select(Posting.kind, func.count())
                                        .group_by(Posting.kind)).all())
        assert kinds == {"topup": 2, "refund": 2}
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 3


def test_the_staff_form_posts_once_per_rendered_form(served):
    app, port, token, acc = served
    c = app.test_client()
    login(c, "root")
    page = c.get(f"/staff/billing/accounts/{acc}").get_data(as_text=True)
    form = page[page.index(f"billing/accounts/{acc}/topup"):]
    key = re.search(r'name="t-request_key"[^>]*value="([^"]+)"', form).group(1)
    data = {"csrf_token": csrf_from(page), "t-request_key": key, "t-amount": "3",
            "t-method": "cash"}
    for _ in range(3):  # a double click, then the page sent again
        assert c.post(f"/staff/billing/accounts/{acc}/topup", data=data).status_code == 302
    with app.app_context():
        assert ledger.balance(db.session.get(ResidentAccount, acc)) == 300
    fresh = c.get(f"/staff/billing/accounts/{acc}").get_data(as_text=True)
    assert key not in fresh  # the next form has a new key


def test_an_error_page_after_a_failed_statement_still_renders(served):
    app, port, token, acc = served

    @app.get("/boom-sql")
    def boom():  # a view whose statement fails, leaving the transaction aborted
        db.session.execute(text("SELECT no_such_column FROM postings"))

    c = app.test_client()
    login(c, "root")
    r = c.get("/boom-sql")
    assert r.status_code == 500  # the error page, not an InFailedSqlTransaction
    assert c.get("/staff/").status_code == 200
