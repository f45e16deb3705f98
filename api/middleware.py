"""Pure ASGI middleware: request ids, body size limit, access log and HTTP metrics.

Pure ASGI (not BaseHTTPMiddleware) so that it adds microseconds, not a task per request. The body limit
answers 413 up front when Content-Length is too big and otherwise counts bytes as the endpoint reads
them (chunked uploads), raising `ApiError(413)` past the limit.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.context import request_id_var
from api.errors import ERROR_CODE_KEY, ApiError, error_response
from api.metrics import Metrics
from rulesvc.entropy import uuid4

access_log = logging.getLogger("rulesvc.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"请求体超过 {limit} 字节上限", {"max_bytes": limit})


class ServiceMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, access_log_enabled: bool = True
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        status = 500
        error_code: str | None = None
        limit = self.max_body_bytes

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                error = _too_large(limit)
                error_code = error.code
                response = error_response(error.status, error.code, error.message, error.details)
                await response(scope, receive, send_wrapper)
                return
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route_path, str(status)).inc()
            self.metrics.latency.labels(method, route_path).observe(elapsed)
            if status >= 400:
                self.metrics.errors.labels(error_code or scope.get(ERROR_CODE_KEY) or str(status)).inc()
            if self.access_log_enabled:
                access_log.info(
                    "%s %s %d",
                    method,
                    scope.get("path", ""),
                    status,
                    extra={
                        "request_id": request_id,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "route": route_path,
                        "key_id": scope.get("rulesvc.key_id"),
                    },
                )
            request_id_var.reset(token)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
            break
    return uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
