"""The rules of chargers. Web views, MQTT handlers and scheduled jobs call these;
they take plain values (ids, dataclasses, `now`) and own the transaction.

One package per domain, lowest first (a package imports only those above it in this
list, and the shared modules here at the top level):

- `devices/`     alleys, piles and ports as registered; presence; commands to piles;
                 pile secrets and broker logins; QR codes
- `ingest/`      the message log: dedup, `seq` gaps, rejections (the MQTT door's batch
                 lives in chargers/ingest)
- `charging/`    charging sessions from the piles' messages, what residents see of the
                 ports (availability), time left, why a session ended
- `alerts/`      the alert lifecycle, the cut-off tracked until the pile confirms it,
                 notifications (outbox, webhooks, e-mail, SMS), residents' reports
- `billing/`     tariffs, pricing, settlement, the ledger (the only door for money),
                 residents' accounts, the balance guard, monthly close, reminders,
                 reconciliation, exports
- `maintenance/` inspection plans, records and work orders; overstay nudges

Shared, at this level: `errors` (what a service refuses, as a code), `scope` (which
alleys a staff user may see), `users` (staff accounts and API tokens), `leases`,
`jobruns`, `health`, `metrics`, `retention`, `photos`, `desk` (the staff desk's
summary, which reads every domain), and `demo` (the demo alleys, from above).
"""
