"""Parsing conditions and cells: every construct, positions, syntax errors explained where they are."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from rulesvc.errors import InvalidRulesetError, Location, RulesetError
from rulesvc.lang import (
    And,
    BinOp,
    Call,
    Compare,
    Const,
    Expr,
    ExpressionError,
    ListExpr,
    Neg,
    Not,
    Or,
    Subject,
    check,
    parse_cell,
    to_text,
    walk,
)
from tests.unit.lang.exprs import ENV, LOC, D, P, S, cell, p


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
    assert syntax_error("x == and").message == "'and' 是保留字，不是值"
    assert p("信贷.初审时间 > 1") == Compare(">", P("信贷", "初审时间"), D("1"))


# ------------------------------------------------------------------------------------ syntax errors


@pytest.mark.parametrize(
    ("text", "col", "message", "hint_part"),
    [
        ("ticket.amount < )", 17, "'<' 后面应有一个值", "一个值"),
        ("ticket.amount <", 16, "'<' 后面应有一个值", "一个值"),
        ("ticket.amount < 5000)", 21, "多余的 ')'", "'and'"),
        ("(ticket.amount < 5000", 22, "缺少 ')'", "')'"),
        ("a < 1 < 2", 7, "多余的 '<'", "不能连写"),
        ("a = 1", 3, "多余的 '='", "'=='"),
        ("a && b", 3, "多余的 '&'", "and / or"),
        ('a == "abc', 6, "字符串没有结束", "结束它"),
        ("a == 1 b", 8, "多余的 'b'", "表达式结束"),
        ("x in [1,", 9, "',' 后面应有一个值", "']'"),
        ("ticket.amount < ５０００", 17, "出现了全角字符 '５'", "'5'"),
        ("ticket.region in （1）", 18, "出现了全角字符 '（'", "'('"),
        ("ticket.region == “上海”", 18, "出现了全角字符 '“'", "'\"'"),
        ("x.", 3, "'.' 后面应是字段名", None),
        ("90min > 1", 3, "多余的 'min'", "单位是 d、h、m、s"),
        ("a and", 6, "'and' 后面应有一个值", "一个值"),
        ("   ", 1, "表达式为空", "ticket.amount < 5000"),
        ("a @ b", 3, "多余的字符 '@'", "比较运算"),
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
    assert error.message == "'==' 后面应有一个值"


# -------------------------------------------------------------------------------------------- cells


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
    return list(walk(expr))


def test_unbound_cells_use_a_subject_placeholder() -> None:
    assert parse_cell("< 5000", LOC) == Compare("<", Subject(), D("5000"))
    assert parse_cell("-5", LOC) == Compare("==", Subject(), D("-5"))  # negative literals are constants
    assert parse_cell("> -1h", LOC) == Compare(">", Subject(), Const(timedelta(hours=-1)))
    assert to_text(parse_cell("< 5000", LOC)) == "? < 5000"


@pytest.mark.parametrize(
    ("text", "col", "message"),
    [
        ("[1000..5000", 12, "缺少 ']' 或 ')'"),
        ("< ", 2, "'<' 后面应有一个值"),
        ("in 上海", 4, "多余的 '上海'"),
        ("in", 3, "'in' 后面应有一个值"),
        ("上海浦东，北京海淀", 5, "出现了全角字符 '，'"),
        ("a b", 3, "多余的 'b'"),
        ("[5000..1000)", 1, "空区间：5000 与 1000 之间没有任何值"),
        ("(5..5]", 1, "空区间：5 与 5 之间没有任何值"),
    ],
)
def test_cell_syntax_errors(text: str, col: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_cell(text, LOC)
    assert info.value.error.message == message
    assert info.value.error.location == Location("r.yaml", 10, 15 + col - 1)
