"""The ruleset lifecycle over HTTP, on SQLite and PostgreSQL: the issue's whole path (threshold 5000 → 8000
drafted, cases pinning 5000 refuse the submission, updated cases, four-eyes approval, publication effective
in the future, as-of decisions before and after, rollback, history, chain verification), and the refusals.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from rulesvc.apikeys import Role
from rulesvc.sla.clock import VirtualClock
from tests.integration.conftest import REPO, RULESETS, auth
from tests.integration.lifecycle_support import lifecycle_client as lifecycle_test_client
from tests.integration.lifecycle_support import role_keys

EXPENSE = "expense-approval"
START = datetime.fromisoformat("2026-11-02T09:00:00+08:00")
ORIGINAL = (RULESETS / f"{EXPENSE}.yaml").read_text(encoding="utf-8")
RAISED = ORIGINAL.replace('金额: "< 5000"', '金额: "< 8000"')
ORIGINAL_CASES = (RULESETS / "cases" / f"{EXPENSE}.yaml").read_text(encoding="utf-8")
RAISED_CASES = (
    ORIGINAL_CASES.replace("5000.01", "8000.01")
    .replace("amount: 5000,", "amount: 8000,")
    .replace("5000元整", "8000元整")
    .replace("4999.99", "7999.99")
)
PINNED_5000 = {"差旅费5000元整不自动审批转人工", "差旅费5000.01元不自动审批转人工"}
THRESHOLD_CHANGE = "决策表 报销审批 行 差旅费小额自动审批 金额: < 5000 → < 8000"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def lifecycle_client(database_url: str, clock: VirtualClock) -> Iterator[TestClient]:
    with lifecycle_test_client(database_url, clock) as client:
        yield client


@pytest.fixture
def lc_keys(lifecycle_client: TestClient) -> dict[str, str]:
    roles = {
        "editor": {Role.EDITOR},
        "editor2": {Role.EDITOR},
        "approver": {Role.APPROVER},
        "both": {Role.EDITOR, Role.APPROVER},
        "auditor": {Role.AUDITOR},
        "ingest": {Role.INGEST},
    }
    return role_keys(lifecycle_client, roles, START)


def push(client: TestClient, key: str, text: str, reason: str = "", name: str = EXPENSE) -> Any:
    return client.post(
        f"/v1/rulesets/{name}/drafts",
        content=text.encode("utf-8"),
        params={"reason": reason} if reason else None,
        headers={**auth(key), "Content-Type": "application/yaml"},
    )


def step(client: TestClient, key: str, draft_id: str, action: str, body: Any = None) -> Any:
    return client.post(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/{action}", json=body, headers=auth(key))


def simulate(client: TestClient, key: str, events: list[Any], **options: Any) -> Any:
    body = {"events": events, "until": "2026-11-03T00:00:00+08:00"}
    body.update({k: v.isoformat() if isinstance(v, datetime) else v for k, v in options.items()})
    response = client.post("/v1/simulate", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def expense(client: TestClient, key: str, event_id: str, occurred_at: datetime, amount: float) -> Any:
    response = client.post("/v1/events", json=expense_event(event_id, occurred_at, amount), headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def expense_event(event_id: str, occurred_at: datetime, amount: float) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "ticket.created",
        "occurred_at": occurred_at.isoformat(),
        "ticket": {
            "kind": "expense",
            "id": f"E-{event_id}",
            "expense_type": "差旅费",
            "amount": amount,
            "applicant_rank": "部门经理",
            "applicant": "赵敏",
        },
    }


def outcome(decision: Any) -> tuple[set[str], int]:
    versions = {f["version"] for f in decision["fired"] if f["ruleset"] == EXPENSE}
    assert len(versions) == 1, decision
    return {a["type"] for a in decision["actions"]}, versions.pop()


def test_threshold_change_end_to_end(
    lifecycle_client: TestClient, lc_keys: dict[str, str], clock: VirtualClock
) -> None:
    client, editor, approver, ingest = (
        lifecycle_client,
        lc_keys["editor"],
        lc_keys["approver"],
        lc_keys["ingest"],
    )
    listing = client.get("/v1/rulesets", headers=auth(approver)).json()
    assert {r["name"]: r["version"] for r in listing["rulesets"]}[EXPENSE] == 1

    # The editor drafts 5000 → 8000; the shipped cases pinning 5000 fail.
    response = push(client, editor, RAISED, "差旅费自动审批门槛调整为 8000 元")
    assert response.status_code == 201, response.text
    draft = response.json()
    draft_id = draft["draft_id"]
    assert draft["base_version"] == 1 and draft["status"] == "draft" and not draft["submittable"]
    assert {f["name"] for f in draft["tests"]["failures"]} == PINNED_5000
    assert THRESHOLD_CHANGE in draft["diff"]["summary"]

    # "What would this draft decide": simulation with the draft in place of its ruleset (version 0).
    claim = expense_event("sim-1", START + timedelta(hours=2), 6000)
    simulated = simulate(client, ingest, [claim], draft_id=draft_id)
    assert outcome(simulated["timeline"][0]) == ({"auto_approve", "trigger_payment"}, 0)
    assert outcome(simulate(client, ingest, [claim])["timeline"][0]) == ({"assign"}, 1)

    refused = step(client, editor, draft_id, "submit")
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "cases_failed"
    assert {f["name"] for f in refused.json()["details"]["failures"]} == PINNED_5000
    first = refused.json()["details"]["failures"][0]
    assert "期望 {type: assign, group: 费用审批岗}，但没有这样的动作 [case.expected_missing]" in first["text"]
    assert first["codes"][0] == "case.expected_missing" and "case.forbidden_present" in first["codes"]

    # Updated cases make the draft pass; it is submitted, approved by another key, published for 10:00.
    uploaded = client.put(
        f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/cases",
        content=RAISED_CASES.encode("utf-8"),
        headers={**auth(editor), "Content-Type": "application/yaml"},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["tests"]["failed"] == 0 and uploaded.json()["submittable"]
    assert step(client, editor, draft_id, "submit").json()["status"] == "submitted"
    assert step(client, editor, draft_id, "approve").status_code == 403  # editors do not approve
    approved = step(client, approver, draft_id, "approve", {"comment": "门槛调整已经风险委员会批准"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    effective = START + timedelta(hours=1)
    published = step(client, editor, draft_id, "publish", {"effective_at": effective.isoformat()})
    assert published.status_code == 200, published.text
    assert published.json()["version"] == 2
    assert datetime.fromisoformat(published.json()["effective_at"]) == effective

    # Before 10:00 the old threshold decides; the future version activates itself at 10:00.
    clock.set(START + timedelta(minutes=15))  # events may not be dated ahead of the clock
    assert outcome(expense(client, ingest, "e-0915", START + timedelta(minutes=15), 6000)) == ({"assign"}, 1)
    clock.set(START + timedelta(hours=1, minutes=30))
    after = expense(client, ingest, "e-1015", START + timedelta(hours=1, minutes=15), 6000)
    assert outcome(after) == ({"auto_approve", "trigger_payment"}, 2)
    # A late event is decided on the version in force when it occurred.
    assert outcome(expense(client, ingest, "e-0930-late", START + timedelta(minutes=30), 6000)) == (
        {"assign"},
        1,
    )
    # Simulation decides each event on the versions in force at its time, or all of them as of a time.
    early, late = (expense_event(f"sim-{m}", START + timedelta(minutes=m), 6000) for m in (30, 90))
    timeline = simulate(client, ingest, [early, late])["timeline"]
    assert [outcome(entry) for entry in timeline] == [
        ({"assign"}, 1),
        ({"auto_approve", "trigger_payment"}, 2),
    ]
    timeline = simulate(client, ingest, [early, late], as_of=START)["timeline"]
    assert [outcome(entry)[1] for entry in timeline] == [1, 1]
    as_of = client.get(
        "/v1/rulesets", params={"as_of": (START + timedelta(minutes=30)).isoformat()}, headers=auth(approver)
    ).json()
    expense_then = next(r for r in as_of["rulesets"] if r["name"] == EXPENSE)
    assert expense_then["version"] == 1 and [p["version"] for p in expense_then["pending"]] == [2]
    diff = client.get(f"/v1/rulesets/{EXPENSE}/diff", params={"from": "1", "to": "2"}, headers=auth(approver))
    assert THRESHOLD_CHANGE in diff.json()["summary"]
    assert '-        金额: "< 5000"' in diff.json()["text"] and "8000.01" in diff.json()["cases_text"]

    # Rollback: a new draft with version 1's content and cases, through the same approval.
    rolled = client.post(
        f"/v1/rulesets/{EXPENSE}/rollback",
        json={"to_version": 1, "reason": "8000 元门槛引发异常付款，回滚"},
        headers=auth(editor),
    )
    assert rolled.status_code == 201, rolled.text
    rollback_id = rolled.json()["draft_id"]
    assert rolled.json()["status"] == "submitted" and rolled.json()["rollback_of"] == 1
    assert step(client, approver, rollback_id, "approve", {"comment": "同意回滚"}).status_code == 200
    republished = step(client, approver, rollback_id, "publish")
    assert republished.status_code == 200 and republished.json()["version"] == 3, republished.text
    assert outcome(expense(client, ingest, "e-1031", clock.now(), 6000)) == ({"assign"}, 3)
    version3 = client.get(f"/v1/rulesets/{EXPENSE}/versions/3", headers=auth(approver)).json()
    assert version3["content"] == ORIGINAL and version3["source"] == "rollback"

    history = client.get(f"/v1/rulesets/{EXPENSE}/history", headers=auth(lc_keys["auditor"])).json()
    assert [e["step"] for e in history["entries"]] == [
        "imported",
        "draft_created",
        "cases_uploaded",
        "submitted",
        "approved",
        "published",
        "rollback_requested",
        "submitted",
        "approved",
        "published",
    ]
    publication = history["entries"][5]
    assert publication["version"] == 2 and publication["approver"] != publication["author"]
    assert publication["reason"] == "差旅费自动审批门槛调整为 8000 元"
    verify = client.get("/v1/audit/verify", headers=auth(lc_keys["auditor"])).json()
    assert verify["ok"] is True, verify


def test_refusals(lifecycle_client: TestClient, lc_keys: dict[str, str], clock: VirtualClock) -> None:
    client, both, approver = lifecycle_client, lc_keys["both"], lc_keys["approver"]

    # Authoring errors: the same positioned errors as `rulesvc check`, all at once.
    broken = (REPO / "docs/examples/broken/expense-approval.yaml").read_text(encoding="utf-8")
    response = push(client, lc_keys["editor"], broken)
    assert response.status_code == 422 and response.json()["code"] == "invalid_ruleset"
    texts = [e["text"] for e in response.json()["details"]]
    assert texts[0] == ("expense-approval.yaml:6:44: 未知字段 ticket.amout（提示：是不是 ticket.amount？）")
    assert len(texts) == 6

    # Four eyes: the author is refused even holding the approver role.
    revised = ORIGINAL.replace(
        "description: 差旅费小额报销自动审批", "description: 差旅费小额报销自动审批（修订）"
    )
    draft_id = push(client, both, revised, "措辞").json()["draft_id"]
    assert step(client, both, draft_id, "submit").status_code == 200
    for action in ("approve", "reject"):
        refused = step(client, both, draft_id, action, {"comment": "自己批准"})
        assert refused.status_code == 403 and refused.json()["code"] == "four_eyes", refused.text
    assert step(client, both, draft_id, "publish").status_code == 409  # not approved
    assert step(client, approver, draft_id, "reject").status_code == 422  # a rejection needs a reason

    # A draft made before another publication is stale: it would undo that version.
    stale_id = push(client, lc_keys["editor2"], RAISED.replace("8000", "6000"), "门槛 6000").json()[
        "draft_id"
    ]
    assert step(client, approver, draft_id, "approve", {"comment": "ok"}).status_code == 200
    past = step(client, both, draft_id, "publish", {"effective_at": "2026-11-01T00:00:00+08:00"})
    assert past.status_code == 422 and "effective_at" in past.json()["message"]
    assert step(client, both, draft_id, "publish").json()["version"] == 2
    stale = step(client, lc_keys["editor2"], stale_id, "submit")
    assert stale.status_code == 409 and stale.json()["code"] == "stale_draft"
    assert step(client, both, draft_id, "publish").status_code == 409  # published once only

    # Nothing to change, unknown things, roles.
    assert push(client, both, revised).json()["code"] == "no_change"
    assert client.get(f"/v1/rulesets/{EXPENSE}/versions/9", headers=auth(approver)).status_code == 404
    assert client.get("/v1/rulesets/nope/history", headers=auth(approver)).status_code == 404
    assert step(client, approver, "no-such-draft", "approve").status_code == 404
    assert client.get("/v1/rulesets", headers=auth(lc_keys["ingest"])).status_code == 403
    assert client.get("/v1/rulesets").status_code == 401
    assert push(client, approver, revised).status_code == 403
    wrong_type = client.post(
        f"/v1/rulesets/{EXPENSE}/drafts", content=b"x", headers={**auth(both), "Content-Type": "image/png"}
    )
    assert wrong_type.status_code == 415


def test_replay_counts_changed_outcomes(
    lifecycle_client: TestClient, lc_keys: dict[str, str], clock: VirtualClock
) -> None:
    client, editor, ingest = lifecycle_client, lc_keys["editor"], lc_keys["ingest"]
    for index, amount in enumerate([1200, 4999.99, 5000, 6500, 7999, 8000, 12000]):
        clock.set(START + timedelta(minutes=index))  # events may not be dated ahead of the clock
        expense(client, ingest, f"r-{index}", START + timedelta(minutes=index), amount)
    clock.set(START + timedelta(hours=1))
    draft_id = push(client, editor, RAISED, "门槛 8000").json()["draft_id"]
    response = step(
        client,
        editor,
        draft_id,
        "replay",
        {"from": START.isoformat(), "to": clock.now().isoformat()},
    )
    assert response.status_code == 200, response.text
    report = response.json()["replay"]
    assert report["decisions"] == 7 and report["changed"] == 3  # 5000, 6500, 7999
    assert report["by_action"] == {
        "assign": {"added": 0, "removed": 3},
        "auto_approve": {"added": 3, "removed": 0},
        "trigger_payment": {"added": 3, "removed": 0},
    }
    example = report["examples"][0]
    assert example["ticket"]["applicant"] == "赵*"  # masked
    assert {a["type"] for a in example["after"]} == {"auto_approve", "trigger_payment"}


def test_import_export_and_tampered_versions(lifecycle_client: TestClient, lc_keys: dict[str, str]) -> None:
    client, editor, auditor = lifecycle_client, lc_keys["editor"], lc_keys["auditor"]
    exported = client.get("/v1/rulesets/export", headers=auth(auditor)).json()
    assert {k: exported["rulesets"][EXPENSE][k] for k in ("version", "content")} == {
        "version": 1,
        "content": ORIGINAL,
    }
    assert exported["cases"][EXPENSE] == ORIGINAL_CASES and len(exported["rulesets"]) == 5

    # Importing a folder into a database that has versions: a draft per changed ruleset, nothing published.
    folder = {name: entry["content"] for name, entry in exported["rulesets"].items()}
    imported = client.post(
        "/v1/rulesets/import",
        json={"rulesets": {**folder, EXPENSE: RAISED}, "cases": {**exported["cases"], EXPENSE: RAISED_CASES}},
        headers=auth(editor),
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["imported"] == [] and len(imported.json()["unchanged"]) == 4
    [draft] = imported.json()["drafts"]
    assert draft["ruleset"] == EXPENSE and draft["submittable"] and draft["case_files"] == [EXPENSE]

    # Every version still hashes to what its chain entry approved; a version edited in the database does not.
    assert client.get("/v1/rulesets/verify", headers=auth(auditor)).json() == {
        "ok": True,
        "checked": 5,
        "problems": [],
    }
    engine = lifecycle_client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE ruleset_versions SET content = :c WHERE name = :n"), {"c": RAISED, "n": EXPENSE}
        )
    tampered = client.get("/v1/rulesets/verify", headers=auth(auditor)).json()
    assert tampered["ok"] is False
    assert [(p["ruleset"], p["reason"]) for p in tampered["problems"]] == [(EXPENSE, "content_mismatch")]
