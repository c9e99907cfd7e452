"""The registry API: each call's success and every error status of the contract."""

from chargers.extensions import db
from chargers.models import Pile, User
from chargers.services.devices.secrets import verify_secret

from .conftest import bearer


def test_create_alley_and_pile_shows_secret_once_and_stores_hash(app, client, admin):
    _, token = admin
    r = client.post("/api/v1/alleys", json={"slug": "jiuru", "name": "九如巷"},
                    headers=bearer(token))
    assert r.status_code == 201
    assert r.json["slug"] == "jiuru" and r.json["tariff_cents_per_kwh"] == 100
    r = client.post("/api/v1/piles", json={"id": "JRX-001", "alley": "jiuru", "ports": 10,
                                           "label": "1号桩"}, headers=bearer(token))
    assert r.status_code == 201
    secret = r.json["secret"]
    assert len(secret) >= 32
    with app.app_context():
        pile = db.session.get(Pile, "JRX-001")
        assert secret not in pile.secret_hash and pile.secret_hash.startswith("$7$")
        assert verify_secret(secret, pile.secret_hash)
        assert len(pile.ports) == 10
    # never shown again
    r = client.get("/api/v1/piles/JRX-001", headers=bearer(token))
    assert r.status_code == 200 and "secret" not in r.json
    assert secret not in r.get_data(as_text=True)


def test_public_alley_calls(client, alley_with_pile):
    r = client.get("/api/v1/alleys")
    assert r.status_code == 200
    assert r.json == [{"slug": "lane", "name": "Lane", "piles": 1, "ports": 4, "free": 0}]
    r = client.get("/api/v1/alleys/lane")
    pile = r.json["piles"][0]
    assert pile["id"] == "P-1" and pile["online"] is False
    assert [p["port"] for p in pile["ports"]] == [1, 2, 3, 4]
    assert set(pile["ports"][0]) >= {"port", "status", "free", "since"}
    assert client.get("/api/v1/alleys/nope").status_code == 404


def test_errors_are_json_with_contract_shape(client, admin, alley_with_pile):
    _, token = admin
    h = bearer(token)
    cases = [
        (client.post("/api/v1/alleys", data="not json", headers=h,
                     content_type="application/json"), 400),
        (client.post("/api/v1/alleys", json={"slug": "x", "name": "X"}), 401),
        (client.post("/api/v1/alleys", json={"slug": "x", "name": "X"},
                     headers=bearer("chg_wrong")), 401),
        (client.post("/api/v1/alleys", json={"slug": "lane", "name": "Again"}, headers=h), 409),
        (client.post("/api/v1/alleys", json={"slug": "Bad Slug", "name": "X"}, headers=h), 422),
        (client.post("/api/v1/piles", json={"id": "P-2", "alley": "lane", "ports": "4"},
                     headers=h), 422),
        (client.post("/api/v1/piles", json={"id": "P-2", "alley": "lane", "ports": 33},
                     headers=h), 422),
        (client.post("/api/v1/piles", json={"id": "P-2", "alley": "none", "ports": 2},
                     headers=h), 404),
        (client.post("/api/v1/piles", json={"id": "P-1", "alley": "lane", "ports": 2},
                     headers=h), 409),
        (client.get("/api/v1/piles/nope", headers=h), 404),
        (client.get("/api/v1/no/such/path"), 404),
        (client.delete("/api/v1/alleys"), 405),
        (client.get("/api/v1/piles?limit=0", headers=h), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.path, response.json)
        err = response.json["error"]
        assert set(err) == {"code", "message"} and err["message"]


def test_staff_forbidden_to_create_alley(client, make_staff, alley_with_pile):
    _, token = make_staff("wang", ["lane"])
    r = client.post("/api/v1/alleys", json={"slug": "x", "name": "X"}, headers=bearer(token))
    assert r.status_code == 403


def test_staff_scoped_to_their_alleys(client, admin, make_staff, alley_with_pile):
    _, admin_token = admin
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"},
                headers=bearer(admin_token))
    _, token = make_staff("li", ["other"])
    h = bearer(token)
    assert client.get("/api/v1/piles/P-1", headers=h).status_code == 404
    assert client.patch("/api/v1/piles/P-1", json={"label": "x"}, headers=h).status_code == 404
    assert client.post("/api/v1/piles/P-1/secret", headers=h).status_code == 404
    assert client.post("/api/v1/piles", json={"id": "P-9", "alley": "lane", "ports": 2},
                       headers=h).status_code == 404
    assert client.patch("/api/v1/alleys/lane", json={"name": "x"}, headers=h).status_code == 404
    assert client.get("/api/v1/piles", headers=h).json == []


def test_update_disable_rotate_and_list(app, client, admin, alley_with_pile):
    _, token = admin
    h = bearer(token)
    r = client.patch("/api/v1/piles/P-1", json={"label": "东口", "ports": 6}, headers=h)
    assert r.status_code == 200 and r.json["label"] == "东口" and r.json["ports"] == 6
    assert len(r.json["port_states"]) == 6
    assert client.post("/api/v1/piles/P-1/disable", headers=h).json["enabled"] is False
    assert client.get("/api/v1/alleys/lane").json["piles"][0]["ports"][0]["state"] == "out_of_service"
    assert client.post("/api/v1/piles/P-1/enable", headers=h).json["enabled"] is True
    with app.app_context():
        old = db.session.get(Pile, "P-1").secret_hash
    r = client.post("/api/v1/piles/P-1/secret", headers=h)
    with app.app_context():
        new_hash = db.session.get(Pile, "P-1").secret_hash
    assert new_hash != old and verify_secret(r.json["secret"], new_hash)
    client.post("/api/v1/piles", json={"id": "P-2", "alley": "lane", "ports": 2}, headers=h)
    ids = [p["id"] for p in client.get("/api/v1/piles", headers=h).json]
    assert ids == ["P-2", "P-1"]  # newest first
    assert [p["id"] for p in client.get("/api/v1/piles?limit=1&offset=1", headers=h).json] == ["P-1"]
    r = client.patch("/api/v1/alleys/lane", json={"tariff_cents_per_kwh": 120}, headers=h)
    assert r.status_code == 200 and r.json["tariff_cents_per_kwh"] == 120


def test_revoked_token_is_refused(app, client, admin, runner):
    user, token = admin
    assert client.get("/api/v1/piles", headers=bearer(token)).status_code == 200
    from chargers.services import users

    with app.app_context():
        user = db.session.get(User, user.id)
        users.revoke_token(user, user.tokens[0].id)
    assert client.get("/api/v1/piles", headers=bearer(token)).status_code == 401


def test_openapi_document_is_served(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.json["openapi"].startswith("3.")
    assert "/alleys" in r.json["paths"]
