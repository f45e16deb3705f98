"""An empty body is refused as every other invalid input: 422 `invalid_request`, a Chinese message, and a
detail with its path, code and Chinese message (the events route, a draft upload, a sheet upload)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.conftest import auth
from tests.integration.lifecycle_support import console_app

app = console_app

MISSING = [{"path": "", "code": "validation.missing", "message": "缺少请求体"}]


def test_an_empty_body_is_refused_with_a_code_and_chinese(client: TestClient, keys: dict[str, str]) -> None:
    for key, path, content_type in (
        ("ingest", "/v1/events", "application/json"),
        ("editor", "/v1/rulesets/expense-approval/drafts", "application/yaml"),
    ):
        answer = client.post(path, content=b"", headers={**auth(keys[key]), "Content-Type": content_type})
        assert answer.status_code == 422, (path, answer.text)
        body = answer.json()
        assert (body["code"], body["message"], body["details"]) == ("invalid_request", "请求体为空", MISSING)
