"""A test gate nobody can walk around, on SQLite and PostgreSQL: cases belong to their ruleset, the approver
sees case-level changes and evidence frozen at submit, versions tell their state. Each test is one of the
ways an editor who wants a change through got around the gate before.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from cli import rulesets_client
from cli.rulesets import app as rulesets_cli
from rulesvc.sla.clock import VirtualClock
from tests.integration import test_rulesets_lifecycle as lifecycle
from tests.integration.conftest import RULESETS, auth
from tests.integration.test_rulesets_lifecycle import (
    EXPENSE,
    ORIGINAL,
    ORIGINAL_CASES,
    RAISED,
    RAISED_CASES,
    START,
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
    assert draft["tests"]["total"] == 52  # 51 shipped + 西安雁塔
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
    # Rolling back to that version brings back its own case file only.
    rolled = client.post(
        f"/v1/rulesets/{ROUTING}/rollback", json={"to_version": 2}, headers=auth(lc_keys["editor"])
    )
    assert rolled.status_code == 201, rolled.text
    assert rolled.json()["case_files"] == [ROUTING] and rolled.json()["status"] == "submitted"


# -- the gate is `make test` ------------------------------------------------------------------------------

COMPLAINT = "complaint-sla"
COMPLAINT_TEXT = (RULESETS / f"{COMPLAINT}.yaml").read_text(encoding="utf-8")
COMPLAINT_CASES = (RULESETS / "cases" / f"{COMPLAINT}.yaml").read_text(encoding="utf-8")
LOAN_APPROVAL = "loan-approval"
LOAN_APPROVAL_TEXT = (RULESETS / f"{LOAN_APPROVAL}.yaml").read_text(encoding="utf-8")
LOAN_APPROVAL_CASES = (RULESETS / "cases" / f"{LOAN_APPROVAL}.yaml").read_text(encoding="utf-8")


def reworded(text: str) -> str:
    """The same rules with an edited comment: a change that alters no decision."""
    return "# 修订说明：措辞调整\n" + text


def test_coverage_under_100_percent_needs_a_reason_the_approver_accepts(
    lifecycle_client: TestClient, lc_keys: dict[str, str]
) -> None:
    client, editor, approver = lifecycle_client, lc_keys["editor"], lc_keys["approver"]
    draft = push(client, editor, XIAN_ROUTING, "新增西安雁塔（样例待补）", name=ROUTING).json()
    assert draft["tests"]["failed"] == 0 and draft["tests"]["coverage"] < 1
    assert draft["tests"]["uncovered"] == ["loan-routing/地区分派#西安雁塔"]
    refused = call(client, editor, ROUTING, draft["draft_id"], "submit")
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "gate.gaps_unexplained"
    assert [g["kind"] for g in refused.json()["details"]["gaps"]] == ["uncovered"]
    submitted = call(
        client, editor, ROUTING, draft["draft_id"], "submit", {"gaps_reason": "西安分行下周提供样例"}
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["tests"]["gaps_reason"] == "西安分行下周提供样例"
    not_accepted = call(client, approver, ROUTING, draft["draft_id"], "approve", {"comment": "同意"})
    assert not_accepted.status_code == 422 and not_accepted.json()["code"] == "gate.gaps_not_accepted"
    assert not_accepted.json()["details"]["gaps_reason"] == "西安分行下周提供样例"
    approved = call(
        client, approver, ROUTING, draft["draft_id"], "approve", {"comment": "接受缺口", "accept_gaps": True}
    )
    assert approved.status_code == 200, approved.text
    history = client.get(f"/v1/rulesets/{ROUTING}/history", headers=auth(lc_keys["auditor"])).json()[
        "entries"
    ]
    submitted_entry, approved_entry = history[-2], history[-1]
    assert submitted_entry["gaps"] == 1 and submitted_entry["gaps_reason"] == "西安分行下周提供样例"
    assert approved_entry["accepted_gaps"] == 1
    assert approved_entry["evidence_sha256"] == submitted_entry["evidence_sha256"]


def test_removing_the_only_case_of_a_row_or_a_threshold_is_a_gap(
    lifecycle_client: TestClient, lc_keys: dict[str, str]
) -> None:
    client, editor = lifecycle_client, lc_keys["editor"]
    only_resume = "挂起1小时后恢复预警和升级顺延1小时"
    created = client.post(
        f"/v1/rulesets/{COMPLAINT}/drafts",
        json={
            "content": reworded(COMPLAINT_TEXT),
            "cases": {COMPLAINT: without_cases(COMPLAINT_CASES, only_resume)},
        },
        headers=auth(editor),
    )
    assert created.status_code == 201, created.text
    gaps = created.json()["tests"]["gaps"]
    assert {"kind": "sole_coverage", "case": only_resume, "ref": "complaint-sla/恢复继续计时"} in [
        {k: g.get(k) for k in ("kind", "case", "ref")} for g in gaps
    ]
    assert [c["change"] for c in created.json()["diff"]["cases"]] == ["removed"]

    only_5000 = "差旅费5000元整不自动审批转人工"
    created = client.post(
        f"/v1/rulesets/{EXPENSE}/drafts",
        json={"content": reworded(ORIGINAL), "cases": {EXPENSE: without_cases(ORIGINAL_CASES, only_5000)}},
        headers=auth(editor),
    )
    assert created.status_code == 201, created.text
    tests = created.json()["tests"]
    assert tests["coverage"] == 1 and tests["failed"] == 0
    assert [(g["kind"], g["ref"]) for g in tests["gaps"]] == [("sole_threshold", "ticket.amount = 5000")]
    refused = call(client, editor, EXPENSE, created.json()["draft_id"], "submit")
    assert refused.status_code == 422 and refused.json()["code"] == "gate.gaps_unexplained", refused.text


def test_cases_deleted_with_the_change_they_pinned_are_shown_case_by_case(
    lifecycle_client: TestClient, lc_keys: dict[str, str]
) -> None:
    """51 → 48 cases in the draft that moves the threshold they pinned: each removal is in the reviewed diff
    and flagged as a removed case the draft no longer meets."""
    client, editor = lifecycle_client, lc_keys["editor"]
    loosened = ORIGINAL.replace('金额: "< 5000"', '金额: "< 50000"')
    removed = ("差旅费4999.99元部门经理自动审批并付款", *BOUNDARIES)
    created = client.post(
        f"/v1/rulesets/{EXPENSE}/drafts",
        json={"content": loosened, "cases": {EXPENSE: without_cases(ORIGINAL_CASES, *removed)}},
        headers=auth(editor),
    )
    assert created.status_code == 201, created.text
    draft = created.json()
    assert draft["tests"]["total"] == 48 and draft["tests"]["failed"] == 0
    assert {w["case"] for w in draft["tests"]["warnings"]} == set(BOUNDARIES)
    changes = draft["diff"]["cases"]
    assert [(c["change"], c["case"]) for c in changes] == [("removed", name) for name in removed]
    assert changes[1]["summary"] == (
        "cases/expense-approval.yaml 删除样例「差旅费5000元整不自动审批转人工」："
        "预期 分派（审批组: 费用审批岗）；不得 自动审批、触发付款"
    )
    # An expected result changed in place is shown old → new.
    changed = ORIGINAL_CASES.replace(
        "{type: assign, group: 费用审批岗}", "{type: assign, group: 费用复核岗}", 1
    )
    uploaded = upload(client, editor, EXPENSE, draft["draft_id"], changed)
    assert uploaded.status_code == 200, uploaded.text
    [change] = uploaded.json()["diff"]["cases"]
    assert (change["change"], change["label"], change["case"]) == (
        "expect_changed",
        "预期结果改变",
        BOUNDARIES[0],
    )
    assert change["old"].startswith("预期 分派（审批组: 费用审批岗）") and change["new"].startswith(
        "预期 分派（审批组: 费用复核岗）"
    )


def test_cases_run_against_every_scheduled_version_the_draft_meets(
    lifecycle_client: TestClient, lc_keys: dict[str, str]
) -> None:
    client, editor = lifecycle_client, lc_keys["editor"]
    december = datetime.fromisoformat("2026-12-01T00:00:00+08:00")
    guarded = XIAN_CASES.rstrip("\n") + "\n    expect_not:\n      - {type: assign, group: 总行信贷审批中心}\n"
    publish_change(client, lc_keys, ROUTING, XIAN_ROUTING, guarded, december)
    # A loan-approval draft sending every 西安雁塔 loan to head office: fine with today's routing (西安雁塔
    # falls to head office anyway), but it breaks the scheduled routing version's case.
    rule = (
        '\n  - id: 西安贷款总行复核\n    on: [ticket.created]\n    when: ticket.region == "西安雁塔"\n'
        "    then:\n      - assign: {group: 总行信贷审批中心}\n"
    )
    case = (
        "\n  - name: 西安雁塔贷款总行复核\n    given:\n      - type: ticket.created\n"
        "        at: 2026-11-02T09:50:00+08:00\n        ticket: {kind: loan, id: L-2026-0198, region: 西安雁塔, "
        "amount: 300000, credit_rating: A, owner: 周八, stage: 受理}\n    expect:\n"
        "      - {type: assign, group: 总行信贷审批中心}\n"
    )
    created = client.post(
        f"/v1/rulesets/{LOAN_APPROVAL}/drafts",
        json={
            "content": LOAN_APPROVAL_TEXT.rstrip("\n") + "\n" + rule,
            "cases": {LOAN_APPROVAL: LOAN_APPROVAL_CASES.rstrip("\n") + "\n" + case},
        },
        headers=auth(editor),
    )
    assert created.status_code == 201, created.text
    tests = created.json()["tests"]
    assert [s["label"] for s in tests["scenarios"]] == ["现行版本", "loan-routing v2 生效后"]
    assert [(f["name"], f["scenario"]) for f in tests["failures"]] == [
        ("西安雁塔贷款分派西安分行", "loan-routing v2 生效后")
    ]
    refused = call(client, editor, LOAN_APPROVAL, created.json()["draft_id"], "submit")
    assert refused.status_code == 422 and refused.json()["code"] == "cases_failed"


# -- the evidence the approver sees is frozen at submit ------------------------------------------------------


def test_evidence_is_frozen_at_submit(
    lifecycle_client: TestClient, lc_keys: dict[str, str], clock: VirtualClock
) -> None:
    client, editor, approver = lifecycle_client, lc_keys["editor"], lc_keys["approver"]
    for index, amount in enumerate([1200, 5000, 6500, 7999, 12000]):
        event = lifecycle.expense_event(f"f-{index}", START + timedelta(minutes=index), amount)
        assert client.post("/v1/events", json=event, headers=auth(lc_keys["ingest"])).status_code == 200
    clock.set(START + timedelta(hours=1))
    draft = push(client, editor, RAISED, "门槛 8000").json()
    draft_id = draft["draft_id"]
    assert upload(client, editor, EXPENSE, draft_id, RAISED_CASES).status_code == 200
    window = {"from": START.isoformat(), "to": clock.now().isoformat()}
    assert call(client, editor, EXPENSE, draft_id, "replay", window).json()["replay"]["changed"] == 3
    assert call(client, editor, EXPENSE, draft_id, "submit").status_code == 200
    empty = {"from": (START - timedelta(days=30)).isoformat(), "to": (START - timedelta(days=29)).isoformat()}
    for key in (lc_keys["editor2"], approver, editor):
        refused = call(client, key, EXPENSE, draft_id, "replay", empty)
        assert refused.status_code == 409 and refused.json()["code"] == "draft.evidence_frozen", refused.text
    assert call(client, approver, EXPENSE, draft_id, "approve", {"comment": "同意"}).status_code == 200
    refused = call(client, lc_keys["editor2"], EXPENSE, draft_id, "replay", empty)
    assert refused.status_code == 409 and refused.json()["code"] == "draft.evidence_frozen"
    shown = client.get(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}", headers=auth(approver)).json()
    assert shown["replay"]["changed"] == 3 and shown["replay"]["from"] == START.isoformat()


def test_withdrawing_returns_the_draft_to_editing(
    lifecycle_client: TestClient, lc_keys: dict[str, str]
) -> None:
    client, editor = lifecycle_client, lc_keys["editor"]
    draft_id = push(client, editor, RAISED).json()["draft_id"]
    assert upload(client, editor, EXPENSE, draft_id, RAISED_CASES).status_code == 200
    assert call(client, editor, EXPENSE, draft_id, "submit").status_code == 200
    assert call(client, lc_keys["editor2"], EXPENSE, draft_id, "withdraw").status_code == 403
    withdrawn = call(client, editor, EXPENSE, draft_id, "withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "draft", withdrawn.text
    window = {"from": START.isoformat(), "to": (START + timedelta(hours=1)).isoformat()}
    assert call(client, editor, EXPENSE, draft_id, "replay", window).status_code == 200
    assert call(client, editor, EXPENSE, draft_id, "submit").json()["status"] == "submitted"
    steps = [
        e["step"]
        for e in client.get(f"/v1/rulesets/{EXPENSE}/history", headers=auth(editor)).json()["entries"]
    ]
    assert steps[-4:] == ["submitted", "withdrawn", "replayed", "submitted"]


# -- replay you can sign under --------------------------------------------------------------------------


def claim(event_id: str, occurred_at: datetime, amount: float, rank: str = "部门经理") -> dict[str, Any]:
    event = lifecycle.expense_event(event_id, occurred_at, amount)
    event["ticket"]["applicant_rank"] = rank
    return event


def test_replay_selects_events_by_when_they_occurred(
    lifecycle_client: TestClient, lc_keys: dict[str, str], clock: VirtualClock
) -> None:
    """Seven November claims that reached the service in December belong to a November window."""
    client = lifecycle_client
    clock.set(datetime.fromisoformat("2026-12-03T09:00:00+08:00"))
    for day in range(1, 8):
        event = claim(f"nov-{day}", datetime.fromisoformat(f"2026-11-0{day}T10:00:00+08:00"), 6000)
        assert client.post("/v1/events", json=event, headers=auth(lc_keys["ingest"])).status_code == 200
    draft_id = push(client, lc_keys["editor"], RAISED).json()["draft_id"]
    november = {"from": "2026-11-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"}
    report = call(client, lc_keys["editor"], EXPENSE, draft_id, "replay", november).json()["replay"]
    assert (report["decisions"], report["changed"], report["selected_by"]) == (7, 7, "occurred_at")
    december = {"from": "2026-12-01T00:00:00+08:00", "to": "2027-01-01T00:00:00+08:00"}
    assert (
        call(client, lc_keys["editor"], EXPENSE, draft_id, "replay", december).json()["replay"]["decisions"]
        == 0
    )


def test_replay_counts_only_what_the_draft_changes(
    lifecycle_client: TestClient, lc_keys: dict[str, str], clock: VirtualClock
) -> None:
    """Claims decided under 8000 (v2), then rolled back to 5000 (v3); a draft on v3 that limits automatic
    approval to 总监: the claims the rollback already sends to a person are not the draft's doing."""
    client, ingest = lifecycle_client, lc_keys["ingest"]
    publish_change(client, lc_keys, EXPENSE, RAISED, RAISED_CASES)
    for index, (amount, rank) in enumerate(
        [(1200, "部门经理"), (4000, "部门经理"), (6000, "部门经理"), (7000, "部门经理"), (3000, "总监")]
    ):
        event = claim(f"v2-{index}", START + timedelta(minutes=index + 1), amount, rank)
        assert client.post("/v1/events", json=event, headers=auth(ingest)).status_code == 200
    clock.set(START + timedelta(hours=1))
    rolled = client.post(
        f"/v1/rulesets/{EXPENSE}/rollback", json={"to_version": 1}, headers=auth(lc_keys["editor"])
    )
    assert (
        call(client, lc_keys["approver"], EXPENSE, rolled.json()["draft_id"], "approve", {}).status_code
        == 200
    )
    assert call(client, lc_keys["approver"], EXPENSE, rolled.json()["draft_id"], "publish").status_code == 200
    stricter = ORIGINAL.replace('职级: ">= 部门经理"', '职级: ">= 总监"')
    draft_id = push(client, lc_keys["editor"], stricter).json()["draft_id"]
    window = {"from": START.isoformat(), "to": clock.now().isoformat()}
    report = call(client, lc_keys["editor"], EXPENSE, draft_id, "replay", window).json()["replay"]
    assert (report["decisions"], report["changed"], report["changed_by_later_versions"]) == (5, 2, 2)
    assert report["by_action"] == {
        "assign": {"added": 2, "removed": 0},
        "auto_approve": {"added": 0, "removed": 2},
        "trigger_payment": {"added": 0, "removed": 2},
    }
    assert report["by_value"]["assign.group"] == {"费用审批岗": {"added": 2, "removed": 0}}
    assert report["totals"]["trigger_payment.amount"] == {"added": "0", "removed": "5200", "net": "-5200"}
    assert [e["event_id"] for e in report["examples"]] == ["v2-0", "v2-1"]


# -- export and import are round-trip safe -----------------------------------------------------------------


def test_export_names_its_base_and_a_push_on_an_older_base_is_refused(
    lifecycle_client: TestClient, lc_keys: dict[str, str]
) -> None:
    """A folder exported while loan-routing v2 (西安雁塔) is scheduled, edited and pushed back, would silently
    undo v2: it is refused with the difference shown."""
    client, editor, auditor = lifecycle_client, lc_keys["editor"], lc_keys["auditor"]
    december = datetime.fromisoformat("2026-12-01T00:00:00+08:00")
    publish_change(client, lc_keys, ROUTING, XIAN_ROUTING, XIAN_CASES, december)
    exported = client.get("/v1/rulesets/export", headers=auth(auditor)).json()
    routing = exported["rulesets"][ROUTING]
    assert (routing["version"], routing["state"], routing["latest_version"]) == (1, "in_force", 2)
    [scheduled_v2] = routing["scheduled"]
    assert scheduled_v2["version"] == 2 and datetime.fromisoformat(scheduled_v2["effective_at"]) == december
    assert exported["based_on"][ROUTING] == 1 and exported["cases"][ROUTING] == ROUTING_CASES

    edited = routing["content"].replace("海淀支行信贷审批B岗", "海淀支行信贷审批C岗")
    cases = exported["cases"][ROUTING].replace("海淀支行信贷审批B岗", "海淀支行信贷审批C岗")
    refused = client.post(
        f"/v1/rulesets/{ROUTING}/drafts",
        json={"content": edited, "cases": {ROUTING: cases}, "base_version": routing["version"]},
        headers=auth(editor),
    )
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "draft.stale_base"
    assert (body["details"]["base_version"], body["details"]["latest_version"]) == (1, 2)
    assert body["details"]["latest_state"] == "scheduled"
    difference = body["details"]["difference"]
    assert difference["added"] == [
        "决策表 地区分派 行 西安雁塔（地区: 西安雁塔 → 分派（审批组: 西安分行信贷审批组））"
    ]
    assert [c["case"] for c in difference["cases"]] == ["西安雁塔贷款分派西安分行"]
    imported = client.post(
        "/v1/rulesets/import",
        json={
            "rulesets": {ROUTING: edited},
            "cases": {ROUTING: cases},
            "base_versions": exported["based_on"],
        },
        headers=auth(editor),
    )
    assert imported.status_code == 409 and imported.json()["code"] == "draft.stale_base", imported.text

    # Exported as of December: based on v2, with v2's cases; that push goes through.
    scheduled = client.get(
        "/v1/rulesets/export", params={"as_of": december.isoformat()}, headers=auth(auditor)
    ).json()
    routing = scheduled["rulesets"][ROUTING]
    assert (routing["version"], routing["state"]) == (2, "scheduled")
    assert scheduled["cases"][ROUTING] == XIAN_CASES
    created = client.post(
        f"/v1/rulesets/{ROUTING}/drafts",
        json={
            "content": routing["content"].replace("海淀支行信贷审批B岗", "海淀支行信贷审批C岗"),
            "cases": {
                ROUTING: scheduled["cases"][ROUTING].replace("海淀支行信贷审批B岗", "海淀支行信贷审批C岗")
            },
            "base_version": 2,
        },
        headers=auth(editor),
    )
    assert created.status_code == 201, created.text
    assert created.json()["base_version"] == 2 and created.json()["tests"]["failed"] == 0
    # A file claiming a base whose content differs from the stored version is refused too.
    different = client.post(
        f"/v1/rulesets/{EXPENSE}/drafts",
        json={"content": RAISED, "base_version": 1, "base_sha256": "0" * 64},
        headers=auth(editor),
    )
    assert different.status_code == 409 and different.json()["code"] == "draft.stale_base", different.text


def test_cli_export_writes_its_base_and_push_sends_it(
    lifecycle_client: TestClient, lc_keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = lifecycle_client
    december = datetime.fromisoformat("2026-12-01T00:00:00+08:00")
    publish_change(client, lc_keys, ROUTING, XIAN_ROUTING, XIAN_CASES, december)

    def through_app(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.pop("timeout", None)
        return client.request(method, url.removeprefix("http://rulesvc.test"), **kwargs)

    monkeypatch.setattr(rulesets_client.httpx, "request", through_app)
    env = {"RULESVC_URL": "http://rulesvc.test", "RULESVC_TZ": "Asia/Shanghai"}
    runner = CliRunner()
    work = tmp_path / "work"
    exported = runner.invoke(
        rulesets_cli, ["export", str(work)], env={**env, "RULESVC_KEY": lc_keys["auditor"]}
    )
    assert exported.exit_code == 0, exported.output
    assert "注意：loan-routing v2 将于 2026-12-01T00:00:00+08:00 起生效" in exported.output
    assert json.loads((work / ".rulesvc-export.json").read_text())["rulesets"][ROUTING]["version"] == 1
    file = work / f"{ROUTING}.yaml"
    file.write_text(reworded(file.read_text(encoding="utf-8")), encoding="utf-8")
    pushed = runner.invoke(rulesets_cli, ["push", str(file)], env={**env, "RULESVC_KEY": lc_keys["editor"]})
    assert pushed.exit_code == 1, pushed.output
    assert "被拒绝（409 draft.stale_base）" in pushed.output
    assert (
        "  + 决策表 地区分派 行 西安雁塔（地区: 西安雁塔 → 分派（审批组: 西安分行信贷审批组））"
        in pushed.output
    )

    later = tmp_path / "december"
    args = ["export", str(later), "--as-of", december.isoformat()]
    assert runner.invoke(rulesets_cli, args, env={**env, "RULESVC_KEY": lc_keys["auditor"]}).exit_code == 0
    file = later / f"{ROUTING}.yaml"
    file.write_text(reworded(file.read_text(encoding="utf-8")), encoding="utf-8")
    pushed = runner.invoke(rulesets_cli, ["push", str(file)], env={**env, "RULESVC_KEY": lc_keys["editor"]})
    assert pushed.exit_code == 0, pushed.output
    assert "基于 v2" in pushed.output


def test_cli_cases_takes_the_folder_path_and_refusals_show_the_api_details(
    lifecycle_client: TestClient, lc_keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = lifecycle_client

    def through_app(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.pop("timeout", None)
        return client.request(method, url.removeprefix("http://rulesvc.test"), **kwargs)

    monkeypatch.setattr(rulesets_client.httpx, "request", through_app)
    editor = {"RULESVC_URL": "http://rulesvc.test", "RULESVC_KEY": lc_keys["editor"]}
    runner = CliRunner()
    draft_id = push(client, lc_keys["editor"], RAISED, "门槛调整").json()["draft_id"]
    cases = tmp_path / "cases" / f"{EXPENSE}.yaml"
    cases.parent.mkdir()
    cases.write_text(RAISED_CASES, encoding="utf-8")
    # `--file` as the rules folder names it (the README's form) is the same file as `--file expense-approval`
    uploaded = runner.invoke(
        rulesets_cli, ["cases", EXPENSE, draft_id, str(cases), "--file", f"cases/{EXPENSE}.yaml"], env=editor
    )
    assert uploaded.exit_code == 0, uploaded.output
    assert "样例：通过 51 个，未通过 0 个" in uploaded.output
    # another ruleset's case file: refused, with what the API said about it
    foreign = runner.invoke(
        rulesets_cli, ["cases", EXPENSE, draft_id, str(cases), "--file", "cases/loan-sla.yaml"], env=editor
    )
    assert foreign.exit_code == 1
    refusal = client.put(
        f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/cases",
        params={"file": "loan-sla"},
        content=RAISED_CASES.encode("utf-8"),
        headers={**auth(lc_keys["editor"]), "Content-Type": "application/yaml"},
    ).json()
    assert f"被拒绝（403 {refusal['code']}）：{refusal['message']}" in foreign.output
    for key, value in refusal["details"].items():
        assert f"  {key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}" in (
            foreign.output
        )
    # a request the API finds malformed: every field problem is shown, not just "请求参数不合法"
    bad = runner.invoke(
        rulesets_cli, ["cases", EXPENSE, draft_id, str(cases), "--file", "cases/bad name.yaml"], env=editor
    )
    assert bad.exit_code == 1
    assert "被拒绝（422 invalid_request）：请求参数不合法" in bad.output
    assert "  query.file: " in bad.output, bad.output
