"""Times people type into the console are Beijing time in one text format (`2026-12-05 09:00`), whatever the
browser's language or time zone: the fields are text inputs showing that format, and the service refuses
anything else with a Chinese message and a code."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.conftest import auth
from tests.integration.lifecycle_support import console_app, threshold_draft

app = console_app

EXPENSE = "expense-approval"


def test_the_replay_and_publish_fields_are_beijing_text(client: TestClient, keys: dict[str, str]) -> None:
    draft_id = threshold_draft(client, keys["editor"])
    page = client.get(f"/console/rulesets/{EXPENSE}/drafts/{draft_id}", headers=auth(keys["editor"])).text
    form = page.split('id="replay-form"', 1)[1].split("</form>", 1)[0]
    assert "datetime-local" not in form and form.count('type="text"') == 2
    assert form.count('data-convert="beijing"') == 2 and 'placeholder="2026-12-05 09:00"' in form
    start = form.split('name="from"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    assert len(start) == 16 and start[10] == " "  # 2026-11-05 09:13: as people write it

    refused = client.post(
        f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/replay",
        json={"from": "2026-11-05 09:00", "to": "明天"},
        headers=auth(keys["editor"]),
    )
    assert refused.status_code == 422, refused.text
    details = {d["path"]: (d["code"], d["message"]) for d in refused.json()["details"]}
    assert details["from"] == (
        "validation.timezone_aware",
        "时间必须带时区偏移，如 2026-09-30T17:00:00+08:00",
    )
    assert details["to"] == (
        "validation.value_error",
        "取值不合法：应为带时区的时间，如 2026-12-01T00:00:00+08:00（北京时间可写 2026-12-01 00:00+08:00）",
    )


def test_the_dashboard_dates_are_text_and_a_wrong_one_is_said_in_chinese(
    client: TestClient, keys: dict[str, str]
) -> None:
    page = client.get("/console/reports", params={"from": "12/01/2026"}, headers=auth(keys["auditor"]))
    assert page.status_code == 200, page.text
    form = page.text.split('id="period"', 1)[1].split("</form>", 1)[0]
    assert 'type="date"' not in form and 'placeholder="2026-12-05"' in form
    error = page.text.split('id="period-error"', 1)[1].split("</p>", 1)[0]
    assert "起「12/01/2026」不是日期，应写成 2026-12-05；已按 " in error
    fine = client.get(
        "/console/reports", params={"from": "2026-11-01", "to": "2026-12-01"}, headers=auth(keys["auditor"])
    ).text
    assert 'id="period-error"' not in fine and 'value="2026-11-01"' in fine


def test_decision_search_takes_beijing_time_as_typed(client: TestClient, keys: dict[str, str]) -> None:
    typed = client.get(
        "/console/decisions", params={"from": "2026-12-01 00:00"}, headers=auth(keys["auditor"])
    ).text
    assert 'id="results"' in typed and 'role="alert"' not in typed
    wrong = client.get(
        "/console/decisions", params={"from": "12/01/2026"}, headers=auth(keys["auditor"])
    ).text
    assert "from：时间格式不对，应为北京时间 2026-12-05 09:00（或带时区 2026-12-05T09:00+08:00）" in wrong
