"""审计 in a real browser: key and user administration (who created, disabled, revoked what) and the
生成检查点 button (auditor, admin) showing the checkpoint it made; the ruleset pages read an imported
version's effective time as 导入即生效, not 1970-01-01. No browser console error."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Console, Pages

pytestmark = pytest.mark.xdist_group("browser")


def test_administration_history_and_a_checkpoint_made_by_the_auditor(
    pages: Pages, console_server: Console
) -> None:
    created = console_server.api(
        "POST", "/v1/admin/users", json={"name": "临时审计", "username": "temp-audit", "roles": ["auditor"]}
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["user_id"]
    key = console_server.api("POST", f"/v1/admin/users/{user_id}/keys", json={})
    assert key.status_code == 201, key.text
    key_id = key.json()["key_id"]
    assert console_server.api("DELETE", f"/v1/admin/keys/{key_id}").status_code in (200, 204)
    disabled = console_server.api("PATCH", f"/v1/admin/users/{user_id}", json={"disabled": True})
    assert disabled.status_code == 200, disabled.text

    auditor = pages("wangshen")
    auditor.goto("/console/audit")
    table = auditor.locator("#administration")
    expect(table.locator(f'tr[data-subject="{key_id}"][data-change="revoked"]')).to_contain_text("吊销")
    expect(table.locator(f'tr[data-subject="{user_id}"][data-change="updated"]')).to_contain_text(
        "启用 → 停用"
    )
    expect(table.locator(f'tr[data-subject="{user_id}"][data-change="created"]')).to_contain_text("临时审计")
    auditor.get_by_role("button", name="立即校验").click()
    expect(auditor.locator("#verify-result")).to_contain_text("校验通过")
    expect(auditor.locator("#verify-at")).to_contain_text("校验时间")
    auditor.get_by_role("button", name="生成检查点").click()
    expect(auditor.locator("#checkpoint-latest")).to_contain_text("最新检查点：签至第")

    compliance = pages("hegui")
    compliance.goto("/console/audit")
    expect(compliance.locator("#administration")).to_be_visible()
    expect(compliance.get_by_role("button", name="生成检查点")).to_have_count(0)


def test_an_imported_version_reads_as_imported_not_1970(pages: Pages) -> None:
    reader = pages("wangshen")
    reader.goto("/console/rulesets")
    row = reader.locator('tr[data-ruleset="loan-approval"]')
    expect(row).to_contain_text("导入即生效")
    expect(row).not_to_contain_text("1970")
    reader.goto("/console/rulesets/loan-approval")
    expect(reader.locator("#versions")).to_contain_text("导入即生效")
    expect(reader.locator("main")).not_to_contain_text("1970")
