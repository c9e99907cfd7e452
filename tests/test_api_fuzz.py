"""The API fuzzed with schemathesis against the OpenAPI document it serves (issue 13),
on SQLite and on PostgreSQL (a throwaway schema in database `test`): every operation,
valid and invalid requests, a bounded number of examples each. Nothing answers 500,
every error has the contract's shape, every status, header, content type and body is
the one the document states."""

from __future__ import annotations

import os
import traceback

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.core.failures import Failure

from chargers import settings as app_settings
from chargers.extensions import db
from tests.conftest import bearer
from tests.pg_schema import on_sqlite_and_postgresql

STATS: list[tuple[str, int]] = []  # (operation, status) of every call
MAX_EXAMPLES = int(os.environ.get("CHARGERS_FUZZ_EXAMPLES", "8"))


# The app on SQLite, then on PostgreSQL (a throwaway schema).
app_config = on_sqlite_and_postgresql("chargers_fuzz")


class ErrorShape(Failure):
    def __init__(self, status: int, body: str):
        super().__init__(operation="", title="Error not in the contract's shape",
                         message=f"{status}: {body[:300]}", code="error_shape")


def error_shape(ctx, response, case):
    """Every 4xx/5xx answer is JSON {"error": {"code": str, "message": str}}."""
    if response.status_code < 400:
        return True
    try:
        data = response.json()
        err = data["error"]
        ok = (set(data) == {"error"} and set(err) == {"code", "message"}
              and isinstance(err["code"], str) and isinstance(err["message"], str))
    except Exception:  # noqa: BLE001 - not JSON, or not that shape
        ok = False
    if not ok:
        raise ErrorShape(response.status_code, response.text)
    return True


KNOWN = {"slug": "lane", "pile_id": "P-1", "alert_id": 1, "contact_id": 1}

CHECK_NAMES = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_headers_conformance", "response_schema_conformance")


def checks():
    found = {c.__name__: c for c in CHECKS.get_all()}
    return [found[n] for n in CHECK_NAMES] + [error_shape]


@pytest.fixture
def seeded(app, client, admin, make_staff, alley_with_pile):
    """Data for the fuzzer to find: an alley, a pile, an alert, a contact; admin token."""
    _, token = admin
    with app.app_context():
        from datetime import UTC, datetime

        from chargers.models import Alert, Pile
        from chargers.services.alerts import lifecycle as alerts

        now = datetime.now(UTC)
        alerts.record_fault(db.session.get(Pile, "P-1"), port=1, code="over_current",
                            active=True, value=None, detail=None, at=now, time_source="device",
                            received_at=now, now=now, rules=app_settings.alerts(app.config))
        db.session.commit()
        assert db.session.query(Alert).count() == 1
    make_staff("scoped", ["lane"])
    r = client.post("/api/v1/alleys/lane/contacts", headers=bearer(token),
                    json={"name": "Duty", "channel": "email", "target": "duty@example.org"})
    assert r.status_code == 201, r.json
    return token


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_fuzz(app, seeded, mode):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)  # the served one
    STATS.clear()
    token = seeded
    failures = []
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) > 10
    for operation in operations:
        known = {p.name: KNOWN[p.name] for p in operation.path_parameters if p.name in KNOWN}
        try:
            strategy = operation.as_strategy(generation_mode=mode)
            if known and mode == GenerationMode.POSITIVE:  # also hit rows that exist
                strategy = strategy | operation.as_strategy(generation_mode=mode,
                                                            path_parameters=known)
        except Exception as exc:  # noqa: BLE001 - an operation with no invalid form
            if mode == GenerationMode.NEGATIVE:
                continue
            raise AssertionError(f"{operation.label}: {exc}") from exc

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case):
            headers = bearer(token)
            response = case.call(headers=headers)
            STATS.append((case.operation.label, response.status_code))
            case.validate_response(response, checks=checks(), headers=headers)

        try:
            run()
        except Unsatisfiable:  # no invalid request exists (an operation with no inputs)
            assert mode == GenerationMode.NEGATIVE, operation.label
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - collect every operation's failure
            text = "".join(traceback.format_exception(exc))
            failures.append(f"--- {operation.label}\n{text[-2500:]}")
    if mode == GenerationMode.POSITIVE:  # the token works: most operations succeeded
        succeeded = {label for label, status in STATS if status < 300}
        assert len(succeeded) >= len(operations) // 2, sorted(succeeded)
    assert not failures, f"{len(failures)} operations failed:\n" + "\n".join(failures)
