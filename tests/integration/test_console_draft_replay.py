"""The draft page's replay: an editor replays a draft raising the travel threshold 5000 → 8000 on the
logged decisions; the page shows how many would change, by action, and masked examples of changed
decisions; the form is offered only while the draft is being edited, to roles that may replay. On SQLite
and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.conftest import auth, event
from tests.integration.lifecycle_support import console_app, threshold_draft

app = console_app

EXPENSE = "expense-approval"


def test_replay_summary_and_masked_examples_on_the_draft_page(
    client: TestClient, keys: dict[str, str]
) -> None:
    for n, amount in enumerate((6000, 7000, 9000, 4000)):
        body = event(f"exp-{n}", "expense", amount=amount, applicant="赵敏", mobile="13812345678")
        answer = client.post("/v1/events", json=body, headers=auth(keys["ingest"]))
        assert answer.status_code == 200, answer.text
    draft_id = threshold_draft(client, keys["editor"], "差旅费自动审批门槛调整为 8000 元")
    page_url = f"/console/rulesets/{EXPENSE}/drafts/{draft_id}"

    before = client.get(page_url, headers=auth(keys["editor"]))
    assert before.status_code == 200, before.text
    assert 'id="replay-form"' in before.text and "还没有回放" in before.text
    assert 'id="replay-form"' not in client.get(page_url, headers=auth(keys["auditor"])).text

    window = {"from": "2026-09-01T00:00:00+08:00", "to": "2026-10-31T00:00:00+08:00"}
    replayed = client.post(
        f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/replay", json=window, headers=auth(keys["editor"])
    )
    assert replayed.status_code == 200, replayed.text
    report = replayed.json()["replay"]
    assert (report["decisions"], report["changed"]) == (4, 2)

    page = client.get(page_url, headers=auth(keys["editor"])).text
    summary = page.split('id="replay-summary"', 1)[1].split("</p>", 1)[0]
    assert "<strong>4</strong>" in summary and "因本草稿结果改变 <strong>2</strong> 条" in summary
    assert 'data-action="auto_approve"' in page
    examples = page.split('id="replay-examples"', 1)[1].split("</table>", 1)[0]
    assert examples.split("<tbody>", 1)[1].count("<tr>") == 2 and "exp-0" in examples and "exp-1" in examples
    assert "13812345678" not in examples and "赵敏" not in examples
    assert "auto_approve" in examples and "assign" in examples
