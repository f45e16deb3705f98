"""Mounting the ruleset and calendar lifecycle on the app.

Lifecycle errors leave through the app's one error table (api/errors.py) like every other error: not found
→ 404, authoring errors and failing cases → 422 (details: the positioned errors / the failing cases),
four-eyes and not-the-author → 403, wrong state or a stale draft → 409.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.routes import calendars, rulesets, sheets
from rulesvc.wiring.lifecycle import Lifecycle


def install_lifecycle(app: FastAPI, lifecycle: Lifecycle) -> None:
    app.state.lifecycle = lifecycle
    app.include_router(rulesets.router)
    app.include_router(sheets.router)
    app.include_router(calendars.router)
