"""outcome codes: alert history data, command outcome

Alert-history entries get a JSON `data` column for their structured parameters
(commands, levels and contacts paged, counts, times); `note` keeps only words a person
or the pile wrote. Entries written before keep their English note, shown as written.

Commands get an `outcome` code beside the pile's own words (column `detail`): the
three phrases the backend itself used to write there become codes.

Revision ID: a7_codes01
Revises: d616304ad0e1
Create Date: 2026-11-30 00:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7_codes01'
down_revision = 'd616304ad0e1'
branch_labels = None
depends_on = None

LATE = "late ack; "


def upgrade():
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data', sa.JSON(), nullable=True))
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))

    commands = sa.table('commands', sa.column('outcome', sa.String), sa.column('detail', sa.Text))
    op.execute(commands.update().where(commands.c.detail == 'no ack from the pile')
               .values(outcome='no_ack', detail=None))
    op.execute(commands.update().where(commands.c.detail == 'never published')
               .values(outcome='unsent', detail=None))
    op.execute(commands.update().where(commands.c.detail.like(LATE + '%'))
               .values(outcome='late', detail=sa.func.substr(commands.c.detail, len(LATE) + 1)))
    op.execute(commands.update().where(commands.c.detail == '').values(detail=None))


def downgrade():
    commands = sa.table('commands', sa.column('outcome', sa.String), sa.column('detail', sa.Text))
    op.execute(commands.update().where(commands.c.outcome == 'no_ack')
               .values(detail='no ack from the pile'))
    op.execute(commands.update().where(commands.c.outcome == 'unsent')
               .values(detail='never published'))
    op.execute(commands.update().where(commands.c.outcome == 'late')
               .values(detail=LATE + sa.func.coalesce(commands.c.detail, '')))
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.drop_column('outcome')
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_column('data')
