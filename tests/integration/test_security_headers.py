"""Every answer says `nosniff`; HTML pages (the API docs) are never framed, send no referrer and are not
cached."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.conftest import auth


def test_html_pages_carry_security_headers(client: TestClient, keys: dict[str, str]) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    api = client.get("/v1/admin/users", headers=auth(keys["admin"]))
    assert api.headers["x-content-type-options"] == "nosniff" and "x-frame-options" not in api.headers
