"""Account lifecycle (issue 20, item 7): a password reset and a disable revoke the
account's API tokens (enabling again does not bring them back); disable and enable are
two actions, not a toggle (a repeated click does not undo the first)."""

from __future__ import annotations

from chargers.extensions import db
from chargers.models import ApiToken, User
from chargers.services import users

from .conftest import bearer
from .webtools import csrf_from, login, post_form


def _wang(app) -> tuple[int, str]:
    with app.app_context():
        user = users.create_user("wang", "long-enough-pw", "admin")
        return user.id, users.issue_token(user)


def test_password_reset_revokes_api_tokens(app, client, admin):
    uid, token = _wang(app)
    assert client.get("/api/v1/alerts", headers=bearer(token)).status_code == 200
    login(client, "root")
    assert post_form(client, f"/staff/accounts/{uid}/password", {"password": "another-pw-123"},
                     form_url=f"/staff/accounts/{uid}").status_code == 302
    assert client.get("/api/v1/alerts", headers=bearer(token)).status_code == 401
    with app.app_context():
        assert all(t.revoked_at for t in db.session.query(ApiToken).filter_by(user_id=uid))


def test_disable_and_enable_are_two_actions_and_disable_revokes_tokens(app, client, admin):
    uid, token = _wang(app)
    login(client, "root")
    page = client.get(f"/staff/accounts/{uid}?lang=en").get_data(as_text=True)
    assert f'action="/staff/accounts/{uid}/disable"' in page
    assert f'action="/staff/accounts/{uid}/enable"' not in page
    csrf = csrf_from(page)
    for _ in range(2):  # a double click leaves it disabled
        assert client.post(f"/staff/accounts/{uid}/disable",
                           data={"csrf_token": csrf}).status_code == 302
        with app.app_context():
            assert db.session.get(User, uid).active is False
    page = client.get(f"/staff/accounts/{uid}?lang=en").get_data(as_text=True)
    assert f'action="/staff/accounts/{uid}/enable"' in page
    for _ in range(2):
        client.post(f"/staff/accounts/{uid}/enable", data={"csrf_token": csrf})
        with app.app_context():
            assert db.session.get(User, uid).active is True
    # Enabled again: the old token stays revoked; a new one works.
    assert client.get("/api/v1/alerts", headers=bearer(token)).status_code == 401
    with app.app_context():
        fresh = users.issue_token(db.session.get(User, uid))
    assert client.get("/api/v1/alerts", headers=bearer(fresh)).status_code == 200
    assert client.post(f"/staff/accounts/{uid}/active", data={"csrf_token": csrf}).status_code \
        in (404, 405)
