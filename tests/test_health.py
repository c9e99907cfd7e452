"""GET /healthz (200 when the database and the broker answer, 503 naming what does
not) and GET /metrics (Prometheus text, chargers_ names)."""

from __future__ import annotations

from datetime import UTC, datetime

from chargers.services import leases
from tests.brokers import free_port


def test_healthy_with_a_broker_answering(app, client, broker):
    app.config["MQTT_URL"] = broker.backend_env()["MQTT_URL"]
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json["checks"] == {"database": "ok", "mqtt": "ok"} and r.json["failing"] == []


def test_503_names_the_broker_that_does_not_answer(app, client):
    app.config["MQTT_URL"] = f"mqtt://127.0.0.1:{free_port()}"
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json["failing"] == ["mqtt"] and r.json["checks"]["database"] == "ok"


def test_embedded_broker_not_started_is_named(app, client):
    app.config["MQTT_URL"] = ""  # and no broker file written
    r = client.get("/healthz")
    assert r.status_code == 503 and "not started" in r.json["checks"]["mqtt"]


def test_worker_shown_from_its_lease(app, client):
    assert client.get("/healthz").json["worker"] == "not running"
    with app.app_context():
        leases.acquire("worker", "host:1", datetime.now(UTC), 30)
    assert client.get("/healthz").json["worker"] == "running (host:1)"


def test_metrics_are_prometheus_text(client, alley_with_pile):
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    text = r.get_data(as_text=True)
    assert 'chargers_ports{alley="lane",state="offline"} 4.0' in text
    assert "chargers_ingest_duplicates_dropped_total 0.0" in text
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    assert names and all(n.startswith("chargers_") for n in names)
