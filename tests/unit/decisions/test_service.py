"""`DecisionService.decide`, the one use case behind `POST /v1/events`, on an in-memory store: the same
answer whether the store commits in place or on a writer thread, replays idempotent, conflicts refused."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rulesvc.decisions.ports import NewDecision, StoredDecision
from rulesvc.decisions.service import DecisionService, IdempotencyConflictError
from rulesvc.masking import MaskPolicy
from rulesvc.rulebook import RuleBook
from rulesvc.sla.clock import VirtualClock

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)

Callback = Callable[[tuple[StoredDecision, bool] | None, BaseException | None], None]


class MemoryStore:
    """Decisions by event id; with `background`, results arrive on another thread like a group commit."""

    def __init__(self, background: bool) -> None:
        self.background = background
        self.by_event: dict[str, StoredDecision] = {}
        self.threads: set[str] = set()

    @property
    def commits_in_background(self) -> bool:
        return self.background

    def append_decision(self, new: NewDecision) -> tuple[StoredDecision, bool]:
        self.threads.add(threading.current_thread().name)
        known = self.by_event.get(new.event_id)
        if known is not None:
            return known, False
        stored = StoredDecision(
            new.decision_id,
            new.event_id,
            new.ticket_id,
            new.decided_at,
            new.record_text,
            new.input_salt,
            new.input_digest,
            len(self.by_event) + 1,
            "h",
        )
        self.by_event[new.event_id] = stored
        return stored, True

    def append_decision_later(self, new: NewDecision, callback: Callback) -> None:
        def write() -> None:
            try:
                result = self.append_decision(new)
            except Exception as exc:
                callback(None, exc)
            else:
                callback(result, None)

        threading.Thread(target=write, name="writer").start()

    def get_clear_input(self, decision_id: str) -> str | None:
        return None


def service(store: MemoryStore) -> DecisionService:
    book = RuleBook.load([RULESETS])
    return DecisionService(store, None, book, VirtualClock(NOW), MaskPolicy.build({}, {}))  # type: ignore[arg-type]


def expense(amount: Any = 4999.99, event_id: str = "E-1") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "ticket.created",
        "occurred_at": "2026-12-01T09:30:00+08:00",
        "ticket": {
            "kind": "expense",
            "id": "EXP-1",
            "expense_type": "差旅费",
            "amount": amount,
            "applicant_rank": "部门经理",
            "applicant": "张三",
        },
    }


@pytest.mark.parametrize("background", [False, True])
def test_decide_stores_once_and_replays(background: bool) -> None:
    store = MemoryStore(background)
    decisions = service(store)

    async def run() -> tuple[Any, Any]:
        first = await decisions.decide(expense())
        again = await decisions.decide(expense())
        return first, again

    first, again = asyncio.run(run())
    assert [a["type"] for a in first.actions] == ["auto_approve", "trigger_payment"]
    assert first.created and not again.created
    assert again.decision_id == first.decision_id and again.actions == first.actions
    assert len(store.by_event) == 1
    assert ("writer" in store.threads) is background


def test_decide_refuses_another_body_under_a_known_event_id() -> None:
    decisions = service(MemoryStore(background=True))

    async def run() -> None:
        await decisions.decide(expense())
        await decisions.decide(expense(amount=5000.01))

    with pytest.raises(IdempotencyConflictError):
        asyncio.run(run())
