"""the command the system sent when it asked a pile to stop a session, kept on the
session: what came of the stop is the pile's answer to that very command

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


def downgrade():
    with op.batch_alter_table('charging_sessions', schema=None) as batch_op:
        batch_op.drop_column('guard_command_id')
