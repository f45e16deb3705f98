"""Events checked against their ticket kind: one meaning per value, every problem at once, no silent default."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rulesvc import exactjson
from rulesvc.errors import InvalidEventError
from rulesvc.lang.kinds import load_kind
from rulesvc.lang.model import KindSchema
from rulesvc.rulebook import RuleBook
from rulesvc.validation import Limits, read_event, same_meaning

RULESETS = Path(__file__).resolve().parents[2] / "rulesets"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def kinds() -> dict[str, KindSchema]:
    return dict(RuleBook.load([RULESETS]).kinds)


def body(kind: str = "expense", **ticket: Any) -> dict[str, Any]:
    base: dict[str, dict[str, Any]] = {
        "expense": {"expense_type": "差旅费", "amount": Decimal("4999.99"), "applicant_rank": "部门经理"},
        "loan": {"amount": 6000000, "credit_rating": "AA", "region": "上海浦东"},
        "complaint": {"owner": "李娜"},
    }
    return {
        "event_id": "e1",
        "type": "ticket.created",
        "occurred_at": "2026-09-30T10:00:00+08:00",
        "ticket": {"kind": kind, "id": "T-1", **base[kind], **ticket},
    }


def problems(kinds: dict[str, KindSchema], data: Any, **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEventError) as caught:
        read_event(data, kinds, now=NOW, **kw)
    return [(p.path, p.code) for p in caught.value.problems]


def test_numbers_and_plain_decimal_strings_are_one_value(kinds: dict[str, KindSchema]) -> None:
    values = [6000000, Decimal("6000000"), "6000000", "6000000.00", 6000000.0]
    tickets = [read_event(body("loan", amount=v), kinds, now=NOW).event.ticket for v in values]
    assert all(t["amount"] == Decimal(6000000) and isinstance(t["amount"], Decimal) for t in tickets)


@pytest.mark.parametrize("amount", ["6,000,000", "6000000元", "1e6", " 6000000", "NaN", True, [1]])
def test_anything_else_is_not_a_number(kinds: dict[str, KindSchema], amount: Any) -> None:
    assert problems(kinds, body("loan", amount=amount)) == [("ticket.amount", "validation.not_a_number")]


def test_all_problems_at_once_envelope_and_ticket(kinds: dict[str, KindSchema]) -> None:
    data = body("loan", amount="x", credit_rating="aa")
    data["type"] = "ticket.create"
    data["occurred_at"] = "2026-09-30T10:00:00"
    assert problems(kinds, data) == [
        ("type", "validation.not_in_enum"),
        ("occurred_at", "validation.naive_time"),
        ("ticket.amount", "validation.not_a_number"),
        ("ticket.credit_rating", "validation.not_in_enum"),
    ]


@pytest.mark.parametrize(("sent", "hint"), [("aa", "AA"), ("AAA ", "AAA"), ("BBB+", "BBB")])
def test_enum_did_you_mean(kinds: dict[str, KindSchema], sent: str, hint: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        read_event(body("loan", credit_rating=sent), kinds, now=NOW)
    assert f"是否应为 {hint}？" in caught.value.problems[0].message


def test_unknown_enum_value_without_a_close_match(kinds: dict[str, KindSchema]) -> None:
    with pytest.raises(InvalidEventError) as caught:
        read_event(body("expense", applicant_rank="董事长"), kinds, now=NOW)
    (problem,) = caught.value.problems
    assert problem.code == "validation.not_in_enum" and "员工、主管、部门经理" in problem.message


def test_bounds_required_and_magnitude(kinds: dict[str, KindSchema]) -> None:
    assert problems(kinds, body("expense", amount=-100)) == [("ticket.amount", "validation.out_of_range")]
    assert problems(kinds, body("loan", amount=0)) == [("ticket.amount", "validation.out_of_range")]
    no_amount = body("loan")
    del no_amount["ticket"]["amount"]
    assert problems(kinds, no_amount) == [("ticket.amount", "validation.required")]
    assert problems(kinds, body("complaint", score=Decimal("1e20"))) == [
        ("ticket.score", "validation.number_too_large")
    ]
    digits = Decimal("0." + "1" * 40)
    assert problems(kinds, body("complaint", score=digits)) == [
        ("ticket.score", "validation.number_too_large")
    ]
    small = Limits(max_number=Decimal(100))
    assert problems(kinds, body("complaint", score=101), limits=small) == [
        ("ticket.score", "validation.number_too_large")
    ]


@pytest.mark.parametrize(
    "at", ["1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "9999-12-31T20:00:00Z", "1999-12-31T23:59:59Z"]
)
def test_event_time_range(kinds: dict[str, KindSchema], at: str) -> None:
    assert problems(kinds, {**body(), "occurred_at": at}) == [("occurred_at", "validation.time_out_of_range")]


def test_event_time_range_is_configurable(kinds: dict[str, KindSchema]) -> None:
    wide = Limits(earliest=datetime(1960, 1, 1, tzinfo=UTC), ahead=timedelta(days=10))
    assert read_event({**body(), "occurred_at": "1969-12-31T23:59:59Z"}, kinds, now=NOW, limits=wide)
    too_late = (NOW + timedelta(days=11)).isoformat()
    assert problems(kinds, {**body(), "occurred_at": too_late}, limits=wide) == [
        ("occurred_at", "validation.time_out_of_range")
    ]


def test_unknown_kind_and_unknown_envelope_keys(kinds: dict[str, KindSchema]) -> None:
    data = body()
    data["ticket"]["kind"] = "expence"
    data["extra"] = 1
    assert problems(kinds, data) == [
        ("extra", "validation.unknown_field"),
        ("ticket.kind", "validation.unknown_kind"),
    ]


def test_same_meaning_whatever_the_spelling(kinds: dict[str, KindSchema]) -> None:
    a = read_event(
        exactjson.loads(
            '{"event_id":"e","type":"ticket.created","occurred_at":"2026-09-30T10:00:00+08:00",'
            '"ticket":{"kind":"expense","id":"E","expense_type":"差旅费","amount":4999.99}}'
        ),
        kinds,
        now=NOW,
    ).event
    b = read_event(
        exactjson.loads(
            '{"event_id":"e","type":"ticket.created","occurred_at":"2026-09-30T02:00:00Z",'
            '"ticket":{"kind":"expense","id":"E","expense_type":"差旅费","amount":4999.990}}'
        ),
        kinds,
        now=NOW,
    ).event
    c = read_event(body("expense", amount=Decimal("4999.98")), kinds, now=NOW).event
    assert same_meaning(a, b) and not same_meaning(a, c)


def test_kind_policy_returns_problems_instead_of_raising() -> None:
    kind, errors = load_kind(
        "kinds/expense.yaml",
        "kind: expense\nfields:\n  amount: {type: decimal, min: 0}\ninvalid: {assign: 数据核查岗}\n",
    )
    assert kind is not None and not errors
    checked = read_event(body("expense", amount=-1), {"expense": kind}, now=NOW)
    assert checked.policy is not None and checked.policy.assign == "数据核查岗"
    assert [(p.path, p.code) for p in checked.problems] == [("ticket.amount", "validation.out_of_range")]
    assert checked.event.ticket["amount"] == Decimal("-1")


def test_exact_json_keeps_digits_and_refuses_duplicates() -> None:
    value = exactjson.loads('{"a": 4999.999999999999999, "b": [1, 2.50]}')
    assert value == {"a": Decimal("4999.999999999999999"), "b": [1, Decimal("2.50")]}
    assert exactjson.dumps(value) == '{"a":4999.999999999999999,"b":[1,2.50]}'
    assert exactjson.dumps({"big": 2**70}) == '{"big":1180591620717411303424}'
    with pytest.raises(exactjson.DuplicateKeyError) as caught:
        exactjson.loads('{"ticket": {"amount": 1, "x": [{"q": 1, "q": 2}]}}')
    assert caught.value.path == "ticket.x.0.q"
    with pytest.raises(exactjson.NotANumberError):
        exactjson.loads('{"a": NaN}')


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"a": 1, "a" : 2}', "a"),
        ('{"a\\\\": 1, "a\\\\":2}', "a\\"),
        ('{"t": {"x": "say \\"hi\\": ok", "x": 1}}', "t.x"),
        ('[{"k": 1}, {"k": 2, "k": 3}]', "1.k"),
    ],
)
def test_exact_json_finds_repeated_keys_however_written(text: str, path: str) -> None:
    """The fast path counts keys in the text; escaped quotes and colons inside strings never count."""
    with pytest.raises(exactjson.DuplicateKeyError) as caught:
        exactjson.loads(text)
    assert caught.value.path == path


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "x\\": y", "b": "\\\\", "c\\"": 1.10}',
        '{"note": "时间 10:00", "when": "2026-11-02T09:00:00+08:00", "n": [1, 2.0, {"d": 1e-7}]}',
        '{"big": 123456789012345678901234567890, "neg": -0, "u": "\\u00e9"}',
        "[]",
        '"plain"',
    ],
)
def test_exact_json_fast_path_reads_as_the_careful_one(text: str) -> None:
    careful = json.JSONDecoder(parse_float=Decimal).decode(text)
    assert exactjson.loads(text) == careful
    assert repr(exactjson.loads(text)) == repr(careful)  # Decimals with the same digits, ints stay ints
