"""the command the system sent when it asked a pile to stop a session, kept on the
session: what came of the stop is the pile's answer to that very command. Sessions
stopped before it get theirs where one command alone matches (the system's stop of
that port at that moment: no person, no alert); else none.

Revision ID: y26_guard01
Revises: y25_risk03
Create Date: 2026-12-07 04:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'y26_guard01'
down_revision = 'y25_risk03'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('charging_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guard_command_id', sa.String(length=64), nullable=True))
    match = ("FROM commands c WHERE c.pile_id = charging_sessions.pile_id "
             "AND c.port = charging_sessions.port AND c.action = 'stop' "
             "AND c.created_at = charging_sessions.guard_stop_at "
             "AND c.created_by IS NULL AND c.alert_id IS NULL")
    op.execute(f"UPDATE charging_sessions SET guard_command_id = (SELECT min(c.id) {match}) "
               f"WHERE guard_stop_at IS NOT NULL AND (SELECT count(*) {match}) = 1")


def downgrade():
    with op.batch_alter_table('charging_sessions', schema=None) as batch_op:
        batch_op.drop_column('guard_command_id')
