"""Helpers of the ruleset lifecycle tests: the app deciding on database versions, clean lifecycle tables."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import create_api_key
from rulesvc.settings import Settings
from rulesvc.sla.clock import Clock, VirtualClock
from rulesvc.storage import make_engine
from tests.integration.conftest import RULESETS, auth, make_settings

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


@contextmanager
def lifecycle_client(database_url: str, clock: Clock) -> Iterator[TestClient]:
    """A client of the lifecycle app on emptied lifecycle tables, emptied again afterwards."""
    clear_lifecycle(database_url)
    app = lifecycle_app(make_settings(database_url), clock)
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.state.lifecycle.close()
        clear_lifecycle(database_url)


def role_keys(client: TestClient, roles: Mapping[str, Iterable[Role]], at: datetime) -> dict[str, str]:
    """An API key per name holding those roles (labelled with the name), made at `at`."""
    app: FastAPI = client.app  # type: ignore[assignment]
    store = app.state.runtime.service.keys
    clock = VirtualClock(at)
    return {name: create_api_key(store, frozenset(r), clock, name)[1] for name, r in roles.items()}


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


def threshold_draft(client: TestClient, editor_key: str, reason: str = "门槛调整") -> str:
    """A draft of expense-approval raising the travel auto-approval threshold 5000 → 8000; its id."""
    content = (RULESETS / "expense-approval.yaml").read_text(encoding="utf-8")
    draft = client.post(
        "/v1/rulesets/expense-approval/drafts",
        params={"reason": reason},
        content=content.replace('金额: "< 5000"', '金额: "< 8000"').encode(),
        headers={**auth(editor_key), "Content-Type": "application/yaml"},
    )
    assert draft.status_code == 201, draft.text
    return str(draft.json()["draft_id"])
