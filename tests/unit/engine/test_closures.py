"""The condition language evaluated by the engine's closures, and a firing explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulesvc.engine.closures import compile_explanation, compile_expr
from rulesvc.lang import (
    And,
    Compare,
    Const,
    Expr,
    Not,
    Or,
    Path,
    TypeEnv,
    check,
)
from rulesvc.model import ConditionTrace
from tests.unit.lang.exprs import (
    ENV,
    LOC,
    RANKS,
    P,
    cell,
    extend_expressions,
    literals,
    p,
    path_nodes,
)


def run(text: str, scope: dict[str, Any], env: TypeEnv = ENV) -> Any:
    return compile_expr(p(text), env)(scope)


# --------------------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (4999.99, True),
        (5000, False),
        (5000.0, False),
        ("4999.99", True),
        (Decimal("4999.999"), True),
        (4999, True),
    ],
)
def test_numbers_compare_exactly(amount: Any, expected: bool) -> None:
    assert run("ticket.amount < 5000", {"ticket": {"amount": amount}}) is expected


_cents = st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**6), max_value=10**6)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(st.floats(), _cents.map(float), _cents.map(lambda d: float(d) + 1e-9), st.integers()),
    st.one_of(st.decimals(allow_nan=False, allow_infinity=False), _cents),
    st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
)
def test_json_numbers_compare_as_their_decimal_text(value: float, const: Decimal, op: str) -> None:
    cond = compile_expr(Compare(op, P("ticket", "amount"), Const(const)), ENV)
    if value != value or value in (float("inf"), float("-inf")):
        expected = False
    else:
        import operator

        funcs = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt}
        expected = funcs.get(op, operator.ge)(Decimal(repr(value)), const)
    assert cond({"ticket": {"amount": value}}) is expected


def test_decimal_arithmetic_is_exact() -> None:
    assert run("0.1 + 0.2 == 0.3", {}) is True
    assert run("ticket.amount + 0.2 == 0.3", {"ticket": {"amount": 0.1}}) is True
    assert run("ticket.amount * 3 == 0.3", {"ticket": {"amount": 0.1}}) is True
    assert run("round(ticket.amount / 3, 2)", {"ticket": {"amount": 10}}) == Decimal("3.33")
    assert run("round(2.5)", {}) == Decimal("3")  # half up
    assert run("-ticket.amount < 0", {"ticket": {"amount": 1}}) is True
    assert run("ticket.amount % 7 == 2", {"ticket": {"amount": 100}}) is True


def test_enum_comparisons_follow_declared_order() -> None:
    def rank_ok(rank: str) -> bool:
        return run('ticket.applicant_rank >= "部门经理"', {"ticket": {"applicant_rank": rank}})  # type: ignore[no-any-return]

    assert [rank_ok(r) for r in RANKS] == [False, False, True, True, True, True]
    assert rank_ok("外包") is False  # not a member: every comparison is false
    assert run('ticket.applicant_rank != "总监"', {"ticket": {"applicant_rank": "外包"}}) is False
    assert run('"部门经理" <= ticket.applicant_rank', {"ticket": {"applicant_rank": "总监"}}) is True
    assert run('ticket.credit_rating >= "A"', {"ticket": {"credit_rating": "AA"}}) is True
    assert run('ticket.credit_rating >= "A"', {"ticket": {"credit_rating": "BBB"}}) is False
    assert run('ticket.credit_rating in ["A", "AA"]', {"ticket": {"credit_rating": "AA"}}) is True
    assert run('ticket.credit_rating not in ["A"]', {"ticket": {"credit_rating": "X"}}) is False


def test_expense_auto_approval_scenario() -> None:
    cond = compile_expr(
        p('ticket.expense_type == "差旅费" and ticket.amount < 5000 and ticket.applicant_rank >= "部门经理"'),
        ENV,
    )

    def ok(amount: Any, rank: str, kind: str = "差旅费") -> bool:
        return cond({"ticket": {"expense_type": kind, "amount": amount, "applicant_rank": rank}})  # type: ignore[no-any-return]

    assert ok(4999.99, "部门经理") is True
    assert ok(5000, "部门经理") is False
    assert ok(100, "主管") is False
    assert ok(100, "总经理", "招待费") is False


@pytest.mark.parametrize(
    "text",
    [
        "ticket.amount < 5000",
        "ticket.amount != 5000",
        "ticket.amount >= 0",
        'ticket.region != "x"',
        'ticket.region not in ["x"]',
        'ticket.region in ["x"]',
        'ticket.region contains "x"',
        'ticket.region startswith "x"',
        'ticket.region endswith "x"',
        'ticket.region matches "x*"',
        'ticket.applicant_rank != "总监"',
        "ticket.amount / 0 < 1",
        "ticket.amount / 0 != 1",
        "ticket.amount + 1 > 0",
        "len(ticket.region) >= 0",
        "大额贷款.金额 > 0",
        "ticket.vip",
        "大额贷款",
        "extra.x == 1",
    ],
)
def test_missing_values_make_atomic_tests_false(text: str) -> None:
    scopes: list[dict[str, Any]] = [
        {},
        {"ticket": None},
        {"ticket": {}},
        {"ticket": {"amount": None, "region": None}},
    ]
    for scope in scopes:
        assert run(text, scope) is False, (text, scope)
    assert run(f"not ({text})", {}) is True


def test_division_by_zero_and_type_clashes_never_raise() -> None:
    assert run("ticket.amount / 0 > 1", {"ticket": {"amount": 5}}) is False
    assert run("ticket.amount % 0 == 0", {"ticket": {"amount": 5}}) is False
    assert run("ticket.amount < 5000", {"ticket": {"amount": "abc"}}) is False
    assert run("ticket.amount < 5000", {"ticket": {"amount": True}}) is False
    assert run("ticket.amount < 5000", {"ticket": {"amount": float("nan")}}) is False
    assert run('ticket.region == "上海"', {"ticket": {"region": ["上海"]}}) is False
    assert run("extra.x < 5", {"extra": {"x": "text"}}) is False
    assert run("extra.x == 1", {"extra": {"x": True}}) is False
    assert run("extra.x == 1", {"extra": {"x": 1.0}}) is True
    assert run("extra.x + 1 == 2", {"extra": {"x": "1"}}) is False


def test_null_is_the_existence_test() -> None:
    assert run("ticket.amount == null", {"ticket": {}}) is True
    assert run("ticket.amount == null", {"ticket": {"amount": 0}}) is False
    assert run("ticket.amount != null", {"ticket": {"amount": 0}}) is True
    assert run("null == ticket.amount", {}) is True
    assert run('ticket.region in [null, "x"]', {"ticket": {}}) is True


def test_facts_are_true_iff_present() -> None:
    assert run("大额贷款", {"大额贷款": {}}) is True
    assert run("大额贷款", {"大额贷款": {"金额": 1}}) is True
    assert run("大额贷款", {}) is False
    assert run("not 大额贷款 and not 加急", {}) is True
    assert run("大额贷款.金额 >= 5000000", {"大额贷款": {"金额": 5_000_000}}) is True


def test_datetimes_and_durations() -> None:
    scope = {
        "ticket": {"created_at": "2026-10-10T09:00:00+08:00", "wait": 5400},
        "event": {"occurred_at": datetime(2026, 10, 10, 3, 0, tzinfo=UTC)},  # 11:00 +08:00
        "timer": {"late_by": timedelta(minutes=5)},
    }
    assert run("event.occurred_at - ticket.created_at == 2h", scope) is True
    assert run("event.occurred_at - ticket.created_at > 1.5h", scope) is True
    assert run("event.occurred_at > ticket.created_at + 1h59m", scope) is True
    assert run('ticket.created_at >= "2026-10-10"', scope) is True  # naive → Asia/Shanghai midnight
    assert run('ticket.created_at < "2026-10-10T01:00:00Z"', scope) is False  # 09:00+08 == 01:00Z
    assert run("ticket.wait == 90m", scope) is True  # numbers on duration fields are seconds
    assert run("timer.late_by < 10m and timer.late_by * 2 == 10m", scope) is True
    assert run("ticket.wait / 2 == 45m", scope) is True
    assert run('ticket.created_at > "not a date"', scope) is False
    assert run("ticket.created_at > 1", scope) is False


def test_strings_lists_and_functions() -> None:
    scope = {"ticket": {"region": "上海浦东新区", "tags": ["VIP", 1.5], "expense_type": "Travel"}}
    assert run('ticket.region startswith "上海"', scope) is True
    assert run('ticket.region endswith "新区"', scope) is True
    assert run('ticket.region contains "浦东"', scope) is True
    assert run(r'ticket.region matches "^上海\w{2}"', scope) is True
    assert run('ticket.region matches "^浦东"', scope) is False
    assert run('ticket.tags contains "VIP"', scope) is True
    assert run("ticket.tags contains 1.5", scope) is True
    assert run('"VIP" in ticket.tags', scope) is True
    assert run('lower(ticket.expense_type) == "travel" and upper("a") == "A"', scope) is True
    assert run("len(ticket.tags) == 2 and len(ticket.region) == 6", scope) is True
    assert run("abs(-3) == 3 and abs(-2h) == 2h", scope) is True
    assert run('ticket.region in ["上海浦东新区", "北京海淀"]', scope) is True
    assert run('ticket.region not in ["北京海淀"]', scope) is True
    assert run("ticket.region in [ticket.expense_type, ticket.region]", scope) is True


def test_value_expressions_return_values() -> None:
    assert run("ticket.amount * 2", {"ticket": {"amount": 2.5}}) == Decimal("5.0")
    assert run('"固定"', {}) == "固定"
    assert run("ticket.amount", {}) is None


def test_cells_evaluate() -> None:
    def hit(text: str, subject: str, value: Any) -> bool:
        root, name = subject.split(".")
        return compile_expr(cell(text, subject), ENV)({root: {name: value}})  # type: ignore[no-any-return]

    assert hit("[1000..5000)", "ticket.amount", 1000) is True
    assert hit("[1000..5000)", "ticket.amount", 4999.99) is True
    assert hit("[1000..5000)", "ticket.amount", 5000) is False
    assert hit("(0..1000]", "ticket.amount", 0) is False
    assert hit("-5", "ticket.amount", -5) is True
    assert hit("上海浦东, 北京海淀", "ticket.region", "北京海淀") is True
    assert hit("上海浦东, 北京海淀", "ticket.region", "广州天河") is False
    assert hit(">= A", "ticket.credit_rating", "AAA") is True
    assert hit(">= A", "ticket.credit_rating", "BBB") is False
    assert hit(">= 部门经理", "ticket.applicant_rank", "总监") is True
    assert hit("not in [a, b]", "ticket.region", "c") is True
    assert hit("-", "ticket.region", None) is True


# ------------------------------------------------------------------------------------------ explain


def explain(expr: Expr, scope: dict[str, Any]) -> tuple[ConditionTrace, ...]:
    return compile_explanation(expr, ENV)(scope)


def test_explain_reports_each_atom_with_values() -> None:
    expr = p('ticket.amount < 5000 and (ticket.applicant_rank >= "部门经理" or 大额贷款) and not ticket.vip')
    traces = explain(expr, {"ticket": {"amount": 4999.99, "applicant_rank": "总监", "vip": False}})
    assert traces == (
        ConditionTrace("ticket.amount < 5000", {"ticket.amount": Decimal("4999.99")}, True),
        ConditionTrace('ticket.applicant_rank >= "部门经理"', {"ticket.applicant_rank": "总监"}, True),
        ConditionTrace("大额贷款", {}, False),  # a bare fact: its result says whether it exists
        ConditionTrace("ticket.vip", {"ticket.vip": False}, False),
    )
    assert traces[0].to_json() == {
        "condition": "ticket.amount < 5000",
        "values": {"ticket.amount": Decimal("4999.99")},
        "result": True,
    }


def test_explain_bound_cells_and_missing_values() -> None:
    traces = explain(cell("[1000..5000)", "ticket.amount"), {"ticket": {}})
    assert traces == (
        ConditionTrace("ticket.amount >= 1000", {"ticket.amount": None}, False),
        ConditionTrace("ticket.amount < 5000", {"ticket.amount": None}, False),
    )
    assert compile_explanation(None, ENV)({}) == ()  # a rule without `when`
    traces = explain(
        p("event.occurred_at - ticket.created_at > 2h"), {"ticket": {"created_at": "2026-01-01"}}
    )
    assert traces[0].values == {
        "event.occurred_at": None,
        "ticket.created_at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8))),
    }


def test_explain_follows_the_condition_as_written() -> None:
    """A test written twice is traced at each place it is written, in order."""
    traces = explain(p("ticket.vip or (ticket.amount > 1 and ticket.vip)"), {"ticket": {"vip": True}})
    assert [t.text for t in traces] == ["ticket.vip", "ticket.amount > 1", "ticket.vip"]


# ----------------------------------------------------------------------------------- never raising


declared_paths = st.sampled_from(sorted(ENV.fields)).map(lambda parts: Path(parts))
typed_expressions = st.recursive(
    st.one_of(
        literals, path_nodes, declared_paths, st.sampled_from([Path(("大额贷款",)), Path(("extra", "x"))])
    ),
    extend_expressions,
    max_leaves=10,
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=5),
        st.decimals(),
        st.sampled_from(["2026-10-10T09:00:00+08:00", "90m", "总监", "A", "4999.99"]),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
scopes = st.fixed_dictionaries(
    {},
    optional={
        root: st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={name: json_values for (r, name, *_) in ENV.fields if r == root}
                | {"x": json_values},
            ),
        )
        for root in ("ticket", "event", "timer", "大额贷款", "extra")
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_expressions, scopes)
def test_evaluation_and_explain_never_raise(expr: Expr, scope: dict[str, Any]) -> None:
    check(expr, ENV, LOC)
    result = compile_expr(expr, ENV)(scope)
    if isinstance(expr, Compare | And | Or | Not):
        assert result is True or result is False
    for trace in explain(expr, scope):
        assert trace.result is True or trace.result is False
