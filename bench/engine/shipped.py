"""Representative events for the shipped rulesets (rulesets/), with the actions each must produce."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from rulesvc.events import event_from_json
from rulesvc.model import TIMER_WARNING, Event, TimerInfo

RULESETS = Path(__file__).resolve().parents[2] / "rulesets"
CREATED_AT = "2026-09-30T17:00:00+08:00"  # a Wednesday before the National Day holiday (cn calendar)


@dataclass(frozen=True)
class Scenario:
    name: str
    event: Event
    expected: tuple[str, ...]  # action types, in decision order


def _created(kind: str, ticket: dict[str, object]) -> Event:
    return event_from_json(
        {
            "event_id": f"bench-{kind}",
            "type": "ticket.created",
            "occurred_at": CREATED_AT,
            "ticket": {"kind": kind, **ticket},
        }
    )


def scenarios() -> list[Scenario]:
    loan = _created(
        "loan",
        {
            "id": "L-1",
            "region": "上海浦东",
            "amount": 6_000_000,
            "credit_rating": "A",
            "owner": "张三",
            "stage": "初审",
        },
    )
    expense = _created(
        "expense",
        {
            "id": "E-1",
            "expense_type": "差旅费",
            "amount": 4999.99,
            "applicant_rank": "部门经理",
            "applicant": "李四",
        },
    )
    complaint = _created("complaint", {"id": "C-1", "owner": "王五", "channel": "电话"})
    created = datetime.fromisoformat(CREATED_AT)
    due_at, fire_at = created + timedelta(hours=2), created + timedelta(minutes=90)
    warning = Event(
        event_id="timer:C-1:首次响应:预警",
        type=TIMER_WARNING,
        occurred_at=fire_at,
        ticket=complaint.ticket,
        timer=TimerInfo(
            name="首次响应", point="预警", due_at=due_at, fire_at=fire_at, late_by=fire_at - due_at
        ),
    )
    return [
        Scenario(
            "loan created (3 rulesets, chaining)",
            loan,
            ("set_approval_level", "request_review", "request_review", "assign", "start_timer"),
        ),
        Scenario("expense created (table)", expense, ("auto_approve", "trigger_payment")),
        Scenario("complaint created (rule)", complaint, ("start_timer",)),
        Scenario("complaint timer.warning", warning, ("notify",)),
    ]


def loan_approval_folder(root: Path) -> Path:
    """A rules folder holding only the loan kind and the shipped loan-approval ruleset."""
    (root / "kinds").mkdir(parents=True, exist_ok=True)
    shutil.copy(RULESETS / "kinds" / "loan.yaml", root / "kinds" / "loan.yaml")
    shutil.copy(RULESETS / "loan-approval.yaml", root / "loan-approval.yaml")
    return root


def loan_approval_events(count: int) -> list[tuple[Event, int]]:
    """Alternating large (≥ 5,000,000: the derived fact 大额贷款 fires two reviews) and small loans, with the
    number of actions each must produce."""
    events = []
    for number in range(count):
        large = number % 2 == 0
        event = _created(
            "loan",
            {
                "id": f"L-{number}",
                "region": "北京海淀",
                "amount": 6_000_000 + number if large else 800_000 + number,
                "credit_rating": ("A", "AA", "BBB", "BB")[number % 4],
            },
        )
        events.append((event, 3 if large else 1))
    return events
