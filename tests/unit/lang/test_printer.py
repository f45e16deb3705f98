"""The canonical text of an expression parses back to an equal AST."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from rulesvc.lang import (
    Expr,
    to_text,
)
from tests.unit.lang.exprs import expressions, p


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_to_text_round_trips(expr: Expr) -> None:
    text = to_text(expr)
    parsed = p(text)
    assert parsed == expr, text
    assert to_text(parsed) == text
