"""The facts of each decision (`decision_facts`, `rulesvc.storage.fact_tables`): read from its record before
the chain head is locked (`observe`), folded with the ticket's latest facts row under the lock (`fold`),
written in the decision's transaction (`write_facts`); and filled from the stored records for decisions
written before them (`backfill`: one statement on PostgreSQL, the same `fold` in Python on SQLite).

The ticket's rows follow each other in chain order (the order decisions are written).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, select, text

from rulesvc import exactjson
from rulesvc.storage.bulk import Rows, Statements
from rulesvc.storage.fact_tables import DecisionFactRow
from rulesvc.storage.tables import DecisionRow

FACTS = cast(Table, DecisionFactRow.__table__)
CARRIED = (
    "ticket_id",
    "decision_id",
    "first_occurred_at",
    "stage",
    "stage_since",
    "amount",
    "auto_decided_at",
    "auto_occurred_at",
    "routed",
)
"""The columns of a ticket's latest row that its next row is folded from."""


@dataclass(frozen=True)
class Seen:
    """What one decision's record says, for its facts row."""

    decision_id: str
    ticket_id: str
    decided_at: datetime
    occurred_at: datetime
    kind: str
    owner: str
    fields: str
    auto: bool
    stage: str | None
    amount: Decimal | None
    assigned: str | None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else exactjson.dumps(value)


def observe(decision_id: str, ticket_id: str, decided_at: datetime, record: Mapping[str, Any]) -> Seen | None:
    """The facts of a decision of a ticket event (None when its event carries no ticket object)."""
    event = record.get("event")
    ticket = event.get("ticket") if isinstance(event, Mapping) else None
    if not isinstance(ticket, Mapping):
        return None
    assert isinstance(event, Mapping)
    try:
        occurred = datetime.fromisoformat(str(event.get("occurred_at")))
    except ValueError:
        occurred = decided_at
    if occurred.tzinfo is None:
        occurred = decided_at
    actions = [a for a in record.get("actions") or () if isinstance(a, Mapping)]
    assigned = [a["group"] for a in actions if a.get("type") == "assign" and a.get("group")]
    amount = ticket.get("amount")
    number = isinstance(amount, int | float | Decimal) and not isinstance(amount, bool) and amount != 0
    return Seen(
        decision_id=decision_id,
        ticket_id=ticket_id,
        decided_at=decided_at,
        occurred_at=occurred,
        kind="" if ticket.get("kind") is None else _text(ticket["kind"]),
        owner=("None" if ticket["owner"] is None else _text(ticket["owner"])) if "owner" in ticket else "",
        fields=exactjson.dumps(ticket),
        auto=any(a.get("type") == "auto_approve" for a in actions),
        stage=None if ticket.get("stage") is None else _text(ticket["stage"]),
        amount=Decimal(str(amount)) if number else None,
        assigned=_text(assigned[-1]) if assigned else None,
    )


def fold(latest: Mapping[str, Any] | None, seen: Seen, chain_seq: int) -> dict[str, Any]:
    """The facts row of `seen`, after the ticket's `latest` row (its `CARRIED` columns; None: the first)."""
    before: Mapping[str, Any] = latest or {}
    stage: str | None = before.get("stage")
    since: datetime | None = before.get("stage_since")
    left, stay = None, None
    if seen.stage is not None and seen.stage != stage:
        if stage is not None and since is not None:
            left, stay = stage, (seen.occurred_at - since).total_seconds()
        stage, since = seen.stage, seen.occurred_at
    return {
        "decision_id": seen.decision_id,
        "ticket_id": seen.ticket_id,
        "decided_at": seen.decided_at,
        "chain_seq": chain_seq,
        "occurred_at": seen.occurred_at,
        "kind": seen.kind,
        "owner": seen.owner,
        "fields": seen.fields,
        "auto": seen.auto,
        "first_occurred_at": before.get("first_occurred_at") or seen.occurred_at,
        "stage": stage,
        "stage_since": since,
        "left_stage": left,
        "stay_seconds": stay,
        "amount": seen.amount if seen.amount is not None else before.get("amount"),
        "auto_decided_at": seen.decided_at if seen.auto else before.get("auto_decided_at"),
        "auto_occurred_at": seen.occurred_at if seen.auto else before.get("auto_occurred_at"),
        "routed": seen.assigned or before.get("routed") or "",
        "next_decided_at": None,
        "next_occurred_at": None,
    }


def select_latest(sql: Statements, ticket_ids: Sequence[str]) -> Rows:
    """The latest facts rows of these tickets (`CARRIED` columns; read them with `write_facts`)."""
    return sql.select(
        FACTS, CARRIED, "ticket_id", list(dict.fromkeys(ticket_ids)), where="next_decided_at IS NULL"
    )


def write_facts(sql: Statements, seen: Sequence[tuple[Seen, int]], latest: Rows) -> None:
    """Insert the facts rows of `seen` (with their chain seqs, in chain order) and point each ticket's
    previous latest row at its next decision (joins the caller's statements)."""
    last: dict[str, dict[str, Any]] = {row[0]: dict(zip(CARRIED, row, strict=True)) for row in latest.all()}
    stored = {ticket_id: row["decision_id"] for ticket_id, row in last.items()}
    rows: list[dict[str, Any]] = []
    nexts: list[dict[str, Any]] = []
    for one, seq in seen:
        before = last.get(one.ticket_id)
        row = fold(before, one, seq)
        if before is not None:
            pointer = {"next_decided_at": one.decided_at, "next_occurred_at": one.occurred_at}
            if "chain_seq" in before:  # a row of this batch
                before.update(pointer)
            elif stored.pop(one.ticket_id, None) is not None:
                nexts.append({**pointer, "decision_id": before["decision_id"]})
        rows.append(row)
        last[one.ticket_id] = row
    sql.insert(FACTS, rows)
    sql.update(FACTS, ["decision_id"], nexts)


_COLUMNS = (
    "decision_id, ticket_id, decided_at, chain_seq, occurred_at, kind, owner, fields, auto, first_occurred_at,"
    " stage, stage_since, left_stage, stay_seconds, amount, auto_decided_at, auto_occurred_at, routed,"
    " next_decided_at, next_occurred_at"
)

# Every decision of a ticket event, in chain order per ticket: the event's facts (`e`), the state carried
# forward (the last non-null value so far: the first value of the run of rows since it was given), the
# stages entered (`s`), then the stays and the neighbours.
_BACKFILL = f"""
INSERT INTO decision_facts ({_COLUMNS})
WITH r AS (
    SELECT decision_id, ticket_id, decided_at, chain_seq, pg_temp.jsonb_or_null(record) AS r
    FROM decisions OFFSET 0
), e AS (
    SELECT decision_id, ticket_id, decided_at, chain_seq, t,
           coalesce((r -> 'event' ->> 'occurred_at')::timestamptz, decided_at) AS occ,
           coalesce(t ->> 'kind', '') AS kind,
           CASE WHEN t ? 'owner' THEN coalesce(t ->> 'owner', 'None') ELSE '' END AS owner,
           coalesce(r -> 'actions' @> '[{{"type": "auto_approve"}}]', false) AS auto,
           t ->> 'stage' AS ev_stage,
           CASE WHEN jsonb_typeof(t -> 'amount') = 'number' AND (t ->> 'amount')::numeric <> 0
                THEN (t ->> 'amount')::numeric END AS ev_amount,
           (SELECT a.action ->> 'group' FROM jsonb_array_elements(
                CASE WHEN jsonb_typeof(r -> 'actions') = 'array' THEN r -> 'actions' ELSE '[]'::jsonb END
            ) WITH ORDINALITY AS a(action, i)
            WHERE a.action ->> 'type' = 'assign' AND coalesce(a.action ->> 'group', '') <> ''
            ORDER BY i DESC LIMIT 1) AS assigned
    FROM (SELECT *, r -> 'event' -> 'ticket' AS t FROM r) x
    WHERE jsonb_typeof(t) = 'object'
), runs AS (
    SELECT e.*,
           count(ev_stage) OVER w AS n_stage, count(ev_amount) OVER w AS n_amount,
           count(assigned) OVER w AS n_assigned, count(*) FILTER (WHERE auto) OVER w AS n_auto,
           first_value(occ) OVER w AS first_occ
    FROM e WINDOW w AS (PARTITION BY ticket_id ORDER BY chain_seq)
), carried AS (
    SELECT runs.*,
           first_value(ev_stage) OVER (PARTITION BY ticket_id, n_stage ORDER BY chain_seq) AS stage,
           first_value(ev_amount) OVER (PARTITION BY ticket_id, n_amount ORDER BY chain_seq) AS amount,
           first_value(assigned) OVER (PARTITION BY ticket_id, n_assigned ORDER BY chain_seq) AS routed,
           first_value(CASE WHEN auto THEN decided_at END)
               OVER (PARTITION BY ticket_id, n_auto ORDER BY chain_seq) AS auto_decided_at,
           first_value(CASE WHEN auto THEN occ END)
               OVER (PARTITION BY ticket_id, n_auto ORDER BY chain_seq) AS auto_occurred_at
    FROM runs
), s AS (
    SELECT carried.*, stage IS DISTINCT FROM lag(stage) OVER w AS entered, lag(stage) OVER w AS before
    FROM carried WINDOW w AS (PARTITION BY ticket_id ORDER BY chain_seq)
), since AS (
    SELECT s.*, count(*) FILTER (WHERE entered AND stage IS NOT NULL)
               OVER (PARTITION BY ticket_id ORDER BY chain_seq) AS n_entered
    FROM s
), f AS (
    SELECT since.*,
           CASE WHEN stage IS NOT NULL THEN
               first_value(occ) OVER (PARTITION BY ticket_id, n_entered ORDER BY chain_seq) END AS stage_since
    FROM since
)
SELECT decision_id, ticket_id, decided_at, chain_seq, occ, kind, owner, t, auto, first_occ,
       stage, stage_since,
       CASE WHEN entered THEN before END,
       CASE WHEN entered AND before IS NOT NULL
            THEN extract(epoch FROM occ - lag(stage_since) OVER w)::float8 END,
       amount, auto_decided_at, auto_occurred_at, coalesce(routed, ''),
       lead(decided_at) OVER w, lead(occ) OVER w
FROM f WINDOW w AS (PARTITION BY ticket_id ORDER BY chain_seq)
"""

_JSONB_OR_NULL = """
CREATE OR REPLACE FUNCTION pg_temp.jsonb_or_null(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN t::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$
"""
"""A record that is not JSON has no facts (as in Python)."""

_BATCH = 2000


def backfill(connection: Connection) -> None:
    """Fill `decision_facts` (empty) from every stored decision record."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(_JSONB_OR_NULL))
        connection.execute(text(_BACKFILL))
        return
    sql = Statements(connection)
    latest: dict[str, dict[str, Any]] = {}
    written: set[str] = set()
    after = -1
    while True:
        found = connection.execute(
            select(
                DecisionRow.decision_id,
                DecisionRow.ticket_id,
                DecisionRow.decided_at,
                DecisionRow.chain_seq,
                DecisionRow.record,
            )
            .where(DecisionRow.chain_seq > after)
            .order_by(DecisionRow.chain_seq)
            .limit(_BATCH)
        ).all()
        if not found:
            break
        rows: list[dict[str, Any]] = []
        pointers: list[dict[str, Any]] = []
        for decision_id, ticket_id, decided_at, seq, record in found:
            try:
                parsed = exactjson.loads(record)
            except ValueError:
                continue
            seen = observe(decision_id, ticket_id, decided_at, parsed) if isinstance(parsed, dict) else None
            if seen is None:
                continue
            before = latest.get(ticket_id)
            if before is not None:
                before.update(next_decided_at=seen.decided_at, next_occurred_at=seen.occurred_at)
                if before["decision_id"] in written:
                    pointers.append({key: before[key] for key in _POINTER})
            latest[ticket_id] = row = fold(before, seen, seq)
            rows.append(row)
        sql.insert(FACTS, rows)
        sql.update(FACTS, ["decision_id"], pointers)
        written.update(row["decision_id"] for row in rows)
        after = found[-1][3]


_POINTER = ("decision_id", "next_decided_at", "next_occurred_at")
