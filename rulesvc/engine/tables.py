"""Decision tables compiled into indexes (the fast path; durable_rules never sees a table).

An equality column (every cell `-`, a value, `in [...]` or `a, b`) becomes a hash index value → rows, so a
5,000-row routing table costs one dict lookup plus the few candidate rows, whatever its size. The remaining
cells of each candidate row are compiled closures, evaluated in row order so hit policies keep their meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from rulesvc.engine.closures import compile_expr
from rulesvc.errors import EngineError
from rulesvc.lang import And, Const, Path, TypeEnv, bind_subject, infer_type
from rulesvc.lang.model import Row, Table
from rulesvc.lang.tables import column_kind, equality_values
from rulesvc.model import ConditionTrace

Scope = Mapping[str, Any]


class UniqueConflict(EngineError):
    """Several rows of a `hit: unique` table matched (the ruleset's compiler turns it into a positioned
    `RuleRuntimeError`)."""

    def __init__(self, table: Table, rows: Sequence[Row], inputs: Mapping[str, Any]) -> None:
        self.table = table
        self.rows = tuple(rows)
        self.inputs = dict(inputs)
        super().__init__(
            f"table {table.id!r} (hit: unique) matched rows {', '.join(repr(r.id) for r in rows)} "
            f"for inputs {inputs}"
        )


INPUTS = "$in"  # synthetic scope root holding a table's input values, computed once per evaluation


def _key(value: Any, numeric: bool) -> Any:
    if numeric and not isinstance(value, bool):
        try:
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class CompiledRow:
    row: Row
    test: Callable[[Scope], Any]  # cells other than the indexed column


class CompiledTable:
    def __init__(self, table: Table, env: TypeEnv) -> None:
        self.table = table
        self.columns = list(table.inputs)
        self.inputs = [(column, compile_expr(expr, env)) for column, expr in table.inputs.items()]
        cell_env = TypeEnv(
            fields={
                **env.fields,
                **{(INPUTS, column): infer_type(expr, env) for column, expr in table.inputs.items()},
            },
            enums=env.enums,
            open_roots=env.open_roots,
            facts=env.facts,
        )
        self.index_column, self.numeric_index = self._choose_index(env)
        self.rows: list[CompiledRow] = []
        for row in table.rows:
            cells = [
                bind_subject(cell, Path((INPUTS, column)))
                for column, cell in row.cells.items()
                if column != self.index_column
            ]
            test = compile_expr(And(tuple(cells)), cell_env) if cells else (lambda _s: True)
            self.rows.append(CompiledRow(row, test))
        self.index: dict[Any, list[int]] = {}
        self.wildcards: list[int] = []
        if self.index_column is not None:
            for position, row in enumerate(table.rows):
                values = equality_values(row.cells.get(self.index_column, Const(True)))
                if not values:
                    self.wildcards.append(position)
                    continue
                for value in values:
                    key = _key(value, self.numeric_index)
                    if key is not None:
                        self.index.setdefault(key, []).append(position)

    def _choose_index(self, env: TypeEnv) -> tuple[str | None, bool]:
        """The equality column with the most distinct values (None when no column qualifies)."""
        best: tuple[int, str, bool] | None = None
        for column, expr in self.table.inputs.items():
            kind, _members = column_kind(expr, env)
            if kind not in ("num", "str", "enum"):
                continue
            distinct: set[Any] = set()
            for row in self.table.rows:
                values = equality_values(row.cells.get(column, Const(True)))
                if values is None:
                    break
                distinct.update(values)
            else:
                if best is None or len(distinct) > best[0]:
                    best = (len(distinct), column, kind == "num")
        if best is None or best[0] == 0:
            return None, False
        return best[1], best[2]

    def candidates(self, inputs: Mapping[str, Any]) -> Sequence[int]:
        if self.index_column is None:
            return range(len(self.rows))
        hits = self.index.get(_key(inputs.get(self.index_column), self.numeric_index), [])
        if not self.wildcards:
            return hits
        return sorted({*hits, *self.wildcards})

    def match(self, scope: Scope) -> tuple[list[Row], dict[str, Any]]:
        """Rows chosen by the hit policy (the default row when none matches) and the input values."""
        inputs = {column: fn(scope) for column, fn in self.inputs}
        cell_scope = {**scope, INPUTS: inputs}
        matched: list[Row] = []
        for position in self.candidates(inputs):
            compiled = self.rows[position]
            if compiled.test(cell_scope) is True:
                matched.append(compiled.row)
                if self.table.hit == "first":
                    break
        if self.table.hit == "unique" and len(matched) > 1:
            raise UniqueConflict(self.table, matched, inputs)
        return (matched or [self.table.default]), inputs

    def explain(self, row: Row, inputs: Mapping[str, Any]) -> tuple[ConditionTrace, ...]:
        if row.is_default:
            return tuple(
                ConditionTrace(f"{self.table.input_texts[c]}: 无匹配行，使用默认行", {c: inputs.get(c)}, True)
                for c in self.columns
            )
        return tuple(
            ConditionTrace(
                f"{column}({self.table.input_texts[column]}) {row.cell_texts[column]}",
                {self.table.input_texts[column]: inputs.get(column)},
                True,
            )
            for column in self.columns
            if column in row.cell_texts
        )
