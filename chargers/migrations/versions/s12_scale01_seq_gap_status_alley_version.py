"""seq gaps wait for late messages; alleys carry a state version

Revision ID: s12_scale01
Revises: m10_maint01
Create Date: 2026-11-30 00:20:00

"""
from alembic import op
import sqlalchemy as sa

import chargers.models.base


revision = 's12_scale01'
down_revision = "r11_resid01"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('seq_gaps', schema=None) as batch_op:
        # Gaps recorded before this revision were alerted at once: they count as lost.
        batch_op.add_column(sa.Column('status', sa.String(length=8), nullable=False,
                                      server_default='lost'))
        batch_op.add_column(sa.Column('resolved_at', chargers.models.base.UTCDateTime(),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_seq_gaps_status'), ['status'], unique=False)
    with op.batch_alter_table('seq_gaps', schema=None) as batch_op:
        batch_op.alter_column('status', server_default=None)
    with op.batch_alter_table('alleys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state_version', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('piles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seq_at', chargers.models.base.UTCDateTime(),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table('piles', schema=None) as batch_op:
        batch_op.drop_column('last_seq_at')
    with op.batch_alter_table('alleys', schema=None) as batch_op:
        batch_op.drop_column('state_version')
    with op.batch_alter_table('seq_gaps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_seq_gaps_status'))
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('status')
