"""Settlement throughput: the `settle` service over N finished sessions, beside a plain
SQL pass over the same rows, on SQLite and PostgreSQL; then a second run that must
change nothing.

    .venv/bin/python bench/settle_bench.py [--sessions 1000000] [--db sqlite,postgres]
        [--batch 2000] [--accounts 1000]

Each database is a throwaway one (bench/_harness.Database), migrated with
`flask db upgrade`. Sessions are bulk-inserted (a flat_hour tariff; 1 in 50 sessions
with no card so the review list is exercised; every other one on a prepaid account
with enough money). Figures:

- plain SQL pass: one `UPDATE ... SET energy_cents = round(...), service_cents = ...,
  amount_cents = ...` over the same finished rows (no ledger, no Python), timed, then
  undone (untimed) so settlement starts from the same state;
- plain client pass: the same rows read in batches into Python, the amounts computed
  with integers and written back by one executemany UPDATE per batch (no rules, no
  ledger), timed, then undone;
- plain pass with the same writes: the same rows read in batches, the amounts computed
  with integers, and every write settle makes per session made with the same statements
  (chargers.models.bulk): the same session columns (a bill of the same keys, a receipt
  token), one posting (ids back by key) and its ledger entries; no claim, pricing, payer,
  review list, prepaid limit or balance moves. Timed, then undone (untimed);
- settle: `settlement.settle(now)` in process, batches of --batch sessions each in one
  transaction (claim, price, post, commit), sessions per second, and its time as a ratio
  to each pass above (`ratio_to_plain`, `ratio_to_plain_client`, `ratio_to_plain_writes`);
- second run: settle again; it must settle 0 sessions and write no posting, and
  `ledger.verify()` must report nothing.

The issue's aim ("the settle no more than a few times the plain pass") is judged
against the plain pass with the same writes: settlement must write a posting and its
entries per session (that is what makes it exactly-once and auditable), and those rows,
their indexes and foreign keys cost the same with or without rules; the ratio to it is
what the rules and their bookkeeping add. The other two passes write three integers
per row and no ledger, so their ratios mostly measure the ledger, not settlement; they
are kept as the floor.

Figures are merged into bench/results.json (a flat JSON object); `--profile` (cProfile of
the settle run) and `--no-baselines` runs are printed, not merged.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results.json"
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def seed(app, n: int, accounts: int) -> None:
    """One alley, 20 piles, `accounts` prepaid accounts with money, n finished sessions."""
    from sqlalchemy import insert, select

    from chargers import settings
    from chargers.extensions import db
    from chargers.models import Alley, ChargingSession, Tariff, User
    from chargers.services import onboarding, users
    from chargers.services.billing import accounts as residents
    from chargers.services.billing import ledger
    from chargers.services.devices import alleys, piles

    with app.app_context():
        admin = users.create_user("bench", "correct-horse-battery", "admin")
        onboarding.create_alley(alleys.AlleyInput(slug="bench", name="Bench"),
                            settings.alley_defaults(app.config), by=admin)
        for i in range(20):
            piles.register_pile(admin, piles.PileInput(id=f"B-{i:02d}", alley="bench", ports=10))
        alley = db.session.scalar(select(Alley))
        t = db.session.scalar(select(Tariff).where(Tariff.alley_id == alley.id))
        t.effective_from = T0 - timedelta(days=1)
        t.electricity_cents_per_kwh, t.service_scheme, t.service_cents = 60, "flat_hour", 40
        t.step_minutes, t.free_minutes, t.minimum_cents, t.cap_cents = 30, 3, 10, 800
        db.session.commit()
        admin = db.session.scalar(select(User))
        for a in range(accounts):
            acc = residents.create_account(admin, residents.AccountInput(
                alley="bench", cards=[f"K{a:05d}"]), T0)
            for _ in range(max(1, n // accounts // 1000)):  # ~ 10 yuan a session
                residents.top_up(admin, acc.id, 1_000_000, "bank", None, T0)
        ledger.verify()
        table = ChargingSession.__table__
        chunk = []
        for i in range(n):
            start = T0 + timedelta(seconds=i * 7)
            minutes = 5 + (i * 37) % 600
            chunk.append({
                "pile_id": f"B-{i % 20:02d}", "port": 1 + (i // 20) % 10,
                "session_ref": f"s{i}", "card": None if i % 50 == 0 else f"K{i % accounts:05d}",
                "status": "stopped", "started_at": start,
                "ended_at": start + timedelta(minutes=minutes), "start_meter_wh": 0.0,
                "energy_wh": float(minutes * 5), "stop_reason": "unplugged",
                "time_source": "device", "created_at": start})
            if len(chunk) == 10_000:
                db.session.execute(insert(table), chunk)
                db.session.commit()
                chunk = []
        if chunk:
            db.session.execute(insert(table), chunk)
            db.session.commit()


PLAIN = """
UPDATE charging_sessions SET
  energy_cents = CAST(ROUND(energy_wh * 60 / 1000.0) AS INTEGER),
  service_cents = CAST(ROUND(40 * 30 * ((julianday_minutes + 29) / 30) / 60.0) AS INTEGER),
  amount_cents = CAST(ROUND(energy_wh * 60 / 1000.0) AS INTEGER)
                 + CAST(ROUND(40 * 30 * ((julianday_minutes + 29) / 30) / 60.0) AS INTEGER)
WHERE settled_at IS NULL AND status IN ('stopped', 'timeout')
"""


def plain_pass(app, kind: str) -> tuple[float, int]:
    """The same rows priced by one SQL statement (electricity + stepped flat service)."""
    from sqlalchemy import text

    from chargers.extensions import db

    minutes = ("CAST((julianday(ended_at) - julianday(started_at)) * 1440 AS INTEGER)"
               if kind == "sqlite" else
               "CAST(EXTRACT(EPOCH FROM (ended_at - started_at)) / 60 AS INTEGER)")
    sql = PLAIN.replace("julianday_minutes", minutes)
    with app.app_context():
        t = time.perf_counter()
        n = db.session.execute(text(sql)).rowcount
        db.session.commit()
        took = time.perf_counter() - t
        db.session.execute(text("UPDATE charging_sessions SET energy_cents = NULL, "
                                "service_cents = NULL, amount_cents = NULL"))
        db.session.commit()
    return took, n


def _unsettled_batches(batch: int):
    """The unsettled sessions (id, energy, start, end) in id order, `batch` at a time;
    the caller writes and commits each batch before asking for the next."""
    from sqlalchemy import select

    from chargers.extensions import db
    from chargers.models import ChargingSession as CS

    last = 0
    while True:
        rows = db.session.execute(
            select(CS.id, CS.energy_wh, CS.started_at, CS.ended_at)
            .where(CS.id > last, CS.settled_at.is_(None)).order_by(CS.id).limit(batch)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _plain_amounts(r) -> tuple[int, int, int]:
    """(electricity fen, service fen, seconds) of a row under the seeded flat tariff, in
    plain integers and no rules: 60 fen/kWh; 40 fen/h by started half hour."""
    duration = int((r.ended_at - r.started_at).total_seconds())
    e = (int(r.energy_wh) * 60 + 500) // 1000
    return e, (-(-duration // 1800) * 30 * 40 + 30) // 60, duration


def plain_client_pass(app, batch: int) -> float:
    """The same rows through the client with no rules: read them in batches, compute the
    three amounts in Python (integers), write them back with one executemany UPDATE per
    batch and commit per batch (what settlement does, minus pricing and the ledger)."""
    from sqlalchemy import bindparam, text, update

    from chargers.extensions import db
    from chargers.models import ChargingSession as CS

    t_ = CS.__table__
    stmt = update(t_).where(t_.c.id == bindparam("b_id")).values(
        energy_cents=bindparam("b_e"), service_cents=bindparam("b_s"),
        amount_cents=bindparam("b_a"))
    with app.app_context():
        t = time.perf_counter()
        for rows in _unsettled_batches(batch):
            values = []
            for r in rows:
                e, s_, _ = _plain_amounts(r)
                values.append({"b_id": r.id, "b_e": e, "b_s": s_, "b_a": e + s_})
            db.session.execute(stmt, values)
            db.session.commit()
        took = time.perf_counter() - t
        db.session.execute(text("UPDATE charging_sessions SET energy_cents = NULL, "
                                "service_cents = NULL, amount_cents = NULL"))
        db.session.commit()
    return took


def plain_writes_pass(app, batch: int, kind: str) -> float:
    """The same rows with the same writes and no rules: read them in batches, compute the
    three amounts with integers, write the same session columns (settled_at, amounts, a
    bill dict of the same keys, a receipt token, ...) and insert one posting (ids back by
    key) and its three ledger entries per session, with the statements settlement uses
    (chargers.models.bulk), one commit per batch. No claim, pricing, payer, review,
    prepaid limit or balance move. Timed, then undone (untimed, and VACUUM on PostgreSQL
    so settle does not pay for the dead rows)."""
    import secrets

    from sqlalchemy import select, text

    from chargers.extensions import db
    from chargers.models import Alley, LedgerEntry, Posting, bulk
    from chargers.models import ChargingSession as CS
    from chargers.services.billing import ledger, settlement

    with app.app_context():
        alley_id = db.session.scalar(select(Alley.id))
        acc = [ledger.account(alley_id, k).id for k in ("covered", "electricity", "service")]
        db.session.commit()
        t = time.perf_counter()
        for rows in _unsettled_batches(batch):
            now = T0 + timedelta(days=365)
            updates, postings, lines = [], [], []
            for r in rows:
                e, s_, duration = _plain_amounts(r)
                bill = dict.fromkeys(BILL_KEYS, 0)
                bill.update(energy_cents=e, service_cents=s_, amount_cents=e + s_,
                            duration_s=duration, rules=[])
                updates.append({"id": r.id, "settled_at": now, "energy_cents": e,
                                "service_cents": s_, "amount_cents": e + s_, "tariff_id": None,
                                "tariff_cents_per_kwh": 60, "tier": None,
                                "tier_evidence": None, "bill": bill,
                                "receipt_token": secrets.token_urlsafe(16),
                                "billing": "charged", "account_id": None})
                postings.append({"key": f"plain:{r.id}", "kind": "charge",
                                 "alley_id": alley_id, "session_id": r.id, "reverses_id": None,
                                 "method": None, "receipt": None, "reason": "",
                                 "created_at": now, "created_by": None})
                lines.append((-(e + s_), e, s_))
            bulk.update_many(CS.__table__, updates, ("settled_at", *settlement._WRITTEN))
            ids = dict(bulk.insert_many(Posting.__table__, postings, returning=("key", "id")))
            bulk.insert_many(LedgerEntry.__table__, [
                {"posting_id": ids[p["key"]], "account_id": a, "amount_cents": c}
                for p, amounts in zip(postings, lines, strict=True)
                for a, c in zip(acc, amounts, strict=True) if c])
            db.session.commit()
        took = time.perf_counter() - t
        db.session.execute(text("DELETE FROM ledger_entries WHERE posting_id IN "
                                "(SELECT id FROM postings WHERE key LIKE 'plain:%')"))
        # Deleting a posting checks postings.reverses_id (a self reference with no index:
        # postings are never deleted in use); without this index the undo is quadratic.
        db.session.execute(text("CREATE INDEX bench_undo ON postings (reverses_id)"))
        db.session.execute(text("DELETE FROM postings WHERE key LIKE 'plain:%'"))
        db.session.execute(text("DROP INDEX bench_undo"))
        db.session.execute(text("UPDATE charging_sessions SET " + ", ".join(
            f"{c} = NULL" for c in ("settled_at", *settlement._WRITTEN))))
        db.session.commit()
        if kind == "postgres":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))
    return took


# The keys of a settled session's `bill` (pricing.Priced without tier_evidence).
BILL_KEYS = ("energy_cents", "service_cents", "amount_cents", "energy_wh",
             "electricity_cents_per_kwh", "service_scheme", "service_unit_cents",
             "service_quantity", "duration_s", "billable_s", "charged_minutes", "step_minutes",
             "tier", "tier_max_w", "full_at", "rules", "tariff_id")


def run(kind: str, n: int, batch: int, accounts: int, profile: bool = False,
        baselines: bool = True) -> dict:
    from sqlalchemy import func, select

    from chargers import create_app
    from chargers.extensions import db
    from chargers.models import ChargingSession, Posting
    from chargers.services.billing import ledger, settlement

    with tempfile.TemporaryDirectory() as tmp:
        database = h.Database(kind, Path(tmp))
        try:
            env = h.app_env(database.url, "mqtt://127.0.0.1:1", Path(tmp))
            import subprocess

            subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                           cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=300)
            app = create_app({"SQLALCHEMY_DATABASE_URI": database.url, "SECRET_KEY": "bench",
                              "MQTT_URL": ""}, config_name="development")
            t = time.perf_counter()
            seed(app, n, accounts)
            seed_s = time.perf_counter() - t
            plain_s, plain_rows, client_s, writes_s = 0.0, n, 0.0, 0.0
            if baselines:
                plain_s, plain_rows = plain_pass(app, kind)
                client_s = plain_client_pass(app, batch)
                writes_s = plain_writes_pass(app, batch, kind)
            with app.app_context():
                now = T0 + timedelta(days=365)
                prof = None
                if profile:
                    import cProfile

                    prof = cProfile.Profile()
                    prof.enable()
                t = time.perf_counter()
                counts = settlement.settle(now, settlement.SettleRule(batch_size=batch))
                settle_s = time.perf_counter() - t
                if prof:
                    import pstats

                    prof.disable()
                    st = pstats.Stats(prof).strip_dirs()
                    st.sort_stats("tottime").print_stats(35)
                    st.sort_stats("cumulative").print_stats(45)
                settled = sum(counts.values())
                postings = db.session.scalar(select(func.count()).select_from(Posting))
                t = time.perf_counter()
                again = settlement.settle(now, settlement.SettleRule(batch_size=batch))
                again_s = time.perf_counter() - t
                postings_after = db.session.scalar(select(func.count()).select_from(Posting))
                unsettled = db.session.scalar(select(func.count()).select_from(ChargingSession)
                                              .where(ChargingSession.settled_at.is_(None)))
                t = time.perf_counter()
                problems = ledger.verify()
                verify_s = time.perf_counter() - t
                db.session.remove()
                db.engine.dispose()
        finally:
            database.close()
    return {
        "sessions": n, "seed_s": round(seed_s, 1), "plain_rows": plain_rows,
        "plain_s": round(plain_s, 2),
        "plain_rows_per_s": round(plain_rows / plain_s) if plain_s else None,
        "plain_client_s": round(client_s, 2),
        "plain_client_rows_per_s": round(plain_rows / client_s) if client_s else None,
        "plain_writes_s": round(writes_s, 2),
        "plain_writes_rows_per_s": round(plain_rows / writes_s) if writes_s else None,
        "settled": settled, "counts": dict(counts), "settle_s": round(settle_s, 1),
        "settle_sessions_per_s": round(settled / settle_s) if settle_s else None,
        "ratio_to_plain": round(settle_s / plain_s, 1) if plain_s else None,
        "ratio_to_plain_client": round(settle_s / client_s, 1) if client_s else None,
        "ratio_to_plain_writes": round(settle_s / writes_s, 1) if writes_s else None,
        "second_run_settled": sum(again.values()), "second_run_s": round(again_s, 2),
        "postings_changed_by_second_run": postings_after - postings,
        "unsettled_left": unsettled, "verify_problems": len(problems),
        "verify_s": round(verify_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1_000_000)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the settle run and print the top functions")
    ap.add_argument("--no-baselines", action="store_true",
                    help="skip the plain passes (with --profile; figures not merged)")
    args = ap.parse_args()
    out = {}
    print(h.load_note(), "·", h.python())
    for kind in args.db.split(","):
        if kind == "postgres" and (why := h.Database.postgres_reachable()):
            print(f"postgres skipped: {why}")
            continue
        r = run(kind, args.sessions, args.batch, args.accounts, args.profile,
                not args.no_baselines)
        print(kind, json.dumps(r))
        if args.profile or args.no_baselines:
            continue  # a profiled run's figures are not the benchmark's
        for k, v in r.items():
            if isinstance(v, int | float):
                out[f"settle_{kind}_{k}"] = v
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(out)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print("merged into", RESULTS)


if __name__ == "__main__":
    main()
