"""The tracer a process uses, from settings: `NO_TRACING` unless `RULESVC_OTLP_ENDPOINT` is set, then one
OTLP tracer per process (the HTTP app and the worker of `rulesvc serve` share it; the SDK flushes it when
the process exits). Only then is `rulesvc.otel`, and with it the OpenTelemetry SDK, imported."""

from __future__ import annotations

import threading

from rulesvc.settings import Settings
from rulesvc.tracing import NO_TRACING, Tracer

_shared: dict[tuple[object, ...], Tracer] = {}
_lock = threading.Lock()


def build_tracer(settings: Settings) -> Tracer:
    if not settings.otlp_endpoint:
        return NO_TRACING
    headers = {name: value.get_secret_value() for name, value in settings.otlp_headers.items()}
    key = (
        settings.otlp_endpoint,
        tuple(sorted(headers.items())),
        settings.trace_service_name,
        settings.trace_sample_ratio,
    )
    with _lock:
        tracer = _shared.get(key)
        if tracer is None:
            from rulesvc.otel import otlp_tracer

            tracer = otlp_tracer(
                settings.otlp_endpoint,
                service_name=settings.trace_service_name,
                sample_ratio=settings.trace_sample_ratio,
                headers=headers,
            )
            _shared[key] = tracer
        return tracer
