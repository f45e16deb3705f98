"""`GET /v1/decisions`: one indexed, newest-first keyset query per search.

The query is driven by the most selective index it can use: a ticket or event id (`decisions`), else a
search term (`decision_terms`, term then time), else time alone (`ix_decisions_recent`). Further terms are
primary-key probes into `decision_terms`; the page is a row comparison on (decided_at, chain_seq).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, literal, select, tuple_, union
from sqlalchemy.orm import Session, aliased

from rulesvc.decisions.ports import StoredDecision
from rulesvc.decisions.search import DecisionQuery
from rulesvc.storage.decision_writes import stored_decision
from rulesvc.storage.tables import ActionRow, DecisionRow, DecisionTermRow, UTCDateTime


def search_statement(query: DecisionQuery) -> Select[Any]:
    terms = query.terms()
    by_id = query.ticket_id is not None or query.event_id is not None
    statement = select(DecisionRow)
    if terms and not by_id:
        driver = aliased(DecisionTermRow, name="t0")
        statement = statement.join(driver, driver.decision_id == DecisionRow.decision_id).where(
            driver.term == terms[0]
        )
        key_at, key_seq = driver.decided_at, driver.chain_seq
        probes = terms[1:]
    else:
        key_at, key_seq = DecisionRow.decided_at, DecisionRow.chain_seq
        probes = terms
    for index, term in enumerate(probes, start=1):
        probe = aliased(DecisionTermRow, name=f"t{index}")
        statement = statement.where(
            exists().where(and_(probe.term == term, probe.decided_at == key_at, probe.chain_seq == key_seq))
        )
    if query.ticket_id is not None:
        # the ticket's own decisions, and the re-plan claims that moved its timers (found by their feed
        # records, which carry the ticket's id)
        own = aliased(DecisionRow, name="own")
        statement = statement.where(
            DecisionRow.decision_id.in_(
                union(
                    select(own.decision_id).where(own.ticket_id == query.ticket_id),
                    select(ActionRow.decision_id).where(ActionRow.ticket_id == query.ticket_id),
                )
            )
        )
    if query.event_id is not None:
        statement = statement.where(DecisionRow.event_id == query.event_id)
    if query.from_ is not None:
        statement = statement.where(key_at >= literal(query.from_, UTCDateTime()))
    if query.to is not None:
        statement = statement.where(key_at < literal(query.to, UTCDateTime()))
    if query.after is not None:
        statement = statement.where(
            tuple_(key_at, key_seq)
            < tuple_(literal(query.after.decided_at, UTCDateTime()), literal(query.after.chain_seq))
        )
    return statement.order_by(key_at.desc(), key_seq.desc()).limit(query.limit)


def term_counts(session: Session, terms: Sequence[str], start: datetime, end: datetime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for offset in range(0, len(terms), 500):
        rows = session.execute(
            select(DecisionTermRow.term, func.count())
            .where(
                DecisionTermRow.term.in_(terms[offset : offset + 500]),
                DecisionTermRow.decided_at >= literal(start, UTCDateTime()),
                DecisionTermRow.decided_at < literal(end, UTCDateTime()),
            )
            .group_by(DecisionTermRow.term)
        ).all()
        counts.update({term: int(count) for term, count in rows})
    return counts


def search_decisions(session: Session, query: DecisionQuery) -> list[StoredDecision]:
    return [stored_decision(row) for row in session.scalars(search_statement(query))]
