"""SLA timers on event time (SQLite and PostgreSQL): the same ticket history gives the same timers, SLA
figures and reports whatever order its events arrive in; a late event that changes the past corrects the
stored figure with an `sla_corrected` action in the chain; a re-sent creation is one clock."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench import event_time
from rulesvc.decisions.service import verify_store
from rulesvc.events import event_from_json
from rulesvc.sla.reports import sla_report
from rulesvc.sla.simulation import simulate
from rulesvc.storage.timer_tables import TicketRow, TimerRow
from tests.integration.conftest import auth
from tests.integration.test_timers_store import BOOK, Env
from tests.integration.timer_support import complaint, timer_url  # noqa: F401

NOW = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # 13:00 in Shanghai


def ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


@pytest.fixture
def env(timer_url: str) -> Iterator[Env]:  # noqa: F811
    environment = Env(timer_url, start=NOW)
    yield environment
    environment.engine.dispose()


def send_all(env: Env, bodies: list[dict[str, Any]], poll_between: bool = False) -> None:
    """Each body arrives now, in the order given (a poll after each with `poll_between`)."""
    for body in bodies:
        env.events.send(body, NOW)
        if poll_between:
            env.poll_at(NOW)
    env.poll_at(NOW)


def figures(env: Env) -> list[tuple[str, str, float, float]]:
    return sorted(
        (f.ticket_id, f.outcome, f.remaining.total_seconds(), f.breach.total_seconds())
        for f in env.store.sla_records(NOW - timedelta(days=1), NOW + timedelta(days=1))
    )


def report(env: Env) -> dict[str, Any]:
    total: dict[str, Any] = sla_report(
        env.store, NOW - timedelta(days=1), NOW, calendars=BOOK.calendars, now=NOW
    )["total"]
    return total


def test_resume_arriving_before_its_pause_keeps_the_clock_running(env: Env) -> None:
    send_all(
        env,
        [
            complaint("c", "C-1", ago(30)),
            complaint("r", "C-1", ago(10), "ticket.resumed"),
            complaint("p", "C-1", ago(20), "ticket.paused"),
        ],
    )
    # the resume changed nothing when it came (the clock ran); the pause's answer carries it, once
    assert env.types() == ["start_timer", "pause_timer", "resume_timer"]
    resume = env.actions()[2]
    assert resume["event_id"] == "r" and datetime.fromisoformat(resume["occurred_at"]) == ago(10)
    assert datetime.fromisoformat(resume["due_at"]) == ago(30) + timedelta(minutes=130)
    assert env.poll_at(NOW + timedelta(minutes=59)) == 0
    assert env.poll_at(NOW + timedelta(minutes=70)) == 1  # 预警 at -30 + 90 + 10 paused
    assert env.poll_at(NOW + timedelta(minutes=100)) == 1
    assert env.types()[-2:] == ["notify", "escalate"]
    assert report(env)["total"] == 0  # the deadline has not passed yet
    later = sla_report(
        env.store, NOW, NOW + timedelta(days=1), calendars=BOOK.calendars, now=NOW + timedelta(hours=3)
    )
    assert later["total"]["breached"] == 1 and later["total"]["max_breach_seconds"] == 80 * 60


@pytest.mark.parametrize("first", ["ticket.resumed", "ticket.paused"])
def test_pause_and_resume_at_one_instant_is_a_pause_of_zero_length(env: Env, first: str) -> None:
    second = "ticket.paused" if first == "ticket.resumed" else "ticket.resumed"
    send_all(
        env,
        [
            complaint("c", "C-1", ago(30)),
            complaint("a", "C-1", ago(20), first),
            complaint("b", "C-1", ago(20), second),
        ],
    )
    assert env.poll_at(NOW + timedelta(minutes=59)) == 0
    assert env.poll_at(NOW + timedelta(minutes=60)) == 1
    assert env.poll_at(NOW + timedelta(minutes=90)) == 1


def test_acceptance_arriving_before_its_creation_fires_nothing_and_meets_the_sla(env: Env) -> None:
    bodies = [complaint("a", "C-1", ago(170), "ticket.accepted"), complaint("c", "C-1", ago(180))]
    send_all(env, bodies)
    assert env.types() == ["start_timer", "cancel_timer"]  # the stop is answered once it stops a clock
    assert env.poll_at(NOW + timedelta(hours=5)) == 0
    assert figures(env) == [("C-1", "met", 110 * 60.0, 0.0)]
    assert report(env)["met"] == 1 and report(env)["open_breaches"] == 0
    timeline = simulate(BOOK, [event_from_json(b) for b in bodies], NOW).to_json()["timeline"]
    assert [[a["type"] for a in e["actions"]] for e in timeline] == [["start_timer"], ["cancel_timer"]]


def test_a_late_acceptance_corrects_the_breach_and_retracts_the_points_in_the_chain(env: Env) -> None:
    env.events.send(complaint("c", "C-1", ago(180)), NOW)
    assert env.poll_at(NOW) == 2  # warning and escalation at once
    warned, escalated = [a for a in env.feed.list_actions(0, 100)][1:]
    assert figures(env) == [("C-1", "breached", 0.0, 0.0)]
    env.events.send(complaint("a", "C-1", ago(170), "ticket.accepted"), NOW)
    cancel, corrected = env.actions()[-2:]
    assert cancel["type"] == "cancel_timer" and corrected["type"] == "sla_corrected"
    assert [(s["decision_id"], s["point"]) for s in corrected["supersedes"]] == [
        (warned.decision_id, "预警"),
        (escalated.decision_id, "due"),
    ]
    [figure] = corrected["figures"]
    assert figure["was"]["outcome"] == "breached" and figure["now"] == {
        "outcome": "met",
        "due_at": "2026-11-02T12:00:00+08:00",
        "stopped_at": "2026-11-02T10:10:00+08:00",
        "remaining_seconds": 6600.0,
    }
    assert figures(env) == [("C-1", "met", 110 * 60.0, 0.0)]
    assert env.poll_at(NOW + timedelta(hours=5)) == 0
    assert verify_store(env.feed).ok


def twelve_complaints() -> list[list[dict[str, Any]]]:
    """Twelve complaints created 4 h ago, each followed at once by its acceptance (30, 100, 150 min, never)."""
    histories = []
    for i, after in enumerate(itertools.islice(itertools.cycle([30, 100, 150, None]), 12)):
        history = [complaint(f"c{i}", f"C-{i}", ago(240))]
        if after is not None:
            history.append(complaint(f"a{i}", f"C-{i}", ago(240 - after), "ticket.accepted"))
        histories.append(history)
    return histories


@pytest.mark.parametrize("poller_first", [False, True])
def test_twelve_complaints_report_six_met_and_six_breached_whoever_comes_first(
    env: Env, poller_first: bool
) -> None:
    for history in twelve_complaints():
        send_all(env, history, poll_between=poller_first)
    assert report(env) == {
        "total": 12,
        "met": 6,
        "breached": 6,
        "attainment": 0.5,
        "open_breaches": 3,
        "avg_breach_seconds": 4500.0,  # three of 30 min, three open for 2 h by now
        "max_breach_seconds": 7200.0,
        "avg_remaining_seconds": 3300.0,  # 90 and 20 min left
        "provisional": 0,
    }
    types = env.types()
    if poller_first:  # every escalation went out; those of the six met in time were corrected
        assert (types.count("escalate"), types.count("sla_corrected")) == (12, 6)
    else:
        assert (types.count("escalate"), types.count("sla_corrected")) == (6, 0)
    assert verify_store(env.feed).ok


@pytest.mark.parametrize("order", [(180, 179), (179, 180)])
def test_a_re_sent_creation_is_one_clock_in_either_order(env: Env, order: tuple[int, int]) -> None:
    send_all(env, [complaint(f"c{m}", "C-1", ago(m)) for m in order])
    assert env.types().count("notify") == 1 and env.types().count("escalate") == 1
    [figure] = env.store.sla_records(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert figure.due_at == ago(60) and figure.outcome == "breached"
    env.events.send(complaint("a", "C-1", ago(30), "ticket.accepted"), NOW)
    assert figures(env) == [("C-1", "breached", 0.0, 30 * 60.0)]


def test_resume_of_a_timer_whose_deadline_fired_or_that_was_stopped_emits_nothing(env: Env) -> None:
    env.events.send(complaint("c", "C-1", ago(180)), NOW)
    env.poll_at(NOW)
    assert env.events.send(complaint("r", "C-1", ago(5), "ticket.resumed"), NOW).actions == []
    env.events.send(complaint("c2", "C-2", ago(30)), NOW)
    env.events.send(complaint("a2", "C-2", ago(20), "ticket.accepted"), NOW)
    assert env.events.send(complaint("r2", "C-2", ago(10), "ticket.resumed"), NOW).actions == []
    assert env.events.send(complaint("a2b", "C-2", ago(5), "ticket.accepted"), NOW).actions == []
    assert env.types() == ["start_timer", "notify", "escalate", "start_timer", "cancel_timer"]
    assert verify_store(env.feed).ok


def test_an_acceptance_for_an_unknown_ticket_puts_no_cancel_timer_in_the_feed(env: Env) -> None:
    """The stop of a clock that never ran changes nothing: it is not answered nor fed. It stays in the
    ticket's journal: a creation arriving after it, dated before it, starts the clock and the stop takes
    effect, answered then (once) with the creation, and the SLA is met at the acceptance's time."""
    answer = env.events.send(complaint("a", "C-1", ago(170), "ticket.accepted"), NOW)
    assert answer.actions == [] and env.types() == []
    assert env.events.send(complaint("a2", "C-9", ago(170), "ticket.accepted"), NOW).actions == []
    created = env.events.send(complaint("c", "C-1", ago(180)), NOW)
    env.poll_at(NOW)
    assert [a["type"] for a in created.actions] == ["start_timer", "cancel_timer"]
    assert created.actions[1]["event_id"] == "a"
    assert env.types() == ["start_timer", "cancel_timer"]
    assert figures(env) == [("C-1", "met", 110 * 60.0, 0.0)]
    assert verify_store(env.feed).ok


def test_an_event_dated_beyond_the_clock_skew_tolerance_is_refused(
    client: TestClient, keys: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    decade = client.post(
        "/v1/events",
        json=complaint("f-decade", "C-F", now + timedelta(days=3650)),
        headers=auth(keys["ingest"]),
    )
    assert decade.status_code == 422  # beyond any range (the general range check or the skew bound)
    for ahead in (timedelta(minutes=30), timedelta(minutes=6)):
        response = client.post(
            "/v1/events", json=complaint(f"f{ahead}", "C-F", now + ahead), headers=auth(keys["ingest"])
        )
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "event.clock_skew" and "300 秒" in body["message"]
        assert body["details"][0]["path"] == "occurred_at"
    within = client.post(
        "/v1/events", json=complaint("f-ok", "C-F", now + timedelta(minutes=4)), headers=auth(keys["ingest"])
    )
    assert within.status_code == 200, within.text


def loan(event_id: str, occurred_at: datetime, stage: str, etype: str = "ticket.updated") -> dict[str, Any]:
    ticket = {"kind": "loan", "id": "L-1", "region": "上海浦东", "amount": 900000, "credit_rating": "AA"}
    return {
        "event_id": event_id,
        "type": etype,
        "occurred_at": occurred_at.isoformat(),
        "ticket": {**ticket, "owner": "张三", "stage": stage},
    }


LOAN_HISTORY = [
    loan("l1", ago(240), "受理", "ticket.created"),  # 09:00 Shanghai, Monday: no SLA yet
    loan("l2", ago(180), "初审"),  # 10:00 enters 初审: due 15:00
    loan("l3", ago(120), "复审"),  # 11:00 leaves it: met, 3 working hours left
    loan("l4", ago(90), "初审"),  # 11:30 back to 初审: starts afresh, due 16:30
    loan("l5", ago(60), "初审"),  # 12:00 still in 初审: nothing
]


@pytest.mark.parametrize("order", [(0, 1, 2, 3, 4), (4, 3, 2, 1, 0), (3, 0, 4, 2, 1)])
def test_a_loan_entering_or_returning_to_first_review_through_a_later_event_gets_its_sla(
    env: Env, order: tuple[int, ...]
) -> None:
    send_all(env, [LOAN_HISTORY[i] for i in order])
    env.poll_at(NOW + timedelta(hours=4))  # 17:00
    stored = sorted(
        (f.outcome, f.started_at, f.due_at, f.stopped_at, f.remaining.total_seconds())
        for f in env.store.sla_records(NOW - timedelta(days=1), NOW + timedelta(days=1))
    )
    assert stored == [
        ("breached", ago(90), ago(-210), None, 0.0),
        ("met", ago(180), ago(-120), ago(120), 3 * 3600.0),
    ]
    escalations = [a for a in env.actions() if a["type"] == "escalate"]
    assert len(escalations) == 1
    assert datetime.fromisoformat(escalations[0]["fired_by"]["due_at"]) == ago(-210)
    timeline = simulate(BOOK, [event_from_json(b) for b in LOAN_HISTORY], NOW + timedelta(hours=4))
    simulated = sorted(
        (o.outcome, o.started_at, o.due_at, o.stopped_at, o.remaining.total_seconds())
        for o in timeline.outcomes()
    )
    assert simulated == stored
    assert verify_store(env.feed).ok


def test_clock_skew_is_measured_per_source_accepted_and_refused_alike(
    client: TestClient, keys: dict[str, str]
) -> None:
    """`rulesvc_clock_skew_seconds{source}`: occurred_at minus the server's clock of every event decided
    (a late one is negative) and of every one refused for skew, labelled by the caller."""
    now = datetime.now(UTC)
    sent = [
        ("k-late", -timedelta(minutes=10)),
        ("k-ahead", timedelta(minutes=4)),
        ("k-far", timedelta(minutes=30)),
    ]
    for event_id, offset in sent:
        client.post("/v1/events", json=complaint(event_id, "C-K", now + offset), headers=auth(keys["ingest"]))
    client.post(
        "/v1/events",
        json=complaint("k-late", "C-K", now - timedelta(minutes=10)),
        headers=auth(keys["ingest"]),
    )
    lines = [
        line for line in client.get("/metrics").text.splitlines() if line.startswith("rulesvc_clock_skew")
    ]
    count = [line for line in lines if line.startswith("rulesvc_clock_skew_seconds_count")]
    assert len(count) == 1 and count[0].endswith(" 3.0"), lines  # the replay is not measured again
    assert 'source="' in count[0]

    def bucket(le: str) -> float:
        [line] = [line for line in lines if f'le="{le}"' in line and "_bucket" in line]
        return float(line.rsplit(" ", 1)[1])

    assert (bucket("-60.0"), bucket("0.0"), bucket("300.0"), bucket("3600.0")) == (1.0, 1.0, 2.0, 3.0)


@pytest.mark.parametrize("seed", range(4))
def test_random_histories_in_shuffled_arrival_agree_with_simulate_and_the_in_order_service(
    timer_url: str,  # noqa: F811
    seed: int,
) -> None:
    """A bounded sample of `python -m bench.event_time` (which runs ≥ 10,000 histories in memory) on the
    real stores: four random histories per seed arrive shuffled and late, with polls in between."""
    rng = random.Random(seed)
    histories = [event_time.any_history(rng, i, f"P-{seed}-") for i in range(4)]  # complaints and loans
    end = event_time.NOW
    environment = Env(timer_url, start=end - timedelta(days=4))
    steps = sorted(
        (step for history in histories for step in event_time.arrivals(history, rng)), key=lambda s: s[0]
    )
    try:
        for at, kind, body in steps:
            if kind == "poll":
                environment.poll_at(at)
            else:
                environment.events.send(body, at)
        environment.poll_at(end)
        stored = list(environment.store.sla_records(end - timedelta(days=5), end + timedelta(days=1)))
        with Session(environment.engine) as session:
            timelines = {t.ticket_id: t.timeline for t in session.scalars(select(TicketRow))}
            rows = list(session.scalars(select(TimerRow).order_by(TimerRow.ticket_id, TimerRow.name)))
        for history in histories:
            ticket_id = history[0]["ticket"]["id"]
            expected = event_time.simulated(history)
            figures = [
                (r.timer, r.outcome, r.due_at, r.decided_at, r.stopped_at, r.remaining, r.breach)
                for r in stored
                if r.ticket_id == ticket_id
            ]
            assert sorted(figures) == sorted((f[0], *f[2:]) for f in expected.figures)
            assert sorted(event_time.standing(orjson.loads(timelines[ticket_id]))) == list(expected.points)
            timers = [(r.name, r.generation, r.status, r.due_at) for r in rows if r.ticket_id == ticket_id]
            assert timers == [(t[0], t[1], t[2], t[7]) for t in expected.timers]
        assert verify_store(environment.feed).ok
    finally:
        environment.engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(min_value=0, max_value=1))
def test_hypothesis_histories_agree_in_any_arrival_order(rng: random.Random, kind: int) -> None:
    """A hypothesis sample of `python -m bench.event_time`: a complaint or loan history (stage changes into,
    out of and back into 初审, pauses, resumes, re-sent creations) run by simulate, by the service's units
    of work in order and shuffled with re-sends; timers, figures, standing points and report agree."""
    history = event_time.any_history(rng, kind)
    assert event_time.check(history, rng) == []
