"""POST /v1/events: decisions, idempotency, the action feed, and bad input answered with clear 4xx JSON."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from rulesvc.audit.chain import canonical, sha256_hex
from rulesvc.decisions.record import record_json
from tests.integration.conftest import auth, engine_of, event


def count(client: TestClient, table: str) -> int:
    """Rows of `table`; for `audit_log`, the entries other than the test's API keys' seals."""
    where = " WHERE kind <> 'key'" if table == "audit_log" else ""
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        return int(conn.execute(text(f"SELECT count(*) FROM {table}{where}")).scalar_one())


def test_expense_auto_approval(client: TestClient, keys: dict[str, str]) -> None:
    response = client.post("/v1/events", json=event("e1"), headers=auth(keys["ingest"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"decision_id", "event_id", "ticket_id", "actions", "fired"}
    assert body["event_id"] == "e1" and body["ticket_id"] == "E-e1"
    assert [a["type"] for a in body["actions"]] == ["auto_approve", "trigger_payment"]
    assert body["actions"][1]["amount"] == 4999.99
    assert all(a["rule"].startswith("expense-approval/") for a in body["actions"])
    assert body["fired"][0]["ruleset"] == "expense-approval" and body["fired"][0]["version"] >= 1


@pytest.mark.parametrize(
    ("ticket", "expected"),
    [
        ({"amount": 5000}, "assign"),
        ({"applicant_rank": "主管"}, "assign"),
        ({"expense_type": "招待费"}, "assign"),
        ({"amount": 4999.99, "applicant_rank": "总经理"}, "auto_approve"),
    ],
)
def test_expense_boundaries(
    client: TestClient, keys: dict[str, str], ticket: dict[str, object], expected: str
) -> None:
    body = client.post("/v1/events", json=event("b1", **ticket), headers=auth(keys["ingest"])).json()
    assert body["actions"][0]["type"] == expected
    if expected == "assign":
        assert body["actions"][0]["group"] == "费用审批岗"


def test_loan_routing(client: TestClient, keys: dict[str, str]) -> None:
    for i, (region, group) in enumerate(
        [
            ("上海浦东", "浦东分行信贷审批A组"),
            ("北京海淀", "海淀支行信贷审批B岗"),
            ("广州天河", "总行信贷审批中心"),
        ]
    ):
        body = client.post(
            "/v1/events", json=event(f"r{i}", "loan", region=region), headers=auth(keys["ingest"])
        )
        assigns = [a for a in body.json()["actions"] if a["type"] == "assign"]
        assert [a["group"] for a in assigns] == [group]


def test_same_event_again_returns_original_decision_and_emits_nothing(
    client: TestClient, keys: dict[str, str]
) -> None:
    first = client.post("/v1/events", json=event("dup"), headers=auth(keys["ingest"])).json()
    feed = client.get("/v1/actions", headers=auth(keys["ingest"])).json()["records"]
    # Same body with keys in another order and other whitespace is the same event.
    body = event("dup")
    reordered = json.dumps(dict(reversed(list(body.items()))), ensure_ascii=False, indent=2).encode()
    again = client.post(
        "/v1/events", content=reordered, headers={**auth(keys["ingest"]), "content-type": "application/json"}
    )
    assert again.status_code == 200
    assert again.json() == first
    assert client.get("/v1/actions", headers=auth(keys["ingest"])).json()["records"] == feed
    assert count(client, "decisions") == 1
    assert count(client, "audit_log") == 1


def test_same_event_id_different_body_is_409(client: TestClient, keys: dict[str, str]) -> None:
    first = client.post("/v1/events", json=event("c1"), headers=auth(keys["ingest"])).json()
    response = client.post("/v1/events", json=event("c1", amount=100), headers=auth(keys["ingest"]))
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "idempotency_conflict"
    assert body["details"] == {"event_id": "c1", "decision_id": first["decision_id"]}
    assert count(client, "decisions") == 1


def test_retry_of_an_event_stored_by_an_earlier_version_is_still_a_replay(
    client: TestClient, keys: dict[str, str]
) -> None:
    """Earlier versions stored inputs as `json` canonical text, which writes some numbers differently from
    orjson (1e-07 vs 1e-7); a retry of such an event must not become a 409 after an upgrade."""
    body = event("legacy", amount=1e-7)
    first = client.post("/v1/events", json=body, headers=auth(keys["ingest"])).json()
    assert canonical(body) != record_json(body)
    with engine_of(client.app).begin() as conn:  # type: ignore[arg-type]
        salt = conn.execute(text("SELECT input_salt FROM decisions")).scalar_one()
        conn.execute(
            text("UPDATE decisions SET input_digest = :d"), {"d": sha256_hex(salt + canonical(body))}
        )
    again = client.post("/v1/events", json=body, headers=auth(keys["ingest"]))
    assert again.status_code == 200 and again.json() == first
    changed = client.post("/v1/events", json=event("legacy", amount=2e-7), headers=auth(keys["ingest"]))
    assert changed.status_code == 409
    assert count(client, "decisions") == 1


def test_action_feed_pages_by_cursor(client: TestClient, keys: dict[str, str]) -> None:
    ids = [
        client.post("/v1/events", json=event(f"f{i}"), headers=auth(keys["ingest"])).json() for i in range(3)
    ]
    feed = client.get("/v1/actions?limit=4", headers=auth(keys["ingest"])).json()
    records = feed["records"]
    assert len(records) == 4
    cursors = [r["cursor"] for r in records]
    assert cursors == sorted(cursors) and len(set(cursors)) == 4
    assert feed["next_after"] == cursors[-1]
    assert set(records[0]) == {"cursor", "at", "ticket_id", "decision_id", "action"}
    assert records[0]["decision_id"] == ids[0]["decision_id"] and records[0]["ticket_id"] == "E-f0"
    assert records[0]["action"] == ids[0]["actions"][0]
    rest = client.get(f"/v1/actions?after={feed['next_after']}", headers=auth(keys["ingest"])).json()
    assert [r["cursor"] for r in rest["records"]] == sorted(r["cursor"] for r in rest["records"])
    assert len(rest["records"]) == 2 and rest["records"][0]["cursor"] > cursors[-1]
    empty = client.get(f"/v1/actions?after={rest['next_after']}", headers=auth(keys["ingest"])).json()
    assert empty == {"records": [], "next_after": rest["next_after"]}


# -- bad input ------------------------------------------------------------------------------------------


def post_raw(
    client: TestClient, key: str, content: bytes, content_type: str = "application/json"
) -> dict[str, object]:
    response = client.post("/v1/events", content=content, headers={**auth(key), "content-type": content_type})
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    return {"status": response.status_code, **body}


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"event_id": "x",', 422, "malformed_json"),
        (b"", 422, "invalid_request"),
        (b"\xff\xfe{}", 422, "invalid_encoding"),
        (b'{"event_id": "\xc3\x28"}', 422, "invalid_encoding"),
        (b"[" * 40 + b"]" * 40, 422, "too_deep"),
        (b"[" * 100_000 + b"]" * 100_000, 422, "malformed_json"),
        (b"[]", 422, "event.invalid"),
        (b'"text"', 422, "event.invalid"),
        (b'{"event_id": 1, "type": "ticket.created"}', 422, "event.invalid"),
        (b"NaN", 422, "malformed_json"),
    ],
)
def test_malformed_bodies(
    client: TestClient, keys: dict[str, str], content: bytes, status: int, code: str
) -> None:
    result = post_raw(client, keys["ingest"], content)
    assert (result["status"], result["code"]) == (status, code)


def test_field_paths_in_validation_errors(client: TestClient, keys: dict[str, str]) -> None:
    bad = event("v1")
    bad["occurred_at"] = "2026-09-30T10:00:00"  # no offset
    del bad["ticket"]["kind"]
    bad["type"] = "ticket.exploded"
    result = post_raw(client, keys["ingest"], json.dumps(bad).encode())
    assert result["status"] == 422 and result["code"] == "event.invalid"
    paths = {d["path"] for d in result["details"]}  # type: ignore[attr-defined]
    assert {"type", "occurred_at", "ticket.kind"} <= paths


def test_extra_top_level_field_and_control_characters_refused(
    client: TestClient, keys: dict[str, str]
) -> None:
    assert post_raw(client, keys["ingest"], json.dumps({**event("x1"), "oops": 1}).encode())["status"] == 422
    nul = event("x\u0000nul")
    assert post_raw(client, keys["ingest"], json.dumps(nul).encode())["status"] == 422


def test_unknown_ticket_kind(client: TestClient, keys: dict[str, str]) -> None:
    result = post_raw(client, keys["ingest"], json.dumps(event("k1", "mortgage")).encode())
    assert result["status"] == 422 and result["code"] == "event.invalid"
    assert result["details"][0]["path"] == "ticket.kind"  # type: ignore[index]


def test_wrong_types_in_ticket(client: TestClient, keys: dict[str, str]) -> None:
    result = post_raw(client, keys["ingest"], json.dumps(event("t1", id=["not", "an", "id"])).encode())
    assert result["status"] == 422
    result = post_raw(client, keys["ingest"], json.dumps({**event("t2"), "ticket": "loan"}).encode())
    assert result["status"] == 422 and result["details"][0]["path"] == "ticket"  # type: ignore[index]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]
)
def test_wrong_content_type_is_415(client: TestClient, keys: dict[str, str], content_type: str) -> None:
    result = post_raw(client, keys["ingest"], json.dumps(event("ct")).encode(), content_type)
    assert (result["status"], result["code"]) == (415, "unsupported_media_type")


def test_huge_body_is_413(client: TestClient, keys: dict[str, str]) -> None:
    big = json.dumps(event("big", note="x" * 2_000_000)).encode()
    result = post_raw(client, keys["ingest"], big)
    assert (result["status"], result["code"]) == (413, "payload_too_large")


def test_huge_chunked_body_is_413(client: TestClient, keys: dict[str, str]) -> None:
    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"event_id": "chunked", "note": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = client.post(
        "/v1/events", content=chunks(), headers={**auth(keys["ingest"]), "content-type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/v1/nothing").json()["code"] == "not_found"
    response = client.put("/v1/events")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_request_id_is_echoed(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "req-123"}).headers["x-request-id"] == "req-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert len(generated) == 32


def test_evaluation_in_the_thread_pool(sqlite_url: str, book: object) -> None:
    from api.app import create_app
    from rulesvc.apikeys import Role
    from rulesvc.decisions.service import create_api_key
    from rulesvc.sla.clock import SystemClock
    from tests.integration.conftest import make_settings

    app = create_app(make_settings(sqlite_url, evaluate_in_thread=True, group_commit=False), book=book)  # type: ignore[arg-type]
    _, key = create_api_key(app.state.runtime.service.keys, frozenset({Role.INGEST}), SystemClock())
    with TestClient(app) as client:
        first = client.post("/v1/events", json=event("thread-1"), headers=auth(key)).json()
        again = client.post("/v1/events", json=event("thread-1"), headers=auth(key)).json()
    assert [a["type"] for a in first["actions"]] == ["auto_approve", "trigger_payment"]
    assert again == first
