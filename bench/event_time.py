"""Event-time check: `python -m bench.event_time [--histories N] [--seed S]`.

Random histories, complaints and loans in turn: complaints (creation, maybe a re-sent creation, pauses and
resumes, maybe an acceptance) and loans on the cn calendar (created in 初审 or 受理, stage changes into,
out of and back into 初审, pauses and resumes, maybe resolved); ties at one instant included. Each runs
three ways:
1. `rulesvc simulate` (events in `occurred_at` order on a virtual clock);
2. the service, events arriving in `occurred_at` order, polls as time goes by;
3. the service, events arriving shuffled, late by up to an hour, some sent twice (same `event_id`), polls
   at random moments.
The service runs its real units of work (`DecisionService.prepare_event` → the ticket work the store
runs under the ticket's lock, `TimerService.fire_ticket`) on an in-memory ticket table, so tens of
thousands of histories take minutes; `tests/integration/test_timers_event_time.py` runs a sample on
SQLite and PostgreSQL. Compared at the end: every timer's state and deadline, the SLA figures, the timer
points that stand (fired and not retracted) and the SLA report. Prints the number of differing histories
(expected: 0) and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rulesvc.decisions.service import DecisionService
from rulesvc.decisions.timer_ports import TicketView, TicketWrite
from rulesvc.decisions.timer_service import TimerService
from rulesvc.events import event_from_json
from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from rulesvc.sla.outcomes import SlaOutcome
from rulesvc.sla.reports import SlaRecord, sla_report
from rulesvc.sla.simulation import simulate
from rulesvc.sla.ticket_timers import ScheduledTimer

RULESETS = Path(__file__).resolve().parents[1] / "rulesets"
NOW = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai
MASKING = Settings().mask_policy()


def random_history(rng: random.Random, ticket_id: str) -> list[dict[str, Any]]:
    """One complaint's events: minutes before NOW, on a coarse grid so that instants often coincide."""

    def body(event_id: str, etype: str, minutes: int) -> dict[str, Any]:
        return {
            "event_id": f"{ticket_id}-{event_id}",
            "type": etype,
            "occurred_at": (NOW - timedelta(minutes=minutes)).isoformat(),
            "ticket": {"kind": "complaint", "id": ticket_id, "owner": "王五", "channel": "电话"},
        }

    created = rng.randrange(60, 301, 5)
    events = [body("created", "ticket.created", created)]
    if rng.random() < 0.2:
        events.append(body("created-again", "ticket.created", created - rng.randrange(0, 30, 5)))
    cursor = created
    for index in range(rng.choice([0, 0, 1, 1, 2, 3])):
        pause = cursor - rng.randrange(0, 60, 5)
        resume = pause - rng.randrange(0, 60, 5)
        if resume < 0:
            break
        events.append(body(f"paused{index}", "ticket.paused", pause))
        if rng.random() < 0.85:
            events.append(body(f"resumed{index}", "ticket.resumed", resume))
        cursor = resume
    if rng.random() < 0.7:
        events.append(body("accepted", "ticket.accepted", max(0, cursor - rng.randrange(0, 200, 5))))
    return events


LOAN = {"kind": "loan", "region": "上海浦东", "amount": 900000, "credit_rating": "AA", "owner": "张三"}


def random_loan_history(rng: random.Random, ticket_id: str) -> list[dict[str, Any]]:
    """One loan's events, minutes before NOW on a 15-minute grid over up to three days (the cn calendar:
    nights, the weekend): created in 初审 or 受理, maybe re-created, then stage changes (into 初审, on to
    复审, back to 初审, or the same stage again), pauses and resumes, maybe resolved. Every event carries
    the whole ticket, as loan systems send it."""

    def body(event_id: str, etype: str, minutes: int, stage: str) -> dict[str, Any]:
        return {
            "event_id": f"{ticket_id}-{event_id}",
            "type": etype,
            "occurred_at": (NOW - timedelta(minutes=minutes)).isoformat(),
            "ticket": {**LOAN, "id": ticket_id, "stage": stage},
        }

    cursor = rng.randrange(60, 3 * 24 * 60, 15)
    stage = rng.choice(["初审", "初审", "受理"])
    events = [body("created", "ticket.created", cursor, stage)]
    if rng.random() < 0.15:
        events.append(body("created-again", "ticket.created", cursor - rng.randrange(0, 60, 15), stage))
    for index in range(rng.choice([0, 1, 2, 3, 4, 5])):
        cursor -= rng.randrange(0, 8 * 60, 15)
        if cursor < 0:
            break
        if rng.random() < 0.25:
            events.append(body(f"paused{index}", "ticket.paused", cursor, stage))
            resume = cursor - rng.randrange(0, 4 * 60, 15)
            if resume >= 0 and rng.random() < 0.8:
                events.append(body(f"resumed{index}", "ticket.resumed", resume, stage))
                cursor = resume
            continue
        stage = rng.choice(["初审", "初审", "复审", "受理", stage])
        events.append(body(f"stage{index}", "ticket.updated", cursor, stage))
    if rng.random() < 0.3 and cursor > 0:
        events.append(body("resolved", "ticket.resolved", cursor - rng.randrange(0, cursor + 1, 15), stage))
    return events


def any_history(rng: random.Random, index: int, prefix: str = "") -> list[dict[str, Any]]:
    """Complaints and loans in turn."""
    if index % 2:
        return random_loan_history(rng, f"{prefix}L-{index}")
    return random_history(rng, f"{prefix}C-{index}")


@dataclass(frozen=True)
class Final:
    """What must agree between the three runs of one history."""

    timers: tuple[tuple[Any, ...], ...]
    figures: tuple[tuple[Any, ...], ...]
    points: tuple[tuple[str, int, str], ...]
    report: Mapping[str, Any]


def final_of(
    timers: Sequence[ScheduledTimer], figures: Sequence[SlaOutcome], points: Sequence[tuple[str, int, str]]
) -> Final:
    return Final(
        tuple(
            sorted(
                (
                    t.name,
                    t.generation,
                    t.state.status,
                    t.state.started_at,
                    t.state.anchor_at,
                    t.state.consumed,
                    tuple(sorted(t.state.fired)),
                    t.due_at,
                    t.stopped_at,
                )
                for t in timers
            )
        ),
        tuple(
            sorted(
                (
                    f.timer,
                    f.generation,
                    f.outcome,
                    f.due_at,
                    f.decided_at,
                    f.stopped_at,
                    f.remaining,
                    f.breach,
                )
                for f in figures
            )
        ),
        tuple(sorted(points)),
        report_of(figures),
    )


def report_of(figures: Sequence[SlaOutcome]) -> Mapping[str, Any]:
    class Source:
        def sla_records(self, start: datetime, end: datetime) -> list[SlaRecord]:
            return [
                SlaRecord(
                    f.ticket_id,
                    "complaint",
                    f.timer,
                    f.ruleset,
                    f.rule,
                    f.calendar,
                    "",
                    f.started_at,
                    f.due_at,
                    f.outcome,
                    f.decided_at,
                    f.stopped_at,
                    f.remaining,
                    f.breach,
                )
                for f in figures
                if start <= f.decided_at < end
            ]

    report: Mapping[str, Any] = sla_report(
        Source(), NOW - timedelta(days=2), NOW, calendars=BOOK.calendars, now=NOW
    )
    return report["total"]


def standing(timeline: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (e["timer"], int(e["generation"]), e["point"])
        for e in timeline.get("emitted", ())
        if not e.get("retracted")
    ]


def simulated(history: Sequence[dict[str, Any]]) -> Final:
    timeline = simulate(BOOK, [event_from_json(b) for b in history], NOW)
    [timers] = timeline.tickets.values()
    rows = timers.changes(NOW)
    return final_of(rows, timers.outcomes(NOW), standing(timers.timeline_json(NOW)))


class _Clock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at


@dataclass
class MemoryTicket:
    """One ticket's row, timers and SLA figures as the SQL store keeps them."""

    ticket_id: str
    kind: str = ""
    snapshot: dict[str, Any] = field(default_factory=dict)
    group: str = ""
    timeline: Mapping[str, Any] = field(default_factory=dict)
    timers: dict[str, ScheduledTimer] = field(default_factory=dict)
    figures: dict[tuple[str, int], SlaOutcome] = field(default_factory=dict)

    def view(self) -> TicketView:
        return TicketView(
            self.ticket_id, self.kind, self.snapshot, self.group, tuple(self.timers.values()), self.timeline
        )

    def write(self, write: TicketWrite) -> None:
        if write.snapshot is not None:
            self.snapshot = dict(write.snapshot)
        self.kind = write.kind or self.kind
        self.group = write.group if write.group is not None else self.group
        self.timeline = write.timeline if write.timeline is not None else self.timeline
        self.timers.update((t.name, t) for t in write.timers)
        for key in write.sla_deletes:
            del self.figures[key]
        for outcome in write.sla:
            key = (outcome.timer, outcome.generation)
            assert key not in self.figures, f"figure {key} inserted twice"
            self.figures[key] = outcome
        for outcome in write.sla_updates:
            key = (outcome.timer, outcome.generation)
            assert key in self.figures, f"figure {key} updated before it was stored"
            self.figures[key] = outcome


class MemoryService:
    """The service's units of work on one in-memory ticket."""

    def __init__(self, ticket_id: str) -> None:
        self.clock = _Clock()
        self.ticket = MemoryTicket(ticket_id)
        self.decisions = DecisionService(None, None, BOOK, self.clock, MASKING)  # type: ignore[arg-type]
        self.timers = TimerService(None, BOOK, self.clock, MASKING)  # type: ignore[arg-type]

    def send(self, body: dict[str, Any], at: datetime) -> None:
        self.clock.at = at
        prepared = self.decisions.prepare_event(body)
        assert prepared.new.ticket_work is not None
        self.ticket.write(prepared.new.ticket_work(self.ticket.view()))

    def poll(self, at: datetime) -> None:
        self.clock.at = at
        due = [t.next_fire_at for t in self.ticket.timers.values() if t.next_fire_at is not None]
        if due and min(due) <= at:
            self.ticket.write(self.timers.fire_ticket(self.ticket.view(), at))

    def final(self) -> Final:
        return final_of(
            list(self.ticket.timers.values()),
            list(self.ticket.figures.values()),
            standing(self.ticket.timeline),
        )


def served(history: Sequence[dict[str, Any]], rng: random.Random | None) -> Final:
    """The service's answer: events in `occurred_at` order arriving as they happen (rng None), or shuffled
    and late by up to an hour, with polls at random moments in between."""
    service = MemoryService(history[0]["ticket"]["id"])
    for at, kind, body in arrivals(history, rng):
        if kind == "poll":
            service.poll(at)
        else:
            service.send(body, at)
    service.poll(NOW)
    return service.final()


def arrivals(
    history: Sequence[dict[str, Any]], rng: random.Random | None
) -> list[tuple[datetime, str, dict[str, Any]]]:
    """(clock, "event" | "poll", body) in the order they happen."""

    def occurred(body: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(body["occurred_at"])

    steps: list[tuple[datetime, str, dict[str, Any]]] = []
    if rng is None:
        for body in sorted(history, key=occurred):
            steps += [(occurred(body), "poll", {}), (occurred(body), "event", body)]
        return steps
    order = list(history)
    order += [body for body in history if rng.random() < 0.1]  # re-sent (same event_id): one decision
    rng.shuffle(order)
    clock = last = min(occurred(b) for b in history)
    for body in order:
        clock = min(NOW, max(clock, occurred(body) + timedelta(minutes=rng.randrange(0, 61, 5))))
        if rng.random() < 0.5:
            steps.append((max(last, clock - timedelta(minutes=rng.randrange(0, 30, 5))), "poll", {}))
        steps.append((clock, "event", body))
        last = clock
    return steps


def check(history: Sequence[dict[str, Any]], rng: random.Random) -> list[str]:
    """The differences between the three runs of `history` (empty when they agree)."""
    expected = simulated(history)
    problems = []
    for name, got in (("in order", served(history, None)), ("shuffled", served(history, rng))):
        for part in ("timers", "figures", "points", "report"):
            if getattr(got, part) != getattr(expected, part):
                problems.append(
                    f"{name}: {part} {getattr(got, part)!r} != simulate {getattr(expected, part)!r}"
                )
    return problems


BOOK = RuleBook.load([RULESETS])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--histories", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261102)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    differing = 0
    kinds = {"complaint": 0, "loan": 0}
    for index in range(args.histories):
        history = any_history(rng, index)
        kinds[history[0]["ticket"]["kind"]] += 1
        problems = check(history, rng)
        if problems:
            differing += 1
            if differing <= 5:
                print(f"history {index}: {history}", file=sys.stderr)
                for problem in problems:
                    print(f"  {problem}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(
        f"{args.histories} histories ({kinds['complaint']} complaints, {kinds['loan']} loans; seed "
        f"{args.seed}), each run by simulate, the service in order and the service shuffled with re-sends: "
        f"{differing} differing ({elapsed:.0f} s)"
    )
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
