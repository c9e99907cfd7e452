"""a pile's own limit watched like the feeder's: since when its load stayed over it

Revision ID: y23_budget02
Revises: y22_pay02
Create Date: 2026-12-06 20:00:00

"""
from alembic import op
import sqlalchemy as sa

from chargers.models.base import UTCDateTime


# revision identifiers, used by Alembic.
revision = 'y23_budget02'
down_revision = 'y22_pay02'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('piles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('over_limit_since', UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('piles', schema=None) as batch_op:
        batch_op.drop_column('over_limit_since')
