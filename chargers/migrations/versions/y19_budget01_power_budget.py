"""the alley's power budget: authorize answers (and the queue), feeder samples and
the over-limit watch; the alley's feeder limit and margin; a session's last power

Revision ID: y19_budget01
Revises: y18_chan01
Create Date: 2026-12-06 04:30:00

"""
from alembic import op
import sqlalchemy as sa

from chargers.models.base import UTCDateTime


revision = 'y19_budget01'
down_revision = 'y18_chan01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('alleys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feeder_limit_w', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('feeder_margin_w', sa.Integer(), nullable=True))
    with op.batch_alter_table('charging_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_power_w', sa.Float(), nullable=True))
    with op.batch_alter_table('piles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('power_limit_w', sa.Integer(), nullable=True))
    op.create_table(
        'authorizations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('alley_id', sa.Integer(), nullable=False),
        sa.Column('pile_id', sa.String(length=64), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('card', sa.String(length=64), nullable=False),
        sa.Column('message_id', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('asked_at', UTCDateTime(), nullable=False),
        sa.Column('received_at', UTCDateTime(), nullable=False),
        sa.Column('answered_at', UTCDateTime(), nullable=False),
        sa.Column('result', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=True),
        sa.Column('position', sa.Integer(), nullable=True),
        sa.Column('max_wh', sa.Integer(), nullable=True),
        sa.Column('max_minutes', sa.Integer(), nullable=True),
        sa.Column('expected_w', sa.Integer(), nullable=False),
        sa.Column('headroom_w', sa.Integer(), nullable=True),
        sa.Column('command_id', sa.String(length=64), nullable=True),
        sa.Column('admitted_at', UTCDateTime(), nullable=True),
        sa.Column('queue_state', sa.String(length=16), nullable=True),
        sa.Column('start_command_id', sa.String(length=64), nullable=True),
        sa.Column('left_at', UTCDateTime(), nullable=True),
        sa.Column('drop_reason', sa.String(length=32), nullable=True),
        sa.Column('session_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['resident_accounts.id']),
        sa.ForeignKeyConstraint(['alley_id'], ['alleys.id']),
        sa.ForeignKeyConstraint(['pile_id'], ['piles.id']),
        sa.ForeignKeyConstraint(['session_id'], ['charging_sessions.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('pile_id', 'message_id'),
    )
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.create_index('ix_authorizations_queue', ['alley_id', 'queue_state', 'id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_account_id'), ['account_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_alley_id'), ['alley_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_pile_id'), ['pile_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_result'), ['result'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_session_id'), ['session_id'],
                              unique=False)
    op.create_table(
        'feeder_samples',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('alley_id', sa.Integer(), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('load_w', sa.Float(), nullable=False),
        sa.Column('queue', sa.Integer(), nullable=False),
        sa.Column('limit_w', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['alley_id'], ['alleys.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('feeder_samples', schema=None) as batch_op:
        batch_op.create_index('ix_feeder_samples_alley_at', ['alley_id', 'at'], unique=False)
    op.create_table(
        'feeder_states',
        sa.Column('alley_id', sa.Integer(), nullable=False),
        sa.Column('over_since', UTCDateTime(), nullable=True),
        sa.Column('over_readings', sa.Integer(), nullable=False),
        sa.Column('last_reading_at', UTCDateTime(), nullable=True),
        sa.Column('last_stop_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['alley_id'], ['alleys.id']),
        sa.PrimaryKeyConstraint('alley_id'),
    )


def downgrade():
    op.drop_table('feeder_states')
    with op.batch_alter_table('feeder_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_feeder_samples_alley_at')
    op.drop_table('feeder_samples')
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        for name in ('ix_authorizations_session_id', 'ix_authorizations_result',
                     'ix_authorizations_pile_id', 'ix_authorizations_alley_id',
                     'ix_authorizations_account_id', 'ix_authorizations_queue'):
            batch_op.drop_index(name)
    op.drop_table('authorizations')
    with op.batch_alter_table('piles', schema=None) as batch_op:
        batch_op.drop_column('power_limit_w')
    with op.batch_alter_table('charging_sessions', schema=None) as batch_op:
        batch_op.drop_column('last_power_w')
    with op.batch_alter_table('alleys', schema=None) as batch_op:
        batch_op.drop_column('feeder_margin_w')
        batch_op.drop_column('feeder_limit_w')
