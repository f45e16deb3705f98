"""Helpers of the ruleset lifecycle tests: the app deciding on database versions, clean lifecycle tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
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


@pytest.fixture
def console_app(settings: Settings, database_url: str) -> Iterator[FastAPI]:
    """The app as `rulesvc serve` builds it (the console's pages read the ruleset lifecycle); a module
    uses it for `app` (and so for `client` and `keys`) with `app = console_app` after importing it."""
    built = lifecycle_app(settings)
    try:
        yield built
    finally:
        if hasattr(built.state, "lifecycle"):
            built.state.lifecycle.close()
        clear_lifecycle(database_url)
