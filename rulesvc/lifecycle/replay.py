"""Backtest: re-decide logged ticket events with a draft and count how the outcomes would change.

Events are selected by when they *occurred* (`occurred_at` in [from, to)), not by when they were logged. Each
event of the draft's kind (clear input, merged into the ticket's earlier snapshots of the period as the
service does) is decided three times on the books of its own time:

- `then`: the versions in force when it occurred — what was decided then;
- `base`: the same, with the version the draft is based on in place of its ruleset;
- `after`: the same, with the draft in place of its ruleset.

A decision *would change because of the draft* when `after` differs from `then` and from `base`. When `after`
equals `base` but differs from `then`, the change was made by versions published after the event (e.g. a
later rollback), not by the draft: it is counted apart (`changed_by_later_versions`) and never mixed in.
Outcomes are compared as the multiset of actions without their `rule` (renaming a rule changes nothing);
the changes are broken down by action type and by field value (group, level, amount, ...).

Timer firings are not re-decided (their outcome depends on timer state that the draft may itself change):
they are counted (`timer_firings`) and shown, never silently dropped. Examples are masked with the
service's policy: the report goes to editors and approvers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rulesvc import exactjson
from rulesvc.errors import InvalidEventError
from rulesvc.events import event_from_json
from rulesvc.lifecycle.ports import LoggedDecision
from rulesvc.masking import MaskPolicy
from rulesvc.model import Decision, Event, to_jsonable
from rulesvc.validation import read_event

BookAt = Callable[[datetime], Any]  # instant → an evaluator (`evaluate(event) -> Decision`)
Evaluate = Callable[[Any, Event], Decision]

UNCOMPARED_FIELDS = frozenset({"type", "rule", "message", "due_at", "started_at", "warnings"})
"""Action fields not broken down by value (free text, or times that follow from the others)."""


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


def _values(actions: Sequence[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(`assign.group`, `费用审批岗`) for every scalar field of every action."""
    found: Counter[tuple[str, str]] = Counter()
    for action in actions:
        for key, value in action.items():
            if key in UNCOMPARED_FIELDS or isinstance(value, dict | list):
                continue
            found[(f"{action.get('type')}.{key}", str(value))] += 1
    return found


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def backtest(
    decisions: Sequence[LoggedDecision],
    *,
    kind: str,
    then: BookAt,
    base: BookAt,
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
    considered = changed = by_later = 0
    skipped: Counter[str] = Counter()
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    values_added: Counter[tuple[str, str]] = Counter()
    values_removed: Counter[tuple[str, str]] = Counter()
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
            event = _read(body, then(logged.decided_at), logged.decided_at)
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
        as_of = min(
            event.occurred_at, logged.decided_at
        )  # an event claiming a future time: decided as of then
        before = _actions(evaluate(then(as_of), event))
        after = _actions(evaluate(candidate(as_of), event))
        if _outcome(before) == _outcome(after):
            continue
        if _outcome(_actions(evaluate(base(as_of), event))) == _outcome(after):
            by_later += 1  # the draft decides as its base version does: a later version made this change
            continue
        changed += 1
        added.update(_types(after) - _types(before))
        removed.update(_types(before) - _types(after))
        values_added.update(_values(after) - _values(before))
        values_removed.update(_values(before) - _values(after))
        if len(examples) < max_examples:
            example = masking.mask(
                {
                    "decision_id": logged.decision_id,
                    "event_id": event.event_id,
                    "occurred_at": event.occurred_at.isoformat(),
                    "ticket": dict(merged),
                }
            )
            # The ticket as data, the actions as the rules' output (`MaskPolicy.mask_action`).
            examples.append(
                {**example, "before": masking.mask_actions(before), "after": masking.mask_actions(after)}
            )
    by_action = {
        action: {"added": added.get(action, 0), "removed": removed.get(action, 0)}
        for action in sorted(set(added) | set(removed))
    }
    by_value: dict[str, dict[str, dict[str, int]]] = {}
    for field, value in sorted(set(values_added) | set(values_removed)):
        by_value.setdefault(field, {})[value] = {
            "added": values_added.get((field, value), 0),
            "removed": values_removed.get((field, value), 0),
        }
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "selected_by": "occurred_at",
        "kind": kind,
        "decisions": considered,
        "changed": changed,
        "changed_by_later_versions": by_later,
        "unchanged": considered - changed - by_later,
        "by_action": by_action,
        "by_value": by_value,
        "totals": _totals(values_added, values_removed),
        "timer_firings": skipped.get("timer", 0),
        "skipped": dict(sorted(skipped.items())),
        "truncated": len(decisions) > limit,
        "examples": examples,
    }


def _totals(added: Counter[tuple[str, str]], removed: Counter[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """Sums of the numeric fields that changed (e.g. `trigger_payment.amount`: how much more is paid)."""
    sums: dict[str, dict[str, Decimal]] = {}
    for side, counter in (("added", added), ("removed", removed)):
        for (field, value), count in counter.items():
            number = _number(value)
            if number is not None and field.endswith(".amount"):
                entry = sums.setdefault(field, {"added": Decimal(0), "removed": Decimal(0)})
                entry[side] += number * count
    return {
        field: {"added": str(s["added"]), "removed": str(s["removed"]), "net": str(s["added"] - s["removed"])}
        for field, s in sorted(sums.items())
    }
