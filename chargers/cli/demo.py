"""`flask seed-demo`: the demo alleys, their piles and a first admin."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app

from .. import settings
from ..services import demo


@click.command("seed-demo")
def seed_demo():
    """Create the demo alleys (九如巷, 体育场路) and their piles."""
    secrets_file = Path(current_app.instance_path) / "demo-pile-secrets.json"
    summary = demo.seed(secrets_file, settings.alley_defaults(current_app.config))
    click.echo(f"demo: {summary['piles']} piles ({summary['piles_created']} new); "
               f"pile secrets in {secrets_file}")
    if summary["admin_created"]:
        click.echo(f"demo staff login: {demo.DEMO_ADMIN[0]} / {demo.DEMO_ADMIN[1]}")
