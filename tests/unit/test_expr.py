"""The condition language: parsing, errors, type checking, evaluation, cells, explanations."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulesvc.errors import InvalidRulesetError, Location, RulesetError
from rulesvc.lang.expr import (
    FUNCTIONS,
    KEYWORDS,
    And,
    BinOp,
    Call,
    Compare,
    Const,
    Expr,
    ExpressionError,
    FieldType,
    ListExpr,
    Neg,
    Not,
    Or,
    Path,
    Subject,
    TypeEnv,
    bind_subject,
    check,
    compile_expr,
    explain,
    parse_cell,
    parse_expression,
    paths,
    to_text,
)
from rulesvc.model import ConditionTrace

LOC = Location("r.yaml", 10, 15)
RANKS = ("员工", "主管", "部门经理", "总监", "副总经理", "总经理")
RATINGS = ("C", "B", "BB", "BBB", "A", "AA", "AAA")  # low → high (worst → best)
ENV = TypeEnv(
    fields={
        ("ticket", "amount"): FieldType("number"),
        ("ticket", "region"): FieldType("string"),
        ("ticket", "expense_type"): FieldType("string"),
        ("ticket", "applicant_rank"): FieldType("enum", enum="职级"),
        ("ticket", "credit_rating"): FieldType("enum", enum="信用等级"),
        ("ticket", "created_at"): FieldType("datetime"),
        ("ticket", "vip"): FieldType("bool"),
        ("ticket", "tags"): FieldType("list"),
        ("ticket", "wait"): FieldType("duration"),
        ("event", "type"): FieldType("string"),
        ("event", "occurred_at"): FieldType("datetime"),
        ("timer", "name"): FieldType("string"),
        ("timer", "late_by"): FieldType("duration"),
        ("大额贷款", "金额"): FieldType("number"),
    },
    enums={"职级": RANKS, "信用等级": RATINGS},
    open_roots=frozenset({"extra"}),
    facts=frozenset({"大额贷款", "加急"}),
)


def p(text: str) -> Expr:
    return parse_expression(text, LOC)


def P(*parts: str) -> Path:
    return Path(parts)


def D(text: str) -> Const:
    return Const(Decimal(text))


def S(text: str) -> Const:
    return Const(text)


def run(text: str, scope: dict[str, Any], env: TypeEnv = ENV) -> Any:
    return compile_expr(p(text), env)(scope)


def errors(text: str, env: TypeEnv = ENV) -> list[RulesetError]:
    return check(p(text), env, LOC)


def codes(text: str) -> list[str]:
    return [e.code for e in errors(text)]


def syntax_error(text: str) -> RulesetError:
    with pytest.raises(ExpressionError) as info:
        p(text)
    assert isinstance(info.value, InvalidRulesetError)
    assert len(info.value.errors) == 1 and info.value.error.code == "expr_syntax"
    return info.value.error


# ------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5000", D("5000")),
        ("4999.99", D("4999.99")),
        ("1_000_000", D("1000000")),
        ('"上海浦东"', S("上海浦东")),
        ("'差旅费'", S("差旅费")),
        (r'"a\"b\\c\nd"', S('a"b\\c\nd')),
        (r'"\d+\u4e2d"', S("\\d+中")),
        ("true", Const(True)),
        ("false", Const(False)),
        ("null", Const(None)),
        ("90m", Const(timedelta(minutes=90))),
        ("2h", Const(timedelta(hours=2))),
        ("1.5h", Const(timedelta(minutes=90))),
        ("30s", Const(timedelta(seconds=30))),
        ("1d", Const(timedelta(days=1))),
        ("1h30m", Const(timedelta(minutes=90))),
        ("2小时", Const(timedelta(hours=2))),
        ("[1, 'a', x]", ListExpr((D("1"), S("a"), P("x")))),
        ("[]", ListExpr(())),
        ("ticket.amount", P("ticket", "amount")),
        ("大额贷款", P("大额贷款")),
        ("大额贷款.金额", P("大额贷款", "金额")),
        ("a.b.c", P("a", "b", "c")),
        ("_x1", P("_x1")),
        ("-5", Neg(D("5"))),
        ("len(ticket.tags)", Call("len", (P("ticket", "tags"),))),
        ("round(x, 2)", Call("round", (P("x"), D("2")))),
        ("x in [1, 2]", Compare("in", P("x"), ListExpr((D("1"), D("2"))))),
        ("x not in [1, 2,]", Compare("not in", P("x"), ListExpr((D("1"), D("2"))))),
        ('x contains "a"', Compare("contains", P("x"), S("a"))),
        ('x startswith "a"', Compare("startswith", P("x"), S("a"))),
        ('x endswith "a"', Compare("endswith", P("x"), S("a"))),
        ('x matches "^a+$"', Compare("matches", P("x"), S("^a+$"))),
        ('ticket.region == "上海浦东"', Compare("==", P("ticket", "region"), S("上海浦东"))),
        ("a != b", Compare("!=", P("a"), P("b"))),
        ("a<=b", Compare("<=", P("a"), P("b"))),
        ("a >= b", Compare(">=", P("a"), P("b"))),
        ("a > b", Compare(">", P("a"), P("b"))),
        ("not 大额贷款", Not(P("大额贷款"))),
        ("a and b and c", And((P("a"), P("b"), P("c")))),
        ("(a and b) and c", And((P("a"), P("b"), P("c")))),
        ("a or b or c", Or((P("a"), P("b"), P("c")))),
    ],
)
def test_parses_every_construct(text: str, expected: Expr) -> None:
    assert p(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a or b and c", Or((P("a"), And((P("b"), P("c")))))),
        ("(a or b) and c", And((Or((P("a"), P("b"))), P("c")))),
        ("not a and b", And((Not(P("a")), P("b")))),
        ("not a == 1", Not(Compare("==", P("a"), D("1")))),
        ("a + 1 < b * 2", Compare("<", BinOp("+", P("a"), D("1")), BinOp("*", P("b"), D("2")))),
        ("a + b * c", BinOp("+", P("a"), BinOp("*", P("b"), P("c")))),
        ("(a + b) * c", BinOp("*", BinOp("+", P("a"), P("b")), P("c"))),
        ("a - b - c", BinOp("-", BinOp("-", P("a"), P("b")), P("c"))),
        ("a - (b - c)", BinOp("-", P("a"), BinOp("-", P("b"), P("c")))),
        ("a / b % c", BinOp("%", BinOp("/", P("a"), P("b")), P("c"))),
        ("-a * b", BinOp("*", Neg(P("a")), P("b"))),
        ("a * -b", BinOp("*", P("a"), Neg(P("b")))),
        ("a in [1] and not b", And((Compare("in", P("a"), ListExpr((D("1"),))), Not(P("b"))))),
    ],
)
def test_precedence(text: str, expected: Expr) -> None:
    assert p(text) == expected
    assert p(to_text(expected)) == expected


def test_positions_are_relative_to_the_expression_text() -> None:
    expr = p("ticket.amount < 5000 and\n  ticket.region == '浦东'")
    assert isinstance(expr, And)
    first, second = expr.items
    assert isinstance(first, Compare) and isinstance(second, Compare)
    assert (first.left.line, first.left.col) == (1, 1)
    assert (first.line, first.col) == (1, 15)  # the operator
    assert (first.right.line, first.right.col) == (1, 17)
    assert (second.right.line, second.right.col) == (2, 20)


def test_positions_do_not_affect_equality_or_hash() -> None:
    assert p("a  <  1") == p("a < 1")
    assert hash(p("a  <  1")) == hash(p("a < 1"))
    assert Const(True) != Const(Decimal(1))  # bool is not a number
    assert Const(Decimal("1.0")) == Const(Decimal("1"))


def test_keywords_are_reserved_and_cjk_names_are_not() -> None:
    for word in ("in", "and", "not", "true", "contains"):
        error = syntax_error(f"ticket.{word} == 1" if word != "true" else f"x == {word}.a")
        assert error.code == "expr_syntax"
    assert syntax_error("x == and").message == "'and' is a reserved word, not a value"
    assert p("信贷.初审时间 > 1") == Compare(">", P("信贷", "初审时间"), D("1"))


# ------------------------------------------------------------------------------------ syntax errors


@pytest.mark.parametrize(
    ("text", "col", "message", "hint_part"),
    [
        ("ticket.amount < )", 17, "expected a value after '<'", "a value"),
        ("ticket.amount <", 16, "expected a value after '<'", "a value"),
        ("ticket.amount < 5000)", 21, "unexpected ')'", "'and'"),
        ("(ticket.amount < 5000", 22, "missing ')'", "')'"),
        ("a < 1 < 2", 7, "unexpected '<'", "cannot be chained"),
        ("a = 1", 3, "unexpected '='", "'=='"),
        ("a && b", 3, "unexpected '&'", "'and'"),
        ('a == "abc', 6, "unterminated string", "close it"),
        ("a == 1 b", 8, "unexpected 'b'", "the end of the expression"),
        ("x in [1,", 9, "expected a value after ','", "']'"),
        ("ticket.amount < ５０００", 17, "unexpected full-width character '５'", "'5'"),
        ("ticket.region in （1）", 18, "unexpected full-width character '（'", "'('"),
        ("ticket.region == “上海”", 18, "unexpected full-width character '“'", "'\"'"),
        ("x.", 3, "expected a field name after '.'", None),
        ("90min > 1", 3, "unexpected 'min'", "units d, h, m, s"),
        ("a and", 6, "expected a value after 'and'", "a value"),
        ("   ", 1, "empty expression", "ticket.amount < 5000"),
        ("a @ b", 3, "unexpected character '@'", "a comparison"),
    ],
)
def test_syntax_errors_are_positioned_at_the_offending_character(
    text: str, col: int, message: str, hint_part: str | None
) -> None:
    error = syntax_error(text)
    assert error.message == message
    assert error.location == Location("r.yaml", 10, 15 + col - 1)
    if hint_part is None:
        assert error.hint is None
    else:
        assert error.hint is not None and hint_part in error.hint


def test_syntax_error_on_a_later_line_uses_that_lines_column() -> None:
    # later lines of an embedded block are de-indented by the loader, so columns keep the block's offset
    error = syntax_error("ticket.amount < 5000 and\n    ticket.region ==")
    assert error.location == Location("r.yaml", 11, 15 + 21 - 1)
    assert error.message == "expected a value after '=='"


# --------------------------------------------------------------------------------------- type check


def test_a_correct_expression_has_no_errors() -> None:
    assert (
        errors(
            'ticket.amount < 5000 and ticket.region == "上海浦东" and ticket.applicant_rank >= "部门经理" '
            'and not 大额贷款 and 大额贷款.金额 > 1 and extra.whatever == 3 and event.type == "ticket.created" '
            "and event.occurred_at - ticket.created_at > 1.5h and timer.late_by < 2h and ticket.vip "
            'and ticket.credit_rating in ["A", "AA"] and ticket.tags contains "VIP" and len(ticket.region) > 2 '
            'and ticket.created_at < "2026-10-01" and ticket.amount != null and round(ticket.amount / 3, 2) > 1'
        )
        == []
    )


def test_unknown_field_suggests_the_closest_declared_path() -> None:
    (error,) = errors("ticket.amout < 5000")
    assert error.code == "unknown_field"
    assert "ticket.amout" in error.message
    assert error.hint == "did you mean ticket.amount?"
    assert error.location == Location("r.yaml", 10, 15)


def test_unknown_fact_suggests_declared_fact_and_bare_words_suggest_quotes() -> None:
    (error,) = errors("大额贷 and true")
    assert error.code == "unknown_field" and error.hint == "did you mean 大额贷款?"
    (error,) = errors("ticket.region in [上海浦东]")
    assert error.code == "unknown_field"
    assert error.hint is not None and '"上海浦东"' in error.hint
    assert error.location.col == 15 + 19 - 1


def test_unknown_enum_value_suggests_the_member_and_points_at_the_literal() -> None:
    (error,) = errors('ticket.applicant_rank >= "部门经里"')
    assert error.code == "unknown_enum_value"
    assert error.hint is not None and error.hint.startswith('did you mean "部门经理"?')
    assert error.location == Location("r.yaml", 10, 15 + 26 - 1)
    (error,) = errors('ticket.credit_rating in ["A", "AAAA"]')
    assert error.code == "unknown_enum_value" and error.hint is not None and '"AAA"' in error.hint
    assert codes('"主官" == ticket.applicant_rank') == ["unknown_enum_value"]


@pytest.mark.parametrize(
    ("text", "hint_part"),
    [
        ("ticket.region == 5", 'quote it: "5"'),
        ('ticket.amount < "5000"', "remove the quotes: 5000"),
        ('ticket.region < "上海"', "ordered enum"),
        ("ticket.region >= ticket.expense_type", "ordered enum"),
        ("ticket.wait > 5", "unit"),
        ("ticket.amount + ticket.region > 1", "numbers, durations"),
        ('ticket.amount contains "1"', None),
        ('ticket.amount startswith "1"', None),
        ("ticket.amount and 大额贷款", "compare it"),
        ("大额贷款 or ticket.region", "compare it"),
        ("not ticket.amount", "compare it"),
        ("ticket.amount in ticket.region", "'contains'"),
        ("ticket.vip < true", None),
        ("ticket.amount < null", "== null"),
        ("-ticket.region == 1", None),
        ('ticket.created_at < "下周一"', "ISO 8601"),
        ("len(ticket.amount) > 1", None),
        ("ticket.applicant_rank == ticket.credit_rating", None),
    ],
)
def test_type_mismatches(text: str, hint_part: str | None) -> None:
    found = errors(text)
    assert [e.code for e in found] == ["type_mismatch"], found
    if hint_part is not None:
        assert found[0].hint is not None and hint_part in found[0].hint, found[0].hint


def test_functions_unknown_and_bad_arity() -> None:
    (error,) = errors("lenght(ticket.region) > 1")
    assert error.code == "unknown_function" and error.hint is not None and "len()" in error.hint
    assert codes("round(ticket.amount, 1, 2) > 1") == ["bad_call"]
    assert codes("len() > 1") == ["bad_call"]
    assert codes('ticket.region matches "(abc"') == ["bad_regex"]


def test_check_collects_all_errors_sorted_by_position() -> None:
    found = errors('ticket.amout < 1 and ticket.region == 5 and ticket.applicant_rank > "总jian" and foo()')
    assert [e.code for e in found] == [
        "unknown_field",
        "type_mismatch",
        "unknown_enum_value",
        "unknown_function",
    ]
    assert [e.location.col for e in found] == sorted(e.location.col for e in found)


def test_check_condition_flag_requires_a_boolean() -> None:
    assert check(p("ticket.amount"), ENV, LOC) == []  # a value expression (table input, action param)
    (error,) = check(p("ticket.amount"), ENV, LOC, condition=True)
    assert error.code == "type_mismatch"
    assert check(p("ticket.vip"), ENV, LOC, condition=True) == []


def test_paths_lists_every_referenced_path() -> None:
    assert paths(p("ticket.amount < len(x.y) and 大额贷款 or [a.b] == c")) == {
        ("ticket", "amount"),
        ("x", "y"),
        ("大额贷款",),
        ("a", "b"),
        ("c",),
    }


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


def test_compiled_evaluation_is_fast() -> None:
    cond = compile_expr(p('ticket.amount < 5000 and ticket.region == "上海浦东"'), ENV)
    scope = {"ticket": {"amount": 4999, "region": "上海浦东"}}
    assert cond(scope) is True
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(2000):
            cond(scope)
        best = min(best, (time.perf_counter() - start) / 2000)
    assert best < 10e-6  # ~1 µs on a laptop; generous for loaded CI machines


# -------------------------------------------------------------------------------------------- cells


def cell(text: str, subject: str = "ticket.region") -> Expr:
    return bind_subject(parse_cell(text, LOC), p(subject))


@pytest.mark.parametrize(
    ("text", "subject", "canonical"),
    [
        ("上海浦东", "ticket.region", 'ticket.region == "上海浦东"'),
        ('"上海 浦东"', "ticket.region", 'ticket.region == "上海 浦东"'),
        ("A", "ticket.credit_rating", 'ticket.credit_rating == "A"'),
        ("5000", "ticket.amount", "ticket.amount == 5000"),
        ("-5", "ticket.amount", "ticket.amount == -5"),
        ("< 5000", "ticket.amount", "ticket.amount < 5000"),
        (">= A", "ticket.credit_rating", 'ticket.credit_rating >= "A"'),
        ("!= x", "ticket.region", 'ticket.region != "x"'),
        ("in [上海浦东, 北京海淀]", "ticket.region", 'ticket.region in ["上海浦东", "北京海淀"]'),
        ("not in [a, 'b c']", "ticket.region", 'ticket.region not in ["a", "b c"]'),
        ("[1000..5000)", "ticket.amount", "ticket.amount >= 1000 and ticket.amount < 5000"),
        ("(0..1000]", "ticket.amount", "ticket.amount > 0 and ticket.amount <= 1000"),
        (">= 1000 and < 5000", "ticket.amount", "ticket.amount >= 1000 and ticket.amount < 5000"),
        ("上海浦东, 北京海淀", "ticket.region", 'ticket.region == "上海浦东" or ticket.region == "北京海淀"'),
        ("< 1000, >= 5000", "ticket.amount", "ticket.amount < 1000 or ticket.amount >= 5000"),
        ("contains 浦东", "ticket.region", 'ticket.region contains "浦东"'),
        ("[1h..2h]", "timer.late_by", "timer.late_by >= 1h and timer.late_by <= 2h"),
        ("[5..5]", "ticket.amount", "ticket.amount >= 5 and ticket.amount <= 5"),
        ("[-10..-5)", "ticket.amount", "ticket.amount >= -10 and ticket.amount < -5"),
        (
            "[BBB..AAA]",
            "ticket.credit_rating",
            'ticket.credit_rating >= "BBB" and ticket.credit_rating <= "AAA"',
        ),
        ("true", "ticket.vip", "ticket.vip == true"),
        ("null", "ticket.region", "ticket.region == null"),
        ("-", "ticket.region", "true"),
        ("", "ticket.region", "true"),
        ("  ", "ticket.region", "true"),
    ],
)
def test_cells_bind_to_their_subject(text: str, subject: str, canonical: str) -> None:
    bound = cell(text, subject)
    assert to_text(bound) == canonical
    assert check(bound, ENV, LOC) == []
    assert Subject() not in list(_nodes(bound))


def _nodes(expr: Expr) -> list[Expr]:
    from rulesvc.lang.expr import walk

    return list(walk(expr))


def test_unbound_cells_use_a_subject_placeholder() -> None:
    assert parse_cell("< 5000", LOC) == Compare("<", Subject(), D("5000"))
    assert parse_cell("-5", LOC) == Compare("==", Subject(), D("-5"))  # negative literals are constants
    assert parse_cell("> -1h", LOC) == Compare(">", Subject(), Const(timedelta(hours=-1)))
    assert to_text(parse_cell("< 5000", LOC)) == "? < 5000"


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


def test_cell_errors_point_into_the_cell() -> None:
    cell_loc = Location("t.yaml", 30, 9)
    bound = bind_subject(parse_cell(">= 部门经里", cell_loc), p("ticket.applicant_rank"))
    (error,) = check(bound, ENV, cell_loc)
    assert error.code == "unknown_enum_value" and error.location == Location("t.yaml", 30, 12)
    assert error.hint is not None and error.hint.startswith('did you mean "部门经理"?')
    bound = bind_subject(parse_cell("上海浦东", cell_loc), p("ticket.amount"))
    (error,) = check(bound, ENV, cell_loc)
    assert error.code == "type_mismatch" and error.location == Location("t.yaml", 30, 9)
    bound = bind_subject(parse_cell("x, < 5", cell_loc), p("ticket.regin"))
    assert {(e.code, e.location) for e in check(bound, ENV, cell_loc)} == {
        ("unknown_field", Location("t.yaml", 30, 9)),
        ("unknown_field", Location("t.yaml", 30, 12)),  # unknown subject: no further type errors
    }
    bound = bind_subject(parse_cell("[1..5)", cell_loc), p("ticket.amout"))
    assert [e.code for e in check(bound, ENV, cell_loc)] == ["unknown_field"]


@pytest.mark.parametrize(
    ("text", "col", "message"),
    [
        ("[1000..5000", 12, "missing ']' or ')'"),
        ("< ", 2, "expected a value after '<'"),
        ("in 上海", 4, "unexpected '上海'"),
        ("in", 3, "expected a value after 'in'"),
        ("上海浦东，北京海淀", 5, "unexpected full-width character '，'"),
        ("a b", 3, "unexpected 'b'"),
        ("[5000..1000)", 1, "empty interval: no value lies between 5000 and 1000"),
        ("(5..5]", 1, "empty interval: no value lies between 5 and 5"),
    ],
)
def test_cell_syntax_errors(text: str, col: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_cell(text, LOC)
    assert info.value.error.message == message
    assert info.value.error.location == Location("r.yaml", 10, 15 + col - 1)


# ------------------------------------------------------------------------------------------ explain


def test_explain_reports_each_atom_with_values() -> None:
    expr = p('ticket.amount < 5000 and (ticket.applicant_rank >= "部门经理" or 大额贷款) and not ticket.vip')
    traces = explain(expr, ENV, {"ticket": {"amount": 4999.99, "applicant_rank": "总监", "vip": False}})
    assert traces == [
        ConditionTrace("ticket.amount < 5000", {"ticket.amount": Decimal("4999.99")}, True),
        ConditionTrace('ticket.applicant_rank >= "部门经理"', {"ticket.applicant_rank": "总监"}, True),
        ConditionTrace("大额贷款", {"大额贷款": False}, False),
        ConditionTrace("ticket.vip", {"ticket.vip": False}, False),
    ]
    assert traces[0].to_json() == {
        "condition": "ticket.amount < 5000",
        "values": {"ticket.amount": Decimal("4999.99")},
        "result": True,
    }


def test_explain_bound_cells_and_missing_values() -> None:
    traces = explain(cell("[1000..5000)", "ticket.amount"), ENV, {"ticket": {}})
    assert traces == [
        ConditionTrace("ticket.amount >= 1000", {"ticket.amount": None}, False),
        ConditionTrace("ticket.amount < 5000", {"ticket.amount": None}, False),
    ]
    assert explain(cell("-"), ENV, {}) == []
    traces = explain(
        p("event.occurred_at - ticket.created_at > 2h"), ENV, {"ticket": {"created_at": "2026-01-01"}}
    )
    assert traces[0].values == {
        "event.occurred_at": None,
        "ticket.created_at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8))),
    }


# ----------------------------------------------------------------------------------- round-tripping

_NAME_CHARS = "abcxyz_金额大贷款区域"
names = st.text(alphabet=_NAME_CHARS + "019", min_size=1, max_size=5).filter(
    lambda s: not s[0].isdigit() and s not in KEYWORDS
)
literals = st.one_of(
    st.decimals(min_value=0, max_value=10**12, places=2).map(lambda d: Const(abs(d))),
    st.integers(min_value=0, max_value=10**15).map(lambda i: Const(Decimal(i))),
    st.text(max_size=8).map(Const),
    st.integers(min_value=0, max_value=10**12).map(lambda us: Const(timedelta(microseconds=us))),
    st.sampled_from([Const(True), Const(False), Const(None)]),
)
path_nodes = st.lists(names, min_size=1, max_size=3).map(lambda parts: Path(tuple(parts)))
OPS = (*("==", "!=", "<", "<=", ">", ">="), "in", "not in", "contains", "startswith", "endswith", "matches")


def _flat(cls: type[And] | type[Or], items: list[Expr]) -> Expr:
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(flat))


def _extend(inner: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        inner.map(Neg),
        inner.map(Not),
        st.builds(BinOp, st.sampled_from(["+", "-", "*", "/", "%"]), inner, inner),
        st.builds(Compare, st.sampled_from(OPS), inner, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: _flat(And, xs)),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: _flat(Or, xs)),
        st.builds(Call, st.sampled_from(list(FUNCTIONS)), st.lists(inner, max_size=2).map(tuple)),
        st.lists(inner, max_size=3).map(lambda xs: ListExpr(tuple(xs))),
    )


expressions = st.recursive(st.one_of(literals, path_nodes), _extend, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_to_text_round_trips(expr: Expr) -> None:
    text = to_text(expr)
    parsed = p(text)
    assert parsed == expr, text
    assert to_text(parsed) == text


declared_paths = st.sampled_from(sorted(ENV.fields)).map(lambda parts: Path(parts))
typed_expressions = st.recursive(
    st.one_of(
        literals, path_nodes, declared_paths, st.sampled_from([Path(("大额贷款",)), Path(("extra", "x"))])
    ),
    _extend,
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
    for trace in explain(expr, ENV, scope):
        assert trace.result is True or trace.result is False
