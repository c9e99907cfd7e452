"""Dates in the alley's day (issue 19 item 2): nothing in chargers/ reads the server's
local date or time, and no time zone is written in code outside config/ and
chargers/settings.py (alleys carry their own zone: services/alleys.zone).

The scan reads the source with `ast`, so comments and docstrings never count and
a string that merely mentions a zone inside a sentence is not a zone literal."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "chargers"
ZONE = re.compile(r"^(Africa|America|Antarctica|Asia|Atlantic|Australia|Europe|Indian|Pacific|"
                  r"Etc)/[A-Za-z_+\-0-9]+(/[A-Za-z_]+)?$")
ZONE_ALLOWED = {ROOT / "settings.py"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return ""


def server_time_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for each reading of the server's local date or time, and each zone
    literal, in this Python source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            tail = ".".join(name.split(".")[-2:])
            has_tz = bool(node.keywords) and any(k.arg == "tz" for k in node.keywords)
            if tail in ("date.today", "datetime.today", "datetime.utcnow",
                        "datetime.utcfromtimestamp", "time.localtime", "time.ctime"):
                found.append((node.lineno, f"{tail}()"))
            elif tail == "datetime.now" and not node.args and not has_tz:
                found.append((node.lineno, "datetime.now() without a zone"))
            elif tail == "datetime.fromtimestamp" and len(node.args) < 2 and not has_tz:
                found.append((node.lineno, "datetime.fromtimestamp() without a zone"))
            elif tail == "time.strftime" and len(node.args) < 2:
                found.append((node.lineno, "time.strftime() of the local time"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ZONE.match(node.value):
            found.append((node.lineno, f"zone literal {node.value!r}"))
    return sorted(found)


def test_the_scan_finds_what_it_looks_for():
    src = ("from datetime import date, datetime, UTC\nimport time, datetime as dt\n"
           "a = date.today()\nb = datetime.now()\nc = datetime.utcnow()\n"
           "d = dt.datetime.now()\ne = ZoneInfo('Asia/Shanghai')\nf = time.localtime()\n"
           "g = datetime.fromtimestamp(5)\n"
           "ok = datetime.now(UTC)\nok2 = datetime.now(tz=UTC)\nok3 = 'e.g. Asia/Shanghai'\n"
           "ok4 = datetime.fromtimestamp(5, UTC)\n")
    assert [line for line, _ in server_time_uses(src)] == [3, 4, 5, 6, 7, 8, 9]


def test_no_server_local_time_and_no_zone_in_code():
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        for line, what in server_time_uses(path.read_text(encoding="utf-8")):
            if what.startswith("zone literal") and path in ZONE_ALLOWED:
                continue
            problems.append(f"{path.relative_to(ROOT.parent)}:{line}: {what}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("server_zone", ["America/Los_Angeles", "Pacific/Kiritimati"])
def test_inspection_records_default_to_the_alleys_day(app, client, monkeypatch, server_zone):
    """The records list's default period ends on the alley's today, whatever the
    server's local zone: at 2026-03-01 01:30 in Shanghai (17:30 UTC the day before, a
    fixed instant: nothing here reads the calendar), Los Angeles still has 28 February
    and Kiritimati 1 March at 07:30. The admin, the alley and its pile are made at that
    instant too, so the test reads no calendar at all."""
    import time_machine

    from chargers.services import users

    from .conftest import PASSWORD, bearer
    from .webtools import login

    monkeypatch.setenv("TZ", server_zone)
    import time as _time
    _time.tzset()
    try:
        with time_machine.travel(datetime(2026, 2, 28, 17, 30, tzinfo=UTC), tick=False):
            with app.app_context():
                token = users.issue_token(users.create_user("root", PASSWORD, "admin"))
            for path, body in (("/api/v1/alleys", {"slug": "lane", "name": "Lane"}),
                               ("/api/v1/piles", {"id": "P-1", "alley": "lane", "ports": 4})):
                assert client.post(path, json=body, headers=bearer(token)).status_code == 201
            login(client, "root")
            html = client.get("/staff/maintenance/records?alley=lane").get_data(as_text=True)
            assert 'value="2026-03-01"' in html and 'value="2026-01-30"' in html
    finally:
        monkeypatch.delenv("TZ")
        _time.tzset()
