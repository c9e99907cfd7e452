"""`flask seed-demo`: the demo alleys, their piles, residents and past, and a first admin."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app

from .. import settings
from ..models import utcnow
from ..services import demo


@click.command("seed-demo")
def seed_demo():
    """Create the demo alleys (九如巷, 体育场路), their piles, the residents' accounts
    for the simulator's cards and a few weeks of their past (once)."""
    config = current_app.config
    secrets_file = Path(current_app.instance_path) / "demo-pile-secrets.json"
    rules = demo.DemoRules(settings.alley_defaults(config), settings.close(config),
                           settings.settle(config))
    summary = demo.seed(secrets_file, rules, utcnow())
    click.echo(f"demo: {summary['piles']} piles ({summary['piles_created']} new); "
               f"pile secrets in {secrets_file}")
    for a in summary["alleys"]:
        published = ", ".join(a.published) or "none"
        click.echo(f"demo {a.slug}: {a.accounts} accounts ({a.cards} cards), "
                   f"{a.sessions} past sessions settled ({a.new_sessions} new), "
                   f"months published: {published}; {a.records} inspection records, "
                   f"{a.open_orders} open work orders")
    click.echo(f"demo seeded in {summary['seconds']:.1f} s")
    base = config.get("PUBLIC_BASE_URL", "").rstrip("/")
    if summary["admin_login"]:
        name, password = summary["admin_login"]
        click.echo(f"demo staff login: {name} / {password}  ({base}/staff/)")
    for a in summary["alleys"]:
        card, last4 = a.demo_card
        if card:
            click.echo(f"demo 我的账户 (my account): {base}/a/{a.slug}/account  "
                       f"card {card}, phone last 4 digits {last4}")
            break
