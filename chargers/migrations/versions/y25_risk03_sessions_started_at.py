"""an index on charging_sessions.started_at: the grade's temperature peers (the alley's
charges begun in the last 12 h, read once per alley per ingest batch) and the month's
lists (riskiest cards) read a window of start times, not the whole table

Revision ID: y25_risk03
Revises: y24_risk02
Create Date: 2026-12-07 04:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'y25_risk03'
down_revision = 'y24_risk02'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('charging_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_charging_sessions_started_at', ['started_at'], unique=False)


def downgrade():
    with op.batch_alter_table('charging_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_charging_sessions_started_at')
