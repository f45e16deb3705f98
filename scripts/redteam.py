"""Red-team run: the edits an intruder with write access to the database would make, against a live server.

Usage (a server running with its worker, e.g. `rulesvc serve`, on the same database):

    RULESVC_URL=http://127.0.0.1:8000 RULESVC_DATABASE_URL=sqlite:///var/rulesvc.db \\
        .venv/bin/python scripts/redteam.py

Creates its own API keys in the database, decides a few events over HTTP, edits rows with plain SQL, then
asks `GET /v1/audit/verify` and uses the edited rows the way the service would. Prints one line per edit:
whether `verify` reports it and whether the service refused to act on it. Exit status 1 when any edit
went unnoticed.
"""

from __future__ import annotations

import http.server
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine, text

from rulesvc.apikeys import Role
from rulesvc.decisions.service import create_api_key
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import SqlStore, make_engine

RUN = uuid.uuid4().hex[:6]


class Receiver:
    """A webhook receiver that records every body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._handler = Handler
        self.server: http.server.HTTPServer | None = None

    def start(self) -> None:
        self.server = http.server.HTTPServer(("127.0.0.1", self.port), self._handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()


class Run:
    def __init__(self, base: str, engine: Engine) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.engine = engine
        store = SqlStore(engine, group_commit=False)
        self.keys = {
            role: create_api_key(store, frozenset({Role(role)}), SystemClock(), f"redteam-{role}")[1]
            for role in ("ingest", "auditor", "admin", "compliance")
        }
        self.rows: list[tuple[str, str, str]] = []

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def post(self, body: dict[str, Any]) -> httpx.Response:
        return self.http.post("/v1/events", json=body, headers=self.auth("ingest"))

    def sql(self, statement: str, **params: Any) -> Any:
        with self.engine.begin() as conn:
            return conn.execute(text(statement), params)

    def verify(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get("/v1/audit/verify", headers=self.auth("auditor")).json()
        return body

    def record(self, edit: str, detected: bool, blocked: str) -> None:
        self.rows.append((edit, "detected" if detected else "NOT DETECTED", blocked))

    def restore(self, undo: Callable[[], None]) -> None:
        undo()


def expense(event_id: str, amount: str = "4999.99") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "ticket.created",
        "occurred_at": datetime.now(UTC).isoformat(),
        "ticket": {
            "kind": "expense",
            "id": f"E-{event_id}",
            "expense_type": "差旅费",
            "amount": float(amount),
            "applicant_rank": "部门经理",
            "applicant": "赵敏",
        },
    }


def complaint(event_id: str, ticket_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "ticket.created",
        "occurred_at": datetime.now(UTC).isoformat(),
        "ticket": {"kind": "complaint", "id": ticket_id, "owner": "王五", "channel": "电话"},
    }


def reasons(verify: dict[str, Any]) -> set[str]:
    found = {p["reason"] for p in verify.get("problems", [])}
    if verify.get("first_broken"):
        found.add(verify["first_broken"]["reason"])
    return found


def feed_action(run: Run) -> None:
    decided = run.post(expense(f"rt-feed-{RUN}")).json()
    run.sql(
        "UPDATE actions SET action = replace(action, '4999.99', '499999.99') WHERE decision_id = :d",
        d=decided["decision_id"],
    )
    verify = run.verify()
    feed = run.http.get("/v1/actions", headers=run.auth("ingest"))
    run.record(
        "actions: trigger_payment 4999.99 → 499999.99",
        "action_mismatch" in reasons(verify),
        f"feed answers {feed.status_code} {feed.json().get('code', '')}",
    )
    run.sql(
        "UPDATE actions SET action = replace(action, '499999.99', '4999.99') WHERE decision_id = :d",
        d=decided["decision_id"],
    )


def webhook_body(run: Run) -> None:
    receiver = Receiver()  # not listening yet: the first attempts fail and the delivery waits, pending
    sub = run.http.post(
        "/v1/webhooks",
        json={"url": receiver.url, "action_types": ["trigger_payment"]},
        headers=run.auth("admin"),
    ).json()
    run.post(expense(f"rt-hook-{RUN}"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pending = run.sql(
            "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = :s", s=sub["id"]
        ).scalar_one()
        if pending:
            break
        time.sleep(0.2)
    run.sql(
        "UPDATE webhook_deliveries SET body = replace(body, '4999.99', '88888.88') WHERE subscription_id = :s",
        s=sub["id"],
    )
    verify = run.verify()
    receiver.start()
    time.sleep(6)
    row = run.sql(
        "SELECT status, last_error FROM webhook_deliveries WHERE subscription_id = :s", s=sub["id"]
    ).first()
    sent_forged = any(b"88888.88" in body for body in receiver.bodies)
    run.record(
        "webhook_deliveries: body 4999.99 → 88888.88",
        "action_mismatch" in reasons(verify),
        "never sent, dead letter " + str(row[1] or "")[:24] if row and not sent_forged else "SENT",
    )
    receiver.stop()
    run.http.delete(f"/v1/webhooks/{sub['id']}", headers=run.auth("admin"))


def ticket_state(run: Run, column: str, edit: str, label: str) -> None:
    ticket = f"C-rt-{column}-{RUN}"
    run.post(complaint(f"rt-{column}-{RUN}", ticket))
    for statement in edit.split("; "):
        run.sql(statement, t=ticket)
    verify = run.verify()
    time.sleep(3)  # a few timer polls
    fired = run.sql(
        "SELECT count(*) FROM actions WHERE ticket_id = :t AND action LIKE '%escalate%'", t=ticket
    ).scalar_one()
    run.record(label, "state_mismatch" in reasons(verify), "not fired" if not fired else "ESCALATED")


def deleted_tail(run: Run) -> None:
    made = run.http.post("/v1/audit/checkpoints", headers=run.auth("auditor"))
    decided = run.post(expense(f"rt-tail-{RUN}")).json()
    with run.engine.begin() as conn:
        seq = conn.execute(
            text("SELECT chain_seq FROM decisions WHERE decision_id = :d"), {"d": decided["decision_id"]}
        ).scalar_one()
        newest = conn.execute(text("SELECT seq FROM audit_head")).scalar_one()
        if newest == seq:
            prev = conn.execute(
                text("SELECT prev_hash FROM audit_log WHERE seq = :s"), {"s": seq}
            ).scalar_one()
            conn.execute(
                text("DELETE FROM decision_inputs WHERE decision_id = :d"), {"d": decided["decision_id"]}
            )
            conn.execute(text("DELETE FROM decisions WHERE decision_id = :d"), {"d": decided["decision_id"]})
            conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": seq})
            conn.execute(
                text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": seq - 1, "h": prev}
            )
    checkpoint = run.http.post("/v1/audit/checkpoints", headers=run.auth("auditor"))
    verify = run.verify()
    again = run.post(expense(f"rt-tail-{RUN}"))
    run.record(
        "decisions + audit_log: newest deleted, audit_head moved back",
        bool({"decision_missing", "checkpoint_not_extended"} & reasons(verify)) and made.status_code == 200,
        f"re-post answers {again.status_code} {again.json().get('code', '')}; new checkpoint "
        f"{checkpoint.status_code}",
    )


def ruleset_text(run: Run) -> None:
    run.sql("UPDATE ruleset_versions SET content = replace(content, '< 5000', '< 50000')")
    verify = run.verify()
    run.record(
        "ruleset_versions: '< 5000' → '< 50000'", "content_mismatch" in reasons(verify), "(verify only)"
    )
    run.sql("UPDATE ruleset_versions SET content = replace(content, '< 50000', '< 5000')")


def key_roles(run: Run) -> None:
    """A key of its own (ingest), used once, then widened to compliance in the database."""
    key_id, key = create_api_key(
        SqlStore(run.engine, group_commit=False), frozenset({Role.INGEST}), SystemClock(), "redteam-widened"
    )
    headers = {"Authorization": f"Bearer {key}"}
    decided = run.http.post("/v1/events", json=expense(f"rt-key-{RUN}"), headers=headers).json()
    run.sql("UPDATE api_keys SET roles = 'ingest,compliance' WHERE key_id = :k", k=key_id)
    run.sql("UPDATE principals SET roles = 'ingest,compliance' WHERE principal_id = :p", p=f"s_{key_id}")
    time.sleep(1.5)  # the service's key cache (RULESVC_KEY_CACHE_SECONDS, 1 s)
    read = run.http.get(f"/v1/decisions/{decided['decision_id']}", headers=headers)
    verify = run.verify()
    run.record(
        "api_keys + principals: roles ingest → ingest,compliance",
        "grant_mismatch" in reasons(verify),
        f"key refused {read.status_code} {read.json().get('code', '')}",
    )


def key_revived(run: Run) -> None:
    """A revoked key put back as it was when created (its `created` entry still verifies)."""
    store = SqlStore(run.engine, group_commit=False)
    key_id, key = create_api_key(store, frozenset({Role.INGEST}), SystemClock(), "redteam-revoked")
    created = run.sql("SELECT seal_seq FROM api_keys WHERE key_id = :k", k=key_id).scalar_one()
    run.http.delete(f"/v1/admin/keys/{key_id}", headers=run.auth("admin"))
    run.sql("UPDATE api_keys SET revoked_at = NULL, seal_seq = :s WHERE key_id = :k", s=created, k=key_id)
    time.sleep(1.5)
    used = run.http.post(
        "/v1/events", json=expense(f"rt-revived-{RUN}"), headers={"Authorization": f"Bearer {key}"}
    )
    verify = run.verify()
    run.record(
        "api_keys: revoked key revived (revoked_at NULL, seal back)",
        "seal_stale" in reasons(verify),
        f"key refused {used.status_code} {used.json().get('code', '')}",
    )


def subscription_grant(run: Run) -> None:
    """A default (masked) subscription widened to personal data in the database."""
    made = run.http.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/rt-grant"}, headers=run.auth("admin")
    ).json()
    run.sql(
        "UPDATE webhook_subscriptions SET classes = :c WHERE id = :i",
        c='["公开","内部","敏感","个人信息"]',
        i=made["id"],
    )
    verify = run.verify()
    listed = run.http.get("/v1/webhooks", headers=run.auth("admin")).json()["subscriptions"]
    shown = next(s["classes"] for s in listed if s["id"] == made["id"])
    run.record(
        "webhook_subscriptions: classes widened to 个人信息",
        "grant_missing" in reasons(verify),
        f"not honoured (bodies masked as {'+'.join(shown)})",
    )
    run.http.delete(f"/v1/webhooks/{made['id']}", headers=run.auth("admin"))


def main() -> int:
    base = os.environ.get("RULESVC_URL", "http://127.0.0.1:8000")
    engine = make_engine(os.environ["RULESVC_DATABASE_URL"])
    run = Run(base, engine)
    steps: list[Callable[[], None]] = [
        lambda: feed_action(run),
        lambda: webhook_body(run),
        lambda: ruleset_text(run),
        lambda: ticket_state(
            run,
            "snapshot",
            "UPDATE tickets SET snapshot = replace(snapshot, '王五', '张冒名') WHERE ticket_id = :t",
            "tickets: snapshot owner 王五 → 张冒名 (timer not yet due)",
        ),
        lambda: ticket_state(
            run,
            "both",
            "UPDATE tickets SET snapshot = replace(snapshot, '王五', '张冒名') WHERE ticket_id = :t; "
            "UPDATE timers SET anchor_at = '2026-10-30 07:00:00', next_fire_at = '2026-10-30 08:00:00' "
            "WHERE ticket_id = :t",
            "tickets + timers: owner → 张冒名 and anchor days back (due at once)",
        ),
        lambda: ticket_state(
            run,
            "anchor",
            "UPDATE timers SET anchor_at = '2026-10-30 07:00:00', next_fire_at = '2026-10-30 08:00:00' "
            "WHERE ticket_id = :t",
            "timers: anchor_at moved days back",
        ),
        lambda: ticket_state(
            run,
            "timeline",
            "UPDATE tickets SET timeline = '{}' WHERE ticket_id = :t",
            "tickets: timer journal (timeline) emptied",
        ),
        lambda: deleted_tail(run),
        lambda: key_roles(run),
        lambda: key_revived(run),
        lambda: subscription_grant(run),
    ]
    for step in steps:
        step()
    width = max(len(edit) for edit, _, _ in run.rows)
    print(f"{'edit'.ljust(width)}  verify        at use")
    for edit, detected, blocked in run.rows:
        print(f"{edit.ljust(width)}  {detected.ljust(12)}  {blocked}")
    return 0 if all(d == "detected" for _, d, _ in run.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
