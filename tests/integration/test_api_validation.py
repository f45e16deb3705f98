"""POST /v1/events checks every ticket against its kind: all problems at once (422), exact money end to end,
one meaning per value (a number and its decimal string decide alike), and retries compared by meaning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import create_api_key
from rulesvc.rulebook import RuleBook
from rulesvc.sla.clock import SystemClock
from tests.integration.conftest import RULESETS, auth, engine_of, event, make_settings


def post(client: TestClient, key: str, body: dict[str, Any] | bytes) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return client.post(
        "/v1/events", content=content, headers={**auth(key), "content-type": "application/json"}
    )


def count(client: TestClient, table: str) -> int:
    """Rows of `table`; for `audit_log`, the entries other than the test's API keys' seals."""
    where = " WHERE kind <> 'key'" if table == "audit_log" else ""
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        return int(conn.execute(text(f"SELECT count(*) FROM {table}{where}")).scalar_one())


def loan(event_id: str, **ticket: Any) -> dict[str, Any]:
    return event(event_id, "loan", **ticket)


def test_every_problem_at_once_with_contract_shape_and_nothing_stored(
    client: TestClient, keys: dict[str, str]
) -> None:
    body = loan("v1", amount="6,000,000", credit_rating="aa", mobile="1381234567")
    response = post(client, keys["ingest"], body)
    assert response.status_code == 422
    answer = response.json()
    assert set(answer) == {"code", "message", "details"} and answer["code"] == "event.invalid"
    assert all(set(d) == {"path", "code", "message"} for d in answer["details"])
    by_path = {d["path"]: d for d in answer["details"]}
    assert set(by_path) == {"ticket.amount", "ticket.credit_rating", "ticket.mobile"}
    assert by_path["ticket.amount"]["code"] == "validation.not_a_number"
    assert by_path["ticket.credit_rating"]["code"] == "validation.not_in_enum"
    assert "是否应为 AA" in by_path["ticket.credit_rating"]["message"]
    assert by_path["ticket.mobile"]["code"] == "validation.format.cn_mobile"
    assert count(client, "decisions") == 0 and count(client, "audit_log") == 0


@pytest.mark.parametrize(
    ("ticket", "path", "code"),
    [
        ({"kind": "expense", "amount": -100}, "ticket.amount", "validation.out_of_range"),
        ({"kind": "loan", "credit_rating": "D"}, "ticket.credit_rating", "validation.not_in_enum"),
        ({"kind": "loan", "credit_rating": "AAA "}, "ticket.credit_rating", "validation.not_in_enum"),
        ({"kind": "expense", "applicant_rank": "董事长"}, "ticket.applicant_rank", "validation.not_in_enum"),
        ({"kind": "expense", "amount": 1e20}, "ticket.amount", "validation.out_of_range"),
        ({"kind": "complaint", "score": 1e20}, "ticket.score", "validation.number_too_large"),
        ({"kind": "loan", "id_card": "110105199001011234"}, "ticket.id_card", "validation.format.cn_id_card"),
        ({"kind": "loan", "amount": None}, "ticket.amount", "validation.required"),
    ],
)
def test_values_a_ticket_tool_really_sends_are_refused(
    client: TestClient, keys: dict[str, str], ticket: dict[str, Any], path: str, code: str
) -> None:
    fields = {k: v for k, v in ticket.items() if k != "kind"}
    response = post(client, keys["ingest"], event(f"bad-{code}", ticket["kind"], **fields))
    assert response.status_code == 422, response.text
    assert [(d["path"], d["code"]) for d in response.json()["details"]] == [(path, code)]


@pytest.mark.parametrize(
    "occurred_at", ["1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "9999-12-31T20:00:00Z"]
)
def test_times_outside_the_sane_range_name_the_range(
    client: TestClient, keys: dict[str, str], occurred_at: str
) -> None:
    body = {**event("t-range", "complaint"), "occurred_at": occurred_at}
    response = post(client, keys["ingest"], body)
    assert response.status_code == 422
    (detail,) = response.json()["details"]
    assert detail["path"] == "occurred_at" and detail["code"] == "validation.time_out_of_range"
    assert "2000-01-01T00:00:00Z" in detail["message"]


def test_duplicate_keys_are_an_error(client: TestClient, keys: dict[str, str]) -> None:
    raw = json.dumps(event("dup-key"), ensure_ascii=False).replace(
        '"amount": 4999.99', '"amount": 1, "amount": 2'
    )
    response = post(client, keys["ingest"], raw.encode())
    assert response.status_code == 422
    assert response.json()["details"] == [
        {"path": "ticket.amount", "code": "validation.duplicate_key", "message": response.json()["message"]}
    ]


def _reviews(answer: dict[str, Any]) -> list[str]:
    return sorted(a["reviewer"] for a in answer["actions"] if a["type"] == "request_review")


def _level(answer: dict[str, Any]) -> str:
    return next(a["level"] for a in answer["actions"] if a["type"] == "set_approval_level")


def test_a_number_and_its_decimal_string_decide_alike(client: TestClient, keys: dict[str, str]) -> None:
    as_number = post(client, keys["ingest"], loan("n1", amount=6000000)).json()
    as_string = post(client, keys["ingest"], loan("n2", amount="6000000")).json()
    as_cents = post(client, keys["ingest"], loan("n3", amount="6000000.00")).json()
    for answer in (as_number, as_string, as_cents):
        assert _level(answer) == "分行审批"
        assert _reviews(answer) == ["法务审核", "财务审核"]


def test_long_decimals_are_exact_end_to_end(client: TestClient, keys: dict[str, str]) -> None:
    raw = json.dumps(event("x1"), ensure_ascii=False).replace("4999.99", "4999.999999999999999").encode()
    response = post(client, keys["ingest"], raw)
    assert response.status_code == 200, response.text
    assert [a["type"] for a in response.json()["actions"]] == ["auto_approve", "trigger_payment"]
    assert b'"amount":4999.999999999999999' in response.content
    feed = client.get("/v1/actions", headers=auth(keys["ingest"]))
    assert b'"amount":4999.999999999999999' in feed.content
    decision_id = response.json()["decision_id"]
    stored = client.get(f"/v1/decisions/{decision_id}", headers=auth(keys["auditor"]))
    assert stored.status_code == 200 and b'"amount":4999.999999999999999' in stored.content
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        record = conn.execute(text("SELECT record FROM decisions")).scalar_one()
    assert '"amount":4999.999999999999999' in record and "5000.0" not in record
    as_string = post(client, keys["ingest"], event("x2", amount="4999.999999999999999"))
    assert b'"amount":4999.999999999999999' in as_string.content
    loan_text = json.dumps(loan("x3", amount=1, credit_rating="A"), ensure_ascii=False)
    just_below = post(
        client,
        keys["ingest"],
        loan_text.replace('"amount": 1,', '"amount": 999999.9999999999999999,').encode(),
    )
    assert _level(just_below.json()) == "支行审批"


def test_retry_with_another_spelling_of_the_same_meaning_is_the_same_event(
    client: TestClient, keys: dict[str, str]
) -> None:
    first = post(client, keys["ingest"], {**event("same"), "occurred_at": "2026-09-30T10:00:00+08:00"})
    assert first.status_code == 200
    raw = json.dumps({**event("same"), "occurred_at": "2026-09-30T02:00:00Z"}, ensure_ascii=False)
    again = post(client, keys["ingest"], raw.replace("4999.99", "4999.990").encode())
    assert again.status_code == 200, again.text
    assert again.json()["decision_id"] == first.json()["decision_id"]
    other = post(client, keys["ingest"], event("same", amount=4999.98))
    assert other.status_code == 409
    assert count(client, "decisions") == 1


def test_kind_policy_routes_invalid_tickets_with_their_problems(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(RULESETS, folder)
    kind_file = folder / "kinds" / "expense.yaml"
    kind_file.write_text(
        kind_file.read_text(encoding="utf-8") + "invalid: {assign: 数据核查岗}\n", encoding="utf-8"
    )
    app = create_app(make_settings(database_url, rulesets=folder), book=RuleBook.load([folder]))
    key = create_api_key(app.state.runtime.service.keys, frozenset(Role), SystemClock(), "all")[1]
    with TestClient(app) as client:
        response = post(client, key, event("routed", amount=-100, applicant_rank="董事长"))
        assert response.status_code == 200, response.text
        (action,) = response.json()["actions"]
        assert action["type"] == "assign" and action["group"] == "数据核查岗"
        assert action["rule"] == "expense/invalid"
        assert {e["path"] for e in action["errors"]} == {"ticket.amount", "ticket.applicant_rank"}
        record = client.get(f"/v1/decisions/{response.json()['decision_id']}", headers=auth(key)).json()
        assert {p["code"] for p in record["problems"]} == {
            "validation.out_of_range",
            "validation.not_in_enum",
        }
        assert not any(a["type"] == "trigger_payment" for a in record["actions"])
        # A simulation applies the same policy (it used to refuse the event with 422).
        routed = event("sim", amount=-100)
        simulated = client.post(
            "/v1/simulate", json={"events": [routed], "until": routed["occurred_at"]}, headers=auth(key)
        )
        assert simulated.status_code == 200, simulated.text
        ((sim_action,),) = [entry["actions"] for entry in simulated.json()["timeline"]]
        assert (sim_action["group"], sim_action["rule"]) == ("数据核查岗", "expense/invalid")


CONFLICTING = """\
ruleset: 费用类别
kind: expense
tables:
  - id: 类别
    on: [ticket.created]
    hit: unique
    inputs: {类型: ticket.expense_type}
    rows:
      - {id: 含差, 类型: 'contains "差"', then: [{assign: {group: 差旅组}}]}
      - {id: 差旅, 类型: 差旅费, then: [{assign: {group: 差旅岗}}]}
    default: {then: []}
"""


def test_a_rule_error_is_a_positioned_422_counted_and_the_event_can_be_retried_once_fixed(
    database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(RULESETS, folder)
    (folder / "费用类别.yaml").write_text(CONFLICTING, encoding="utf-8")
    settings = make_settings(database_url, rulesets=folder)
    app = create_app(settings, book=RuleBook.load([folder]))
    key = create_api_key(app.state.runtime.service.keys, frozenset(Role), SystemClock(), "all")[1]
    body = event("conflict")
    with TestClient(app) as client:
        response = post(client, key, body)
        assert response.status_code == 422, response.text
        answer = response.json()
        assert answer["code"] == "rule.unique_conflict"
        assert "决策表 类别（hit: unique）有 2 行同时匹配：含差、差旅" in answer["message"]
        assert answer["details"] == {
            "ruleset": "费用类别",
            "version": 1,
            "rule": "类别#差旅",
            "file": str(folder / "费用类别.yaml"),
            "line": 10,
            "col": 9,
            "values": {"table": "类别", "rows": ["类别#含差", "类别#差旅"], "inputs": {"类型": "差旅费"}},
        }
        assert count(client, "decisions") == 0 and count(client, "audit_log") == 0
        metrics = client.get("/metrics").text
        assert 'rulesvc_rule_errors_total{code="rule.unique_conflict",ruleset="费用类别"} 1.0' in metrics
        complaint = {**event("c-1", "complaint"), "occurred_at": body["occurred_at"]}
        simulated = client.post(
            "/v1/simulate",
            json={"events": [complaint, body], "until": body["occurred_at"]},
            headers=auth(key),
        )
        assert simulated.status_code == 422 and simulated.json()["code"] == "rule.unique_conflict"
        assert [e["trigger"] for e in simulated.json()["details"]["timeline"]] == ["c-1"]
    (folder / "费用类别.yaml").write_text(CONFLICTING.replace("hit: unique", "hit: first"), encoding="utf-8")
    fixed = create_app(settings, book=RuleBook.load([folder]))
    with TestClient(fixed) as client:
        retried = post(client, key, body)
        assert retried.status_code == 200, retried.text
        assert {"type": "assign", "group": "差旅组", "rule": "费用类别/类别#含差"} in retried.json()[
            "actions"
        ]


def test_request_field_errors_follow_the_error_contract_in_chinese(
    client: TestClient, keys: dict[str, str]
) -> None:
    """pydantic's errors used to leave as English `{path, message, type}`."""
    response = client.post(
        "/v1/simulate",
        json={"events": [], "until": "下周一", "extra": 1},
        headers=auth(keys["all"]),
    )
    assert response.status_code == 422
    answer = response.json()
    assert answer["code"] == "invalid_request"
    by_path = {d["path"]: d for d in answer["details"]}
    assert all(set(d) == {"path", "code", "message"} for d in answer["details"])
    assert by_path["extra"]["code"] == "validation.extra_forbidden"
    assert by_path["extra"]["message"] == "未知字段（不接受）"
    assert by_path["until"]["code"].startswith("validation.datetime")
    assert "ISO 8601" in by_path["until"]["message"] and "Input should" not in response.text
