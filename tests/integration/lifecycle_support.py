"""Helpers of the ruleset lifecycle tests: the app deciding on database versions, clean lifecycle tables."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app
from rulesvc.settings import Settings
from rulesvc.sla.clock import Clock
from rulesvc.storage import make_engine

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
    """The service app as `rulesvc serve` builds it: decisions on the versions in the database."""
    return create_app(settings, clock=clock, **kwargs)
