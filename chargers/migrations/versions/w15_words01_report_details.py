"""a resident's report keeps its free text ("其他问题": what else is wrong)

Revision ID: w15_words01
Revises: u14_ledger01
Create Date: 2027-02-01 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'w15_words01'
down_revision = 'u14_ledger01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('problem_reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('details', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('problem_reports', schema=None) as batch_op:
        batch_op.drop_column('details')
