"""Per-request context (the request id) shared by logging, errors and middleware."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
