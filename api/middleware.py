"""Pure ASGI middleware: request ids, body size limit, access log and HTTP metrics.

Pure ASGI (not BaseHTTPMiddleware) so that it adds microseconds, not a task per request. The body limit
answers 413 up front when Content-Length is too big and otherwise counts bytes as the endpoint reads
them (chunked uploads), raising `ApiError(413)` past the limit.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.context import request_id_var
from api.errors import ERROR_CODE_KEY, ApiError, error_response
from api.metrics import Metrics
from rulesvc.entropy import uuid4
from rulesvc.tracing import trace_parent_var

access_log = logging.getLogger("rulesvc.access")
log = logging.getLogger("rulesvc.api")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"请求体超过 {limit} 字节上限", {"max_bytes": limit})


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_body_bytes: int,
        access_log_enabled: bool = True,
        request_timeout: float | None = None,
    ) -> None:
        """`request_timeout`: a request (other than the long-running routes in `UNBOUNDED`) that has not
        started its answer after this many seconds gets 503 `unavailable` (a hung database must not hang
        its callers); the work itself finishes, or fails, in the background."""
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.access_log_enabled = access_log_enabled
        self.request_timeout = request_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, parent = _request_ids(scope)
        scope[REQUEST_ID_KEY] = request_id
        token = request_id_var.set(request_id)
        parent_token = trace_parent_var.set(parent) if parent is not None else None
        status = 500
        error_code: str | None = None
        limit = self.max_body_bytes
        answer = {"started": False, "abandoned": False}

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if answer["abandoned"]:
                return  # the caller already got the timeout answer
            if message["type"] == "http.response.start":
                answer["started"] = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                headers.extend(security_headers(headers))
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
            timeout = self.request_timeout
            if timeout is None or scope.get("path", "") in UNBOUNDED or _unbounded(scope):
                await self._run(scope, receive_wrapper, send_wrapper, request_id, answer)
            else:
                error_code = await self._bounded(
                    scope, receive_wrapper, send_wrapper, send, request_id, answer, timeout
                )
                if error_code is not None:
                    status = 503
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
            if parent_token is not None:
                trace_parent_var.reset(parent_token)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, answer: dict[str, bool]
    ) -> None:
        """Run the app; an exception nothing handled becomes a 500 carrying the request id (logged with its
        traceback and the request id)."""
        try:
            await self.app(scope, receive, send)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if answer["started"]:
                raise
            response = error_response(500, "internal_error", "服务内部错误", {"request_id": request_id})
            await response(scope, receive, send)

    async def _bounded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        outer_send: Send,
        request_id: str,
        answer: dict[str, bool],
        timeout: float,
    ) -> str | None:
        """`_run`, answered with 503 (straight to `outer_send`, the app's own answer dropped when it comes)
        when no answer has started within `timeout` seconds; returns the error code of that answer (None
        when the app answered)."""
        task = asyncio.ensure_future(self._run(scope, receive, send, request_id, answer))
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if task in done or answer["started"]:
            await task
            return None
        answer["abandoned"] = True
        task.add_done_callback(_forget)
        log.error(
            "request not answered within %.1f s (database or dependency not responding); answered 503",
            timeout,
            extra={"request_id": request_id},
        )
        response = error_response(
            503,
            "unavailable",
            f"服务在 {timeout:g} 秒内未能完成请求（数据库无响应），请稍后重试",
            {"timeout_seconds": timeout, "request_id": request_id},
            {"x-request-id": request_id, "retry-after": "1"},
        )
        await response(scope, receive, outer_send)
        return "unavailable"


REQUEST_ID_KEY = "rulesvc.request_id"
UNBOUNDED = frozenset({"/v1/audit/verify", "/v1/simulate", "/v1/rulesets/import", "/readyz", "/metrics"})
"""Routes whose work may legitimately take long (they are not cut off by `request_timeout`)."""


def _unbounded(scope: Scope) -> bool:
    """Also the reports (`/v1/reports/...`, the 看板与报表 page): over a long period of a large database they
    may take longer than the request deadline, and are bounded by the database's statement timeout instead
    (a statement cancelled by it is answered 503 `query_timeout`); and the evidence files of a version (a
    draft's are under `/drafts`), which run every case and lay out a PDF in seconds."""
    path = str(scope.get("path", ""))
    if path.startswith("/v1/reports/") or path == "/console/reports":
        return True
    return path.startswith("/v1/rulesets/") and (
        path.endswith("/replay") or path.endswith("/report") or "/drafts" in path
    )


def _forget(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned request's failure was already answered


def _request_ids(scope: Scope) -> tuple[str, str | None]:
    """The request id (the caller's valid X-Request-ID, else a fresh one) and the caller's `traceparent`."""
    request_id: str | None = None
    parent: str | None = None
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and request_id is None:
            text: str = value.decode("latin-1")
            request_id = text if _REQUEST_ID.match(text) else ""
        elif name == b"traceparent":
            parent = value.decode("latin-1")
    return request_id or uuid4().hex, parent


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


_HTML_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


def security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers every answer gets (`nosniff`), and HTML pages besides: never framed (clickjacking), no
    referrer leaving the intranet, not kept in shared caches."""
    names = {name.lower() for name, _ in headers}
    added = [] if b"x-content-type-options" in names else [(b"x-content-type-options", b"nosniff")]
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if content_type.lower().startswith(b"text/html"):
        added.extend(header for header in _HTML_HEADERS if header[0] not in names)
    return added
