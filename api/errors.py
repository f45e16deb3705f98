"""Every error leaves as `{"code", "message", "details"}` with a 4xx status; nothing leaks a stack trace.

Core errors are mapped here, the one place that knows both sides: `ERROR_STATUS` is the only table from a
core error (its class, or its class and code) to an HTTP status; request validation → 422 with field paths;
an unreachable database → 503. Anything unexpected (a core error the table does not name included) is
logged with its traceback and answered with a bare 500 `internal_error` carrying only the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg.errors import QueryCanceled
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.context import request_id_var
from api.responses import JSONBytes
from rulesvc import exactjson
from rulesvc.audit.checkpoints import CheckpointError
from rulesvc.audit.evidence import ChainRolledBackError, EvidenceError
from rulesvc.datakeys import DataKeyError
from rulesvc.decisions.search import InvalidSearchError
from rulesvc.decisions.service import DecisionNotFoundError, IdempotencyConflictError
from rulesvc.delivery.service import (
    DeliveryNotFoundError,
    InvalidSubscriptionError,
    SubscriptionNotFoundError,
)
from rulesvc.errors import InvalidEventError, RuleRuntimeError, RulesvcError
from rulesvc.lifecycle import (
    BadRequestError,
    CasesFailedError,
    ForbiddenError,
    FourEyesError,
    GapsNotAcceptedError,
    GapsUnexplainedError,
    InvalidDraftError,
    LifecycleError,
    NoChangeError,
    NotFoundError,
    StaleDraftError,
    StateError,
)
from rulesvc.masking import default_policy
from rulesvc.people.errors import (
    DisabledError,
    GrantMismatchError,
    InvalidCredentialsError,
    KeyNotActiveError,
    LockedError,
    OidcError,
    OidcNoRoleError,
    OidcNotConfiguredError,
    OidcProviderError,
    PeopleError,
    SelfLockoutError,
    SessionExpiredError,
    TotpRequiredError,
    UsernameTakenError,
)
from rulesvc.people.errors import NotFoundError as PeopleNotFoundError
from rulesvc.sla.reports import InvalidReportError
from rulesvc.testreport.pdf_file import PdfUnavailableError

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


ERROR_STATUS: dict[type[RulesvcError] | tuple[type[RulesvcError], str], int] = {
    InvalidEventError: 422,
    RuleRuntimeError: 422,  # the ruleset failed on this event: nothing stored, retry once it is fixed
    IdempotencyConflictError: 409,
    DecisionNotFoundError: 404,
    InvalidSubscriptionError: 422,
    InvalidReportError: 422,
    InvalidSearchError: 422,
    SubscriptionNotFoundError: 404,
    DeliveryNotFoundError: 404,
    EvidenceError: 503,
    DataKeyError: 503,  # a clear input that cannot be decrypted: its key is missing from the keyring
    ChainRolledBackError: 503,
    (CheckpointError, "audit.chain_broken"): 409,
    (CheckpointError, "audit.chain_rolled_back"): 409,
    CheckpointError: 503,
    NotFoundError: 404,
    PdfUnavailableError: 406,
    InvalidDraftError: 422,
    CasesFailedError: 422,
    GapsUnexplainedError: 422,
    GapsNotAcceptedError: 422,
    NoChangeError: 422,
    BadRequestError: 422,
    FourEyesError: 403,
    ForbiddenError: 403,
    StateError: 409,
    StaleDraftError: 409,
    LifecycleError: 422,
    PeopleNotFoundError: 404,
    UsernameTakenError: 409,
    SelfLockoutError: 409,
    InvalidCredentialsError: 401,
    TotpRequiredError: 401,
    SessionExpiredError: 401,
    DisabledError: 403,
    (GrantMismatchError, "people.grant_mismatch"): 409,
    GrantMismatchError: 401,
    LockedError: 423,
    KeyNotActiveError: 409,
    OidcNotConfiguredError: 404,
    OidcProviderError: 502,
    OidcNoRoleError: 403,
    (OidcError, "auth.oidc.state"): 400,
    (OidcError, "auth.oidc.denied"): 401,
    (OidcError, "auth.oidc.conflict"): 409,
    OidcError: 401,
    PeopleError: 422,
}
"""The one table from core errors to HTTP statuses. An error takes the entry of its nearest class (with its
`code` first, then alone): a new subclass inherits its parent's status. A core error missing here is a 500."""


def status_of(exc: RulesvcError) -> int | None:
    for cls in type(exc).__mro__:
        status = ERROR_STATUS.get((cls, exc.code)) or ERROR_STATUS.get(cls)
        if status is not None:
            return status
    return None


def _details(exc: RulesvcError) -> Any:
    """What a client needs to act on a core error, beside its code and message."""
    if isinstance(exc, InvalidEventError):
        return [problem.to_json() for problem in exc.problems]
    if isinstance(exc, RuleRuntimeError):
        return exc.to_json()
    if isinstance(exc, IdempotencyConflictError):
        return {"event_id": default_policy().mask_text(exc.event_id), "decision_id": exc.decision_id}
    if isinstance(exc, DecisionNotFoundError):
        return {"decision_id": exc.decision_id}
    if isinstance(exc, InvalidSubscriptionError | InvalidReportError | InvalidSearchError):
        return [{"path": exc.path, "code": exc.code, "message": str(exc)}]
    if isinstance(exc, SubscriptionNotFoundError):
        return {"subscription_id": exc.subscription_id}
    if isinstance(exc, DeliveryNotFoundError):
        return {"delivery_id": exc.delivery_id}
    if isinstance(exc, EvidenceError):
        return exc.details()
    if isinstance(exc, ChainRolledBackError):
        return {"head_seq": exc.head_seq, "known_seq": exc.known_seq}
    if isinstance(exc, LifecycleError | PeopleError):
        return exc.details
    return None


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


_PYDANTIC_MESSAGES: dict[str, str] = {
    "missing": "缺少必填字段",
    "extra_forbidden": "未知字段（不接受）",
    "string_type": "应为字符串",
    "string_too_short": "字符串太短",
    "string_too_long": "字符串太长",
    "string_pattern_mismatch": "格式不正确",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "decimal_type": "应为数字",
    "decimal_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "datetime_type": "应为带时区的 ISO 8601 时间，如 2026-09-30T17:00:00+08:00",
    "datetime_parsing": "应为带时区的 ISO 8601 时间，如 2026-09-30T17:00:00+08:00",
    "datetime_from_date_parsing": "应为带时区的 ISO 8601 时间，如 2026-09-30T17:00:00+08:00",
    "timezone_aware": "时间必须带时区偏移，如 2026-09-30T17:00:00+08:00",
    "date_type": "应为日期 YYYY-MM-DD",
    "date_parsing": "应为日期 YYYY-MM-DD",
    "date_from_datetime_parsing": "应为日期 YYYY-MM-DD",
    "greater_than": "数值太小",
    "greater_than_equal": "数值太小",
    "less_than": "数值太大",
    "less_than_equal": "数值太大",
    "too_short": "项数太少",
    "too_long": "项数太多",
    "url_parsing": "应为合法的 URL",
    "url_scheme": "URL 协议不被接受",
    "json_invalid": "不是合法的 JSON",
    "value_error": "取值不合法",
}


def validation_details(errors: Sequence[Any], skip_prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """pydantic errors → the contract's `[{"path": "ticket.kind", "code": "validation.missing", "message"}]`:
    dotted paths, a stable code from pydantic's error type, a Chinese message (pydantic's English text is
    kept after it only where no Chinese one is known, e.g. a validator's own message)."""
    details = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in skip_prefix:
            loc = loc[1:]
        kind = str(error.get("type", "")) or "invalid"
        message = _PYDANTIC_MESSAGES.get(kind)
        english = str(error.get("msg", ""))
        if message is None or kind == "value_error":
            message = f"取值不合法：{english.removeprefix('Value error, ')}"
        context = error.get("ctx") or {}
        if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            bound = next(iter(context.values()), None)
            word = {"greater_than": "大于", "greater_than_equal": "不小于", "less_than": "小于"}.get(
                kind, "不大于"
            )
            if bound is not None:
                message = f"应{word} {bound}"
        if kind in ("literal_error", "enum") and "expected" in context:
            message = f"取值应为 {context['expected']}"
        details.append({"path": ".".join(loc), "code": f"validation.{kind}", "message": message})
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


def _rule_error(request: Request, exc: RuleRuntimeError) -> None:
    """A ruleset failed on an event: logged (values masked: they may carry personal data) and counted by
    ruleset in `rulesvc_rule_errors_total`."""
    log.warning(
        "rule error %s in %s v%s %s at %s: %s",
        exc.code,
        exc.ruleset,
        exc.version,
        exc.rule,
        exc.location,
        exactjson.dumps(default_policy().mask(exc.values)),
    )
    metrics = getattr(getattr(request.app.state, "runtime", None), "metrics", None)
    if metrics is not None:
        metrics.rule_errors.labels(exc.ruleset, exc.code).inc()


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

    @app.exception_handler(RulesvcError)
    async def _core_error(request: Request, exc: RulesvcError) -> Response:
        status = status_of(exc)
        if status is None:
            return _internal_error(request, exc)
        if isinstance(exc, ChainRolledBackError) or (isinstance(exc, CheckpointError) and status == 409):
            log.error("integrity: %s", exc)
        if isinstance(exc, RuleRuntimeError):
            _rule_error(request, exc)
        message = (
            exc.message if isinstance(exc, LifecycleError | RuleRuntimeError | PeopleError) else str(exc)
        )
        details = _details(exc)
        if isinstance(exc, IdempotencyConflictError):
            message = default_policy().mask_text(message)  # the event id may carry personal data
        if status >= 500:
            details = {**(details or {}), "request_id": request_id_var.get()}
        return respond_error(request, status, exc.code, message, details)

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
        if isinstance(exc.orig, QueryCanceled):  # the statement timeout (`db_statement_timeout`)
            log.warning("statement cancelled: %s %s", request.method, request.url.path)
            return respond_error(
                request,
                503,
                "query_timeout",
                "查询超过数据库语句时限被取消：请缩短区间或加筛选后重试",
                {"request_id": request_id_var.get()},
            )
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
        return _internal_error(request, exc)


def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return respond_error(request, 500, "internal_error", "服务内部错误", {"request_id": request_id_var.get()})
