"""Every route × every role: 401 without a valid key, 403 for a wrong role, through for the right one.

The expected matrix is written out here independently of rulesvc.apikeys.PERMISSIONS, so a change to the
code's matrix must be made twice, on purpose.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rulesvc.apikeys import Role
from rulesvc.decisions.service import create_api_key
from rulesvc.sla.clock import SystemClock
from tests.integration.conftest import auth, event

ROUTES: dict[str, tuple[str, str, set[str]]] = {
    # name: (method, path, roles allowed)
    "events": ("POST", "/v1/events", {"ingest", "admin"}),
    "simulate": ("POST", "/v1/simulate", {"ingest", "editor", "approver", "compliance", "admin"}),
    "actions": ("GET", "/v1/actions", {"ingest", "admin"}),
    "decision": ("GET", "/v1/decisions/{id}", {"compliance", "auditor", "admin"}),
    "verify": ("GET", "/v1/audit/verify", {"compliance", "auditor", "admin"}),
    "users": ("GET", "/v1/admin/users", {"admin"}),
    "keys": ("GET", "/v1/admin/keys", {"admin"}),
    "rotate": ("POST", "/v1/admin/keys/{key_id}/rotate", {"admin"}),
    "oidc_check": ("GET", "/v1/admin/oidc/check", {"admin"}),
    "me": ("GET", "/v1/auth/me", {r.value for r in Role}),
}
CREATED = {"rotate"}
"""Routes answering 201 rather than 200 when allowed."""
PUBLIC = ["/healthz", "/readyz", "/metrics", "/openapi.json"]


def call(client: TestClient, name: str, headers: dict[str, str], decision_id: str) -> Any:
    method, path, _ = ROUTES[name]
    path = path.replace("{id}", decision_id)
    if name == "rotate":
        service = client.app.state.runtime.service  # type: ignore[attr-defined]
        key_id, _key = create_api_key(service.keys, frozenset({Role.AUDITOR}), SystemClock(), "rotated")
        path = path.replace("{key_id}", key_id)
    if name == "events":
        return client.post(path, json=event(f"auth-{uuid.uuid4()}"), headers=headers)
    if name == "simulate":
        return client.post(path, json={"events": [], "until": "2026-10-01T00:00:00+08:00"}, headers=headers)
    return client.request(method, path, headers=headers)


@pytest.fixture
def decision_id(client: TestClient, keys: dict[str, str]) -> str:
    return str(
        client.post("/v1/events", json=event("auth-seed"), headers=auth(keys["ingest"])).json()["decision_id"]
    )


def test_every_route_for_every_role(client: TestClient, keys: dict[str, str], decision_id: str) -> None:
    failures = []
    for name, (_method, _path, allowed) in ROUTES.items():
        for role in Role:
            response = call(client, name, auth(keys[role.value]), decision_id)
            ok = 201 if name in CREATED else 200
            expected = ok if role.value in allowed else 403
            if response.status_code != expected:
                failures.append(
                    f"{name} as {role.value}: {response.status_code} (want {expected}) {response.text}"
                )
            elif expected == 403:
                assert response.json()["code"] == "forbidden"
        assert call(client, name, auth(keys["all"]), decision_id).status_code == (
            201 if name in CREATED else 200
        )
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", list(ROUTES))
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer rsk_000000000000_" + "A" * 43},
    ],
    ids=["missing", "empty", "basic", "malformed", "unknown"],
)
def test_missing_or_invalid_key_is_401(client: TestClient, name: str, headers: dict[str, str]) -> None:
    response = call(client, name, headers, str(uuid.uuid4()))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_revoked_key_is_401(client: TestClient) -> None:
    service = client.app.state.runtime.service  # type: ignore[attr-defined]
    service._key_cache_seconds = 0.0
    key_id, key = create_api_key(service.keys, frozenset({Role.INGEST}), SystemClock())
    assert client.get("/v1/actions", headers=auth(key)).status_code == 200
    assert service.keys.revoke_key(key_id, SystemClock().now())
    assert client.get("/v1/actions", headers=auth(key)).status_code == 401


@pytest.mark.parametrize("path", PUBLIC)
def test_probes_and_docs_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_keys_are_stored_only_as_hashes(client: TestClient, keys: dict[str, str]) -> None:
    from sqlalchemy import text

    with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(text("SELECT key_id, key_hash, roles FROM api_keys")).all()
    stored = " ".join(" ".join(map(str, row)) for row in rows)
    for key in keys.values():
        assert key not in stored
        assert key[len("rsk_") + 13 :] not in stored  # the secret part
