"""pile configuration (desired/reported, features, command args) and the risk engine
(session grade and state, card profiles, battery checks)

Revision ID: w16_risk01
Revises: w15_words01
Create Date: 2026-12-10 02:00:00

"""
from alembic import op
import sqlalchemy as sa

import chargers.models.base


revision = 'w16_risk01'
down_revision = 'w15_words01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('alleys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_settings', sa.JSON(), nullable=True))
    with op.batch_alter_table('piles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('features', sa.JSON(), nullable=True))
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('args', sa.JSON(), nullable=True))
    with op.batch_alter_table('charging_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('risk_reasons', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('risk_state', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('risk_alerted', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('risk_notified_at', chargers.models.base.UTCDateTime(),
                                      nullable=True))
        batch_op.create_index('ix_charging_sessions_risk', ['risk'], unique=False)
    op.create_table(
        'pile_configs',
        sa.Column('pile_id', sa.String(length=64), sa.ForeignKey('piles.id'), primary_key=True),
        sa.Column('overrides', sa.JSON(), nullable=False),
        sa.Column('desired_version', sa.Integer(), nullable=False),
        sa.Column('desired', sa.JSON(), nullable=False),
        sa.Column('reported_version', sa.Integer(), nullable=True),
        sa.Column('reported', sa.JSON(), nullable=True),
        sa.Column('reported_at', chargers.models.base.UTCDateTime(), nullable=True),
        sa.Column('sent_version', sa.Integer(), nullable=True),
        sa.Column('sent_at', chargers.models.base.UTCDateTime(), nullable=True),
    )
    op.create_table(
        'card_profiles',
        sa.Column('alley_id', sa.Integer(), sa.ForeignKey('alleys.id'), primary_key=True),
        sa.Column('card', sa.String(length=64), primary_key=True),
        sa.Column('sessions', sa.Integer(), nullable=False),
        sa.Column('bulk_w', sa.Float(), nullable=True),
        sa.Column('energy_wh', sa.Float(), nullable=True),
        sa.Column('updated_at', chargers.models.base.UTCDateTime(), nullable=False),
    )
    op.create_table(
        'card_checks',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('alley_id', sa.Integer(), sa.ForeignKey('alleys.id'), nullable=False),
        sa.Column('card', sa.String(length=64), nullable=False),
        sa.Column('checked_at', chargers.models.base.UTCDateTime(), nullable=False),
        sa.Column('checked_by', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.UniqueConstraint('alley_id', 'card', 'checked_at'),
    )
    op.create_index('ix_card_checks_alley_id', 'card_checks', ['alley_id'], unique=False)


def downgrade():
    op.drop_index('ix_card_checks_alley_id', table_name='card_checks')
    op.drop_table('card_checks')
    op.drop_table('card_profiles')
    op.drop_table('pile_configs')
    with op.batch_alter_table('charging_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_charging_sessions_risk')
        for c in ('risk_notified_at', 'risk_alerted', 'risk_state', 'risk_reasons', 'risk'):
            batch_op.drop_column(c)
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.drop_column('args')
    with op.batch_alter_table('piles', schema=None) as batch_op:
        batch_op.drop_column('features')
    with op.batch_alter_table('alleys', schema=None) as batch_op:
        batch_op.drop_column('device_settings')
