"""the ledger is append-only: triggers refuse UPDATE and DELETE of postings and
ledger_entries (PostgreSQL: and TRUNCATE)

Revision ID: u14_ledger01
Revises: u14_idem01
Create Date: 2027-01-10 12:00:00

"""
from alembic import op


revision = 'u14_ledger01'
down_revision = 'u14_idem01'
branch_labels = None
depends_on = None

TABLES = ("postings", "ledger_entries")


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION chargers_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME "
            "|| ' is append-only (' || TG_OP || ' refused)', ERRCODE = 'restrict_violation'; "
            "END $$")
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION chargers_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION chargers_append_only()")
    elif dialect == "sqlite":
        for table in TABLES:
            for what in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only ({what} refused)'); "
                           "END")


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS chargers_append_only()")
    elif dialect == "sqlite":
        for table in TABLES:
            for what in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{what}")
