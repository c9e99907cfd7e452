"""Every `flask --app wsgi …` command of the project, one module per area:
`users` (staff accounts and tokens), `demo` (seed-demo), `worker` (worker, jobs),
`devices` (broker, mqtt-auth, simulate), `billing` (billing verify). Commands are doors
like the web: they parse arguments and call services (or the worker/simulator runtimes)."""

from __future__ import annotations

from flask import Flask

from . import billing, demo, devices, users, worker


def init_app(app: Flask) -> None:
    """Register every command."""
    app.cli.add_command(users.users)
    app.cli.add_command(demo.seed_demo)
    app.cli.add_command(worker.worker_command)
    app.cli.add_command(worker.jobs_group)
    app.cli.add_command(devices.broker_command)
    app.cli.add_command(devices.mqtt_auth_command)
    app.cli.add_command(devices.simulate_command)
    app.cli.add_command(billing.billing_group)
