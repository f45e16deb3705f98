"""HTTP layer: `create_app(settings)` builds the FastAPI app over `rulesvc.decisions.service`."""

from api.app import create_app

__all__ = ["create_app"]
