"""The tracer from settings: off by default without loading the OpenTelemetry SDK; on, spans reach an OTLP/HTTP
collector (the bench's stand-in, a real local HTTP server decoding each protobuf request) with the service name and request id."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.http.otlp_sink import OtlpSink
from rulesvc.settings import Settings
from rulesvc.tracing import DECIDE, NO_TRACING, STORE, request_scope
from rulesvc.wiring.tracing import build_tracer

ROOT = Path(__file__).resolve().parents[3]


def test_off_by_default_and_the_sdk_is_never_imported(tmp_path: Path) -> None:
    assert build_tracer(Settings()) is NO_TRACING
    script = f"""
import sys
from fastapi.testclient import TestClient
from api.app import create_app
from bench.http.otlp_sink import OtlpSink
from rulesvc.settings import Settings
from scheduler.main import start_worker
settings = Settings(database_url="sqlite:///{tmp_path / "off.db"}", rulesets="{ROOT / "rulesets"}")
with TestClient(create_app(settings)) as client:
    assert client.get("/healthz").status_code == 200
start_worker(settings).stop()
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "rulesvc.otel")))
print(loaded)
assert not loaded, loaded
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    with OtlpSink(keep=True) as sink:
        yield sink.url, sink.received


def test_on_spans_reach_an_otlp_collector(
    collector: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, received = collector
    settings = Settings(
        otlp_endpoint=url,
        otlp_headers={"Authorization": "Bearer t0ken"},  # type: ignore[dict-item]
        trace_service_name="rulesvc-test",
    )
    tracer = build_tracer(settings)
    assert tracer.enabled and build_tracer(settings) is tracer  # one per process
    with request_scope("req-otlp"), tracer.span(DECIDE, {"rulesvc.event_id": "e1"}) as span:
        span.set("rulesvc.action_count", 2)
        with tracer.span(STORE):
            pass
    tracer.close()  # flushes the batch

    assert received, "nothing exported"
    headers, body = received[0]
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["authorization"] == "Bearer t0ken"
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "rulesvc-test"
    spans = {s.name: s for scope in resource_spans.scope_spans for s in scope.spans}
    assert set(spans) == {DECIDE, STORE}
    assert spans[STORE].parent_span_id == spans[DECIDE].span_id
    decide = {a.key: a.value for a in spans[DECIDE].attributes}
    assert decide["rulesvc.request_id"].string_value == "req-otlp"
    assert decide["rulesvc.event_id"].string_value == "e1"
    assert decide["rulesvc.action_count"].int_value == 2
