"""The stored form of one decision: masked record, clear input, digests and audit payload.

Shared by every path that decides (ticket events, timer firings) so that each decision is recorded and
hash-chained the same way and `verify_store` checks them all alike.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from rulesvc import exactjson
from rulesvc.audit.chain import sha256_hex
from rulesvc.decisions.ports import NewDecision
from rulesvc.entropy import token_hex
from rulesvc.masking import MaskPolicy
from rulesvc.model import Decision, Event, TraceEntry, to_jsonable


def decision_payload(
    decision_id: str, event_id: str, ticket_id: str, record_sha256: str, input_sha256: str
) -> dict[str, str]:
    """What a `decision` chain entry vouches for."""
    return {
        "decision_id": decision_id,
        "event_id": event_id,
        "ticket_id": ticket_id,
        "record_sha256": record_sha256,
        "input_sha256": input_sha256,
    }


def event_json(event: Event) -> dict[str, Any]:
    """An engine event as JSON (the clear input of a decision the service made up itself, e.g. a timer)."""
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "ticket": to_jsonable(dict(event.ticket)),
    }
    if event.timer is not None:
        body["timer"] = {
            "name": event.timer.name,
            "point": event.timer.point,
            "due_at": event.timer.due_at.isoformat(),
            "fire_at": event.timer.fire_at.isoformat(),
            "late_by": event.timer.late_by.total_seconds(),
        }
    return body


def record_json(record: Mapping[str, Any]) -> str:
    """The stored text of a decision record or input: JSON with sorted keys. The chain vouches for this
    text's SHA-256 as stored, so it needs no canonical form beyond being stable for equal values (an event
    retried with an equal body gets the same text). Decimals keep their digits (`rulesvc.exactjson`)."""
    return exactjson.dumps(record, sort_keys=True)


def new_decision(
    *,
    decision_id: str,
    body: Mapping[str, Any],
    event: Event,
    decision: Decision,
    decided_at: datetime,
    versions: Mapping[str, int],
    masking: MaskPolicy,
    actions: Sequence[Mapping[str, Any]] | None = None,
    clear_text: str | None = None,
    problems: Sequence[Mapping[str, str]] = (),
) -> NewDecision:
    """Everything needed to store `decision`; `actions` default to the decision's own, as JSON."""
    recorder = DecisionRecorder(
        decision_id=decision_id,
        body=body,
        event=event,
        decided_at=decided_at,
        versions=versions,
        masking=masking,
        clear_text=clear_text,
        problems=problems,
    )
    return recorder(decision, actions)


class DecisionRecorder:
    """Builds the stored record of one event's decision, as often as the decision changes: an event's
    decision is recorded when it is evaluated and again when the ticket's timers, under the ticket's lock,
    drop or enrich some of its actions (`rulesvc.decisions.ticket_work`). What does not change between the
    two (the masked event, each masked trace entry, the clear input, its salt and digest) is made once; the
    record's text is the same as if built from scratch (`record_json` of the whole record)."""

    def __init__(
        self,
        *,
        decision_id: str,
        body: Mapping[str, Any],
        event: Event,
        decided_at: datetime,
        versions: Mapping[str, int],
        masking: MaskPolicy,
        clear_text: str | None = None,
        problems: Sequence[Mapping[str, str]] = (),
    ) -> None:
        self.decision_id = decision_id
        self.event = event
        self.decided_at = decided_at
        self.versions = dict(versions)
        self.masking = masking
        self.problems = list(problems)
        self._event_json = _encoded(masking.mask(body))
        self._trace: dict[int, tuple[TraceEntry, Any]] = {}
        """id(entry) -> (the entry, kept so that its id stays its own; its masked JSON)."""
        self._whole_trace: tuple[tuple[TraceEntry, ...], orjson.Fragment] | None = None
        self.clear = clear_text if clear_text is not None else record_json(body)
        self.salt = token_hex(16)
        self.input_digest = sha256_hex(self.salt + self.clear)

    def __call__(self, decision: Decision, actions: Sequence[Mapping[str, Any]] | None = None) -> NewDecision:
        action_list = [dict(a) for a in actions] if actions is not None else decision.actions_json()
        event = self.event
        record: dict[str, Any] = {
            "decision_id": self.decision_id,
            "event_id": event.event_id,
            "ticket_id": event.ticket_id,
            "decided_at": self.decided_at.isoformat(),
            "event": self._event_json,
            "actions": action_list,
            "fired": decision.fired_json(),
            "versions": self.versions,
            "trace": self._trace_json(decision.trace),
        }
        if self.problems:  # a ticket decided under its kind's invalid-ticket policy: what was wrong with it
            record["problems"] = self.problems
        record_text = record_json(record)
        return NewDecision(
            decision_id=self.decision_id,
            event_id=event.event_id,
            ticket_id=event.ticket_id,
            decided_at=self.decided_at,
            record_text=record_text,
            clear_input_text=self.clear,
            input_salt=self.salt,
            input_digest=self.input_digest,
            actions=action_list,
            audit_payload=decision_payload(
                self.decision_id, event.event_id, event.ticket_id, sha256_hex(record_text), self.input_digest
            ),
            occurred_at=event.occurred_at,
        )

    def _trace_json(self, trace: tuple[TraceEntry, ...]) -> Any:
        """The masked trace as JSON: the first trace encoded whole; a later one (the same entries but those
        of rules that did not stand) from the entries masked the first time."""
        whole = self._whole_trace
        if whole is not None and len(whole[0]) == len(trace) and all(map(operator.is_, whole[0], trace)):
            return whole[1]
        masked = []
        for entry in trace:
            known = self._trace.get(id(entry))
            if known is None or known[0] is not entry:
                known = (entry, self.masking.mask(entry.to_json()))
                self._trace[id(entry)] = known
            masked.append(known[1])
        if whole is None:
            self._whole_trace = (trace, _encoded(masked))
            return self._whole_trace[1]
        return masked


def _encoded(value: Any) -> orjson.Fragment:
    """`value` as JSON text that `record_json` embeds as it is (sorted keys, as it would write them)."""
    return orjson.Fragment(exactjson.dumps_bytes(value, sort_keys=True))
