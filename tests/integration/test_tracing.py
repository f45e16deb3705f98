"""Tracing with the OpenTelemetry SDK's in-memory exporter: a decision over HTTP is one trace (decide >
evaluate, store) carrying the caller's X-Request-ID; a worker's timer fire and webhook delivery are traces
of their own, each with a request id (the delivery's is the X-Request-ID its receiver got). Ids that may be
personal data leave masked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.delivery.webhooks import RetryPolicy
from rulesvc.otel import OtelTracer, provider_for
from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from rulesvc.sla.clock import SystemClock, VirtualClock
from rulesvc.tracing import DECIDE, DELIVERY, EVALUATE, STORE, TIMER_FIRE
from scheduler.build import build_worker
from scheduler.config import WorkerConfig
from tests.integration.conftest import RULESETS, auth, event, make_settings
from tests.integration.timer_support import (  # noqa: F401
    Events,
    Receiver,
    complaint,
    receiver,
    timer_url,
    wait_until,
)

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
CALLER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7


@pytest.fixture
def spans() -> Iterator[tuple[OtelTracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracer = OtelTracer(provider_for(exporter, batch=False))
    yield tracer, exporter
    tracer.close()


def ingest_key(app: Any) -> str:
    return create_api_key(app.state.runtime.service.keys, frozenset({Role.INGEST}), SystemClock())[1]


def named(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in finished if span.name == name]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_decision_is_one_trace_with_the_request_id(
    database_url: str, book: Evaluator, spans: tuple[OtelTracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = spans
    app = create_app(make_settings(database_url), book=book, tracer=tracer)
    with TestClient(app) as client:
        key = ingest_key(app)
        body = event("trace-1", kind="loan", id="13812345678")  # a ticket id that is a mobile number
        caller = {
            "X-Request-ID": "req-trace-1",
            "traceparent": f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01",
        }
        answer = client.post("/v1/events", json=body, headers={**auth(key), **caller})
        assert answer.status_code == 200, answer.text
        again = client.post("/v1/events", json=body, headers={**auth(key), "X-Request-ID": "req-trace-2"})
        assert again.json()["decision_id"] == answer.json()["decision_id"]
    finished = exporter.get_finished_spans()
    first, replay = named(finished, DECIDE)
    children = [s for s in finished if s.parent is not None and s.parent.span_id == first.context.span_id]
    assert sorted(s.name for s in children) == [EVALUATE, STORE]
    # the caller's trace goes on: the decision is a child of the ticket tool's span
    assert first.parent is not None and first.parent.is_remote and first.parent.span_id == CALLER_SPAN
    assert first.context.trace_id == CALLER_TRACE
    assert replay.parent is None  # no traceparent: a trace of its own
    assert all(s.context.trace_id == first.context.trace_id for s in children)

    decided = answer.json()
    a = attrs(first)
    assert a["rulesvc.request_id"] == "req-trace-1"
    assert a["rulesvc.decision_id"] == decided["decision_id"]
    assert a["rulesvc.event_id"] == "trace-1"
    assert a["rulesvc.ticket_id"] != "13812345678" and "5678" in a["rulesvc.ticket_id"]  # masked
    assert a["rulesvc.action_count"] == len(decided["actions"]) > 0
    assert a["rulesvc.replay"] is False
    fired = {f["ruleset"]: f["version"] for f in decided["fired"]}
    assert list(a["rulesvc.ruleset"]) == sorted(fired)
    assert list(a["rulesvc.ruleset_version"]) == [fired[name] for name in sorted(fired)]
    assert all(attrs(s)["rulesvc.request_id"] == "req-trace-1" for s in children)
    assert attrs(next(s for s in children if s.name == EVALUATE))["rulesvc.kind"] == "loan"
    assert attrs(next(s for s in children if s.name == STORE))["rulesvc.created"] is True

    r = attrs(replay)
    assert r["rulesvc.request_id"] == "req-trace-2"
    assert r["rulesvc.replay"] is True
    assert r["rulesvc.decision_id"] == decided["decision_id"]


def test_a_refused_event_ends_its_span_in_error(
    sqlite_url: str, book: Evaluator, spans: tuple[OtelTracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = spans
    app = create_app(make_settings(sqlite_url), book=book, tracer=tracer)
    with TestClient(app) as client:
        key = ingest_key(app)
        bad = event("trace-bad", amount="很多")
        answer = client.post("/v1/events", json=bad, headers={**auth(key), "X-Request-ID": "req-bad"})
        assert answer.status_code == 422
    (span,) = named(exporter.get_finished_spans(), DECIDE)
    assert not span.status.is_ok
    assert attrs(span)["rulesvc.request_id"] == "req-bad"
    assert attrs(span)["error.type"] == span.status.description == "event.invalid"
    assert not span.events  # no exception event: its message could quote the input


def test_timer_fire_and_delivery_are_traced_with_their_request_ids(
    timer_url: str,  # noqa: F811
    receiver: Receiver,  # noqa: F811
    spans: tuple[OtelTracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    book = RuleBook.load([RULESETS])
    clock = VirtualClock(T0)
    parts = build_worker(
        timer_url,
        book,
        Settings().mask_policy(),
        config=WorkerConfig(),
        retry=RetryPolicy(max_attempts=3, base_seconds=0.01, cap_seconds=0.02, timeout_seconds=2),
        clock=clock,
        tracer=tracer,
    )
    try:
        sub = parts.webhooks.create_subscription(receiver.url, action_types=["notify"])
        receiver.secret = sub.secret
        receiver.script = [503]
        Events(parts.engine, book).send(complaint("c-trace", "C-trace", T0), T0)
        clock.advance(timedelta(minutes=91))  # past the 90-minute warning: notify the owner
        assert parts.poller.poll() >= 1
        wait_until(lambda: (parts.deliverer.run_once(), len(receiver.accepted()))[1] == 1, timeout=20)
    finally:
        parts.worker.stop()

    finished = exporter.get_finished_spans()
    (fire,) = named(finished, TIMER_FIRE)
    f = attrs(fire)
    assert fire.parent is None
    assert f["rulesvc.ticket_id"] == "C-trace" and f["rulesvc.kind"] == "complaint"
    assert f["rulesvc.decision_count"] == 1 and f["rulesvc.action_count"] == 1
    assert len(f["rulesvc.request_id"]) == 32
    (evaluated,) = [s for s in named(finished, EVALUATE) if s.parent == fire.context]
    e = attrs(evaluated)
    assert e["rulesvc.timer"] == "首次响应" and e["rulesvc.point"] == "预警"
    assert list(e["rulesvc.ruleset"]) == ["complaint-sla"]
    assert e["rulesvc.request_id"] == f["rulesvc.request_id"]

    deliveries = named(finished, DELIVERY)
    assert [attrs(s)["rulesvc.outcome"] for s in deliveries] == ["failed", "delivered"]
    assert [attrs(s)["http.response.status_code"] for s in deliveries] == [503, 200]
    assert [attrs(s)["rulesvc.attempt"] for s in deliveries] == [1, 2]
    assert {attrs(s)["rulesvc.subscription_id"] for s in deliveries} == {sub.id}
    assert {attrs(s)["rulesvc.channel"] for s in deliveries} == {"webhook"}
    sent = [r.request_id for r in receiver.received]
    assert sent == [attrs(s)["rulesvc.request_id"] for s in deliveries]
    # each attempt sends its span's W3C traceparent: the receiver's trace can continue it
    assert [r.traceparent for r in receiver.received] == [
        f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}-{int(s.context.trace_flags):02x}"
        for s in deliveries
    ]
    assert len(set(sent)) == 2 and f["rulesvc.request_id"] not in sent
