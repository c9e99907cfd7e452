"""Multi-row writes of one batch, in as few statements as the database allows.

On PostgreSQL each call is ONE statement whose rows travel as a single JSON document
(`UPDATE … FROM json_to_recordset(:rows)`, `INSERT … SELECT … FROM json_to_recordset`):
one round trip per batch instead of one statement per row (psycopg's executemany), the
same text for any number of rows, and one string to send (json.dumps is C; psycopg
quotes array elements in Python, which made `unnest` of arrays slower still).
Elsewhere (SQLite, in process) a plain executemany is already the fast way.

Values go through each column's own type (UTCDateTime, JSON, …) as with the ORM.
The caller owns the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import JSON, Table, bindparam, insert, text, update

from ..extensions import db


def _pg() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _iso(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a bulk row")


def _recordset(table: Table, rows: Sequence[dict], cols: Sequence[str]) -> tuple[str, dict]:
    """`json_to_recordset(:rows) AS v(<col> <type>, …)` and its one parameter: the rows
    with each value bound by its column's type (JSON values are nested as they are)."""
    dialect = db.session.get_bind().dialect
    procs, defs = {}, []
    for name in cols:
        col = table.c[name]
        proc = col.type._cached_bind_processor(dialect)
        if proc is not None and not isinstance(col.type, JSON):
            procs[name] = proc
        defs.append(f"{name} {col.type.compile(dialect=dialect)}")
    data = []
    for r in rows:
        d = {c: r[c] for c in cols}
        for c, proc in procs.items():
            if d[c] is not None:
                d[c] = proc(d[c])
        data.append(d)
    return (f"json_to_recordset(CAST(:rows AS JSON)) AS v({', '.join(defs)})",
            {"rows": json.dumps(data, default=_iso, separators=(",", ":"))})


def update_many(table: Table, rows: Sequence[dict], set_: Sequence[str],
                add: Sequence[str] = (), key: str = "id") -> None:
    """For each row: `SET col = row[col]` for `set_`, `col = col + row[col]` for `add`,
    where `key = row[key]`."""
    if not rows:
        return
    if _pg():
        source, params = _recordset(table, rows, [key, *set_, *add])
        assignments = [f"{c} = v.{c}" for c in set_] + [f"{c} = t.{c} + v.{c}" for c in add]
        db.session.execute(text(f"UPDATE {table.name} AS t SET {', '.join(assignments)} "
                                f"FROM {source} WHERE t.{key} = v.{key}"), params)
        return
    values = {c: bindparam("b_" + c) for c in set_}
    values.update({c: table.c[c] + bindparam("b_" + c) for c in add})
    db.session.execute(update(table).where(table.c[key] == bindparam("b_" + key))
                       .values(**values),
                       [{"b_" + c: r[c] for c in (key, *set_, *add)} for r in rows],
                       execution_options={"synchronize_session": False})


def insert_many(table: Table, rows: Sequence[dict], returning: Sequence[str] = ()) -> list:
    """Insert the rows (all with the same keys); with `returning`, those columns of the
    inserted rows, in no particular order."""
    if not rows:
        return []
    if _pg():
        cols = list(rows[0])
        source, params = _recordset(table, rows, cols)
        ret = f" RETURNING {', '.join(returning)}" if returning else ""
        result = db.session.execute(text(
            f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {', '.join(cols)} "
            f"FROM {source}{ret}"), params)
        return result.all() if returning else []
    if returning:
        # Unordered RETURNING lets SQLAlchemy batch the rows into multi-row INSERTs.
        stmt = insert(table).returning(*(table.c[c] for c in returning))
        return db.session.execute(stmt, list(rows)).all()
    db.session.execute(insert(table), list(rows))
    return []
