"""The API reference pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), with every asset served by the
service itself: bank intranets have no internet, and FastAPI's default pages load their JavaScript, CSS,
favicon and fonts from public CDNs (a blank page there).

The assets are the ones the `fastapi-offline` package ships (Swagger UI, Apache-2.0; ReDoc, MIT; the
package itself MIT), installed from PyPI like every other dependency; see docs/configuration.md.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
"""Where the assets are served: `swagger-ui-bundle.js`, `swagger-ui.css`, `redoc.standalone.js`,
`favicon.png`."""


def install_docs_pages(app: FastAPI) -> None:
    """Serve `/docs` and `/redoc` (create the app with `docs_url=None, redoc_url=None`)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", ""))
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=title,
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", ""))
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=title,
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
