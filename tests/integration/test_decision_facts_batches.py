"""Facts written in batches (group commit, timer firings): a ticket's decisions within one batch follow each
other as across batches — each row points at the ticket's next decision, the stage carried and left in
order, one latest row per ticket. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from rulesvc.storage.bulk import Statements
from rulesvc.storage.decision_facts import Seen, observe, select_latest, write_facts
from rulesvc.storage.engine import make_engine
from rulesvc.storage.fact_tables import DecisionFactRow

AT = datetime(2026, 10, 1, tzinfo=UTC)


def seen(n: int, ticket: str, stage: str | None, hours: float) -> Seen:
    record = {
        "event": {
            "occurred_at": (AT + timedelta(hours=hours)).isoformat(),
            "ticket": {"kind": "loan", **({"stage": stage} if stage else {})},
        },
        "actions": [],
    }
    found = observe(f"d-{n}", ticket, AT + timedelta(seconds=n), record)
    assert found is not None
    return found


def test_a_ticket_twice_in_a_batch_and_again_in_the_next(database_url: str) -> None:
    engine = make_engine(database_url)
    batches = [
        [(seen(1, "T1", "初审", 0), 1), (seen(2, "T2", "初审", 0), 2), (seen(3, "T1", "复审", 5), 3)],
        [(seen(4, "T1", None, 6), 4), (seen(5, "T1", "终审", 8), 5)],
    ]
    try:
        for batch in batches:
            with engine.begin() as conn:
                sql = Statements(conn)
                write_facts(sql, batch, select_latest(sql, [one.ticket_id for one, _ in batch]))
        table = DecisionFactRow.__table__
        with engine.connect() as conn:
            rows = {r.decision_id: r for r in conn.execute(select(table)).all()}  # type: ignore[attr-defined]
            latest = select_latest(Statements(conn), ["T1", "T2"]).all()
    finally:
        engine.dispose()
    t1 = [rows[f"d-{n}"] for n in (1, 3, 4, 5)]
    assert [r.next_decided_at for r in t1] == [AT + timedelta(seconds=n) for n in (3, 4, 5)] + [None]
    assert [r.stage for r in t1] == ["初审", "复审", "复审", "终审"]
    assert [(r.left_stage, r.stay_seconds) for r in t1] == [
        (None, None),
        ("初审", 5 * 3600.0),
        (None, None),
        ("复审", 3 * 3600.0),
    ]
    assert rows["d-2"].next_decided_at is None and rows["d-2"].left_stage is None
    assert sorted((row[0], row[1]) for row in latest) == [("T1", "d-5"), ("T2", "d-2")]
