"""`flask users …`: staff accounts and their API tokens."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from ..services import users as accounts
from ..services.errors import DomainError

users = AppGroup("users", help="Staff accounts.")


def _fail(exc: DomainError):
    raise click.ClickException(exc.message)


@users.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "staff"]), required=True)
@click.option("--alley", "alleys", multiple=True, help="Alley slug (repeatable) for staff.")
@click.option("--token", is_flag=True, help="Also print a new API token as the last line.")
def users_create(name, role, alleys, token):
    """Create a staff account; the password is read from stdin."""
    password = sys.stdin.readline().rstrip("\r\n") if not sys.stdin.isatty() else click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    try:
        user = accounts.create_user(name, password, role, list(alleys))
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created {role} {user.name}" + (f" for {', '.join(alleys)}" if alleys else ""))
    if token:
        click.echo(accounts.issue_token(user))


@users.command("token")
@click.argument("name")
def users_token(name):
    """Print a new API token for NAME (last line)."""
    try:
        user = accounts.get_user(name)
    except DomainError as exc:
        _fail(exc)
    click.echo(accounts.issue_token(user))


@users.command("tokens")
@click.argument("name")
def users_tokens(name):
    """List NAME's API tokens (id, prefix, created, last used, revoked)."""
    try:
        user = accounts.get_user(name)
    except DomainError as exc:
        _fail(exc)
    for t in user.tokens:
        click.echo(f"{t.id}\t{t.prefix}…\t{t.created_at:%Y-%m-%d}\t{t.last_used_at or '-'}\t"
                   f"{'revoked' if t.revoked_at else 'active'}")


@users.command("revoke-token")
@click.argument("name")
@click.argument("token_id", type=int)
def users_revoke_token(name, token_id):
    """Revoke one of NAME's API tokens by its id."""
    try:
        accounts.revoke_token(accounts.get_user(name), token_id)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"revoked token {token_id}")
