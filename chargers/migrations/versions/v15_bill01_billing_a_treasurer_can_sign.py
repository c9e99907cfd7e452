"""billing a treasurer can sign: partial monthly cover, debts, meter resets,
time-of-use prices in milli-fen, service-fee regulator caps, occupancy fee, a hash
chain over postings, debts and write-offs in the month close, receipt serials

Revision ID: v15_bill01
Revises: w16_risk01
Create Date: 2026-12-06 02:20:00

"""
from alembic import op
import sqlalchemy as sa

import chargers.models.base


revision = 'v15_bill01'
down_revision = 'w16_risk01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('charging_sessions', schema=None) as b:
        b.add_column(sa.Column('covered_cents', sa.Integer(), nullable=True))
        b.add_column(sa.Column('covered_s', sa.Integer(), nullable=True))
        b.add_column(sa.Column('shortfall_cents', sa.Integer(), nullable=True))
        b.add_column(sa.Column('occupancy_cents', sa.Integer(), nullable=True))
        b.add_column(sa.Column('meter_resets', sa.Integer(), nullable=False,
                               server_default='0'))
        b.add_column(sa.Column('meter_base_wh', sa.Float(), nullable=False,
                               server_default='0'))
        b.add_column(sa.Column('meter_last_wh', sa.Float(), nullable=True))
        b.add_column(sa.Column('receipt_serial', sa.String(length=32), nullable=True))
        b.create_unique_constraint('uq_charging_sessions_receipt_serial', ['receipt_serial'])
    with op.batch_alter_table('piles', schema=None) as b:
        b.add_column(sa.Column('meter_resets', sa.Integer(), nullable=False,
                               server_default='0'))
    with op.batch_alter_table('tariffs', schema=None) as b:
        b.add_column(sa.Column('electricity_millifen_per_kwh', sa.Integer(), nullable=True))
        b.add_column(sa.Column('tou_windows', sa.JSON(), nullable=True))
        b.add_column(sa.Column('service_cap_millifen_per_kwh', sa.Integer(), nullable=True))
        b.add_column(sa.Column('service_cap_cents_per_hour', sa.Integer(), nullable=True))
        b.add_column(sa.Column('occupancy_cents_per_hour', sa.Integer(), nullable=True))
        b.add_column(sa.Column('occupancy_grace_minutes', sa.Integer(), nullable=True))
    with op.batch_alter_table('postings', schema=None) as b:
        b.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        b.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    op.create_table(
        'ledger_chain',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('head', sa.String(length=64), nullable=True),
        sa.Column('postings', sa.BigInteger(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('id'))
    op.create_table(
        'card_sales',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('alley_id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('posting_id', sa.Integer(), nullable=False),
        sa.Column('ledger_account_id', sa.Integer(), nullable=False),
        sa.Column('period_from', chargers.models.base.UTCDateTime(), nullable=False),
        sa.Column('period_until', chargers.models.base.UTCDateTime(), nullable=False),
        sa.Column('hours', sa.Integer(), nullable=True),
        sa.Column('price_cents', sa.Integer(), nullable=False),
        sa.Column('created_at', chargers.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['alley_id'], ['alleys.id'],
                                name=op.f('fk_card_sales_alley_id_alleys')),
        sa.ForeignKeyConstraint(['account_id'], ['resident_accounts.id'],
                                name=op.f('fk_card_sales_account_id_resident_accounts')),
        sa.ForeignKeyConstraint(['posting_id'], ['postings.id'],
                                name=op.f('fk_card_sales_posting_id_postings')),
        sa.ForeignKeyConstraint(['ledger_account_id'], ['ledger_accounts.id'],
                                name=op.f('fk_card_sales_ledger_account_id_ledger_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_card_sales')))
    with op.batch_alter_table('card_sales', schema=None) as b:
        b.create_index(b.f('ix_card_sales_account_id'), ['account_id'], unique=False)
    with op.batch_alter_table('month_closes', schema=None) as b:
        b.add_column(sa.Column('card_sales_cents', sa.BigInteger(), nullable=False,
                               server_default='0'))
        b.add_column(sa.Column('debts_cents', sa.BigInteger(), nullable=False,
                               server_default='0'))
        b.add_column(sa.Column('writeoffs_cents', sa.BigInteger(), nullable=False,
                               server_default='0'))
        b.add_column(sa.Column('occupancy_cents', sa.BigInteger(), nullable=False,
                               server_default='0'))
        b.add_column(sa.Column('chain_head', sa.String(length=64), nullable=True))
        b.add_column(sa.Column('chain_postings', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('statements', schema=None) as b:
        b.add_column(sa.Column('writeoffs_cents', sa.BigInteger(), nullable=False,
                               server_default='0'))


def downgrade():
    with op.batch_alter_table('statements', schema=None) as b:
        b.drop_column('writeoffs_cents')
    with op.batch_alter_table('month_closes', schema=None) as b:
        for c in ('chain_postings', 'chain_head', 'occupancy_cents', 'writeoffs_cents',
                  'debts_cents', 'card_sales_cents'):
            b.drop_column(c)
    op.drop_table('ledger_chain')
    with op.batch_alter_table('card_sales', schema=None) as b:
        b.drop_index(b.f('ix_card_sales_account_id'))
    op.drop_table('card_sales')
    with op.batch_alter_table('postings', schema=None) as b:
        b.drop_column('hash')
        b.drop_column('prev_hash')
    with op.batch_alter_table('tariffs', schema=None) as b:
        for c in ('occupancy_grace_minutes', 'occupancy_cents_per_hour',
                  'service_cap_cents_per_hour', 'service_cap_millifen_per_kwh',
                  'tou_windows', 'electricity_millifen_per_kwh'):
            b.drop_column(c)
    with op.batch_alter_table('piles', schema=None) as b:
        b.drop_column('meter_resets')
    with op.batch_alter_table('charging_sessions', schema=None) as b:
        b.drop_constraint('uq_charging_sessions_receipt_serial', type_='unique')
        for c in ('receipt_serial', 'meter_last_wh', 'meter_base_wh', 'meter_resets',
                  'occupancy_cents', 'shortfall_cents', 'covered_s', 'covered_cents'):
            b.drop_column(c)
