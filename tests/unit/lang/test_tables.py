"""Table analysis decides enum cells without the engine, and agrees with the engine on every member."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rulesvc.engine.closures import compile_expr
from rulesvc.lang import ExpressionError, bind_subject, parse_cell
from rulesvc.lang.tables import cell_set
from tests.unit.lang.exprs import ENV, LOC, RATINGS, p

SUBJECT = p("ticket.credit_rating")
WORDS = (*RATINGS, "D", "aa", "AAA ")
cell_tests = st.one_of(
    st.builds(
        lambda op, w: f"{op} {w}",
        st.sampled_from(["", "==", "!=", "<", "<=", ">", ">="]),
        st.sampled_from(WORDS),
    ),
    st.builds(
        lambda neg, ws: f"{'not in' if neg else 'in'} [{', '.join(ws)}]",
        st.booleans(),
        st.lists(st.sampled_from(WORDS), max_size=3),
    ),
    st.builds(lambda lo, hi: f"[{lo}..{hi}]", st.sampled_from(RATINGS), st.sampled_from(RATINGS)),
    st.builds(
        lambda op, w: f'{op} "{w}"',
        st.sampled_from(["contains", "startswith", "endswith", "matches"]),
        st.sampled_from(["A", "B", "^A+$", "("]),
    ),
    st.sampled_from(["== null", "!= null", "-"]),
)
cells = st.lists(cell_tests, min_size=1, max_size=3).map(", ".join)


def _engine_accepts(text: str) -> frozenset[str]:
    probe = compile_expr(bind_subject(parse_cell(text, LOC), SUBJECT), ENV)
    return frozenset(m for m in RATINGS if probe({"ticket": {"credit_rating": m}}) is True)


@settings(max_examples=400, deadline=None)
@given(cells)
def test_enum_cells_accept_exactly_what_the_engine_accepts(text: str) -> None:
    try:
        cell = parse_cell(text, LOC)
    except ExpressionError:  # an empty interval such as [AAA..C] is a syntax error, not a cell
        return
    found = cell_set(cell, "enum", RATINGS)
    assert found is not None and found.values == _engine_accepts(text), text


def test_an_unknown_member_matches_nothing_even_with_not_equal() -> None:
    found = cell_set(parse_cell("!= D", LOC), "enum", RATINGS)
    assert found is not None and found.values == frozenset()


def test_cells_that_are_not_plain_literal_tests_are_unknown() -> None:
    assert cell_set(parse_cell("< 5", LOC), "enum", RATINGS) is None
