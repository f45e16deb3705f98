"""A test gate nobody can walk around, on SQLite and PostgreSQL: cases belong to their ruleset, the approver
sees case-level changes and evidence frozen at submit, versions tell their state. Each test is one of the
ways an editor who wants a change through got around the gate before.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from rulesvc.sla.clock import VirtualClock
from tests.integration import test_rulesets_lifecycle as lifecycle
from tests.integration.conftest import RULESETS, auth
from tests.integration.test_rulesets_lifecycle import (
    EXPENSE,
    ORIGINAL,
    ORIGINAL_CASES,
    RAISED,
    RAISED_CASES,
    push,
)

clock = lifecycle.clock
lifecycle_client = lifecycle.lifecycle_client
lc_keys = lifecycle.lc_keys

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


# -- cases belong to their ruleset ------------------------------------------------------------------------

XIAN_ROUTING = ROUTING_TEXT.replace(
    "    default:",
    "      - id: 西安雁塔\n        地区: 西安雁塔\n        then:\n          - assign: {group: 西安分行信贷审批组}\n    default:",
    1,
)
XIAN_CASE = """
  - name: 西安雁塔贷款分派西安分行
    given:
      - type: ticket.created
        at: 2026-11-02T09:50:00+08:00
        ticket: {kind: loan, id: L-2026-0199, region: 西安雁塔, amount: 300000, credit_rating: A, owner: 周八, stage: 受理}
    expect:
      - {type: assign, group: 西安分行信贷审批组}
"""
XIAN_CASES = ROUTING_CASES.rstrip("\n") + "\n" + XIAN_CASE
BOUNDARIES = ("差旅费5000元整不自动审批转人工", "差旅费5000.01元不自动审批转人工")


def without_cases(text: str, *names: str) -> str:
    """The case file with the named cases cut out (each case is a `  - name:` block)."""
    head, *blocks = text.split("\n  - name: ")
    kept = [b for b in blocks if b.split("\n", 1)[0].strip() not in names]
    return "\n  - name: ".join([head, *kept])


def test_a_draft_cannot_change_another_rulesets_cases(
    lifecycle_client: TestClient, lc_keys: dict[str, str]
) -> None:
    client, editor = lifecycle_client, lc_keys["editor"]
    created = client.post(
        f"/v1/rulesets/{ROUTING}/drafts",
        json={"content": XIAN_ROUTING, "reason": "新增西安雁塔", "cases": {ROUTING: XIAN_CASES}},
        headers=auth(editor),
    )
    assert created.status_code == 201, created.text
    draft_id = created.json()["draft_id"]
    gutted = without_cases(ORIGINAL_CASES, *BOUNDARIES)
    refused = upload(client, editor, ROUTING, draft_id, gutted, file=EXPENSE)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "cases.foreign_file"
    assert refused.json()["details"] == {"ruleset": ROUTING, "file": EXPENSE, "allowed": ROUTING}
    # nor in the draft's own upload
    smuggled = client.post(
        f"/v1/rulesets/{ROUTING}/drafts",
        json={"content": XIAN_ROUTING, "cases": {ROUTING: XIAN_CASES, EXPENSE: gutted}},
        headers=auth(editor),
    )
    assert smuggled.status_code == 403 and smuggled.json()["code"] == "cases.foreign_file", smuggled.text
    # nor through an import of a folder
    imported = client.post(
        "/v1/rulesets/import",
        json={"rulesets": {ROUTING: XIAN_ROUTING}, "cases": {ROUTING: XIAN_CASES, "shared-fixtures": gutted}},
        headers=auth(editor),
    )
    assert imported.status_code == 403 and imported.json()["code"] == "cases.foreign_file", imported.text
    # A folder whose only change is a ruleset's case file gives a draft of that ruleset.
    imported = client.post(
        "/v1/rulesets/import",
        json={"rulesets": {ROUTING: ROUTING_TEXT}, "cases": {EXPENSE: gutted}},
        headers=auth(editor),
    )
    assert imported.status_code == 200, imported.text
    assert [(d["ruleset"], d["case_files"]) for d in imported.json()["drafts"]] == [(EXPENSE, [EXPENSE])]


def test_a_foreign_case_file_stored_with_an_old_version_is_ignored(
    lifecycle_client: TestClient, lc_keys: dict[str, str]
) -> None:
    """Versions published before case files were bound to their ruleset may carry another ruleset's file;
    it neither weakens that ruleset's gate nor shows as deleted in later diffs."""
    client = lifecycle_client
    publish_change(client, lc_keys, ROUTING, XIAN_ROUTING, XIAN_CASES)
    gutted = without_cases(ORIGINAL_CASES, *BOUNDARIES)
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE ruleset_versions SET cases = :c WHERE name = :n AND version = 2"),
            {"c": json.dumps({ROUTING: XIAN_CASES, EXPENSE: gutted}), "n": ROUTING},
        )
    client.app.state.lifecycle.registry.refresh()  # type: ignore[attr-defined]
    # The expense-approval gate still holds its boundary cases.
    loosened = ORIGINAL.replace('金额: "< 5000"', '金额: "< 50000"')
    draft = push(client, lc_keys["editor"], loosened, "门槛 50000").json()
    assert draft["tests"]["failed"] >= 2 and set(BOUNDARIES) <= {
        f["name"] for f in draft["tests"]["failures"]
    }
    assert draft["tests"]["total"] == 50  # 49 shipped + 西安雁塔
    # Diffs of loan-routing show only its own case file.
    publish_change(
        client, lc_keys, ROUTING, XIAN_ROUTING.replace("兜底", "兜 底", 1), XIAN_CASES.replace("周八", "周九")
    )
    diff = client.get(
        f"/v1/rulesets/{ROUTING}/diff", params={"from": "2", "to": "3"}, headers=auth(lc_keys["auditor"])
    )
    assert diff.status_code == 200, diff.text
    assert "cases/expense-approval.yaml" not in diff.json()["cases_text"]
    assert "cases/loan-routing.yaml" in diff.json()["cases_text"]
    exported = client.get("/v1/rulesets/export", headers=auth(lc_keys["auditor"])).json()
    assert exported["cases"][EXPENSE] == ORIGINAL_CASES
