"""A bounded sample of `python -m bench.paths`: tickets drawn by hypothesis (thresholds ± tiny steps, numbers
and decimal strings, long decimals, values the kind refuses) decide alike on every evaluation path — decision
tables, join-free rules, rules chained through durable_rules, the simulator and POST /v1/events."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.paths import (
    BAD_AMOUNTS,
    EXPENSE_THRESHOLDS,
    EXPENSE_TYPES,
    LOAN_THRESHOLDS,
    RANKS,
    RATINGS,
    STEPS,
    amount_spelling,
    body_text,
    books,
    http_outcome,
    in_process,
    simulated,
)
from rulesvc import exactjson
from rulesvc.rulebook import RuleBook
from tests.integration.conftest import auth


@st.composite
def amounts(draw: st.DrawFn, thresholds: tuple[Decimal, ...], bad: tuple[str, ...]) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from(bad))
    if draw(st.booleans()):
        value = draw(st.sampled_from(thresholds)) + draw(st.sampled_from(STEPS)) * draw(
            st.sampled_from((1, -1))
        )
    else:
        places = draw(st.integers(0, 20))
        value = Decimal(draw(st.integers(1, 2 * 10**7 * 10**places))).scaleb(-places)
    return amount_spelling(value, draw(st.integers(0, 2)))


@st.composite
def tickets(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        rating = draw(st.sampled_from(RATINGS) | st.sampled_from(("aa", "D", "AAA ")))
        return {
            "kind": "loan",
            "amount": draw(amounts(LOAN_THRESHOLDS, BAD_AMOUNTS)),
            "credit_rating": rating,
        }
    ticket = {
        "kind": "expense",
        "expense_type": draw(st.sampled_from(EXPENSE_TYPES)),
        "amount": draw(amounts(EXPENSE_THRESHOLDS, (*BAD_AMOUNTS, "-100"))),
    }
    rank = draw(st.none() | st.sampled_from(RANKS) | st.just("董事长"))
    if rank is not None:
        ticket["applicant_rank"] = rank
    return ticket


IDS = itertools.count()


def test_every_path_decides_random_tickets_alike(
    client: TestClient, keys: dict[str, str], book: RuleBook
) -> None:
    variants = books()
    deciders = {
        "table": in_process(variants["table"]),
        "rules": in_process(variants["rules"]),
        "durable": in_process(variants["durable"]),
        "simulate": simulated(book),
    }
    seen: set[str] = set()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(tickets())
    def check(ticket: dict[str, Any]) -> None:
        index = next(IDS)
        text = body_text({**ticket, "id": f"P-{index}"}, index)
        results = {name: decide(text) for name, decide in deciders.items()}
        response = client.post(
            "/v1/events",
            content=text.encode(),
            headers={**auth(keys["ingest"]), "content-type": "application/json"},
        )
        results["http"] = http_outcome(
            ticket["kind"], response.status_code, exactjson.loads(response.content)
        )
        assert len(set(results.values())) == 1, (text, results)
        seen.add(str(results["table"][0]) if results["table"][0] == "refused" else ticket["kind"])

    check()
    assert seen == {"loan", "expense", "refused"}


@pytest.mark.parametrize(
    ("amount", "reviews"),
    [(6000000, 2), ("6000000", 2), ("6000000.00", 2), (4999999.999999999999999, 0), ("5000000", 2)],
)
def test_a_number_and_its_string_mean_the_same_on_the_durable_path(
    book: RuleBook, amount: Any, reviews: int
) -> None:
    """The issue's example: "6000000" got 分行审批 from the table but no 法务/财务 review on the join path."""
    text = body_text({"kind": "loan", "id": "L-1", "amount": amount, "credit_rating": "A"}, 1)
    if isinstance(amount, float):
        text = text.replace(repr(amount), "4999999.999999999999999")
    for name, variant in books().items():
        result = in_process(variant)(text)
        assert result[0] == "loan" and len(result[2]) == reviews, (name, result)
