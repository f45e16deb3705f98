"""Sign-in for people: `POST /v1/auth/login` (username, password, TOTP code when enrolled) sets the session
cookie (HttpOnly, SameSite, Secure when configured) and a CSRF cookie the page echoes in `X-CSRF-Token`;
`POST /v1/auth/logout`; `GET /v1/auth/me` (session or key); TOTP enrolment and password change for the
signed-in person. A thin layer over `rulesvc.people.signin.SignIn`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import CSRF_COOKIE, SESSION_COOKIE, json_body, limit_signin, require_signed_in, runtime
from api.responses import JSONBytes
from api.schemas import ErrorOut
from rulesvc.apikeys import Principal
from rulesvc.people.model import shown
from rulesvc.people.signin import NewSession, SignIn
from rulesvc.settings import Settings

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=200, description="登录名")
    password: SecretStr = Field(description="密码；从不记录、从不返回")
    totp: str | None = Field(default=None, max_length=10, description="动态验证码（已绑定验证器时必填）")


class TotpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    totp: str = Field(min_length=6, max_length=10, description="验证器当前显示的 6 位数字")


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current: SecretStr
    new: SecretStr = Field(description="新密码，至少 10 个字符")


BODY_MODELS: list[type[BaseModel]] = [LoginIn, TotpIn, PasswordIn]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "用户名或密码错误 / 需要动态验证码 / 会话无效"},
    403: {"model": ErrorOut, "description": "账户已停用；或缺少 CSRF 令牌"},
    413: {"model": ErrorOut, "description": "请求体过大"},
    415: {"model": ErrorOut, "description": "请求体不是 JSON"},
    422: {"model": ErrorOut, "description": "请求不合法（字段缺失、多余字段、验证码不正确、新密码太短）"},
    423: {"model": ErrorOut, "description": "连续失败次数过多，账户暂时锁定"},
    429: {
        "model": ErrorOut,
        "description": "来自此地址的登录尝试过于频繁（auth.rate_limited，见 Retry-After）",
    },
}


def signin(request: Request) -> SignIn:
    service = runtime(request).signin
    assert service is not None
    return service


@router.post(
    "/v1/auth/login",
    summary="登录（本地账户）：成功后设置会话 Cookie",
    description="会话 Cookie 为 HttpOnly、SameSite；之后修改类请求须在 `X-CSRF-Token` 头带上返回的 `csrf_token`。",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoginIn"}}},
        }
    },
)
async def login(request: Request) -> Response:
    body = LoginIn.model_validate(await json_body(request))
    limit_signin(request)
    service = signin(request)
    created = await run_in_threadpool(
        service.login, body.username, body.password.get_secret_value(), body.totp
    )
    settings = runtime(request).settings
    answer = JSONBytes(
        {
            **created.user.to_json(),
            "csrf_token": created.record.csrf_token,
            "expires_at": shown(created.record.expires_at),
            "idle_timeout_seconds": int(service.policy.idle.total_seconds()),
        }
    )
    set_session_cookies(answer, created, settings, service)
    return answer


def set_session_cookies(answer: Response, created: NewSession, settings: Settings, service: SignIn) -> None:
    """The session cookie (HttpOnly) and the CSRF cookie the page reads, for a local or an OIDC sign-in."""
    common: dict[str, Any] = {
        "max_age": int(service.policy.absolute.total_seconds()),
        "path": "/",
        "secure": settings.session_cookie_secure,
        "samesite": settings.session_cookie_samesite,
    }
    answer.set_cookie(SESSION_COOKIE, created.token, httponly=True, **common)
    answer.set_cookie(CSRF_COOKIE, created.record.csrf_token, httponly=False, **common)


@router.post(
    "/v1/auth/logout",
    summary="退出登录（会话立即失效）",
    description=(
        "通过单点登录进入的人，答复里另有 `provider_logout_url`：把浏览器带到这个地址，身份提供方也退出登录"
        "（否则同一浏览器下次单点登录无需再输入密码）。"
    ),
    responses=_ERRORS,
)
async def logout(request: Request, principal: Principal = Depends(require_signed_in)) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(signin(request).logout, token)
    body: dict[str, Any] = {"signed_out": True}
    oidc = runtime(request).oidc
    if token and oidc is not None and principal.session_id:
        provider = await run_in_threadpool(oidc.logout_url, principal.principal_id)
        if provider is not None:
            body["provider_logout_url"] = provider
    answer = JSONBytes(body)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    answer.delete_cookie(CSRF_COOKIE, path="/")
    return answer


@router.get("/v1/auth/me", summary="当前身份（会话或 API 密钥）", responses=_ERRORS)
async def me(request: Request, principal: Principal = Depends(require_signed_in)) -> dict[str, Any]:
    people = runtime(request).people
    assert people is not None
    record = (
        await run_in_threadpool(people.store.get_principal, principal.principal_id)
        if principal.principal_id
        else None
    )
    return {
        **(record.to_json() if record is not None else {"user_id": None, "name": principal.label}),
        "roles": sorted(principal.roles),
        "via": "session" if principal.session_id else "key",
        "key_id": principal.key_id or None,
        "actor": principal.actor,
    }


@router.post(
    "/v1/auth/totp/setup",
    summary="绑定动态验证码：生成密钥（确认前不生效）",
    responses=_ERRORS,
)
async def totp_setup(request: Request, principal: Principal = Depends(require_signed_in)) -> dict[str, str]:
    return await run_in_threadpool(signin(request).begin_totp, principal.principal_id)


@router.post(
    "/v1/auth/totp/enable",
    summary="绑定动态验证码：输入验证器显示的数字确认，之后登录须带 totp",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TotpIn"}}},
        }
    },
)
async def totp_enable(request: Request, principal: Principal = Depends(require_signed_in)) -> dict[str, bool]:
    body = TotpIn.model_validate(await json_body(request))
    await run_in_threadpool(signin(request).enable_totp, principal.principal_id, body.totp, principal.actor)
    return {"totp": True}


@router.post(
    "/v1/auth/password",
    summary="修改自己的密码（例如首次登录后替换一次性密码）",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PasswordIn"}}},
        }
    },
)
async def change_password(
    request: Request, principal: Principal = Depends(require_signed_in)
) -> dict[str, bool]:
    body = PasswordIn.model_validate(await json_body(request))
    await run_in_threadpool(
        signin(request).change_password,
        principal.principal_id,
        body.current.get_secret_value(),
        body.new.get_secret_value(),
        principal.actor,
    )
    return {"changed": True}
