"""The reports (`/v1/reports/...`, the 看板与报表 page) are not cut at the request deadline: over a long
period of a large database they may take longer. The database's statement timeout bounds them instead, and
a statement it cancels is answered 503 `query_timeout` with a message saying what to do. PostgreSQL (the
report statements wait here on a lock another transaction holds on `decision_facts`)."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from rulesvc.settings import Settings
from tests.integration.conftest import auth, make_settings, reset_pg
from tests.integration.test_report_aggregation import seed

DEADLINE = 2.0
STATEMENT = 4.0
WINDOW = {"from": "2020-01-01T00:00:00+08:00", "to": "2030-01-01T00:00:00+08:00"}


@pytest.fixture
def settings(pg_database: str) -> Settings:
    reset_pg(pg_database)
    return make_settings(pg_database, request_timeout=DEADLINE, db_statement_timeout=STATEMENT)


def test_a_report_outlives_the_request_deadline_and_is_bounded_by_the_statement_timeout(
    client: TestClient, keys: dict[str, str], pg_database: str
) -> None:
    seed(client, keys["ingest"])
    asked = {**WINDOW, "period": "month"}
    assert client.get("/v1/reports/approvals", params=asked, headers=auth(keys["auditor"])).status_code == 200
    with psycopg.connect(pg_database) as blocker:
        blocker.execute("LOCK TABLE decision_facts IN ACCESS EXCLUSIVE MODE")
        answer = client.get("/v1/reports/approvals", params=asked, headers=auth(keys["auditor"]))
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "query_timeout" and "缩短区间" in answer.json()["message"]
        page = client.get("/console/reports", params={"from": "2020-01-01"}, headers=auth(keys["auditor"]))
        assert page.status_code == 503 and "query_timeout" in page.text
        blocker.rollback()
    answer = client.get("/v1/reports/approvals", params=asked, headers=auth(keys["auditor"]))
    assert answer.status_code == 200 and answer.json()["groups"]
