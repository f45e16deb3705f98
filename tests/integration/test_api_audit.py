"""Tampering with the stored log or decisions directly in the database is detected, first bad entry named.

Each case edits, deletes or reorders rows with plain SQL (as an intruder with database access would),
then asks GET /v1/audit/verify and `rulesvc audit verify`. The chain starts with the test's API keys (a
`key` entry each); positions below count from the first decision (`Decided.seq(n)`: the n-th decision's).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from tests.integration.conftest import auth, engine_of, event, invoke_cli

N = 5


@dataclass(frozen=True)
class Decided:
    ids: list[str]
    base: int
    """Chain entries before the first decision (the keys')."""

    def seq(self, n: int) -> int:
        return self.base + n


@pytest.fixture
def decided(client: TestClient, keys: dict[str, str]) -> Decided:
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        base = conn.execute(text("SELECT seq FROM audit_head")).scalar_one()
    ids = []
    for i in range(N):
        body = client.post("/v1/events", json=event(f"a{i}"), headers=auth(keys["ingest"])).json()
        ids.append(body["decision_id"])
    return Decided(ids, base)


def verify(client: TestClient, keys: dict[str, str]) -> dict[str, object]:
    response = client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def tamper(client: TestClient, change: Callable[[Connection], None]) -> None:
    with engine_of(client.app).begin() as conn:  # type: ignore[arg-type]
        change(conn)


def test_intact_log_verifies(client: TestClient, keys: dict[str, str], decided: Decided) -> None:
    assert verify(client, keys) == {"ok": True, "checked": decided.seq(N)}


def swap_seq(conn: Connection, a: int, b: int) -> None:
    conn.execute(text("UPDATE audit_log SET seq = -1 WHERE seq = :a"), {"a": a})
    conn.execute(text("UPDATE audit_log SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
    conn.execute(text("UPDATE audit_log SET seq = :b WHERE seq = -1"), {"b": b})


Change = Callable[[Connection, Decided], object]
CASES: dict[str, tuple[Change, int, str]] = {
    "edit log payload": (
        lambda c, d: c.execute(
            text("UPDATE audit_log SET payload = replace(payload, 'a2', 'zz') WHERE seq = :s"),
            {"s": d.seq(3)},
        ),
        3,
        "hash_mismatch",
    ),
    "edit log time": (
        lambda c, d: c.execute(
            text("UPDATE audit_log SET at = '2020-01-01T00:00:00+00:00' WHERE seq = :s"), {"s": d.seq(2)}
        ),
        2,
        "hash_mismatch",
    ),
    "delete log row": (
        lambda c, d: c.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": d.seq(3)}),
        3,
        "missing",
    ),
    "delete log tail": (
        lambda c, d: c.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": d.seq(5)}),
        5,
        "head_mismatch",
    ),
    "reorder log rows": (lambda c, d: swap_seq(c, d.seq(2), d.seq(4)), 2, "prev_mismatch"),
    "edit decision record": (
        lambda c, d: c.execute(
            text(
                "UPDATE decisions SET record = replace(record, '4999.99', '49999.99') WHERE decision_id = :d"
            ),
            {"d": d.ids[3]},
        ),
        4,
        "record_mismatch",
    ),
    "edit clear input": (
        lambda c, d: c.execute(
            text(
                "UPDATE decision_inputs SET event = replace(event, '4999.99', '4000') WHERE decision_id = :d"
            ),
            {"d": d.ids[1]},
        ),
        2,
        "record_mismatch",
    ),
    "delete decision": (
        lambda c, d: (
            c.execute(text("DELETE FROM decision_inputs WHERE decision_id = :d"), {"d": d.ids[2]}),
            c.execute(text("DELETE FROM decisions WHERE decision_id = :d"), {"d": d.ids[2]}),
        ),
        3,
        "record_missing",
    ),
    "swap decision records": (
        lambda c, d: (
            c.execute(text("UPDATE decisions SET event_id = 'tmp' WHERE decision_id = :d"), {"d": d.ids[0]}),
            c.execute(text("UPDATE decisions SET event_id = 'a0' WHERE decision_id = :d"), {"d": d.ids[1]}),
            c.execute(text("UPDATE decisions SET event_id = 'a1' WHERE decision_id = :d"), {"d": d.ids[0]}),
        ),
        1,
        "record_mismatch",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected(client: TestClient, keys: dict[str, str], decided: Decided, case: str) -> None:
    change, n, reason = CASES[case]
    seq = decided.seq(n)
    tamper(client, lambda conn: change(conn, decided))
    result = verify(client, keys)
    assert result["ok"] is False
    broken = result["first_broken"]
    assert isinstance(broken, dict)
    assert (broken["seq"], broken["reason"]) == (seq, reason), broken
    assert result["checked"] == seq - 1
    assert broken["message"]


def test_cli_audit_verify(
    client: TestClient, keys: dict[str, str], decided: Decided, database_url: str
) -> None:
    ok = invoke_cli(["audit", "verify"], database_url)
    assert ok.exit_code == 0 and json.loads(ok.stdout) == {"ok": True, "checked": decided.seq(N)}
    seq = decided.seq(2)
    tamper(client, lambda conn: conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": seq}))
    broken = invoke_cli(["audit", "verify"], database_url)
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["first_broken"]["seq"] == seq
