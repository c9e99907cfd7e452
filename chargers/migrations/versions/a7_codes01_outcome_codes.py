"""outcome codes: alert history data, command outcome

Alert-history entries get a JSON `data` column for their structured parameters
(commands, levels and contacts paged, counts, times); `note` keeps only words a person
or the pile wrote. The notes the backend itself wrote before, in the few fixed English
forms it used, are read once here into codes and data; any other note stays as written.

Commands get an `outcome` code beside the pile's own words (column `detail`): the
three phrases the backend itself used to write there become codes.

Revision ID: a7_codes01
Revises: d616304ad0e1
Create Date: 2026-11-30 00:30:00

"""
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7_codes01'
down_revision = 'd616304ad0e1'
branch_labels = None
depends_on = None

LATE = "late ack; "

# The fixed forms of the notes the backend wrote before this revision (services
# alerts, commands, notify at d616304ad0e1). Used only to convert those rows.
_ONE_COMMAND = re.compile(r"^(stop|enable|disable|reset) (pile|port (\d+))(?: \((c-[0-9a-f]+)\))?"
                          r"(?:: (.*))?$", re.S)
_LEVEL = re.compile(r"^level ([\d+]+): (.*)$", re.S)
_FLAP = re.compile(r"^cleared within (\d+) s: nobody paged$")
_MISSING = re.compile(r"^(\d+) message\(s\) missing$")
_AT = {"offline": ("last_heard", re.compile(r"^last heard (\S+)$")),
       "stale_raise_ignored": ("raised_at", re.compile(r"^raised at (\S+)$")),
       "stale_clear_ignored": ("cleared_at", re.compile(r"^cleared at (\S+)$"))}
_OUTCOMES = {"no ack from the pile": "no_ack", "never published": "unsent"}


def _command(text):
    """({"action", "port", "id"}, what followed the colon) or None."""
    m = _ONE_COMMAND.match(text.strip())
    if m is None:
        return None
    action, _whole, port, cid, rest = m.groups()
    return {"action": action, "port": int(port) if port else None, "id": cid}, rest


def _convert(action, code, note):
    """(data, note) for an old service-written note, or None to leave it as written."""
    if action == "cutoff_sent":
        parts = [_command(p) for p in note.split(", ")]
        if all(parts):
            return {"commands": [c for c, _rest in parts]}, None
    elif action == "command" or action.startswith("command_"):
        parsed = _command(note)
        if parsed:
            cmd, rest = parsed
            data, words = {"command": cmd}, rest or None
            if rest in _OUTCOMES:
                data["outcome"], words = _OUTCOMES[rest], None
            elif rest and rest.startswith(LATE.strip()):
                data["outcome"], words = "late", rest[len(LATE):] or None
            return data, words
    elif action in ("notified", "renotified", "escalated"):
        m = _LEVEL.match(note)
        if m:
            who = m.group(2)
            return {"levels": [int(x) for x in m.group(1).split("+")],
                    "contacts": [] if who == "no contacts" else who.split(", ")}, None
    elif action == "flap":
        m = _FLAP.match(note)
        if m:
            return {"debounce_s": int(m.group(1))}, None
    elif action in ("raised", "repeated") and code == "data_loss":
        m = _MISSING.match(note)
        if m:
            return {"missing": int(m.group(1))}, None
    elif (action, code) == ("raised", "offline") or action.startswith("stale_"):
        key, pattern = _AT["offline" if action == "raised" else action]
        m = pattern.match(note)
        if m:
            return {key: m.group(1)}, None
    return None


def _convert_notes():
    bind = op.get_bind()
    events = sa.table('alert_events', sa.column('id', sa.Integer), sa.column('alert_id', sa.Integer),
                      sa.column('action', sa.String), sa.column('note', sa.Text),
                      sa.column('data', sa.JSON))
    alerts = sa.table('alerts', sa.column('id', sa.Integer), sa.column('code', sa.String))
    rows = bind.execute(
        sa.select(events.c.id, events.c.action, events.c.note, alerts.c.code)
        .select_from(events.join(alerts, events.c.alert_id == alerts.c.id))
        .where(events.c.note.is_not(None), events.c.data.is_(None),
               events.c.action.not_in(("acknowledged", "resolved")))
    ).all()
    for row in rows:
        converted = _convert(row.action, row.code, row.note)
        if converted is not None:
            data, note = converted
            bind.execute(events.update().where(events.c.id == row.id).values(data=data, note=note))


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
    _convert_notes()


def _where(port):
    return "pile" if port is None else f"port {port}"


def _old_note(action, data, note):
    """The note the backend would have written before this revision."""
    if "commands" in data:
        return ", ".join(f"{c['action']} {_where(c['port'])}" for c in data["commands"])
    if "command" in data:
        c = data["command"]
        text = f"{c['action']} {_where(c['port'])}" + (f" ({c['id']})" if c.get("id") else "")
        outcome = data.get("outcome")
        detail = {"no_ack": "no ack from the pile", "unsent": "never published"}.get(outcome)
        if outcome == "late":
            detail = LATE + (note or "")
        detail = detail or note
        return text + (f": {detail}" if detail else "")
    if "levels" in data:
        who = ", ".join(data.get("contacts") or ()) or "no contacts"
        return f"level {'+'.join(map(str, data['levels']))}: {who}"
    if "debounce_s" in data:
        return f"cleared within {data['debounce_s']} s: nobody paged"
    if "missing" in data:
        return f"{data['missing']} message(s) missing"
    for key, words in (("last_heard", "last heard"), ("raised_at", "raised at"),
                       ("cleared_at", "cleared at")):
        if key in data:
            return f"{words} {data[key]}"
    return note


def downgrade():
    bind = op.get_bind()
    events = sa.table('alert_events', sa.column('id', sa.Integer), sa.column('action', sa.String),
                      sa.column('note', sa.Text), sa.column('data', sa.JSON))
    for row in bind.execute(sa.select(events.c.id, events.c.action, events.c.note, events.c.data)
                            .where(events.c.data.is_not(None))).all():
        if row.data:
            bind.execute(events.update().where(events.c.id == row.id)
                         .values(note=_old_note(row.action, row.data, row.note)))
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
