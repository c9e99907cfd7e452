"""online top-up limits per alley (None: the deployment's PAYMENTS_MIN/MAX_CENTS);
statements' top-ups and refunds by channel (WeChat Pay, Alipay; the rest cash)

Revision ID: y22_pay02
Revises: y21_msg01
Create Date: 2026-12-06 04:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'y22_pay02'
down_revision = 'y21_msg01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('alleys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topup_min_cents', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('topup_max_cents', sa.Integer(), nullable=True))
    with op.batch_alter_table('statements', schema=None) as batch_op:
        for name in ('topups_wechat_cents', 'topups_alipay_cents', 'refunds_wechat_cents',
                     'refunds_alipay_cents'):
            batch_op.add_column(sa.Column(name, sa.BigInteger(), server_default='0',
                                          nullable=False))


def downgrade():
    with op.batch_alter_table('statements', schema=None) as batch_op:
        for name in ('refunds_alipay_cents', 'refunds_wechat_cents', 'topups_alipay_cents',
                     'topups_wechat_cents'):
            batch_op.drop_column(name)
    with op.batch_alter_table('alleys', schema=None) as batch_op:
        batch_op.drop_column('topup_max_cents')
        batch_op.drop_column('topup_min_cents')
