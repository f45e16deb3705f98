"""Tracing, as the use cases see it: a `Tracer` opening named spans with attributes, and the request id the
spans carry.

Off by default: `NO_TRACING` opens one shared do-nothing span, so the code that traces costs a method call
per span and imports nothing of OpenTelemetry. On (`RULESVC_OTLP_ENDPOINT`), `rulesvc.otel` is the one
module that imports the OpenTelemetry SDK; the composition root (`rulesvc.wiring.tracing`) picks one or
the other.

Span names (docs/operations.md "Tracing"): `rulesvc.decide` (POST /v1/events) with its children
`rulesvc.evaluate` and `rulesvc.store`; `rulesvc.timer.fire` (one ticket's due points) with `rulesvc.evaluate`
children; `rulesvc.delivery` (one attempt of a webhook or notification). Every span carries
`rulesvc.request_id`: the X-Request-ID of the HTTP request, or an id made for one timer fire or delivery
attempt (sent to the receiver as X-Request-ID).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Protocol

from rulesvc.entropy import uuid4

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int]
Attributes = Mapping[str, AttributeValue]

REQUEST_ID_ATTRIBUTE = "rulesvc.request_id"

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
"""The request id of the work in progress ("-": none): set by the HTTP middleware from X-Request-ID (or a
fresh one), and by the worker for each timer fire and delivery attempt (`request_scope`)."""

trace_parent_var: ContextVar[str | None] = ContextVar("traceparent", default=None)
"""The caller's W3C `traceparent` header (HTTP), which the first span of the request continues: a ticket
tool that traces its own calls sees the decision inside its trace."""

# Span names
DECIDE = "rulesvc.decide"
EVALUATE = "rulesvc.evaluate"
STORE = "rulesvc.store"
TIMER_FIRE = "rulesvc.timer.fire"
DELIVERY = "rulesvc.delivery"


class Span(Protocol):
    def set(self, key: str, value: AttributeValue) -> None: ...


class Tracer(Protocol):
    @property
    def enabled(self) -> bool: ...

    def span(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[Span]:
        """A span around the `with` block, child of the span open in this context (thread, task)."""
        ...

    def propagate(self, headers: dict[str, str]) -> None:
        """Add the current span's `traceparent` to outgoing `headers` (nothing when off)."""
        ...

    def close(self) -> None:
        """Send what is buffered, then stop."""
        ...


class _NoSpan:
    __slots__ = ()

    def set(self, key: str, value: AttributeValue) -> None:
        pass

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()


class NoTracer:
    """Tracing off: every span is the same object doing nothing."""

    enabled = False

    def span(self, name: str, attributes: Attributes | None = None) -> _NoSpan:
        return _NO_SPAN

    def propagate(self, headers: dict[str, str]) -> None:
        pass

    def close(self) -> None:
        pass


NO_TRACING: Tracer = NoTracer()


def new_request_id() -> str:
    return uuid4().hex


@contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Work outside an HTTP request (a timer fire, a delivery attempt) under a request id of its own."""
    value = request_id or new_request_id()
    token = request_id_var.set(value)
    try:
        yield value
    finally:
        request_id_var.reset(token)
