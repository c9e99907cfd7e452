"""a cut-off is a tracked state (none/pending/confirmed/unconfirmed), not a boolean;
commands count their publishes

Revision ID: t13_cutoff01
Revises: c9_close01
Create Date: 2026-12-06 02:00:00

"""
from alembic import op
import sqlalchemy as sa

import chargers.models.base


revision = 't13_cutoff01'
down_revision = 'c9_close01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cutoff', sa.String(length=16), nullable=False,
                                      server_default='none'))
        batch_op.add_column(sa.Column('cutoff_requested_at', chargers.models.base.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('cutoff_confirmed_at', chargers.models.base.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('cutoff_unconfirmed_at', chargers.models.base.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('cutoff_next_try_at', chargers.models.base.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('cutoff_tries', sa.Integer(), nullable=False,
                                      server_default='0'))
    # A cut-off recorded as "done" only meant its commands were queued: nothing says
    # the pile did it. Open ones are judged again at once by the cutoff-track job
    # (pending, asked now); closed ones stay "unconfirmed", which is all we know.
    op.execute("UPDATE alerts SET cutoff = 'pending', cutoff_requested_at = raised_at, "
               "cutoff_next_try_at = raised_at, cutoff_tries = 1 "
               "WHERE cutoff_done AND status IN ('active', 'acknowledged')")
    op.execute("UPDATE alerts SET cutoff = 'unconfirmed', cutoff_requested_at = raised_at "
               "WHERE cutoff_done AND status NOT IN ('active', 'acknowledged')")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('cutoff_done')
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.execute("UPDATE commands SET attempts = 1 WHERE sent_at IS NOT NULL")


def downgrade():
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.drop_column('attempts')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cutoff_done', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.execute("UPDATE alerts SET cutoff_done = (cutoff <> 'none')")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('cutoff_tries')
        batch_op.drop_column('cutoff_next_try_at')
        batch_op.drop_column('cutoff_unconfirmed_at')
        batch_op.drop_column('cutoff_confirmed_at')
        batch_op.drop_column('cutoff_requested_at')
        batch_op.drop_column('cutoff')
