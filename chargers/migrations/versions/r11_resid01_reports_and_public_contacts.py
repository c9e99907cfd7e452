"""residents: problem reports; contacts with a phone shown to residents

Revision ID: r11_resid01
Revises: m10_maint01
Create Date: 2026-11-30 00:20:00

"""
from alembic import op
import sqlalchemy as sa

import chargers.models.base


# revision identifiers, used by Alembic.
revision = 'r11_resid01'
down_revision = "m10_maint01"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('problem_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pile_id', sa.String(length=64), nullable=False),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('photo', sa.String(length=64), nullable=True),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('created_at', chargers.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_problem_reports_alert_id_alerts')),
    sa.ForeignKeyConstraint(['pile_id'], ['piles.id'], name=op.f('fk_problem_reports_pile_id_piles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_problem_reports'))
    )
    with op.batch_alter_table('problem_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_problem_reports_alert_id'), ['alert_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_problem_reports_pile_id'), ['pile_id'], unique=False)

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('public', sa.Boolean(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('public')
        batch_op.drop_column('phone')

    with op.batch_alter_table('problem_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_problem_reports_pile_id'))
        batch_op.drop_index(batch_op.f('ix_problem_reports_alert_id'))

    op.drop_table('problem_reports')
