"""a resident's channels: the language of their messages

Revision ID: y21_msg01
Revises: y20_pay01
Create Date: 2026-12-06 05:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'y21_msg01'
down_revision = 'y20_pay01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('resident_channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=False,
                                      server_default=''))


def downgrade():
    with op.batch_alter_table('resident_channels', schema=None) as batch_op:
        batch_op.drop_column('language')
