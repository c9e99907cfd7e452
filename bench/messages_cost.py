"""What the session messages cost the ingest: session start/stop messages through
chargers.ingest.handlers.process on a throwaway SQLite, in batches of 100, once with
cards nobody holds (no message) and once with every card held by an account hearing by
WeChat and SMS (a start and an end message each, two outbox rows each).

    .venv/bin/python bench/messages_cost.py [sessions]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from chargers import create_app, settings  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.ingest import handlers  # noqa: E402
from chargers.models import (  # noqa: E402
    AccountCard,
    Notification,
    ResidentAccount,
    ResidentChannels,
)
from chargers.services import onboarding  # noqa: E402
from chargers.services.devices import alleys, piles  # noqa: E402
from tests.ingest_support import body, incoming  # noqa: E402

PILES, PORTS = 20, 10


def run(n: int, held: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/b.sqlite",
                          "SECRET_KEY": "b"}, config_name="testing")
        with app.app_context():
            db.create_all()
            alley = onboarding.create_alley(alleys.AlleyInput(slug="b", name="B"),
                                            settings.alley_defaults(app.config))
            for p in range(PILES):
                piles.register_pile(None, piles.PileInput(id=f"B-{p}", alley="b", ports=PORTS))
            if held:
                for c in range(PILES * PORTS):
                    acc = ResidentAccount(alley_id=alley.id, kind="prepaid", phone="13800000000")
                    db.session.add(acc)
                    db.session.flush()
                    db.session.add_all([AccountCard(alley_id=alley.id, account_id=acc.id,
                                                    card=f"K{c}"),
                                        ResidentChannels(resident_id=acc.id, sms=True,
                                                         wechat_openid=f"o{c}", wechat=True,
                                                         night=True)])
            db.session.commit()
            st = settings.ingest(app.config)
            t0 = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
            msgs = []
            for i in range(n):
                pile, port = f"B-{i % PILES}", i // PILES % PORTS + 1
                at = t0 + timedelta(seconds=i)
                ts = at.isoformat()
                msgs.append(incoming("session", body("session", ts=ts, event="start", port=port,
                                                     session=f"S{i}", card=f"K{i % (PILES * PORTS)}",
                                                     meter_wh=0), pile=pile, arrived_at=at))
            stops = []
            for i in range(n):
                pile, port = f"B-{i % PILES}", i // PILES % PORTS + 1
                at = t0 + timedelta(hours=2, seconds=i)
                stops.append(incoming("session", body("session", ts=at.isoformat(), event="stop",
                                                      port=port, session=f"S{i}", energy_wh=500.0,
                                                      reason="full"), pile=pile, arrived_at=at))
            began = time.perf_counter()
            for batch in (msgs, stops):
                for j in range(0, len(batch), 100):
                    chunk = batch[j:j + 100]
                    handlers.process(chunk, st, now=chunk[-1].arrived_at)
            took = time.perf_counter() - began
            rows = db.session.scalar(select(func.count()).select_from(Notification))
            return took, rows


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for held in (False, True):
        took, rows = run(n, held)
        print(f"{'held cards' if held else 'unknown cards'}: {2 * n} session messages in "
              f"{took:.2f} s ({2 * n / took:.0f}/s), {rows} outbox rows")


if __name__ == "__main__":
    main()
