"""Mounting the ruleset lifecycle on the app: its router, its error mapping and its role checks.

Lifecycle errors leave as `{"code", "message", "details"}` like every other error: not found → 404,
authoring errors and failing cases → 422 (details: the positioned errors / the failing cases), four-eyes
and not-the-author → 403, wrong state or a stale draft → 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from api.errors import error_response
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
