"""`flask billing verify`: recompute every balance from the ledger."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

billing_group = AppGroup("billing", help="Billing: check the ledger.")


@billing_group.command("verify")
def verify():
    """Recompute every balance from the ledger entries; exit 0 when all agree,
    1 naming each difference."""
    from ..services.billing import ledger

    problems = ledger.verify()
    for p in problems:
        click.echo(p)
    if problems:
        click.echo(f"{len(problems)} difference(s)", err=True)
        sys.exit(1)
    click.echo("ledger ok: every posting balances, every balance equals its entries")
