"""a published 公示 has versions: a correction of its grid bill is a new version

Revision ID: x17_notice01
Revises: v15_bill01
Create Date: 2026-12-06 03:10:00

"""
from alembic import op
import sqlalchemy as sa

import chargers.models.base


revision = 'x17_notice01'
down_revision = 'v15_bill01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('month_closes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                      server_default='1'))
    op.create_table(
        'notice_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('close_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('published_at', chargers.models.base.UTCDateTime(), nullable=False),
        sa.Column('published_by', sa.Integer(), nullable=True),
        sa.Column('grid_wh', sa.BigInteger(), nullable=True),
        sa.Column('grid_cents', sa.BigInteger(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['close_id'], ['month_closes.id'], ),
        sa.ForeignKeyConstraint(['published_by'], ['users.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('close_id', 'version'),
    )
    with op.batch_alter_table('notice_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_versions_close_id'), ['close_id'],
                              unique=False)
    # Months published before versions existed: that publication is version 1.
    op.execute("INSERT INTO notice_versions (close_id, version, published_at, published_by, "
               "grid_wh, grid_cents, reason) SELECT id, 1, published_at, published_by, "
               "published_grid_wh, published_grid_cents, '' FROM month_closes "
               "WHERE published_at IS NOT NULL")


def downgrade():
    with op.batch_alter_table('notice_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_versions_close_id'))
    op.drop_table('notice_versions')
    with op.batch_alter_table('month_closes', schema=None) as batch_op:
        batch_op.drop_column('version')
