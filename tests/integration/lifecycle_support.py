"""Helpers of the ruleset lifecycle tests: an app with the lifecycle mounted, clean lifecycle tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app
from api.lifecycle import install_lifecycle
from rulesvc.lifecycle.build import build_lifecycle
from rulesvc.settings import Settings
from rulesvc.sla.clock import Clock, SystemClock
from rulesvc.storage import make_engine

RULESETS = Path(__file__).resolve().parents[2] / "rulesets"

LIFECYCLE_TABLES = ("ruleset_drafts", "ruleset_versions")


def clear_lifecycle(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for table in LIFECYCLE_TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
    finally:
        engine.dispose()


def lifecycle_app(settings: Settings, clock: Clock | None = None, **kwargs: Any) -> FastAPI:
    """The service app deciding on the versions in the database (as of each event's time)."""
    clock = clock or SystemClock()
    app = create_app(settings, clock=clock)
    runtime = app.state.runtime
    lifecycle = build_lifecycle(
        runtime.engine,
        RULESETS,
        clock,
        settings.mask_policy(),
        redis_url=settings.redis_url,
        engine_lock=runtime.service._engine_lock,
        **kwargs,
    )
    runtime.service.book = lifecycle.book
    install_lifecycle(app, lifecycle)
    return app
