"""Per-request context (the request id) shared by logging, errors and middleware.

The variable is the core's (`rulesvc.tracing.request_id_var`): spans carry it, and the worker sets it for
each timer fire and delivery attempt, so its log lines carry one too."""

from __future__ import annotations

from rulesvc.tracing import request_id_var

__all__ = ["request_id_var"]
