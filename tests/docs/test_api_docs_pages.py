"""`/docs` and `/redoc` work on an intranet: the pages name only assets the service serves itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rulesvc.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|(?:spec-url|url)\s*[:=]\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    work = tmp_path_factory.mktemp("docs-pages")
    settings = Settings(
        database_url=f"sqlite:///{work / 'rulesvc.db'}",
        rulesets=ROOT / "rulesets",
        access_log=False,
        bootstrap_admin_key=False,
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
def test_the_api_reference_pages_load_nothing_from_outside(
    client: TestClient, page: str, script: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "http://" not in html and "https://" not in html, html  # no CDN, no web fonts
    references = [a or b for a, b in ASSET.findall(html)]
    assert any(ref.endswith(script) for ref in references), references
    assert "/openapi.json" in references
    for reference in references:
        assert reference.startswith("/"), reference
        served = client.get(reference)
        assert served.status_code == 200, reference
        assert len(served.content) > 1000, reference  # the real asset, not an error page
    assert client.get("/docs-assets/swagger-ui.css").headers["content-type"].startswith("text/css")
