"""The console offers the evidence files where people look at what was tested: the ruleset page for the
version shown, the draft page for the draft; each link downloads the file. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.integration.conftest import auth
from tests.integration.lifecycle_support import console_app, threshold_draft

app = console_app

EXPENSE = "expense-approval"


def links(page: str) -> dict[str, str]:
    """format → href of the evidence links on a page."""
    block = re.search(r'id="evidence">(.*?)</(?:p|dd)>', page, re.S)
    assert block is not None, page
    found = re.findall(r'<a href="([^"]+\?format=(\w+))" download>', block.group(1))
    return {fmt: href.replace("&amp;", "&") for href, fmt in found}


def test_ruleset_and_draft_pages_link_their_evidence_files(client: TestClient, keys: dict[str, str]) -> None:
    auditor = auth(keys["auditor"])
    page = client.get(f"/console/rulesets/{EXPENSE}", headers=auditor)
    assert page.status_code == 200, page.text
    offered = links(page.text)
    assert offered == {
        fmt: f"/v1/rulesets/{EXPENSE}/versions/1/report?format={fmt}" for fmt in ("html", "xlsx", "pdf")
    }
    download = client.get(offered["xlsx"], headers=auditor)
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]

    draft_id = threshold_draft(client, keys["editor"])
    page = client.get(f"/console/rulesets/{EXPENSE}/drafts/{draft_id}", headers=auditor)
    assert page.status_code == 200, page.text
    offered = links(page.text)
    assert offered["html"] == f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/report?format=html"
    download = client.get(offered["html"], headers=auditor)
    assert download.status_code == 200 and "差旅费5000元整不自动审批转人工" in download.text
