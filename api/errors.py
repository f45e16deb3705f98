"""Every error leaves as `{"code", "message", "details"}` with a 4xx status; nothing leaks a stack trace.

Core errors are mapped here (the one place that knows both sides): InvalidEventError → 422,
IdempotencyConflictError → 409, DecisionNotFoundError → 404; request validation → 422 with field paths;
an unreachable database → 503. Anything unexpected is logged with its traceback and answered with a bare
500 `internal_error` carrying only the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.context import request_id_var
from api.responses import JSONBytes
from rulesvc.audit.checkpoints import CheckpointError
from rulesvc.audit.evidence import ChainRolledBackError, EvidenceError
from rulesvc.decisions.service import DecisionNotFoundError, IdempotencyConflictError
from rulesvc.errors import InvalidEventError
from rulesvc.masking import default_policy

log = logging.getLogger("rulesvc.api")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """The contract's error body; the request id is in the `X-Request-ID` header of every answer, and in
    the details of every 5xx (`request_id`), for support and logs."""
    return JSONBytes(
        {"code": code, "message": message, "details": details}, status_code=status, headers=headers
    )


def validation_details(errors: Sequence[Any], skip_prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """pydantic errors → [{"path": "ticket.kind", "message", "type"}] (paths as dotted field names)."""
    details = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in skip_prefix:
            loc = loc[1:]
        details.append(
            {"path": ".".join(loc), "message": str(error.get("msg", "")), "type": error.get("type", "")}
        )
    return details


ERROR_CODE_KEY = "rulesvc.error_code"


def respond_error(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    request.scope[ERROR_CODE_KEY] = code
    return error_response(status, code, message, details, headers)


def field_error(request: Request, exc: Any) -> Response:
    """422 for an error naming the field at fault (`exc.path`) with its stable `exc.code`."""
    message = str(exc)
    return respond_error(
        request, 422, exc.code, message, [{"path": exc.path, "message": message, "type": exc.code}]
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return respond_error(request, exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> Response:
        details = validation_details(exc.errors(), skip_prefix=("body",))
        return respond_error(request, 422, "invalid_request", "请求参数不合法", details)

    @app.exception_handler(ValidationError)
    async def _model_validation(request: Request, exc: ValidationError) -> Response:
        details = validation_details(exc.errors(include_url=False))
        return respond_error(request, 422, "invalid_request", "请求内容不合法", details)

    @app.exception_handler(InvalidEventError)
    async def _invalid_event(request: Request, exc: InvalidEventError) -> Response:
        details = [problem.to_json() for problem in exc.problems]
        return respond_error(request, 422, exc.code, str(exc), details)

    @app.exception_handler(IdempotencyConflictError)
    async def _conflict(request: Request, exc: IdempotencyConflictError) -> Response:
        # The event id may carry personal data: the body names it masked.
        masked = default_policy().mask_text
        details = {"event_id": masked(exc.event_id), "decision_id": exc.decision_id}
        return respond_error(request, 409, exc.code, masked(str(exc)), details)

    @app.exception_handler(DecisionNotFoundError)
    async def _not_found(request: Request, exc: DecisionNotFoundError) -> Response:
        return respond_error(request, 404, "not_found", str(exc), {"decision_id": exc.decision_id})

    @app.exception_handler(EvidenceError)
    async def _evidence(request: Request, exc: EvidenceError) -> Response:
        return respond_error(
            request, 503, exc.code, str(exc), {**exc.details(), "request_id": request_id_var.get()}
        )

    @app.exception_handler(ChainRolledBackError)
    async def _rolled_back(request: Request, exc: ChainRolledBackError) -> Response:
        log.error("integrity: %s", exc)
        details = {"head_seq": exc.head_seq, "known_seq": exc.known_seq, "request_id": request_id_var.get()}
        return respond_error(request, 503, exc.code, str(exc), details)

    @app.exception_handler(CheckpointError)
    async def _checkpoint(request: Request, exc: CheckpointError) -> Response:
        status = 409 if exc.code in ("audit.chain_broken", "audit.chain_rolled_back") else 503
        if status == 409:
            log.error("integrity: %s", exc)
        details = {"request_id": request_id_var.get()} if status == 503 else None
        return respond_error(request, status, exc.code, str(exc), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code if 400 <= exc.status_code < 600 else 400
        code = _STATUS_CODES.get(status, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return respond_error(request, status, code, message, None, dict(exc.headers or {}) or None)

    @app.exception_handler(SqlTimeoutError)
    async def _pool_exhausted(request: Request, exc: SqlTimeoutError) -> Response:
        log.error("database connection pool exhausted (database not answering?): %s", exc)
        return respond_error(
            request, 503, "unavailable", "数据库暂不可用，请稍后重试", {"request_id": request_id_var.get()}
        )

    @app.exception_handler(OperationalError)
    async def _db_unavailable(request: Request, exc: OperationalError) -> Response:
        log.error("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
        return respond_error(
            request, 503, "unavailable", "数据库暂不可用，请稍后重试", {"request_id": request_id_var.get()}
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> Response:
        log.exception("database error")
        return respond_error(
            request, 500, "internal_error", "服务内部错误", {"request_id": request_id_var.get()}
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return respond_error(
            request, 500, "internal_error", "服务内部错误", {"request_id": request_id_var.get()}
        )
