"""a resident's channels: WeChat openid and subscription messages, night messages

Revision ID: y18_chan01
Revises: x17_notice01
Create Date: 2026-12-06 04:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'y18_chan01'
down_revision = 'x17_notice01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('resident_channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wechat_openid', sa.String(length=64), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('wechat', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('night', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_resident_channels_wechat_openid'),
                              ['wechat_openid'], unique=False)


def downgrade():
    with op.batch_alter_table('resident_channels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resident_channels_wechat_openid'))
        batch_op.drop_column('night')
        batch_op.drop_column('wechat')
        batch_op.drop_column('wechat_openid')
