"""Multi-row writes of one batch, in as few statements as the database allows.

On PostgreSQL each call is ONE statement over `unnest` of one array per column
(`UPDATE … FROM unnest(…)`, `INSERT … SELECT * FROM unnest(…)`): its text is the same
for any number of rows, so it is prepared once, and the batch costs one round trip
instead of one per row (psycopg's executemany sends every row as its own statement).
Elsewhere (SQLite, in process) a plain executemany is already the fast way.

Values go through each column's own type (UTCDateTime, JSON, …) as with the ORM.
The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, bindparam, insert, text, update

from ..extensions import db


def _pg() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _arrays(table: Table, rows: Sequence[dict], cols: Sequence[str]) -> tuple[str, dict]:
    """`unnest(CAST(:a0 AS <type>[]), …) AS v(<cols>)` and its parameters: one list of
    bound (type-processed) values per column."""
    dialect = db.session.get_bind().dialect
    parts, params = [], {}
    for i, name in enumerate(cols):
        col = table.c[name]
        proc = col.type._cached_bind_processor(dialect)
        values = [r[name] for r in rows]
        if proc is not None:
            values = [None if v is None else proc(v) for v in values]
        params[f"a{i}"] = values
        parts.append(f"CAST(:a{i} AS {col.type.compile(dialect=dialect)}[])")
    return f"unnest({', '.join(parts)}) AS v({', '.join(cols)})", params


def update_many(table: Table, rows: Sequence[dict], set_: Sequence[str],
                add: Sequence[str] = (), key: str = "id") -> None:
    """For each row: `SET col = row[col]` for `set_`, `col = col + row[col]` for `add`,
    where `key = row[key]`."""
    if not rows:
        return
    if _pg():
        source, params = _arrays(table, rows, [key, *set_, *add])
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
        source, params = _arrays(table, rows, cols)
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
