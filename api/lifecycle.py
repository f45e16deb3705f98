"""Mounting the ruleset lifecycle on the app: its router, its error mapping and its role checks.

Lifecycle errors leave as `{"code", "message", "details"}` like every other error: not found → 404,
authoring errors and failing cases → 422 (details: the positioned errors / the failing cases), four-eyes
and not-the-author → 403, wrong state or a stale draft → 409.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.errors import ApiError, error_response
from rulesvc.apikeys import Principal
from rulesvc.lifecycle import (
    BadRequestError,
    CasesFailedError,
    ForbiddenError,
    FourEyesError,
    InvalidDraftError,
    LifecycleError,
    NoChangeError,
    NotFoundError,
    StaleDraftError,
    StateError,
)
from rulesvc.lifecycle.build import Lifecycle
from rulesvc.lifecycle.roles import RulesetPermission, may

_STATUS: dict[type[LifecycleError], int] = {
    NotFoundError: 404,
    InvalidDraftError: 422,
    CasesFailedError: 422,
    NoChangeError: 422,
    BadRequestError: 422,
    FourEyesError: 403,
    ForbiddenError: 403,
    StateError: 409,
    StaleDraftError: 409,
}


def install_lifecycle(app: FastAPI, lifecycle: Lifecycle) -> None:
    from api.routes import rulesets

    app.state.lifecycle = lifecycle
    app.include_router(rulesets.router)
    _add_body_models(app)

    @app.exception_handler(LifecycleError)
    async def _lifecycle_error(request: Request, exc: LifecycleError) -> Response:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 422)
        request.scope["rulesvc.error_code"] = exc.code
        return error_response(status, exc.code, exc.message, exc.details)


def _add_body_models(app: FastAPI) -> None:
    """Add the models of bodies the lifecycle routes parse themselves to the OpenAPI components."""
    from api.routes.rulesets import BODY_MODELS

    previous = app.openapi

    def openapi() -> dict[str, Any]:
        schema = previous()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in BODY_MODELS:
            if model.__name__ not in components:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in model_schema.pop("$defs", {}).items():
                    components.setdefault(name, definition)
                components[model.__name__] = model_schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def lifecycle_of(request: Request) -> Lifecycle:
    lifecycle: Lifecycle = request.app.state.lifecycle
    return lifecycle


_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer rsk_...`")
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def require_ruleset(permission: RulesetPermission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting keys whose roles grant `permission` (401 without a valid key, 403 otherwise)."""

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Principal:
        if credentials is None or not credentials.credentials:
            raise ApiError(
                401, "unauthorized", "缺少 API 密钥（Authorization: Bearer ...）", None, _UNAUTHORIZED
            )
        service = request.app.state.runtime.service
        hit, principal = service.cached_principal(credentials.credentials)
        if not hit:
            principal = await run_in_threadpool(service.authenticate, credentials.credentials)
        if principal is None:
            raise ApiError(401, "unauthorized", "API 密钥无效或已吊销", None, _UNAUTHORIZED)
        if not may(principal.roles, permission):
            raise ApiError(
                403,
                "forbidden",
                f"当前角色无权执行此操作（需要 {permission.value}）",
                {"permission": permission.value, "roles": sorted(principal.roles)},
            )
        request.scope["rulesvc.key_id"] = principal.key_id
        return principal

    return dependency
