"""Multi-row writes of one batch, in as few statements as the database allows.

On PostgreSQL each call is ONE statement whose rows travel as a single JSON document
(`UPDATE … FROM json_to_recordset(:rows)`, `INSERT … SELECT … FROM json_to_recordset`):
one round trip per batch instead of one statement per row (psycopg's executemany), the
same text for any number of rows, and one string to send (json.dumps is C; psycopg
quotes array elements in Python, which made `unnest` of arrays slower still). An insert
without RETURNING (the ingest's processed messages and meter readings, the ledger's
entries, review items) goes by COPY instead, in the same transaction.
On SQLite (in process, no round trips) a driver-level executemany is the fast way;
RETURNING goes as multi-row INSERTs.

Values go through each column's own type (UTCDateTime, JSON, …) as with the ORM.
The caller owns the transaction.

Also: lookups whose SQL text does not change with the number of values (`one_of`,
`pairs_in`), and `write_changed`, which writes the pending changes of ORM objects of
one class in one UPDATE and tells the ORM they are committed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Table,
    any_,
    bindparam,
    func,
    inspect,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm.attributes import get_history, set_committed_value

from ..extensions import db


def is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _iso(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a bulk row")


def _json_source(param: str, alias: str, typed: Sequence[tuple[str, object]]) -> str:
    """`json_to_recordset(CAST(:param AS JSON)) AS alias(<name> <type>, …)`: a JSON
    array of objects (one bound parameter) read as rows of those typed columns."""
    dialect = db.session.get_bind().dialect
    defs = ", ".join(f"{dialect.identifier_preparer.quote(name)} {type_.compile(dialect=dialect)}"
                     for name, type_ in typed)
    return f"json_to_recordset(CAST(:{param} AS JSON)) AS {alias}({defs})"


def _recordset(table: Table, rows: Sequence[dict], cols: Sequence[str]) -> tuple[str, dict]:
    """`json_to_recordset(:rows) AS v(<col> <type>, …)` and its one parameter: the rows
    with each value bound by its column's type (JSON values are nested as they are)."""
    dialect = db.session.get_bind().dialect
    procs = {}
    for name in cols:
        col = table.c[name]
        proc = col.type._cached_bind_processor(dialect)
        if proc is not None and not isinstance(col.type, JSON):
            procs[name] = proc
    data = []
    for r in rows:
        d = {c: r[c] for c in cols}
        for c, proc in procs.items():
            if d[c] is not None:
                d[c] = proc(d[c])
        data.append(d)
    return (_json_source("rows", "v", [(c, table.c[c].type) for c in cols]),
            {"rows": json.dumps(data, default=_iso, separators=(",", ":"))})


def _json_text(value):
    """A JSON column's value as `_recordset` writes it: None is SQL NULL (not JSON
    null), a date inside it ISO text."""
    return None if value is None else json.dumps(value, default=_iso, separators=(",", ":"))


def _bound(table: Table, rows: Sequence[dict], cols: Sequence[str]) -> list[tuple]:
    """The rows as tuples of driver values, each through its column's bind processing
    (what SQLAlchemy would do, without its per-row, per-parameter machinery); JSON
    columns as `_json_text`, so every path writes a JSON column alike."""
    dialect = db.session.get_bind().dialect
    procs = []
    for i, c in enumerate(cols):
        type_ = table.c[c].type
        if isinstance(type_, JSON):
            procs.append((i, _json_text))
        elif (proc := type_._cached_bind_processor(dialect)) is not None:
            procs.append((i, proc))
    out = []
    for r in rows:
        values = [r[c] for c in cols]
        for i, proc in procs:
            values[i] = proc(values[i])
        out.append(tuple(values))
    return out


def _names(cols: Sequence[str]) -> list[str]:
    quote = db.session.get_bind().dialect.identifier_preparer.quote
    return [quote(c) for c in cols]


# SQLite's limit of bound parameters per statement is 32766; stay well below.
_SQLITE_PARAMS = 10_000


def update_many(table: Table, rows: Sequence[dict], set_: Sequence[str],
                add: Sequence[str] = (), key: str = "id") -> None:
    """For each row: `SET col = row[col]` for `set_`, `col = col + row[col]` for `add`,
    where `key = row[key]`."""
    if not rows:
        return
    cols = [*set_, *add, key]
    names = _names(cols)
    assignments = ([f"{n} = v.{n}" for n in names[:len(set_)]]
                   + [f"{n} = t.{n} + v.{n}" for n in names[len(set_):-1]])
    if is_postgres():
        source, params = _recordset(table, rows, cols)
        db.session.execute(text(f"UPDATE {table.name} AS t SET {', '.join(assignments)} "
                                f"FROM {source} WHERE t.{names[-1]} = v.{names[-1]}"), params)
        return
    assignments = ([f"{n} = ?" for n in names[:len(set_)]]
                   + [f"{n} = {n} + ?" for n in names[len(set_):-1]])
    db.session.connection().exec_driver_sql(
        f"UPDATE {table.name} SET {', '.join(assignments)} WHERE {names[-1]} = ?",
        _bound(table, rows, cols))


def insert_many(table: Table, rows: Sequence[dict], returning: Sequence[str] = ()) -> list:
    """Insert the rows (all with the same keys); with `returning`, those columns of the
    inserted rows, in no particular order."""
    if not rows:
        return []
    cols = list(rows[0])
    names = ", ".join(_names(cols))
    ret = f" RETURNING {', '.join(_names(returning))}" if returning else ""
    if is_postgres():
        if not returning:
            _copy(table, cols, rows)
            return []
        source, params = _recordset(table, rows, cols)
        result = db.session.execute(text(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {source}{ret}"), params)
        return result.all()
    conn = db.session.connection()
    one = f"({', '.join('?' * len(cols))})"
    values = _bound(table, rows, cols)
    if not returning:
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES {one}", values)
        return []
    # RETURNING needs one statement per chunk of rows (multi-row VALUES).
    out, step = [], _SQLITE_PARAMS // len(cols)
    for i in range(0, len(values), step):
        chunk = values[i:i + step]
        out += conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({names}) VALUES {', '.join([one] * len(chunk))}{ret}",
            tuple(v for row in chunk for v in row)).all()
    return out


def _copy(table: Table, cols: Sequence[str], rows: Sequence[dict]) -> None:
    """PostgreSQL: the rows by COPY … FROM STDIN, in the session's transaction (psycopg
    writes the rows in C; the server skips the planner). An error of the driver is
    raised as SQLAlchemy's (IntegrityError, OperationalError, …), as an INSERT's is."""
    import psycopg

    statement = f"COPY {table.name} ({', '.join(_names(cols))}) FROM STDIN"
    conn = db.session.connection()
    dbapi = conn.connection.dbapi_connection
    try:
        with dbapi.cursor() as cursor, cursor.copy(statement) as copy:
            for row in _bound(table, rows, cols):
                copy.write_row(row)
    except psycopg.Error as exc:
        gone = conn.dialect.is_disconnect(exc, dbapi, None)
        if gone:
            conn.invalidate(exc)  # as SQLAlchemy does when a statement finds it gone
        raise sa_exc.DBAPIError.instance(statement, None, exc, psycopg.Error,
                                         connection_invalidated=gone,
                                         dialect=conn.dialect) from exc


def upsert_add(table: Table, rows: Sequence[dict], key: str, add: Sequence[str],
               set_: Sequence[str] = ()) -> None:
    """Insert each row; where its `key` exists already, `col = col + row[col]` for `add`
    and `col = row[col]` for `set_`. One statement; rows are written in key order, so
    two writers adding to the same rows take their locks in one order."""
    if not rows:
        return
    rows = sorted(rows, key=lambda r: r[key])
    cols = [key, *add, *set_]
    names = _names(cols)
    k = names[0]
    if is_postgres():
        changes = ([f"{n} = {table.name}.{n} + EXCLUDED.{n}" for n in names[1:1 + len(add)]]
                   + [f"{n} = EXCLUDED.{n}" for n in names[1 + len(add):]])
        source, params = _recordset(table, rows, cols)
        db.session.execute(text(
            f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} "
            f"FROM {source} ORDER BY v.{k} ON CONFLICT ({k}) DO UPDATE SET {', '.join(changes)}"),
            params)
        return
    changes = ([f"{n} = {n} + excluded.{n}" for n in names[1:1 + len(add)]]
               + [f"{n} = excluded.{n}" for n in names[1 + len(add):]])
    db.session.connection().exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(cols))}) "
        f"ON CONFLICT ({k}) DO UPDATE SET {', '.join(changes)}", _bound(table, rows, cols))


_ARRAYS: dict = {}


def _array_of(item_type) -> ARRAY:
    """ARRAY(item_type), one instance per column type: SQLAlchemy works out a new type
    instance's cache key and bind processor afresh (~0.1 ms each), at every query."""
    found = _ARRAYS.get(item_type)
    if found is None:
        found = _ARRAYS[item_type] = ARRAY(item_type)
    return found


def one_of(column, values):
    """`column IN (values)` whose SQL text does not depend on how many values there are:
    `= ANY(:array)` on PostgreSQL, so psycopg parses it once and the server reuses one
    prepared statement (an IN list is a new statement for every length). SQLite: IN."""
    values = sorted(set(values))
    if is_postgres():
        return column == any_(bindparam(None, values, type_=_array_of(column.type)))
    return column.in_(values)


def position_in(column, values: Sequence):
    """PostgreSQL: `array_position(:values, column)`, to order rows as `values` are."""
    return func.array_position(bindparam(None, list(values), type_=_array_of(column.type)),
                               column)


def pairs_in(columns: Sequence, pairs, name: str = "pairs"):
    """`(col_a, col_b, …) IN (pairs)` whose text does not depend on how many pairs:
    on PostgreSQL the pairs travel as one JSON parameter (`json_to_recordset`), and
    the server joins them to the table's index, one probe per pair. (Two `= ANY`
    lists match their cross product; prepared, the planner's generic plan for them
    scanned every ledger row of the batch's piles.) SQLite: a row-value IN over
    `json_each` of one JSON parameter, which SQLite answers with one probe of the
    table's index per pair; over a list of row values it scanned the whole index (the
    ledger's: 23 ms a batch at 100,000 rows, and growing with them)."""
    pairs = sorted(set(pairs))
    if not is_postgres():
        picks = ", ".join(f"json_extract(value, '$[{j}]')" for j in range(len(columns)))
        source = text(f"SELECT {picks} FROM json_each(:{name})").bindparams(
            **{name: json.dumps(pairs, default=_iso)})
        return tuple_(*columns).in_(source.columns(
            *[literal_column(f"c{j}") for j in range(len(columns))]))
    names = [f"c{i}" for i in range(len(columns))]
    rows = json.dumps([dict(zip(names, p, strict=True)) for p in pairs], default=_iso)
    source = text(_json_source(name, name, [(n, c.type) for n, c in zip(names, columns,
                                                                        strict=True)])
                  ).bindparams(**{name: rows})
    return tuple_(*columns).in_(
        select(*[literal_column(f"{name}.{n}") for n in names]).select_from(source))


def changed_columns(objects: Sequence) -> list[tuple[object, list[str]]]:
    """(object, names of its changed columns) for those of `objects` (persistent ORM
    objects of one class) with pending column changes."""
    out = []
    for obj in objects:
        state = inspect(obj)
        if not state.persistent or not state.modified:
            continue
        columns = state.mapper.columns
        names = [key for key in state.committed_state
                 if key in columns and get_history(obj, key).has_changes()]
        if names:
            out.append((obj, names))
    return out


def write_changed(changed: Sequence[tuple[object, list[str]]]) -> None:
    """Write `changed_columns(...)` in one UPDATE (the union of the changed columns,
    each row with its object's current values), then mark those values committed so
    the ORM's flush does not write them again. For rows this transaction has locked
    and loaded (the ingest's piles and ports): the ORM's flush wrote them one
    statement per row, or per run of rows with the same changed columns."""
    if not changed:
        return
    mapper = inspect(changed[0][0]).mapper
    # Attribute names are the column names (true of the models written this way).
    [key] = [c.key for c in mapper.primary_key]
    cols = sorted({n for _, names in changed for n in names})
    rows = [{key: getattr(obj, key), **{c: getattr(obj, c) for c in cols}}
            for obj, _ in changed]
    update_many(mapper.local_table, rows, cols, key=key)
    for obj, names in changed:
        for name in names:
            set_committed_value(obj, name, getattr(obj, name))
