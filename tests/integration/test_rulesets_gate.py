"""A test gate nobody can walk around, on SQLite and PostgreSQL: cases belong to their ruleset, the approver
sees case-level changes and evidence frozen at submit, versions tell their state. Each test is one of the
ways an editor who wants a change through got around the gate before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from rulesvc.sla.clock import VirtualClock
from tests.integration.conftest import RULESETS, auth
from tests.integration.test_rulesets_lifecycle import (  # noqa: F401 (fixtures)
    EXPENSE,
    ORIGINAL,
    ORIGINAL_CASES,
    RAISED,
    RAISED_CASES,
    START,
    clock,
    lc_keys,
    lifecycle_client,
    push,
)

ROUTING = "loan-routing"
ROUTING_TEXT = (RULESETS / f"{ROUTING}.yaml").read_text(encoding="utf-8")
ROUTING_CASES = (RULESETS / "cases" / f"{ROUTING}.yaml").read_text(encoding="utf-8")


def call(client: TestClient, key: str, name: str, draft_id: str, action: str, body: Any = None) -> Any:
    return client.post(f"/v1/rulesets/{name}/drafts/{draft_id}/{action}", json=body, headers=auth(key))


def upload(client: TestClient, key: str, name: str, draft_id: str, text: str, file: str | None = None) -> Any:
    return client.put(
        f"/v1/rulesets/{name}/drafts/{draft_id}/cases",
        params={"file": file} if file else None,
        content=text.encode("utf-8"),
        headers={**auth(key), "Content-Type": "application/yaml"},
    )


def publish_change(
    client: TestClient,
    keys: dict[str, str],
    name: str,
    content: str,
    cases: str | None = None,
    effective_at: datetime | None = None,
) -> dict[str, Any]:
    """Draft → (cases) → submit → approve → publish; the publication's answer."""
    created = client.post(
        f"/v1/rulesets/{name}/drafts",
        json={"content": content, "reason": "测试变更", "cases": {name: cases} if cases else {}},
        headers=auth(keys["editor"]),
    )
    assert created.status_code == 201, created.text
    draft_id = created.json()["draft_id"]
    submitted = call(client, keys["editor"], name, draft_id, "submit")
    assert submitted.status_code == 200, submitted.text
    approved = call(client, keys["approver"], name, draft_id, "approve", {"comment": "同意"})
    assert approved.status_code == 200, approved.text
    body = {"effective_at": effective_at.isoformat()} if effective_at else {}
    published = call(client, keys["approver"], name, draft_id, "publish", body)
    assert published.status_code == 200, published.text
    result: dict[str, Any] = published.json()
    return result


# -- versions tell their state --------------------------------------------------------------------------


def test_superseded_versions_say_so_everywhere_they_are_listed(
    lifecycle_client: TestClient, lc_keys: dict[str, str], clock: VirtualClock
) -> None:
    client, auditor = lifecycle_client, lc_keys["auditor"]
    december = datetime.fromisoformat("2026-12-01T00:00:00+08:00")
    v2 = publish_change(client, lc_keys, EXPENSE, RAISED, RAISED_CASES, december)
    assert (v2["version"], v2["state"]) == (2, "scheduled")
    # A version published later but effective earlier: v2 will never take effect.
    lowered = RAISED.replace('金额: "< 8000"', '金额: "< 6000"')
    lowered_cases = RAISED_CASES.replace("8000", "6000").replace("7999.99", "5999.99")
    v3 = publish_change(client, lc_keys, EXPENSE, lowered, lowered_cases, december - timedelta(days=3))
    assert v3["supersedes"] == [2] and v3["state"] == "scheduled"

    listing = client.get("/v1/rulesets", headers=auth(auditor)).json()
    entry = next(r for r in listing["rulesets"] if r["name"] == EXPENSE)
    assert entry["version"] == 1 and entry["state"] == "in_force"
    assert [p["version"] for p in entry["pending"]] == [3]
    assert [(s["version"], s["state"], s["superseded_by"]) for s in entry["superseded"]] == [
        (2, "superseded", 3)
    ]

    versions = client.get(f"/v1/rulesets/{EXPENSE}/versions", headers=auth(auditor)).json()["versions"]
    assert [(v["version"], v["state"], v["never_in_force"]) for v in versions] == [
        (1, "in_force", False),
        (2, "superseded", True),
        (3, "scheduled", False),
    ]
    version2 = client.get(f"/v1/rulesets/{EXPENSE}/versions/2", headers=auth(auditor)).json()
    assert version2["state"] == "superseded" and version2["state_label"] == "已被取代（从未生效）"

    # v3 takes effect; a rollback to v1 then takes v3's place: v3 is rolled back, v1 superseded.
    clock.set(december - timedelta(days=2))
    rolled = client.post(
        f"/v1/rulesets/{EXPENSE}/rollback",
        json={"to_version": 1, "reason": "回滚"},
        headers=auth(lc_keys["editor"]),
    )
    assert rolled.status_code == 201, rolled.text
    rollback_id = rolled.json()["draft_id"]
    assert (
        call(client, lc_keys["approver"], EXPENSE, rollback_id, "approve", {"comment": "同意"}).status_code
        == 200
    )
    assert call(client, lc_keys["approver"], EXPENSE, rollback_id, "publish").status_code == 200
    versions = client.get(f"/v1/rulesets/{EXPENSE}/versions", headers=auth(auditor)).json()["versions"]
    assert [(v["version"], v["state"], v["superseded_by"]) for v in versions] == [
        (1, "superseded", 3),
        (2, "superseded", 3),
        (3, "rolled_back", 4),
        (4, "in_force", None),
    ]
    assert versions[2]["state_label"] == "已回滚"
