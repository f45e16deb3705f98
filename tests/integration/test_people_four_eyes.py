"""Four eyes per person, on SQLite and PostgreSQL: 张敏, holding an editor key and a second key with the
approver role, cannot approve (or reject) her own ruleset or calendar draft with either; another person
can. Lifecycle history and the chain name the people (name and user id), not only keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rulesvc.apikeys import Role
from rulesvc.sla.clock import VirtualClock
from tests.integration.conftest import RULESETS, auth
from tests.integration.lifecycle_support import lifecycle_client, role_keys

START = datetime.fromisoformat("2027-02-19T16:00:00+08:00")
EXPENSE = "expense-approval"
REVISED = (
    (RULESETS / f"{EXPENSE}.yaml")
    .read_text(encoding="utf-8")
    .replace("description: 差旅费小额报销自动审批", "description: 差旅费小额报销自动审批（修订）")
)
CN = (RULESETS / "calendars" / "cn.yaml").read_text(encoding="utf-8")
MAKEUP = CN.replace("confirmed_through: 2026-12-31", "confirmed_through: 2027-12-31").replace(
    "workdays:\n", 'workdays:\n  2027-02-20: "春节调休"\n', 1
)


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with lifecycle_client(database_url, VirtualClock(START)) as test_client:
        yield test_client


@pytest.fixture
def people(client: TestClient) -> dict[str, Any]:
    """张敏 with an editor key and a key labelled 风险专员张敏 holding approver; 李雷, an approver."""
    admin = role_keys(client, {"it": {Role.ADMIN}}, START)["it"]

    def user(name: str, roles: list[str]) -> str:
        response = client.post("/v1/admin/users", json={"name": name, "roles": roles}, headers=auth(admin))
        assert response.status_code == 201, response.text
        return str(response.json()["user_id"])

    def key(user_id: str, roles: list[str], label: str = "") -> str:
        body = {"roles": roles, "label": label}
        response = client.post(f"/v1/admin/users/{user_id}/keys", json=body, headers=auth(admin))
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    zhang, li = user("张敏", ["editor", "approver"]), user("李雷", ["approver"])
    return {
        "zhang": zhang,
        "li": li,
        "zhang_editor": key(zhang, ["editor"]),
        "zhang_approver": key(zhang, ["approver"], "风险专员张敏"),
        "li_approver": key(li, ["approver"]),
    }


def draft(client: TestClient, kind: str, name: str, key: str, text: str) -> str:
    response = client.post(
        f"/v1/{kind}/{name}/drafts",
        content=text.encode("utf-8"),
        params={"reason": "修订"},
        headers={**auth(key), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["draft_id"])


def step(client: TestClient, kind: str, name: str, key: str, draft_id: str, action: str) -> Any:
    body = (
        {"comment": "同意" if action == "approve" else "不同意"} if action in ("approve", "reject") else None
    )
    return client.post(f"/v1/{kind}/{name}/drafts/{draft_id}/{action}", json=body, headers=auth(key))


@pytest.mark.parametrize(
    ("kind", "name", "text"), [("rulesets", EXPENSE, REVISED), ("calendars", "cn", MAKEUP)]
)
def test_the_author_cannot_approve_with_another_of_her_keys(
    client: TestClient, people: dict[str, Any], kind: str, name: str, text: str
) -> None:
    draft_id = draft(client, kind, name, people["zhang_editor"], text)
    submitted = step(client, kind, name, people["zhang_editor"], draft_id, "submit")
    assert submitted.status_code == 200, submitted.text
    for action in ("approve", "reject"):
        refused = step(client, kind, name, people["zhang_approver"], draft_id, action)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "four_eyes" and "四眼原则" in refused.json()["message"]
        assert refused.json()["details"]["author"] == f"张敏 ({people['zhang']})"
    approved = step(client, kind, name, people["li_approver"], draft_id, "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["author"] == f"张敏 ({people['zhang']})"
    assert approved.json()["reviewer"] == f"李雷 ({people['li']})"


def test_history_names_people(client: TestClient, people: dict[str, Any]) -> None:
    draft_id = draft(client, "rulesets", EXPENSE, people["zhang_editor"], REVISED)
    assert step(client, "rulesets", EXPENSE, people["zhang_editor"], draft_id, "submit").status_code == 200
    assert step(client, "rulesets", EXPENSE, people["li_approver"], draft_id, "approve").status_code == 200
    history = client.get(f"/v1/rulesets/{EXPENSE}/history", headers=auth(people["li_approver"])).json()
    steps = {entry["step"]: entry for entry in history["entries"] if entry.get("draft_id") == draft_id}
    assert steps["draft_created"]["by"] == f"张敏 ({people['zhang']})"
    assert steps["submitted"]["by"] == f"张敏 ({people['zhang']})"
    assert steps["approved"]["by"] == f"李雷 ({people['li']})"
