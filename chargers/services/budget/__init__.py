"""The alley's power budget: ask before switching on (device protocol v1.1 `authorize`),
admission under the feeder's limit, a fair queue, and the over-limit stop.

- `feeder`: the alley's limit and margin, the load now (the sum of the charging
  sessions' last readings), the expected draw of sessions admitted but not yet
  reporting, the headroom; the per-alley lock that serializes admission (a
  transaction advisory lock on PostgreSQL, nothing on SQLite); the day's samples, the
  evening peak and how many more ports the supply takes.
- `allowance`: what a balance and the tariff cover, as `max_wh` and `max_minutes`.
- `admission`: the answer to an `authorize` (rejected with its reason, accepted with
  its limits, or queued with its place), recorded (models.Authorization) and sent as
  an `authorize` command on the pile's `cmd` topic.
- `queue`: first come first served per alley; `start` for the first resident still
  plugged in when headroom appears, a resident whose bike left dropped, a queued
  session that began told to its holder; places and waiting times for the pages.
- `overload`: the load above the limit for more than N readings stops the newest
  sessions, tells their holders and raises an `over_budget` alert.

May import: models, constants, settings, protocol, and the services devices, charging,
alerts, billing and safety (never a door). The ingest calls `admission.on_authorize`,
`queue.on_session_start`, `queue.on_port_status` and `queue.on_ack` inside its batch
(no commit); the jobs call `queue.dispatch` and `overload.check` (they commit).
"""
