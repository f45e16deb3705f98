"""Mounting the ruleset lifecycle on the app: its router and its error mapping.

Lifecycle errors leave as `{"code", "message", "details"}` like every other error: not found → 404,
authoring errors and failing cases → 422 (details: the positioned errors / the failing cases), four-eyes
and not-the-author → 403, wrong state or a stale draft → 409.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from api.errors import respond_error
from api.routes import calendars, rulesets
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
from rulesvc.lifecycle.build import Lifecycle

_STATUS: dict[type[LifecycleError], int] = {
    NotFoundError: 404,
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
}


def install_lifecycle(app: FastAPI, lifecycle: Lifecycle) -> None:
    app.state.lifecycle = lifecycle
    app.include_router(rulesets.router)
    app.include_router(calendars.router)

    @app.exception_handler(LifecycleError)
    async def _lifecycle_error(request: Request, exc: LifecycleError) -> Response:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 422)
        return respond_error(request, status, exc.code, exc.message, exc.details)
