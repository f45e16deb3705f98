"""Backtest: re-decide logged ticket events with a draft and count how the outcomes would change.

For each stored decision of the period whose event is a ticket event of the draft's kind, the event (clear
input, merged into the ticket's earlier snapshots of the period as the service does) is decided twice on
the book in force at that decision's as-of instant: once as it was (baseline) and once with the draft in
place of its ruleset (candidate). Only the draft's effect is measured, not changes that happened since.
Outcomes are compared as the multiset of actions without their `rule` (renaming a rule changes nothing).
Timer firings are not replayed (they depend on timer state the draft may change) and are counted apart.
Examples are masked with the service's policy: the report goes to editors and approvers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from rulesvc import exactjson
from rulesvc.errors import InvalidEventError
from rulesvc.events import event_from_json
from rulesvc.masking import MaskPolicy
from rulesvc.model import Decision, Event, to_jsonable
from rulesvc.storage.ruleset_records import LoggedDecision
from rulesvc.validation import read_event

BookAt = Callable[[datetime], Any]  # instant → an evaluator (`evaluate(event) -> Decision`)
Evaluate = Callable[[Any, Event], Decision]


def _actions(decision: Decision) -> list[dict[str, Any]]:
    """The decision's actions in order, without `rule` (renaming a rule changes no outcome)."""
    return [to_jsonable({k: v for k, v in a.to_json().items() if k != "rule"}) for a in decision.actions]


def _outcome(actions: list[dict[str, Any]]) -> list[str]:
    return sorted(exactjson.dumps(action, sort_keys=True) for action in actions)


def _types(actions: Sequence[dict[str, Any]]) -> Counter[str]:
    return Counter(str(action.get("type")) for action in actions)


def _read(body: Any, book: Any, decided_at: datetime) -> Event | None:
    """The logged event validated as ingest did (kinds of the book in force then); None if it was invalid."""
    kinds = getattr(book, "kinds", None)
    if kinds is None:
        return event_from_json(body)
    checked = read_event(body, kinds, now=decided_at)
    return None if checked.problems else checked.event


def backtest(
    decisions: Sequence[LoggedDecision],
    *,
    kind: str,
    baseline: BookAt,
    candidate: BookAt,
    evaluate: Evaluate,
    masking: MaskPolicy,
    start: datetime,
    end: datetime,
    limit: int,
    max_examples: int = 5,
) -> dict[str, Any]:
    """The report (JSON); `decisions` may hold one more than `limit` to tell that the period was cut."""
    snapshots: dict[str, dict[str, Any]] = {}
    considered = changed = 0
    skipped: Counter[str] = Counter()
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for logged in decisions[:limit]:
        if logged.clear_input_text is None:
            skipped["no_input"] += 1
            continue
        body = exactjson.loads(logged.clear_input_text)
        if isinstance(body, dict) and str(body.get("type", "")).startswith("timer."):
            skipped["timer"] += 1
            continue
        try:
            event = _read(body, baseline(logged.decided_at), logged.decided_at)
        except (InvalidEventError, TypeError, ValueError):
            skipped["unreadable"] += 1
            continue
        if event is None:  # decided under the kind's invalid-ticket policy: no rule ever saw it
            skipped["invalid"] += 1
            continue
        merged = {**snapshots.get(event.ticket_id, {}), **event.ticket}
        snapshots[event.ticket_id] = merged
        if event.kind != kind:
            continue
        event = replace(event, ticket=merged)
        considered += 1
        as_of = min(event.occurred_at, logged.decided_at)
        before = _actions(evaluate(baseline(as_of), event))
        after = _actions(evaluate(candidate(as_of), event))
        if _outcome(before) == _outcome(after):
            continue
        changed += 1
        old, new = _types(before), _types(after)
        added.update(new - old)
        removed.update(old - new)
        if len(examples) < max_examples:
            examples.append(
                {
                    "decision_id": logged.decision_id,
                    "event_id": event.event_id,
                    "occurred_at": event.occurred_at.isoformat(),
                    "ticket": masking.mask(dict(merged)),
                    "before": masking.mask(before),
                    "after": masking.mask(after),
                }
            )
    by_action = {
        action: {"added": added.get(action, 0), "removed": removed.get(action, 0)}
        for action in sorted(set(added) | set(removed))
    }
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "kind": kind,
        "decisions": considered,
        "changed": changed,
        "unchanged": considered - changed,
        "by_action": by_action,
        "skipped": dict(sorted(skipped.items())),
        "truncated": len(decisions) > limit,
        "examples": examples,
    }
