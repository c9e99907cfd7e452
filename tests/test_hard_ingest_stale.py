"""A device message whose pile time is older than DEDUP_RETENTION_DAYS is refused as
`stale` and counted (issue 20, item 6): its id may already be forgotten by the dedup
ledger, so a redelivery of it would pass as new."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import FaultEvent, IngestCounter, ProcessedMessage, Rejection
from tests.ingest_support import body, incoming, ts

pytestmark = pytest.mark.usefixtures("alley_with_pile")


@pytest.fixture
def app_config(app_config):
    app_config["DEDUP_RETENTION_DAYS"] = 3
    return app_config


def test_older_than_the_dedup_memory_is_stale_and_counted(app, app_ctx):
    now = datetime.now(UTC)
    old = body("fault", ts=ts(now - timedelta(days=3, minutes=1)))
    fresh = body("fault", ts=ts(now - timedelta(days=2, hours=23)))
    reset_clock = body("fault", ts="2000-01-01T00:00:07+08:00")  # a wrong clock, not old
    out = handlers.process([incoming("fault", old, arrived_at=now),
                            incoming("fault", fresh, arrived_at=now),
                            incoming("fault", reset_clock, arrived_at=now)])
    assert out == ["rejected:stale", "accepted", "accepted"]
    assert db.session.get(IngestCounter, "rejected:stale").count == 1
    [rej] = db.session.query(Rejection).all()
    assert rej.reason == "stale" and rej.pile_id == "P-1"
    assert db.session.query(FaultEvent).count() == 2
    assert db.session.query(ProcessedMessage).count() == 2  # the stale id is not recorded
    # Redelivered later, still stale: refused again, never applied.
    assert handlers.process([incoming("fault", old, arrived_at=now)]) == ["rejected:stale"]
