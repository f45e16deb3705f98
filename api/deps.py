"""Dependencies shared by the routers: the app's runtime objects, authentication, JSON bodies."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.metrics import Metrics
from rulesvc import exactjson
from rulesvc.apikeys import Permission, Principal
from rulesvc.decisions.service import DecisionService
from rulesvc.opsstate import OpsStatus
from rulesvc.people.errors import PeopleError
from rulesvc.people.oidc import OidcSignIn
from rulesvc.people.ratelimit import RateLimiter
from rulesvc.people.service import PeopleService
from rulesvc.people.signin import SignIn
from rulesvc.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    service: DecisionService
    metrics: Metrics
    engine: Engine
    redis: Any | None = None
    people: PeopleService | None = None
    signin: SignIn | None = None
    oidc: OidcSignIn | None = None
    signin_limiter: RateLimiter | None = None
    """Sign-in attempts per client address (local and single sign-on)."""
    key_limiter: RateLimiter | None = None
    """Invalid API keys per client address."""
    ops: OpsStatus | None = None
    """Shared operational status (the last verify result is recorded there for `/metrics`)."""


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer rsk_...`")
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}
SESSION_COOKIE = "rulesvc_session"
CSRF_COOKIE = "rulesvc_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting keys whose roles grant `permission` (401 without a valid key, 403 otherwise)."""

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Principal:
        return await authorize(request, credentials.credentials if credentials else None, permission)

    return dependency


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>` (what HTTPBearer reads), for routes without DI."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def require_signed_in(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """A dependency admitting any valid key or session, whatever its roles."""
    return await authorize(request, credentials.credentials if credentials else None, None)


async def authorize(request: Request, key: str | None, permission: Permission | None) -> Principal:
    """The caller of a bearer key or, without one, of the session cookie (state-changing requests made
    with a session must echo its CSRF token in `X-CSRF-Token`); 401/403 otherwise."""
    if not key:
        principal = await _session_principal(request)
    else:
        rt = runtime(request)
        service = rt.service
        hit, found = service.cached_principal(key)
        limiter = rt.key_limiter
        address = client_address(request)
        known_good = hit and found is not None
        # over the limit: an unknown key is refused (hit() records the trip once)
        if limiter is not None and not known_good and limiter.retry_after(address) is not None:
            _refuse_when_limited(limiter.hit(address), "auth.too_many_invalid_keys")
        if not hit:
            found = await run_in_threadpool(service.authenticate, key)
        if found is None:
            if limiter is not None:
                _refuse_when_limited(limiter.hit(address), "auth.too_many_invalid_keys")
            raise ApiError(401, "unauthorized", "API 密钥无效或已吊销", None, _UNAUTHORIZED_HEADERS)
        principal = found
    if permission is not None and not principal.may(permission):
        raise ApiError(
            403,
            "forbidden",
            f"当前角色无权执行此操作（需要 {permission.value}）",
            {"permission": permission.value, "roles": sorted(principal.roles)},
        )
    request.scope["rulesvc.key_id"] = principal.key_id or f"session:{principal.session_id}"
    return principal


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy: run uvicorn with --proxy-headers)."""
    return request.client.host if request.client is not None else "unknown"


_LIMIT_MESSAGES = {
    "auth.rate_limited": "登录尝试过于频繁，请 {wait} 秒后再试",
    "auth.too_many_invalid_keys": "来自此地址的无效 API 密钥过多，请 {wait} 秒后再试",
}


def _refuse_when_limited(wait: int | None, code: str) -> None:
    if wait is not None:
        raise ApiError(
            429,
            code,
            _LIMIT_MESSAGES[code].format(wait=wait),
            {"retry_after": wait},
            {"Retry-After": str(wait)},
        )


def limit_signin(request: Request) -> None:
    """Count a sign-in attempt from the caller's address; 429 `auth.rate_limited` past the limit."""
    limiter = runtime(request).signin_limiter
    if limiter is not None:
        _refuse_when_limited(limiter.hit(client_address(request)), "auth.rate_limited")


async def _session_principal(request: Request) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    signin = runtime(request).signin
    if not token or signin is None:
        raise ApiError(
            401,
            "unauthorized",
            "缺少 API 密钥（Authorization: Bearer ...）",
            None,
            _UNAUTHORIZED_HEADERS,
        )
    try:
        record, principal = await run_in_threadpool(signin.session, token)
    except PeopleError as exc:
        raise ApiError(401, exc.code, exc.message, exc.details, _UNAUTHORIZED_HEADERS) from None
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), record.csrf_token.encode()):
            raise ApiError(
                403,
                "auth.csrf",
                f"缺少或错误的 CSRF 令牌：用登录会话修改数据时须在 {CSRF_HEADER} 头带上登录时返回的 csrf_token",
                {"header": CSRF_HEADER},
            )
    return principal


async def json_body(request: Request) -> Any:
    """The request body as JSON: 415 unless JSON, 413 past the size limit (middleware), 422 when malformed,
    not UTF-8, or nested deeper than `max_json_depth`."""
    content_type = request.headers.get("content-type", "")
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise ApiError(
            415,
            "unsupported_media_type",
            "请求体必须是 JSON（Content-Type: application/json）",
            {"content_type": content_type},
        )
    charset = params.partition("charset=")[2].strip().strip('"').lower()
    if charset and charset not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_media_type", "JSON 请求体必须使用 UTF-8 编码", {"charset": charset})
    raw = await request.body()
    if not raw:
        raise ApiError(
            422,
            "invalid_request",
            "请求体为空",
            [{"path": "", "code": "validation.missing", "message": "缺少请求体"}],
        )
    try:
        data = exactjson.loads(raw)
    except RecursionError:
        limit = runtime(request).settings.max_json_depth
        raise ApiError(
            422, "malformed_json", f"JSON 嵌套过深（最多 {limit} 层）", {"max_depth": limit}
        ) from None
    except UnicodeDecodeError as bad:
        raise ApiError(422, "invalid_encoding", "请求体不是合法的 UTF-8", {"position": bad.start}) from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            422,
            "malformed_json",
            f"JSON 格式错误：{exc.msg}",
            {"line": exc.lineno, "col": exc.colno, "position": exc.pos},
        ) from None
    except exactjson.DuplicateKeyError as exc:
        message = f"JSON 对象中的键 {exc.path} 出现了不止一次"
        raise ApiError(
            422,
            "event.invalid",
            message,
            [{"path": exc.path, "code": "validation.duplicate_key", "message": message}],
        ) from None
    except exactjson.NotANumberError as exc:
        message = f"{exc.text} 不是 JSON 数字"
        raise ApiError(
            422,
            "malformed_json",
            message,
            [{"path": "", "code": "validation.not_a_number", "message": message}],
        ) from None
    limit = runtime(request).settings.max_json_depth
    if _depth_exceeds(data, limit):
        raise ApiError(422, "too_deep", f"JSON 嵌套超过 {limit} 层", {"max_depth": limit})
    return data


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item)
    return False
