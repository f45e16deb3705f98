"""Single sign-on (OIDC authorization-code flow with PKCE): `GET /v1/auth/oidc/login` sends the browser to
the bank's identity provider, `GET /v1/auth/oidc/callback` takes it back and sets the same session cookies
as a local sign-in; `GET /v1/admin/oidc/check` (role admin) says what is wrong with the settings. A thin
layer over `rulesvc.people.oidc.OidcSignIn`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from api.deps import limit_signin, require, runtime
from api.routes.auth import set_session_cookies
from api.schemas import ErrorOut
from rulesvc.apikeys import Permission, Principal
from rulesvc.people.errors import OidcNotConfiguredError
from rulesvc.people.oidc import OidcSignIn

router = APIRouter(tags=["auth"])

STATE_COOKIE = "rulesvc_oidc_state"
STATE_PATH = "/v1/auth/oidc"


def oidc(request: Request) -> OidcSignIn:
    service = runtime(request).oidc
    if service is None:
        raise OidcNotConfiguredError()
    return service


@router.get(
    "/v1/auth/oidc/login",
    summary="单点登录：跳转到身份提供方（OIDC 授权码 + PKCE）",
    description="登录成功后回到 `next`（本服务内的路径；默认 RULESVC_OIDC_AFTER_LOGIN_URL）。",
    status_code=302,
    responses={
        302: {"description": "跳转到身份提供方的登录页"},
        404: {"model": ErrorOut, "description": "未配置单点登录"},
        429: {"model": ErrorOut, "description": "登录尝试过于频繁（auth.rate_limited）"},
        502: {"model": ErrorOut, "description": "无法连接身份提供方"},
    },
)
async def oidc_login(
    request: Request, next: str | None = Query(default=None, max_length=500, description="登录后去往的路径")
) -> Response:
    service = oidc(request)
    limit_signin(request)
    url, state = await run_in_threadpool(service.begin, next)
    answer = RedirectResponse(url, status_code=302)
    answer.set_cookie(
        STATE_COOKIE,
        state,
        max_age=600,
        path=STATE_PATH,
        httponly=True,
        secure=runtime(request).settings.session_cookie_secure,
        samesite="lax",
    )
    return answer


@router.get(
    "/v1/auth/oidc/callback",
    summary="单点登录：身份提供方回调（校验 state、nonce 与 ID 令牌，设置会话 Cookie）",
    status_code=303,
    responses={
        303: {"description": "登录成功：设置会话 Cookie，跳转到登录前请求的页面"},
        400: {"model": ErrorOut, "description": "state 不符、已用过或已过期"},
        401: {"model": ErrorOut, "description": "授权码或 ID 令牌不可接受；nonce 不符；用户在身份提供方取消"},
        403: {"model": ErrorOut, "description": "没有映射到任何角色；或账户已停用"},
        404: {"model": ErrorOut, "description": "未配置单点登录"},
        502: {"model": ErrorOut, "description": "无法连接身份提供方"},
    },
)
async def oidc_callback(
    request: Request,
    state: str | None = Query(default=None, max_length=200),
    code: str | None = Query(default=None, max_length=2000),
    error: str | None = Query(default=None, max_length=200),
    error_description: str | None = Query(default=None, max_length=1000),
) -> Response:
    service = oidc(request)
    created, next_url = await run_in_threadpool(
        service.finish, request.cookies.get(STATE_COOKIE), state, code, error, error_description
    )
    answer = RedirectResponse(next_url, status_code=303)
    answer.delete_cookie(STATE_COOKIE, path=STATE_PATH)
    set_session_cookies(answer, created, runtime(request).settings, service.signin)
    return answer


@router.get(
    "/v1/admin/oidc/check",
    tags=["admin"],
    summary="检查单点登录（OIDC）设置：读取发现文档和签名公钥，列出问题（中文，带代码）",
    responses={
        401: {"model": ErrorOut, "description": "缺少或无效的 API 密钥 / 会话"},
        403: {"model": ErrorOut, "description": "需要 admin 角色"},
    },
)
async def oidc_check(
    request: Request, _principal: Principal = Depends(require(Permission.PEOPLE_ADMIN))
) -> dict[str, Any]:
    settings = runtime(request).settings
    service = runtime(request).oidc
    if service is None:
        return {
            "ok": False,
            "issuer": settings.oidc_issuer,
            "problems": [
                {
                    "code": "oidc.not_configured",
                    "level": "error",
                    "message": OidcNotConfiguredError().message,
                }
            ],
        }
    problems = await run_in_threadpool(service.check)
    return {
        "ok": not any(p.level == "error" for p in problems),
        "issuer": service.config.issuer,
        "client_id": service.config.client_id,
        "redirect_url": service.config.redirect_url,
        "problems": [p.to_json() for p in problems],
    }
