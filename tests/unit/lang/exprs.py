"""Shared fixtures for the condition-language tests: a type environment, parsing shortcuts, AST strategies."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import strategies as st

from rulesvc.errors import Location
from rulesvc.lang import (
    FUNCTIONS,
    KEYWORDS,
    And,
    BinOp,
    Call,
    Compare,
    Const,
    Expr,
    FieldType,
    ListExpr,
    Neg,
    Not,
    Or,
    Path,
    TypeEnv,
    bind_subject,
    parse_cell,
    parse_expression,
)

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


def cell(text: str, subject: str = "ticket.region") -> Expr:
    return bind_subject(parse_cell(text, LOC), p(subject))


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


def extend_expressions(inner: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
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


expressions = st.recursive(st.one_of(literals, path_nodes), extend_expressions, max_leaves=12)
