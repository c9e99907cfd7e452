"""a card's least learned full charge beside its largest: their spread widens the usual energy

Revision ID: y24_risk02
Revises: y23_budget02
Create Date: 2026-12-06 22:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'y24_risk02'
down_revision = 'y23_budget02'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('card_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('energy_low_wh', sa.Float(), nullable=True))


def downgrade():
    with op.batch_alter_table('card_profiles', schema=None) as batch_op:
        batch_op.drop_column('energy_low_wh')
