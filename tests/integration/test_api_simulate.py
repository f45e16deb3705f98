"""POST /v1/simulate: virtual time, timers, and no side effects."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.integration.conftest import auth, engine_of, event


def test_complaint_reported_late_fires_warning_and_escalation(
    client: TestClient, keys: dict[str, str]
) -> None:
    complaint = event("s1", "complaint")
    complaint["occurred_at"] = "2026-09-30T14:00:00+08:00"
    response = client.post(
        "/v1/simulate",
        json={"events": [complaint], "until": "2026-09-30T17:00:00+08:00"},
        headers=auth(keys["editor"]),
    )
    assert response.status_code == 200, response.text
    timeline = response.json()["timeline"]
    assert timeline[0]["trigger"] == "s1"
    types = [[a["type"] for a in entry["actions"]] for entry in timeline]
    assert types == [["start_timer"], ["notify"], ["escalate"]]
    assert [entry["at"] for entry in timeline] == [
        "2026-09-30T14:00:00+08:00",
        "2026-09-30T15:30:00+08:00",
        "2026-09-30T16:00:00+08:00",
    ]
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        assert conn.execute(text("SELECT count(*) FROM decisions")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM actions")).scalar_one() == 0
        # Nothing logged beyond the seals of the test's API keys.
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE kind <> 'key'")).scalar_one() == 0


def test_simulate_validates_input(client: TestClient, keys: dict[str, str]) -> None:
    response = client.post("/v1/simulate", json={"events": [{"event_id": "x"}]}, headers=auth(keys["ingest"]))
    assert response.status_code == 422
    paths = {d["path"] for d in response.json()["details"]}
    assert "until" in paths and "events.0.type" in paths
    unknown = client.post(
        "/v1/simulate",
        json={"events": [event("u1", "mortgage")], "until": "2026-10-01T00:00:00+08:00"},
        headers=auth(keys["ingest"]),
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "event.invalid"
