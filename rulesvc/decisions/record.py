"""The stored form of one decision: masked record, clear input, digests and audit payload.

Shared by every path that decides (ticket events, timer firings) so that each decision is recorded and
hash-chained the same way and `verify_store` checks them all alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rulesvc import exactjson
from rulesvc.audit.chain import sha256_hex
from rulesvc.decisions.ports import NewDecision
from rulesvc.entropy import token_hex
from rulesvc.masking import MaskPolicy
from rulesvc.model import Decision, Event, to_jsonable


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
    action_list = [dict(a) for a in actions] if actions is not None else decision.actions_json()
    fired = decision.fired_json()
    record: dict[str, Any] = {
        "decision_id": decision_id,
        "event_id": event.event_id,
        "ticket_id": event.ticket_id,
        "decided_at": decided_at.isoformat(),
        "event": masking.mask(body),
        "actions": action_list,
        "fired": fired,
        "versions": dict(versions),
        "trace": masking.mask([t.to_json() for t in decision.trace]),
    }
    if problems:  # a ticket decided under its kind's invalid-ticket policy: what was wrong with it
        record["problems"] = list(problems)
    record_text = record_json(record)
    clear = clear_text if clear_text is not None else record_json(body)
    salt = token_hex(16)
    input_digest = sha256_hex(salt + clear)
    return NewDecision(
        decision_id=decision_id,
        event_id=event.event_id,
        ticket_id=event.ticket_id,
        decided_at=decided_at,
        record_text=record_text,
        clear_input_text=clear,
        input_salt=salt,
        input_digest=input_digest,
        actions=action_list,
        audit_payload=decision_payload(
            decision_id, event.event_id, event.ticket_id, sha256_hex(record_text), input_digest
        ),
        occurred_at=event.occurred_at,
    )
