"""rulesvc.decisions.search: the cursor round trip and refusals, a record's search terms, query checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rulesvc.decisions.search import Cursor, DecisionQuery, InvalidSearchError, decision_terms


def test_cursor_round_trip_is_utc_and_opaque() -> None:
    at = datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    text = Cursor(at, 42).encode()
    assert "2026" not in text and "=" not in text
    assert Cursor.decode(text) == Cursor(at.astimezone(UTC), 42)


@pytest.mark.parametrize(
    "text", ["", "x", "!!!", "WyJ4IiwxXQ", "WyIyMDI2LTEyLTA1VDEwOjAwOjAwIiwxXQ", "bnVsbA"]
)
def test_bad_cursors_are_refused_with_a_code(text: str) -> None:
    with pytest.raises(InvalidSearchError) as caught:
        Cursor.decode(text)
    assert caught.value.code == "decisions.bad_cursor" and caught.value.path == "after"


def test_terms_name_rulesets_rules_tables_rows_and_action_types_once() -> None:
    record = {
        "fired": [
            {"ruleset": "loan-approval", "rule": "审批级别#分行审批", "version": 1},
            {"ruleset": "loan-approval", "rule": "认定大额贷款", "version": 1},
        ],
        "actions": [{"type": "request_review"}, {"type": "request_review"}, {"type": "assign"}],
    }
    assert decision_terms(record) == [
        "r:loan-approval",
        "r:loan-approval/审批级别#分行审批",
        "r:loan-approval/审批级别",
        "r:loan-approval/认定大额贷款",
        "a:request_review",
        "a:assign",
    ]
    assert decision_terms({"fired": [], "actions": []}) == []


def test_query_checks() -> None:
    at = datetime(2026, 12, 5, tzinfo=UTC)
    assert DecisionQuery(rule="x", action_type="y").terms() == ["r:x", "a:y"]
    for query, code in (
        (DecisionQuery(limit=0), "decisions.bad_limit"),
        (DecisionQuery(limit=201), "decisions.bad_limit"),
        (DecisionQuery(from_=at, to=at), "decisions.bad_range"),
        (DecisionQuery(rule="长" * 400), "decisions.bad_term"),
    ):
        with pytest.raises(InvalidSearchError) as caught:
            query.checked()
        assert caught.value.code == code
