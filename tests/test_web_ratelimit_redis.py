"""The login limit holds across web processes (issue 13, item 4): 3 gunicorn workers
share the limiter's counts in Redis (127.0.0.1:6379), so an address gets exactly the
limit, not the limit times the number of processes. The app runs as production (which
refuses an in-process store) on a SQLite file, with a user made by the CLI."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest

from tests.brokers import free_port, wait_for_port
from tests.ingest_support import ROOT

redis = pytest.importorskip("redis")
requests = pytest.importorskip("requests")

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT = 6


@pytest.fixture
def redis_prefix():
    try:
        r = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        r.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    prefix = f"chargers-test-{secrets.token_hex(4)}"
    yield prefix
    for key in r.scan_iter(f"*{prefix}*"):
        r.delete(key)
    r.close()


def cli(env, *args, stdin: str | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                         env=env, input=stdin, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture
def gunicorn(tmp_path, redis_prefix):
    env = {**os.environ, "CHARGERS_ENV": "production", "SECRET_KEY": "s" * 32,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite'}",
           "RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": redis_prefix,
           "LOGIN_RATE_LIMIT": f"{LIMIT} per minute", "LOGIN_ACCOUNT_RATE_LIMIT": "1000 per hour",
           "SESSION_COOKIE_SECURE": "0", "MQTT_URL": "mqtt://127.0.0.1:1"}
    cli(env, "db", "upgrade")
    cli(env, "users", "create", "keeper", "--role", "admin", stdin="right-password-123\n")
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "3", "-b", f"127.0.0.1:{port}",
                             "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def attempt(base: str, name: str) -> int:
    """One wrong-password login on a new connection (any worker may take it)."""
    with requests.Session() as s:
        page = s.get(f"{base}/login", timeout=10)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
        token = token or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page.text)
        assert token, page.text[:500]
        r = s.post(f"{base}/login", data={"csrf_token": token.group(1), "name": name,
                                           "password": "wrong-password"}, timeout=10,
                   headers={"Connection": "close"})
        return r.status_code


def test_login_limit_holds_across_three_gunicorn_workers(gunicorn):
    base, proc = gunicorn
    statuses = [attempt(base, f"user{i}") for i in range(3 * LIMIT)]
    assert proc.poll() is None
    assert statuses[:LIMIT] == [200] * LIMIT, statuses
    assert statuses[LIMIT:] == [429] * (2 * LIMIT), statuses
    # Served by several processes, all counting in one place.
    pids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
    assert len(pids.split()) == 3
