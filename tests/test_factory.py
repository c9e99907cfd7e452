"""The factory: testing config applies, and building the app opens nothing."""

import socket
import threading
import time

from chargers import create_app


def test_testing_config(app):
    assert app.testing


def test_factory_opens_no_socket_and_starts_no_thread(tmp_path, monkeypatch):
    opened = []
    real_connect = socket.socket.connect

    def spy(self, *args, **kwargs):
        opened.append(args)
        return real_connect(self, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", spy)
    threads_before = set(threading.enumerate())
    create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"}, "testing")
    assert opened == []
    # The rate limiter's in-memory store runs a one-shot 10 ms expiry timer; nothing
    # the factory starts may still be running a moment later (no MQTT, no scheduler).
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - threads_before == set()


def test_production_refuses_without_secrets(monkeypatch):
    import pytest

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(config_name="production")


def test_production_refuses_an_in_process_rate_limit_store(monkeypatch):
    import pytest

    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://127.0.0.1/test")
    for value in (None, "memory://", ""):
        if value is None:
            monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
        else:
            monkeypatch.setenv("RATELIMIT_STORAGE_URI", value)
        with pytest.raises(RuntimeError, match="RATELIMIT_STORAGE_URI"):
            create_app(config_name="production")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    create_app(config_name="production")  # starts (no socket opened by create_app)
