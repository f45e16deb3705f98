"""`uvicorn --factory tests.integration.lifecycle_server:app_from_env`: the service with the ruleset
lifecycle mounted, configured from the environment like `rulesvc serve` (test processes only)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from rulesvc.settings import Settings
from tests.integration.lifecycle_support import lifecycle_app


def app_from_env() -> FastAPI:
    poll = float(os.environ.get("RULESVC_TEST_RULESET_POLL_SECONDS", "1.0"))
    return lifecycle_app(Settings(), poll_seconds=poll)
