"""A decision's stored record is built once per event: when the ticket's timers change the decision (an
action dropped or enriched, a rule that did not stand), the second record reuses the masked event, the
masked trace entries, the clear input and its digest, and its text is the text a record built from scratch
would have."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rulesvc.audit.chain import sha256_hex
from rulesvc.decisions.ports import NewDecision, TicketView
from rulesvc.decisions.record import DecisionRecorder, record_json
from rulesvc.decisions.service import DecisionService
from rulesvc.decisions.ticket_work import EventTicketWork
from rulesvc.masking import MaskPolicy
from rulesvc.model import Action, ConditionTrace, Decision, Event, FiredRule, TraceEntry
from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from rulesvc.sla.clock import VirtualClock
from rulesvc.sla.ticket_timers import TicketTimers

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"
NOW = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
MASKING = Settings().mask_policy()


def from_scratch(
    new: NewDecision,
    body: Mapping[str, Any],
    decision: Decision,
    versions: Mapping[str, int],
    masking: MaskPolicy,
    actions: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The record's text as a record built in one go makes it (every part masked and encoded anew)."""
    return record_json(
        {
            "decision_id": new.decision_id,
            "event_id": new.event_id,
            "ticket_id": new.ticket_id,
            "decided_at": new.decided_at.isoformat(),
            "event": masking.mask(body),
            "actions": list(actions) if actions is not None else decision.actions_json(),
            "fired": decision.fired_json(),
            "versions": dict(versions),
            "trace": masking.mask([t.to_json() for t in decision.trace]),
        }
    )


class CountingMask:
    """The policy's masking, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def mask(self, value: Any) -> Any:
        self.calls += 1
        return MASKING.mask(value)


def entry(rule: str, field: str, value: Any) -> TraceEntry:
    return TraceEntry("loan-sla", 3, rule, (ConditionTrace(f"{field} == x", {field: value}, True),))


def test_a_changed_decision_is_recorded_as_from_scratch_with_its_event_and_trace_masked_once() -> None:
    body = {
        "event_id": "L-1-created",
        "type": "ticket.created",
        "occurred_at": "2026-11-02T10:00:00+08:00",
        "ticket": {"id": "L-1", "kind": "loan", "name": "张三丰", "mobile": "13812345678", "amount": 900000},
    }
    event = Event("L-1-created", "ticket.created", NOW, {"id": "L-1", "kind": "loan"})
    trace = (
        entry("a", "ticket.name", "张三丰"),
        entry("b", "ticket.amount", Decimal("4999.990")),
        entry("c", "ticket.mobile", "13812345678"),
    )
    first = Decision(
        event=event,
        actions=(
            Action("start_timer", {"timer": "初审时限", "within": "2h"}, "a"),
            Action("notify", {"to": "owner", "message": "请跟进"}, "c"),
        ),
        fired=(FiredRule("loan-sla", 3, "a"), FiredRule("loan-sla", 3, "b"), FiredRule("loan-sla", 3, "c")),
        trace=trace,
    )
    versions = {"loan-sla": 3}
    counting = CountingMask()
    recorder = DecisionRecorder(
        decision_id="d-1",
        body=body,
        event=event,
        decided_at=NOW,
        versions=versions,
        masking=counting,  # type: ignore[arg-type]
    )
    new = recorder(first)
    assert new.record_text == from_scratch(new, body, first, versions, MASKING)
    assert "13812345678" not in new.record_text and "张三丰" not in new.record_text
    assert "4999.990" in new.record_text
    assert new.audit_payload["record_sha256"] == sha256_hex(new.record_text)

    # the ticket's timers drop rule b (its trace entry goes) and enrich the start with its due time
    enriched = replace(
        first,
        actions=(
            Action("start_timer", {"timer": "初审时限", "within": "2h", "due_at": NOW}, "a"),
            first.actions[1],
        ),
        fired=(first.fired[0], first.fired[2]),
        trace=(trace[0], trace[2]),
    )
    again = recorder(enriched)
    assert again.record_text == from_scratch(again, body, enriched, versions, MASKING)
    assert again.record_text != new.record_text and '"due_at"' in again.record_text
    assert (again.input_salt, again.input_digest, again.clear_input_text) == (
        new.input_salt,
        new.input_digest,
        new.clear_input_text,
    )
    assert again.audit_payload["record_sha256"] == sha256_hex(again.record_text)
    assert counting.calls == 1 + len(trace)  # the event's body once, each trace entry once

    explicit = recorder(enriched, actions=[{"type": "notify", "rule": "c", "fired_by": {"timer": "x"}}])
    assert explicit.record_text == from_scratch(
        explicit,
        body,
        enriched,
        versions,
        MASKING,
        [{"type": "notify", "rule": "c", "fired_by": {"timer": "x"}}],
    )


def test_a_loan_event_through_its_ticket_work_stores_the_record_a_fresh_build_would() -> None:
    book = RuleBook.load([RULESETS])
    service = DecisionService(None, None, book, VirtualClock(NOW), MASKING)  # type: ignore[arg-type]
    body = {
        "event_id": "L-7-created",
        "type": "ticket.created",
        "occurred_at": "2026-11-02T10:00:00+08:00",
        "ticket": {
            "kind": "loan",
            "id": "L-7",
            "region": "上海浦东",
            "amount": 900000,
            "credit_rating": "AA",
            "owner": "张三",
            "stage": "受理",
        },
    }
    prepared = service.prepare_event(body)
    work = prepared.new.ticket_work
    assert isinstance(work, EventTicketWork)
    view = TicketView("L-7", "loan", {}, "", ())
    [stored] = work(view).decisions
    # a stop of a timer never started changes nothing: the timers drop it (and the trace of its rule)
    assert [a["type"] for a in prepared.new.actions] == ["set_approval_level", "assign", "cancel_timer"]
    assert [a["type"] for a in stored.actions] == ["set_approval_level", "assign"]
    assert (stored.input_salt, stored.input_digest) == (prepared.new.input_salt, prepared.new.input_digest)
    assert stored.audit_payload["record_sha256"] == sha256_hex(stored.record_text)

    event = work.event
    timers = TicketTimers("L-7", (), book.calendars, {})
    timers.snapshot_at = event.occurred_at.isoformat()
    enriched = timers.apply(work.decision, event.occurred_at, stored.decided_at)
    versions = book.book_for(event).versions()
    assert stored.record_text == from_scratch(stored, body, enriched, versions, MASKING)
    assert prepared.new.record_text == from_scratch(prepared.new, body, work.decision, versions, MASKING)
