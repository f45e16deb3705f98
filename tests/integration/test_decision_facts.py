"""The facts written with each decision (`decision_facts`) are those the migration's backfill derives from
the stored records: the same rows, column for column, on SQLite and PostgreSQL, with the ticket's state
folded in chain order (stages entered and left, the stay, the last amount, auto-approval and routing
group, the next decision)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select

from rulesvc.storage.decision_facts import backfill
from rulesvc.storage.fact_tables import DecisionFactRow
from tests.integration.test_report_aggregation import seed


def facts(engine: Engine) -> list[dict[str, Any]]:
    table = DecisionFactRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.chain_seq)).mappings().all()  # type: ignore[attr-defined]
    return [{**row, "fields": _json(row["fields"])} for row in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_facts_written_with_decisions_equal_the_backfill(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    seed(client, keys["ingest"])
    engine: Engine = app.state.runtime.engine
    written = facts(engine)
    assert len(written) == 12
    loan = [row for row in written if row["ticket_id"] == "L-1"]
    assert [row["left_stage"] for row in loan] == [None, "初审", "复审", "初审"]
    assert [row["stay_seconds"] for row in loan] == [None, 23 * 3600, 30.5 * 3600, 136.5 * 3600]
    assert [row["next_decided_at"] is None for row in loan] == [False, False, False, True]
    assert {row["routed"] for row in written} == {"", "总行信贷审批中心", "费用审批岗", "浦东分行信贷审批A组"}
    assert [row["routed"] for row in loan] == ["浦东分行信贷审批A组"] * 4
    assert any(row["auto"] and row["auto_decided_at"] == row["decided_at"] for row in written)
    with engine.begin() as conn:
        conn.execute(delete(DecisionFactRow))
        backfill(conn)
    assert facts(engine) == written
