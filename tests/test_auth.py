"""Staff login and logout: sessions, CSRF, rate limit and cookie flags (ASVS V2/V3)."""

from __future__ import annotations

from chargers import create_app
from chargers.extensions import db
from chargers.models import Alley, Pile

from .conftest import PASSWORD
from .webtools import csrf_from, login


def test_login_then_staff_pages_open(client, admin):
    assert client.get("/staff/").status_code == 302  # not yet
    r = login(client, "root")
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/")
    assert client.get("/staff/").status_code == 200


def test_wrong_password_is_refused_without_saying_which_part(client, admin):
    r = login(client, "root", "wrong-password")
    assert r.status_code == 200
    assert "用户名或密码错误" in r.get_data(as_text=True)
    r = login(client, "nobody", PASSWORD)
    assert "用户名或密码错误" in r.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_anonymous_staff_page_redirects_to_login(client, app):
    r = client.get("/staff/alleys/lane")
    assert r.status_code == 302 and "/login?next=" in r.headers["Location"]


def test_login_redirects_only_within_the_site(client, admin):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post("/login?next=//evil.example/x",
                    data={"name": "root", "password": PASSWORD, "csrf_token": token})
    assert r.headers["Location"] == "/staff/"


def test_login_gives_a_fresh_session(client, admin):
    with client.session_transaction() as s:
        s["planted"] = "by an attacker"
    login(client, "root")
    with client.session_transaction() as s:
        assert "planted" not in s and "_user_id" in s


def test_logout_invalidates_the_old_session_cookie(app, client, admin):
    login(client, "root")
    old_cookie = client.get_cookie("session").value
    page = client.get("/staff/").get_data(as_text=True)
    assert client.get("/logout").status_code == 405  # logout is a POST with CSRF
    r = client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 302
    assert client.get("/staff/").status_code == 302
    # A copy of the cookie taken before logout no longer opens anything.
    thief = app.test_client()
    thief.set_cookie("session", old_cookie)
    r = thief.get("/staff/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_csrf_refusal_changes_nothing(app, client, admin, alley_with_pile):
    # Login without a token: refused.
    r = client.post("/login", data={"name": "root", "password": PASSWORD})
    assert r.status_code == 400 and "表单已过期" in r.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302
    login(client, "root")
    # An alley form posted without a token: refused, nothing created.
    r = client.post("/staff/alleys/new", data={"slug": "evil", "name": "Evil"})
    assert r.status_code == 400
    with app.app_context():
        assert db.session.query(Alley).filter_by(slug="evil").count() == 0
    # A wrong token is as bad as none.
    r = client.post("/staff/alleys/new", data={"slug": "evil", "name": "Evil", "csrf_token": "x"})
    assert r.status_code == 400
    with app.app_context():
        assert db.session.query(Alley).filter_by(slug="evil").count() == 0
        # A new secret without a token: refused, the old one still stands.
        old = db.session.get(Pile, "P-1").secret_hash
    assert client.post("/staff/piles/P-1/secret").status_code == 400
    with app.app_context():
        assert db.session.get(Pile, "P-1").secret_hash == old
    # Logout without a token: refused, still logged in.
    assert client.post("/logout").status_code == 400
    assert client.get("/staff/").status_code == 200


def test_login_rate_limit_kicks_in(app, client, admin):
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    token = csrf_from(client.get("/login").get_data(as_text=True))
    codes = [client.post("/login", data={"name": "root", "password": f"guess-{i}",
                                         "csrf_token": token}).status_code
             for i in range(limit + 2)]
    assert codes[:limit] == [200] * limit
    assert codes[limit:] == [429, 429]
    # Even the right password waits now.
    r = client.post("/login", data={"name": "root", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429
    assert "text/html" in r.content_type
    assert client.get("/staff/").status_code == 302
    # Reading the form is not limited.
    assert client.get("/login").status_code == 200


def _session_cookie_header(response) -> str:
    cookies = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert cookies, response.headers
    return cookies[-1]


def test_session_cookie_flags(client, admin):
    header = _session_cookie_header(login(client, "root"))
    assert "HttpOnly" in header and "SameSite=Lax" in header


def test_session_cookie_secure_in_production_settings(app_config, tmp_path, monkeypatch):
    from chargers.services import users

    monkeypatch.setenv("SECRET_KEY", "prod-secret")
    monkeypatch.setenv("DATABASE_URL", app_config["SQLALCHEMY_DATABASE_URI"])
    # Production needs a shared rate-limit store; this test keeps app_config's memory://.
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    prod = create_app({**app_config, "RATELIMIT_ENABLED": True}, config_name="production")
    assert prod.config["SESSION_COOKIE_SECURE"] is True
    with prod.app_context():
        db.create_all()
        users.create_user("root", PASSWORD, "admin")
        client = prod.test_client()
        # Secure cookies are only sent back over HTTPS: talk HTTPS to the test client.
        token = csrf_from(client.get("/login", base_url="https://localhost").get_data(as_text=True))
        # Over HTTPS Flask-WTF also checks that the Referer is this site.
        r = client.post("/login", base_url="https://localhost",
                        headers={"Referer": "https://localhost/login"},
                        data={"name": "root", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 302
        header = _session_cookie_header(r)
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
        assert "max-age=" in r.headers["Strict-Transport-Security"]
        db.session.remove()
        db.engine.dispose()


def test_login_attempts_per_account_are_limited_across_addresses(app, client, admin):
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"  # only the per-account limit here
    limit = int(app.config["LOGIN_ACCOUNT_RATE_LIMIT"].split()[0])
    token = csrf_from(client.get("/login").get_data(as_text=True))
    codes = [client.post("/login", data={"name": "root", "password": f"guess-{i}",
                                         "csrf_token": token},
                         environ_base={"REMOTE_ADDR": f"10.0.{i // 250}.{i % 250}"}).status_code
             for i in range(limit + 1)]
    assert codes[:limit] == [200] * limit and codes[limit] == 429
    # The page says how long: the per-account limit counts per hour, not per minute.
    r = client.post("/login?lang=zh", data={"name": "root", "password": "guess",
                                            "csrf_token": token},
                    environ_base={"REMOTE_ADDR": "10.8.8.8"})
    html = r.get_data(as_text=True)
    assert r.status_code == 429 and "请在 60 分钟后再试" in html and "一分钟" not in html
    # Another account is not affected.
    r = client.post("/login", data={"name": "someone", "password": "x" * 10, "csrf_token": token},
                    environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert r.status_code == 200
