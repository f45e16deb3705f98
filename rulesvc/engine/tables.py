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
from rulesvc.lang.tables import column_kind, equality_values, same_result
from rulesvc.lang.values import DECIMAL_CONTEXT
from rulesvc.model import ConditionTrace

Scope = Mapping[str, Any]


class UniqueConflict(EngineError):
    """Several rows of a `hit: unique` table matched, or rows of a `hit: any` table that decide differently
    (the ruleset's compiler turns it into a positioned `RuleRuntimeError`)."""

    def __init__(self, table: Table, rows: Sequence[Row], inputs: Mapping[str, Any]) -> None:
        self.table = table
        self.rows = tuple(rows)
        self.inputs = dict(inputs)
        super().__init__(
            f"table {table.id!r} (hit: {table.hit}) matched rows {', '.join(repr(r.id) for r in rows)} "
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


def aggregate(how: str, values: Sequence[Any]) -> Decimal | None:
    """`count`: how many; `sum`, `min`, `max`: of the numbers among `values` (None when there are none)."""
    if how == "count":
        return Decimal(len(values))
    numbers = [v for v in values if isinstance(v, Decimal)]
    if not numbers:
        return None
    if how == "sum":
        total = Decimal(0)
        for number in numbers:
            total = DECIMAL_CONTEXT.add(total, number)
        return total
    return min(numbers) if how == "min" else max(numbers)


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
        """Rows chosen by the hit policy, in the order they apply (the default row when none matches), and
        the input values. `unique`: at most one row may match; `any`: the rows that match must decide the
        same (else UniqueConflict); `first`: the first in table order; `priority`: the one whose outputs
        come first in the listed values; `output_order`: all, by that order; `rule_order`, `collect`: all,
        in table order."""
        table = self.table
        inputs = {column: fn(scope) for column, fn in self.inputs}
        cell_scope = {**scope, INPUTS: inputs}
        matched: list[Row] = []
        for position in self.candidates(inputs):
            compiled = self.rows[position]
            if compiled.test(cell_scope) is True:
                matched.append(compiled.row)
                if table.hit == "first":
                    break
        if not matched:
            return [table.default], inputs
        if table.hit == "unique" and len(matched) > 1:
            raise UniqueConflict(table, matched, inputs)
        if table.hit == "any" and len(matched) > 1:
            if not all(same_result(matched[0], row) for row in matched[1:]):
                raise UniqueConflict(table, matched, inputs)
            return matched[:1], inputs
        if table.hit == "priority":
            return [min(matched, key=self.priority)], inputs
        if table.hit == "output_order":
            return sorted(matched, key=self.priority), inputs
        return matched, inputs

    def priority(self, row: Row) -> tuple[int, ...]:
        """A row's place by its output values (lower first): the listed outputs, left to right."""
        return tuple(
            output.rank(row.outputs.get(name)) for name, output in self.table.outputs.items() if output.values
        )

    def result(self, rows: Sequence[Row]) -> dict[str, Any] | None:
        """The table's outputs for the chosen rows (None when the rows carry none: the fact is not asserted).
        Single hit: each output's value; multi hit: a list per output, in hit order; with an aggregation:
        the sum, minimum, maximum (of the values present) or count (of the rows matched)."""
        table = self.table
        if not table.outputs:
            return None
        if len(rows) == 1 and rows[0].is_default:
            if not rows[0].outputs:
                return None
            if not table.multi_hit:
                return {name: rows[0].outputs.get(name) for name in table.outputs}
        if table.aggregate is not None:
            name = next(iter(table.outputs))
            values = [row.outputs.get(name) for row in rows]
            return {name: aggregate(table.aggregate, values)}
        if table.multi_hit:
            return {name: [row.outputs.get(name) for row in rows] for name in table.outputs}
        return {name: rows[0].outputs.get(name) for name in table.outputs}

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
