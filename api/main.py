"""Entry point for uvicorn's app factory: `uvicorn --factory api.main:app_from_env`."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from api.app import create_app
from api.logs import configure_logging
from rulesvc.settings import Settings


def app_from_env() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    # What startup built (compiled rulesets, calendars, routes, SQLAlchemy metadata) lives as long as the
    # process: take it out of the collector's generations, so full collections under load skip it.
    gc.collect()
    gc.freeze()
    return app
