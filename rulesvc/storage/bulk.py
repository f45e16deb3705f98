"""The statements of the decision hot path, straight on the DB-API cursor of a SQLAlchemy connection.

Why: these writes serialize the whole service (they run under ticket locks and the chain-head lock), and
two costs dominate them. SQLAlchemy's executemany path spends 10–20 µs of Python per row (compilation,
parameter coercion). And every round trip to the server costs far more under load than on an idle
machine, because the server, the event loop and the writer thread share two cores and the GIL.

So each (table, columns) pair gets one pre-rendered statement; values go through each column's own
SQLAlchemy bind and result processors (rows read back through the ORM exactly as if the ORM had written
them); a batch of rows is one statement over column arrays (`unnest`, PostgreSQL: one round trip and the
same statement text for any number of rows) or one C-level `executemany` (SQLite); the statements of a
`round()` go to PostgreSQL together, in one psycopg pipeline (one round trip for all of them); and the
independent writes of a `together()` block become one statement of data-modifying `WITH`s. Fewer
commands matter beyond round trips: psycopg waits for the socket once per command, and each wait hands
the GIL to the event-loop thread, which may keep it for a whole switch interval.

Everything takes part in the caller's transaction and never commits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Table

_Processor = Callable[[Any], Any] | None
# SQLite's default limit on host parameters is 32,766; stay well below it.
_SQLITE_IN = 500


@dataclass(frozen=True)
class _Plan:
    sql: str
    """With one placeholder per column: a row (SQLite) or an array of that column's values (PostgreSQL)."""
    columns: tuple[str, ...]
    processors: tuple[_Processor, ...]


class Rows:
    """The rows a statement returns, as tuples of Python values; read them after the statement's round."""

    def __init__(self, fetch: Callable[[], list[tuple[Any, ...]]], processors: Sequence[_Processor]) -> None:
        self._fetch = fetch
        self._processors = processors
        self._rows: list[tuple[Any, ...]] | None = None

    @classmethod
    def of(cls, rows: list[tuple[Any, ...]]) -> Rows:
        """Rows already read (and processed)."""
        return cls(lambda: rows, ())

    def all(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            rows = self._fetch()
            processing = [(i, p) for i, p in enumerate(self._processors) if p is not None]
            if processing:  # only the columns that have a processor (most have none)
                for index, row in enumerate(rows):
                    values = list(row)
                    for i, p in processing:
                        if values[i] is not None:
                            values[i] = p(values[i])
                    rows[index] = tuple(values)
            self._rows = rows
        return self._rows


class Statements:
    """Hot-path statements on the connection of a transaction (see the module docstring)."""

    def __init__(self, conn: Connection) -> None:
        self._dialect: Dialect = conn.dialect
        self._dbapi = conn.connection
        self.pool: Any = conn.engine.pool
        """Identifies the database (one pool per engine) for the chain watermark."""
        self._pg = self._dialect.name == "postgresql"
        self._together: list[tuple[_Plan, Sequence[Mapping[str, Any]]]] | None = None

    @property
    def postgresql(self) -> bool:
        return self._pg

    @contextmanager
    def together(self) -> Iterator[None]:
        """The inserts and updates issued inside (on distinct tables, none reading another's rows) go to
        PostgreSQL as one statement: each a data-modifying `WITH` of the last."""
        if not self._pg:
            yield
            return
        self._together = []
        try:
            yield
            writes = self._together
        finally:
            self._together = None
        if not writes:
            return
        *first, (last_plan, _) = writes
        ctes = ", ".join(f"w{i} AS ({plan.sql})" for i, (plan, _) in enumerate(first))
        sql = (f"WITH {ctes} " if ctes else "") + last_plan.sql
        params = [array for plan, rows in writes for array in self._arrays(plan, rows)]
        self._dbapi.cursor().execute(sql, params)

    @contextmanager
    def round(self) -> Iterator[None]:
        """Send the statements issued inside together (PostgreSQL pipeline); their `Rows` are readable after."""
        if not self._pg:
            yield
            return
        driver: Any = self._dbapi.driver_connection  # psycopg.Connection
        with driver.pipeline():
            yield

    def insert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT `rows` (dicts with the same keys)."""
        if rows:
            self._execute(self._plan("insert", table, tuple(rows[0]), ()), rows)

    def update(self, table: Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
        """UPDATE: each dict holds the `keys` selecting one row (distinct within `rows`) and values to set."""
        if rows:
            columns = tuple(c for c in rows[0] if c not in keys)
            self._execute(self._plan("update", table, columns, tuple(keys)), rows)

    def delete(self, table: Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
        """DELETE the rows selected by each dict's `keys` values."""
        if rows:
            self._execute(self._plan("delete", table, (), tuple(keys)), rows)

    def insert_or_lock(
        self, table: Table, key: str, rows: Sequence[Mapping[str, Any]], returning: Sequence[str]
    ) -> Rows:
        """INSERT the `rows` whose `key` is new and lock the existing ones, in the order given (an upsert
        setting the key onto itself takes the row lock on PostgreSQL; SQLite's writer is exclusive anyway);
        returns the `returning` columns of every row as stored."""
        processors = self._result_processors(table, returning)
        if not rows:
            return Rows(list, processors)
        plan = self._plan("insert", table, tuple(rows[0]), ())
        quote = self._dialect.identifier_preparer.quote
        upsert = _Plan(
            f"{plan.sql} ON CONFLICT ({quote(key)}) DO UPDATE SET {quote(key)} = excluded.{quote(key)}"
            f" RETURNING {', '.join(quote(c) for c in returning)}",
            plan.columns,
            plan.processors,
        )
        if self._pg:
            return Rows(self._query(upsert.sql, self._arrays(upsert, rows)), processors)
        # the sqlite3 module cannot return rows from executemany: one statement per row
        return Rows(
            _joined([self._query(upsert.sql, self._convert(upsert, row)) for row in rows]), processors
        )

    def query(self, sql: str, params: Mapping[str, Any]) -> Rows:
        """A statement of PostgreSQL's own SQL (named `%(name)s` parameters as psycopg adapts them); its
        rows as the driver returns them."""
        if not self._pg:
            raise NotImplementedError("raw SQL statements are PostgreSQL's")
        cursor = self._dbapi.cursor()
        cursor.execute(sql, params)
        return Rows(lambda: list(cursor.fetchall()), ())

    def select(
        self,
        table: Table,
        columns: Sequence[str],
        key: str,
        values: Sequence[Any],
        *,
        for_update: bool = False,
        where: str = "",
    ) -> Rows:
        """SELECT `columns` of the rows whose `key` is one of `values` (and, given, that match the SQL
        condition `where`), locked with `for_update`."""
        processors = self._result_processors(table, columns)
        if not values:
            return Rows(list, processors)
        preparer = self._dialect.identifier_preparer
        head = f"SELECT {', '.join(preparer.quote(c) for c in columns)} FROM {preparer.format_table(table)}"
        bind = table.c[key].type.dialect_impl(self._dialect).bind_processor(self._dialect)
        params = [v if bind is None or v is None else bind(v) for v in values]
        also = f" AND ({where})" if where else ""
        if self._pg:
            sql = (
                f"{head} WHERE {preparer.quote(key)} = ANY(%b::{_array_of(table, key, self._dialect)}){also}"
            )
            return Rows(self._query(sql + (" FOR UPDATE" if for_update else ""), [params]), processors)
        fetches = [
            self._query(
                f"{head} WHERE {preparer.quote(key)} IN ({', '.join(['?'] * len(chunk))}){also}", chunk
            )
            for chunk in (params[i : i + _SQLITE_IN] for i in range(0, len(params), _SQLITE_IN))
        ]
        return Rows(_joined(fetches), processors)

    def select_referenced(
        self,
        table: Table,
        columns: Sequence[str],
        key: str,
        referrer: Table,
        reference: str,
        referrer_key: str,
        values: Sequence[Any],
    ) -> Rows:
        """SELECT `columns` of the rows of `table` whose `key` is the `reference` column of a `referrer` row
        whose `referrer_key` is one of `values` (e.g. the chain entries tickets point at), in one statement
        that can go in the same round as the statement locking the referrers."""
        processors = self._result_processors(table, columns)
        if not values:
            return Rows(list, processors)
        preparer = self._dialect.identifier_preparer
        quote = preparer.quote
        inner = (
            f"SELECT {quote(reference)} FROM {preparer.format_table(referrer)} WHERE {quote(referrer_key)}"
        )
        head = (
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {preparer.format_table(table)}"
            f" WHERE {quote(key)} IN ({inner}"
        )
        bind = referrer.c[referrer_key].type.dialect_impl(self._dialect).bind_processor(self._dialect)
        params = [v if bind is None or v is None else bind(v) for v in values]
        if self._pg:
            array = _array_of(referrer, referrer_key, self._dialect)
            return Rows(self._query(f"{head} = ANY(%b::{array}))", [params]), processors)
        fetches = [
            self._query(f"{head} IN ({', '.join(['?'] * len(chunk))}))", chunk)
            for chunk in (params[i : i + _SQLITE_IN] for i in range(0, len(params), _SQLITE_IN))
        ]
        return Rows(_joined(fetches), processors)

    # -- helpers ------------------------------------------------------------------------------------------

    def _execute(self, plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> None:
        if self._together is not None:
            self._together.append((plan, rows))
            return
        cursor = self._dbapi.cursor()
        if self._pg:
            cursor.execute(plan.sql, self._arrays(plan, rows))
        else:
            cursor.executemany(plan.sql, [self._convert(plan, row) for row in rows])

    def _query(self, sql: str, params: Sequence[Any]) -> Callable[[], list[tuple[Any, ...]]]:
        """Execute now (queued in a pipeline round); the returned function fetches the rows."""
        cursor = self._dbapi.cursor()
        cursor.execute(sql, params)
        if self._pg:
            return lambda: [tuple(r) for r in cursor.fetchall()]
        rows = [tuple(r) for r in cursor.fetchall()]  # SQLite: fetch before the next statement runs
        return lambda: rows

    def _arrays(self, plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """One array per column (built column by column: the same values as `_convert` row by row)."""
        arrays = []
        for column, process in zip(plan.columns, plan.processors, strict=True):
            values = [row[column] for row in rows]
            if process is not None:
                values = [v if v is None else process(v) for v in values]
            arrays.append(values)
        return arrays

    @staticmethod
    def _convert(plan: _Plan, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None or value is None else process(value)
            for value, process in zip((row[c] for c in plan.columns), plan.processors, strict=True)
        )

    def _result_processors(self, table: Table, columns: Sequence[str]) -> list[_Processor]:
        key = (self._dialect.name, "result", table.name, tuple(columns), ())
        cached = _processors.get(key)
        if cached is None:
            cached = [
                table.c[c].type.dialect_impl(self._dialect).result_processor(self._dialect, None)
                for c in columns
            ]
            _processors[key] = cached
        return cached

    def _plan(self, verb: str, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> _Plan:
        dialect = self._dialect
        cache_key = (dialect.name, verb, table.name, columns, keys)
        plan = _plans.get(cache_key)
        if plan is not None:
            return plan
        preparer = dialect.identifier_preparer
        name = preparer.format_table(table)
        every = columns + keys
        quoted = [preparer.quote(c) for c in every]
        if self._pg:
            arrays = ", ".join(f"%b::{_array_of(table, c, dialect)}" for c in every)
            if verb == "insert":
                sql = f"INSERT INTO {name} ({', '.join(quoted)}) SELECT * FROM unnest({arrays})"
            elif verb == "delete":
                where = " AND ".join(f"{name}.{q} = v.{q}" for q in quoted)
                sql = f"DELETE FROM {name} USING unnest({arrays}) AS v({', '.join(quoted)}) WHERE {where}"
            else:
                sets = ", ".join(f"{q} = v.{q}" for q in quoted[: len(columns)])
                where = " AND ".join(f"{name}.{q} = v.{q}" for q in quoted[len(columns) :])
                sql = (
                    f"UPDATE {name} SET {sets} FROM unnest({arrays}) AS v({', '.join(quoted)}) WHERE {where}"
                )
        elif verb == "insert":
            sql = f"INSERT INTO {name} ({', '.join(quoted)}) VALUES ({', '.join(['?'] * len(columns))})"
        elif verb == "delete":
            sql = f"DELETE FROM {name} WHERE {' AND '.join(f'{q} = ?' for q in quoted)}"
        else:
            sets = ", ".join(f"{q} = ?" for q in quoted[: len(columns)])
            where = " AND ".join(f"{q} = ?" for q in quoted[len(columns) :])
            sql = f"UPDATE {name} SET {sets} WHERE {where}"
        processors = tuple(table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in every)
        plan = _Plan(sql, every, processors)
        _plans[cache_key] = plan
        return plan


def _joined(fetches: Sequence[Callable[[], list[tuple[Any, ...]]]]) -> Callable[[], list[tuple[Any, ...]]]:
    """One fetch for the rows of several statements, in order."""
    return lambda: [row for fetch in fetches for row in fetch()]


def _array_of(table: Table, column: str, dialect: Dialect) -> str:
    """The PostgreSQL array type for a column's values, without length or precision: an explicit cast to
    `VARCHAR(200)` would cut longer strings short, whereas the assignment to the column rejects them."""
    return re.sub(r"\([^)]*\)", "", table.c[column].type.compile(dialect=dialect)) + "[]"


_plans: dict[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], _Plan] = {}
_processors: dict[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], list[_Processor]] = {}
