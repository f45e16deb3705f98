"""Entry point for uvicorn's app factory: `uvicorn --factory api.main:app_from_env`."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.logs import configure_logging
from rulesvc.settings import Settings


def app_from_env() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
