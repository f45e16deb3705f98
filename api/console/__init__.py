"""The web console for people (`/console/`, Chinese): server-rendered pages (Jinja2) over the same use
cases the HTTP API calls, with small vanilla JavaScript for the grid and the buttons. Every asset is served
from `api/console/static/` by the service itself (no CDN). docs/console.md says how to add a page."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from api.console import (
    calendars_audit,
    cases,
    decisions,
    drafts,
    editor,
    placeholders,
    reports,
    rulesets,
    signin,
    webhooks,
)
from api.console.pages import BASE, STATIC


def install_console(app: FastAPI) -> None:
    """Mount the console's pages and its static assets (`/console/static/...`)."""
    app.mount(f"{BASE}/static", StaticFiles(directory=str(STATIC)), name="console-static")
    for module in (signin, rulesets, drafts, editor, cases, decisions, reports, calendars_audit, webhooks):
        app.include_router(module.router)
    for module in (drafts, editor, cases):
        app.include_router(module.api_router)
    # last: a page a module above serves wins over its placeholder
    app.include_router(placeholders.router)
