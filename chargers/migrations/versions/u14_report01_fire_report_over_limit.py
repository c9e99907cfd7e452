"""a resident's fire report past its address's rate limit is kept, marked over_limit

Revision ID: u14_report01
Revises: t13_cutoff01
Create Date: 2027-01-10 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'u14_report01'
down_revision = 't13_cutoff01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('problem_reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('over_limit', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('problem_reports', schema=None) as batch_op:
        batch_op.drop_column('over_limit')
