"""Multi-row writes for the decision hot path, straight on the DB-API cursor of a SQLAlchemy connection.

Why: these writes run under the chain-head lock, so their cost is serialized across the whole service, and
SQLAlchemy's executemany path spends 10–20 µs of Python per row (statement compilation, parameter coercion,
psycopg pipeline round-trips). Here each (table, columns) pair gets one pre-rendered statement, values
are converted by each column's own SQLAlchemy bind processor (so rows read back through the ORM exactly as
if the ORM had written them), and a batch goes to the server as one statement over column arrays
(`unnest`, PostgreSQL: one round trip, and the same statement text whatever the number of rows, so the
driver's query cache and the server's prepared plan apply) or as one C-level `executemany` (SQLite).

The functions take part in the caller's transaction (the connection of its session) and never commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Table


@dataclass(frozen=True)
class _Plan:
    sql: str
    """With one placeholder per column: a row (SQLite) or an array of that column's values (PostgreSQL)."""
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


_plans: dict[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], _Plan] = {}


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) into `table`."""
    if not rows:
        return
    plan = _plan(conn.dialect, "insert", table, tuple(rows[0]), ())
    _execute(conn, plan, rows)


def insert_or_lock(
    conn: Connection,
    table: Table,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """INSERT the `rows` whose `key` is new and lock (`FOR UPDATE`-like) the ones that exist, in the order
    given; returns the `returning` columns of every row as stored. An upsert setting the key onto itself
    takes the row lock on PostgreSQL; SQLite's write transaction is exclusive anyway."""
    if not rows:
        return []
    plan = _plan(conn.dialect, "insert", table, tuple(rows[0]), ())
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"{plan.sql} ON CONFLICT ({quote(key)}) DO UPDATE SET {quote(key)} = excluded.{quote(key)}"
        f" RETURNING {', '.join(quote(c) for c in returning)}"
    )
    upsert = _Plan(sql, plan.columns, plan.processors)
    if conn.dialect.name == "postgresql":
        raw = _fetch(conn, upsert, rows)
    else:  # the sqlite3 module cannot return rows from executemany: one statement per row
        raw = [r for row in rows for r in _fetch(conn, upsert, [row])]
    dialect = conn.dialect
    processors = [table.c[c].type.dialect_impl(dialect).result_processor(dialect, None) for c in returning]
    return [
        tuple(v if p is None or v is None else p(v) for v, p in zip(row, processors, strict=True))
        for row in raw
    ]


def update_rows(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """UPDATE `table`: each dict holds the `keys` that select one row (distinct within `rows`) and the
    values to set."""
    if not rows:
        return
    columns = tuple(c for c in rows[0] if c not in keys)
    plan = _plan(conn.dialect, "update", table, columns, tuple(keys))
    _execute(conn, plan, rows)


def _execute(conn: Connection, plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> None:
    values = [_convert(plan, row) for row in rows]
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(plan.sql, [list(column) for column in zip(*values, strict=True)])
        else:
            cursor.executemany(plan.sql, values)
    finally:
        cursor.close()


def _fetch(conn: Connection, plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """`plan` for `rows` in one statement, returning what it returns."""
    values = [_convert(plan, row) for row in rows]
    cursor = conn.connection.cursor()
    try:
        params = (
            [list(c) for c in zip(*values, strict=True)] if conn.dialect.name == "postgresql" else values[0]
        )
        cursor.execute(plan.sql, params)
        return [tuple(r) for r in cursor.fetchall()]
    finally:
        cursor.close()


def _plan(
    dialect: Dialect, verb: str, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]
) -> _Plan:
    cache_key = (dialect.name, verb, table.name, columns, keys)
    plan = _plans.get(cache_key)
    if plan is not None:
        return plan
    preparer = dialect.identifier_preparer
    name = preparer.format_table(table)
    every = columns + keys
    if dialect.name == "postgresql":
        arrays = ", ".join(f"%b::{table.c[c].type.compile(dialect=dialect)}[]" for c in every)
        names = ", ".join(preparer.quote(c) for c in every)
        if verb == "insert":
            sql = f"INSERT INTO {name} ({names}) SELECT * FROM unnest({arrays})"
        else:
            sets = ", ".join(f"{preparer.quote(c)} = v.{preparer.quote(c)}" for c in columns)
            where = " AND ".join(f"{name}.{preparer.quote(k)} = v.{preparer.quote(k)}" for k in keys)
            sql = f"UPDATE {name} SET {sets} FROM unnest({arrays}) AS v({names}) WHERE {where}"
    else:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        if verb == "insert":
            sql = f"INSERT INTO {name} ({', '.join(preparer.quote(c) for c in columns)}) VALUES ({', '.join([mark] * len(columns))})"
        else:
            sets = ", ".join(f"{preparer.quote(c)} = {mark}" for c in columns)
            where = " AND ".join(f"{preparer.quote(k)} = {mark}" for k in keys)
            sql = f"UPDATE {name} SET {sets} WHERE {where}"
    processors = tuple(
        table.c[c].type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-untyped-call]
        for c in every
    )
    plan = _Plan(sql, every, processors)
    _plans[cache_key] = plan
    return plan


def _convert(plan: _Plan, row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        value if process is None or value is None else process(value)
        for value, process in zip((row[c] for c in plan.columns), plan.processors, strict=True)
    )
