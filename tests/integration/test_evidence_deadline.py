"""A version's evidence file (`GET /v1/rulesets/{name}/versions/{v}/report`) runs every case of the ruleset
and, as PDF, lays the report out: seconds of work, like a draft's. It is not cut at the request deadline
(which answers 503 to a request waiting on a hung database), as the draft's report and the replay are not.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rulesvc.settings import Settings
from tests.evidence_support import require_pdf_tools
from tests.integration.conftest import auth, make_settings
from tests.integration.lifecycle_support import clear_lifecycle, lifecycle_app

DEADLINE = 0.05
"""Far shorter than running the cases and laying out a PDF take."""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, request_timeout=DEADLINE)


@pytest.fixture
def app(settings: Settings, database_url: str) -> Iterator[FastAPI]:
    clear_lifecycle(database_url)
    built = lifecycle_app(settings)
    try:
        yield built
    finally:
        built.state.lifecycle.close()
        clear_lifecycle(database_url)


@pytest.mark.parametrize("fmt", ["pdf", "xlsx", "html"])
def test_a_version_report_is_not_cut_at_the_request_deadline(
    client: TestClient, keys: dict[str, str], fmt: str
) -> None:
    if fmt == "pdf":
        require_pdf_tools()
    answer = client.get(
        "/v1/rulesets/loan-approval/versions/1/report", params={"format": fmt}, headers=auth(keys["auditor"])
    )
    assert answer.status_code == 200, answer.text[:300]
    assert len(answer.content) > 1000
