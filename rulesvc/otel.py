"""The OpenTelemetry adapter of `rulesvc.tracing.Tracer`: the one module that imports the OpenTelemetry SDK
(import-linter holds it), loaded only when tracing is on.

`otlp_tracer` exports over OTLP/HTTP (protobuf) in batches from a background thread: a slow or absent
collector costs dropped spans, never a slower request. `OtelTracer(provider)` takes any SDK provider (the
tests give one with an in-memory exporter). The provider is the tracer's own, not OpenTelemetry's global
one: two services of one process (the HTTP app and its worker) may share it, and tests may make many.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import INVALID_SPAN, Status, StatusCode, get_current_span
from opentelemetry.trace import Span as OtelSpan
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from rulesvc.tracing import (
    REQUEST_ID_ATTRIBUTE,
    Attributes,
    AttributeValue,
    request_id_var,
    trace_parent_var,
)

_W3C = TraceContextTextMapPropagator()

ERROR_TYPE = "error.type"


class _Span:
    __slots__ = ("_span",)

    def __init__(self, span: OtelSpan) -> None:
        self._span = span

    def set(self, key: str, value: AttributeValue) -> None:
        self._span.set_attribute(key, value)


class OtelTracer:
    """Spans of one SDK provider; each carries the request id in force when it starts."""

    enabled = True

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("rulesvc")

    @contextmanager
    def span(self, name: str, attributes: Attributes | None = None) -> Iterator[_Span]:
        attrs = dict(attributes or {})
        request_id = request_id_var.get()
        if request_id != "-":
            attrs[REQUEST_ID_ATTRIBUTE] = request_id
        parent = trace_parent_var.get()
        context = (
            _W3C.extract({"traceparent": parent})
            if parent is not None and get_current_span() is INVALID_SPAN
            else None
        )
        with self._tracer.start_as_current_span(
            name, context=context, attributes=attrs, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield _Span(span)
            except Exception as exc:
                # The stable code only: an exception's message may quote the input (personal data) and its
                # traceback has no business outside the service.
                code = str(getattr(exc, "code", "") or type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, code))
                span.set_attribute(ERROR_TYPE, code)
                raise

    def propagate(self, headers: dict[str, str]) -> None:
        _W3C.inject(headers)

    def close(self) -> None:
        self.provider.shutdown()


def provider_for(
    exporter: SpanExporter,
    *,
    service_name: str = "rulesvc",
    sample_ratio: float = 1.0,
    batch: bool = True,
) -> TracerProvider:
    """A provider exporting to `exporter` (in batches from a thread, or each span as it ends: `batch=False`);
    a trace is kept with probability `sample_ratio`, children follow their parent's choice."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def otlp_tracer(
    endpoint: str,
    *,
    service_name: str = "rulesvc",
    sample_ratio: float = 1.0,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> OtelTracer:
    """Spans sent over OTLP/HTTP to `endpoint` (a collector's `http://HOST:4318/v1/traces`)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers or None, timeout=timeout)
    return OtelTracer(provider_for(exporter, service_name=service_name, sample_ratio=sample_ratio))
