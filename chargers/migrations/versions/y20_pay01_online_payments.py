"""online payments: top-up orders, refunds to the original channel, provider
notifications, the providers' daily bills and reconciliation findings; a month's
online money and payment fees

Revision ID: y20_pay01
Revises: y19_budget01
Create Date: 2026-12-06 04:12:04.019071

"""
from alembic import op
import sqlalchemy as sa

import chargers.models.base


# revision identifiers, used by Alembic.
revision = 'y20_pay01'
down_revision = 'y19_budget01'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payment_bills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=8), nullable=False),
    sa.Column('bill_date', sa.String(length=10), nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('mismatches', sa.Integer(), nullable=False),
    sa.Column('fees_cents', sa.BigInteger(), nullable=False),
    sa.Column('fetched_at', chargers.models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_bills')),
    sa.UniqueConstraint('provider', 'bill_date', name=op.f('uq_payment_bills_provider'))
    )
    op.create_table('payment_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=8), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('order_no', sa.String(length=64), nullable=False),
    sa.Column('at', chargers.models.base.UTCDateTime(), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_notices'))
    )
    with op.batch_alter_table('payment_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_notices_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_notices_outcome'), ['outcome'], unique=False)

    op.create_table('payment_mismatches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('provider', sa.String(length=8), nullable=False),
    sa.Column('bill_date', sa.String(length=10), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('alley_id', sa.Integer(), nullable=True),
    sa.Column('order_no', sa.String(length=64), nullable=False),
    sa.Column('ours_cents', sa.BigInteger(), nullable=True),
    sa.Column('theirs_cents', sa.BigInteger(), nullable=True),
    sa.Column('line', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', chargers.models.base.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', chargers.models.base.UTCDateTime(), nullable=True),
    sa.Column('resolved_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['alley_id'], ['alleys.id'], name=op.f('fk_payment_mismatches_alley_id_alleys')),
    sa.ForeignKeyConstraint(['resolved_by'], ['users.id'], name=op.f('fk_payment_mismatches_resolved_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_mismatches')),
    sa.UniqueConstraint('key', name=op.f('uq_payment_mismatches_key'))
    )
    with op.batch_alter_table('payment_mismatches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_mismatches_alley_id'), ['alley_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_mismatches_bill_date'), ['bill_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_mismatches_status'), ['status'], unique=False)

    op.create_table('payment_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_no', sa.String(length=32), nullable=False),
    sa.Column('alley_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=8), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', chargers.models.base.UTCDateTime(), nullable=False),
    sa.Column('paid_at', chargers.models.base.UTCDateTime(), nullable=True),
    sa.Column('closed_at', chargers.models.base.UTCDateTime(), nullable=True),
    sa.Column('provider_txn', sa.String(length=64), nullable=False),
    sa.Column('posting_id', sa.Integer(), nullable=True),
    sa.Column('refunded_cents', sa.BigInteger(), nullable=False),
    sa.Column('paid_by', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['resident_accounts.id'], name=op.f('fk_payment_orders_account_id_resident_accounts')),
    sa.ForeignKeyConstraint(['alley_id'], ['alleys.id'], name=op.f('fk_payment_orders_alley_id_alleys')),
    sa.ForeignKeyConstraint(['posting_id'], ['postings.id'], name=op.f('fk_payment_orders_posting_id_postings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_orders')),
    sa.UniqueConstraint('order_no', name=op.f('uq_payment_orders_order_no'))
    )
    with op.batch_alter_table('payment_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_orders_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_orders_alley_id'), ['alley_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_orders_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_orders_state'), ['state'], unique=False)

    op.create_table('payment_refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refund_no', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('alley_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', chargers.models.base.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', chargers.models.base.UTCDateTime(), nullable=True),
    sa.Column('provider_refund_id', sa.String(length=64), nullable=False),
    sa.Column('posting_id', sa.Integer(), nullable=True),
    sa.Column('reversal_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['alley_id'], ['alleys.id'], name=op.f('fk_payment_refunds_alley_id_alleys')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_payment_refunds_created_by_users')),
    sa.ForeignKeyConstraint(['order_id'], ['payment_orders.id'], name=op.f('fk_payment_refunds_order_id_payment_orders')),
    sa.ForeignKeyConstraint(['posting_id'], ['postings.id'], name=op.f('fk_payment_refunds_posting_id_postings')),
    sa.ForeignKeyConstraint(['reversal_id'], ['postings.id'], name=op.f('fk_payment_refunds_reversal_id_postings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_refunds')),
    sa.UniqueConstraint('refund_no', name=op.f('uq_payment_refunds_refund_no'))
    )
    with op.batch_alter_table('payment_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_refunds_alley_id'), ['alley_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_refunds_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_refunds_state'), ['state'], unique=False)

    with op.batch_alter_table('month_closes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('online_cents', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('fees_cents', sa.BigInteger(), server_default='0', nullable=False))



def downgrade():
    with op.batch_alter_table('month_closes', schema=None) as batch_op:
        batch_op.drop_column('fees_cents')
        batch_op.drop_column('online_cents')

    with op.batch_alter_table('payment_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_refunds_state'))
        batch_op.drop_index(batch_op.f('ix_payment_refunds_order_id'))
        batch_op.drop_index(batch_op.f('ix_payment_refunds_alley_id'))

    op.drop_table('payment_refunds')
    with op.batch_alter_table('payment_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_orders_state'))
        batch_op.drop_index(batch_op.f('ix_payment_orders_created_at'))
        batch_op.drop_index(batch_op.f('ix_payment_orders_alley_id'))
        batch_op.drop_index(batch_op.f('ix_payment_orders_account_id'))

    op.drop_table('payment_orders')
    with op.batch_alter_table('payment_mismatches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_mismatches_status'))
        batch_op.drop_index(batch_op.f('ix_payment_mismatches_bill_date'))
        batch_op.drop_index(batch_op.f('ix_payment_mismatches_alley_id'))

    op.drop_table('payment_mismatches')
    with op.batch_alter_table('payment_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_notices_outcome'))
        batch_op.drop_index(batch_op.f('ix_payment_notices_at'))

    op.drop_table('payment_notices')
    op.drop_table('payment_bills')
