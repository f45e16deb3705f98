"""Single sign-on end to end against a real OpenID Connect provider (oidc-provider on Node.js, started by
the suite on 127.0.0.1), on SQLite and PostgreSQL: the authorization-code flow with PKCE, a person made on
first sign-in with roles from the groups claim, roles re-read at every sign-in (a group removed at the
provider is a role gone here, their keys included), refused state, replayed state and a forged nonce, a
burst of failures in the chain, and the settings check."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.sla.clock import SystemClock
from tests.integration.conftest import auth, engine_of, make_settings
from tests.integration.oidc_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    POST_LOGOUT_URL,
    REDIRECT_URL,
    Provider,
    at_provider,
    oidc_provider,
)

__all__ = ["oidc_provider"]

ROLE_MAP = {
    "rulesvc-editors": ["editor"],
    "rulesvc-approvers": ["approver"],
    "/bank/rulesvc-admins": ["admin"],
}


def oidc_settings(database_url: str, provider: Provider, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "oidc_issuer": provider.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_redirect_url": REDIRECT_URL,
        "oidc_scopes": "openid profile groups",
        "oidc_role_map": ROLE_MAP,
        "login_max_failures": 3,
    }
    return make_settings(database_url, **{**values, **overrides})


@pytest.fixture
def app(database_url: str, book: Evaluator, oidc_provider: Provider) -> FastAPI:
    return create_app(oidc_settings(database_url, oidc_provider), book=book)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def admin_key(app: FastAPI) -> str:
    return create_api_key(app.state.runtime.service.keys, frozenset({Role.ADMIN}), SystemClock(), "it")[1]


def start(client: TestClient, next_url: str | None = None) -> str:
    params = {"next": next_url} if next_url else None
    response = client.get("/v1/auth/oidc/login", params=params, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0] and query["client_id"] == [CLIENT_ID]
    return location


def callback(client: TestClient, provider_redirect: str) -> Any:
    parts = urlsplit(provider_redirect)
    return client.get(f"{parts.path}?{parts.query}", follow_redirects=False)


def sign_in(client: TestClient, login: str, next_url: str | None = None) -> dict[str, Any]:
    client.cookies.clear()
    answer = callback(client, at_provider(start(client, next_url), login))
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == (next_url or "/console/")
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("rulesvc_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session
    me = client.get("/v1/auth/me")
    assert me.status_code == 200, me.text
    body: dict[str, Any] = me.json()
    assert body["via"] == "session"
    return body


def chain(app: FastAPI, kind: str) -> list[tuple[str, dict[str, Any]]]:
    with engine_of(app).connect() as conn:
        rows = conn.execute(
            text("SELECT subject, payload FROM audit_log WHERE kind = :k ORDER BY seq"), {"k": kind}
        ).all()
    return [(subject, json.loads(payload)) for subject, payload in rows]


def test_first_sign_in_makes_the_person_with_roles_from_groups(
    app: FastAPI, client: TestClient, oidc_provider: Provider
) -> None:
    oidc_provider.set_account("zhangmin", "张敏", ["rulesvc-editors", "other-team"])
    me = sign_in(client, "zhangmin", next_url="/v1/rulesets")
    assert me["name"] == "张敏" and me["roles"] == ["editor"] and me["kind"] == "user"
    assert me["user_id"].startswith("u_") and me["password"] is False
    # the session works like a local one: editors read rulesets, cannot administer
    assert client.get("/v1/rulesets").status_code in (200, 404)
    assert client.get("/v1/admin/users").status_code == 403
    # the same person at the next sign-in (found by issuer and subject)
    again = sign_in(client, "zhangmin")
    assert again["user_id"] == me["user_id"]
    created = [p for s, p in chain(app, "user") if s == me["user_id"]]
    assert [p["change"] for p in created] == ["created"]
    assert created[0]["by"] == "oidc" and created[0]["via"] == "oidc" and created[0]["roles"] == ["editor"]


def test_role_mapping_several_groups_and_full_paths(client: TestClient, oidc_provider: Provider) -> None:
    oidc_provider.set_account("lina", "李娜", ["rulesvc-approvers", "/bank/rulesvc-admins", "x"])
    me = sign_in(client, "lina")
    assert me["roles"] == ["admin", "approver"]
    assert client.get("/v1/admin/users").status_code == 200


def test_group_removed_at_the_provider_is_a_role_gone_at_next_sign_in(
    app: FastAPI, client: TestClient, oidc_provider: Provider, admin_key: str
) -> None:
    oidc_provider.set_account("wangwei", "王伟", ["rulesvc-editors", "rulesvc-approvers"])
    me = sign_in(client, "wangwei")
    assert me["roles"] == ["approver", "editor"]
    made = client.post(f"/v1/admin/users/{me['user_id']}/keys", json={}, headers=auth(admin_key))
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    oidc_provider.set_account("wangwei", "王伟", ["rulesvc-editors"])
    after = sign_in(client, "wangwei")
    assert after["user_id"] == me["user_id"] and after["roles"] == ["editor"]
    # the person's key no longer grants the role either
    client.cookies.clear()
    by_key = client.get("/v1/auth/me", headers=auth(key)).json()
    assert by_key["roles"] == ["editor"]
    updated = [p for s, p in chain(app, "user") if s == me["user_id"] and p["change"] == "updated"]
    assert updated[-1]["changed"]["roles"] == {"from": ["approver", "editor"], "to": ["editor"]}
    assert updated[-1]["by"] == "oidc"
    # every group gone: no sign-in at all
    oidc_provider.set_account("wangwei", "王伟", ["other-team"])
    client.cookies.clear()
    refused = callback(client, at_provider(start(client), "wangwei"))
    assert refused.status_code == 403 and refused.json()["code"] == "auth.oidc.no_role"
    assert "rulesvc_session" not in refused.headers.get("set-cookie", "")


def test_a_disabled_person_cannot_sign_in_through_sso(
    client: TestClient, oidc_provider: Provider, admin_key: str
) -> None:
    oidc_provider.set_account("zhaomin", "赵敏", ["rulesvc-editors"])
    me = sign_in(client, "zhaomin")
    client.cookies.clear()
    patched = client.patch(
        f"/v1/admin/users/{me['user_id']}", json={"disabled": True}, headers=auth(admin_key)
    )
    assert patched.status_code == 200, patched.text
    refused = callback(client, at_provider(start(client), "zhaomin"))
    assert refused.status_code == 403 and refused.json()["code"] == "auth.disabled"


def test_bad_state_replayed_state_and_forged_nonce_are_refused(
    app: FastAPI, client: TestClient, oidc_provider: Provider
) -> None:
    oidc_provider.set_account("sunli", "孙丽", ["rulesvc-editors"])
    # a state this browser did not start (login CSRF)
    client.cookies.clear()
    back = at_provider(start(client), "sunli")
    client.cookies.set("rulesvc_oidc_state", "someone-elses-state", path="/v1/auth/oidc")
    refused = callback(client, back)
    assert refused.status_code == 400 and refused.json()["code"] == "auth.oidc.state"
    assert "message" in refused.json() and refused.json()["message"]
    # a state used once cannot be used again
    client.cookies.clear()
    back = at_provider(start(client), "sunli")
    assert callback(client, back).status_code == 303
    replay = callback(client, back)
    assert replay.status_code == 400 and replay.json()["code"] == "auth.oidc.state"
    # the provider's ID token carries a nonce this sign-in did not send
    client.cookies.clear()
    parts = urlsplit(start(client))
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["nonce"] = "forged-nonce-of-another-sign-in"
    forged = urlunsplit(parts._replace(query=urlencode(query)))
    refused = callback(client, at_provider(forged, "sunli"))
    assert refused.status_code == 401 and refused.json()["code"] == "auth.oidc.nonce"
    # no state at all; the provider's error passed back
    assert client.get("/v1/auth/oidc/callback?code=x").json()["code"] == "auth.oidc.state"
    # three failures in a row (login_max_failures=3): one signin burst in the chain
    bursts = chain(app, "signin")
    assert bursts, "a burst of failed sign-ins is a chain entry"
    assert bursts[0][1]["change"] == "signin_failures" and bursts[0][1]["failures"] == 3
    assert bursts[0][1]["via"] == "oidc"


def test_settings_check(app: FastAPI, client: TestClient, admin_key: str, oidc_provider: Provider) -> None:
    answer = client.get("/v1/admin/oidc/check", headers=auth(admin_key))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # the test's redirect URL is plain http on a non-loopback host name: the only problem reported
    assert [p["code"] for p in body["problems"] if p["level"] == "error"] == ["oidc.insecure_url"]
    assert all(p["message"] for p in body["problems"])
    assert "oidc.end_session_unsupported" not in {p["code"] for p in body["problems"]}  # it signs out too
    assert client.get("/v1/admin/oidc/check").status_code == 401


def test_settings_check_names_a_post_logout_url_that_is_no_address(
    database_url: str, book: Evaluator, oidc_provider: Provider
) -> None:
    settings = oidc_settings(database_url, oidc_provider, oidc_post_logout_url="/console/")
    app = create_app(settings, book=book)
    with TestClient(app) as client:
        key = create_api_key(app.state.runtime.service.keys, frozenset({Role.ADMIN}), SystemClock(), "it")[1]
        problems = client.get("/v1/admin/oidc/check", headers=auth(key)).json()["problems"]
        found = [p for p in problems if p["code"] == "oidc.post_logout_url_invalid"]
        assert (
            len(found) == 1
            and found[0]["level"] == "error"
            and "RULESVC_OIDC_POST_LOGOUT_URL" in found[0]["message"]
        )


def test_settings_check_names_an_unreachable_or_wrong_issuer(
    database_url: str, book: Evaluator, oidc_provider: Provider
) -> None:
    from tests.integration.conftest import free_port

    wrong = oidc_settings(
        database_url,
        oidc_provider,
        oidc_issuer=f"http://127.0.0.1:{free_port()}",
        oidc_redirect_url="http://127.0.0.1:8000/v1/auth/oidc/callback",
        oidc_role_map={},
    )
    app = create_app(wrong, book=book)
    with TestClient(app) as client:
        key = create_api_key(app.state.runtime.service.keys, frozenset({Role.ADMIN}), SystemClock(), "it")[1]
        body = client.get("/v1/admin/oidc/check", headers=auth(key)).json()
        codes = {p["code"] for p in body["problems"]}
        assert body["ok"] is False and codes == {"oidc.role_map_empty", "oidc.discovery_failed"}
        assert (
            client.get("/v1/auth/oidc/login", follow_redirects=False).json()["code"] == "auth.oidc.discovery"
        )


def test_sso_not_configured(client: TestClient, database_url: str, book: Evaluator) -> None:
    app = create_app(make_settings(database_url), book=book)
    with TestClient(app) as plain:
        answer = plain.get("/v1/auth/oidc/login")
        assert answer.status_code == 404 and answer.json()["code"] == "auth.oidc.not_configured"


def test_cli_oidc_check(oidc_provider: Provider, sqlite_url: str) -> None:
    from tests.integration.conftest import cli_env, run_cli

    env = cli_env(
        sqlite_url,
        RULESVC_OIDC_ISSUER=oidc_provider.issuer,
        RULESVC_OIDC_CLIENT_ID=CLIENT_ID,
        RULESVC_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        RULESVC_OIDC_REDIRECT_URL="http://127.0.0.1:8000/v1/auth/oidc/callback",
        RULESVC_OIDC_ROLE_MAP=json.dumps(ROLE_MAP),
    )
    done = run_cli(["oidc", "check", "--json"], env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ok"] is True
    env["RULESVC_OIDC_ISSUER"] = oidc_provider.issuer + "/wrong"
    done = run_cli(["oidc", "check"], env, check=False)
    assert done.returncode == 1 and "oidc.discovery_failed" in done.stdout


def test_an_identity_moved_onto_another_person_by_hand_signs_nobody_in(
    app: FastAPI, client: TestClient, oidc_provider: Provider, admin_key: str
) -> None:
    oidc_provider.set_account("mallory", "马洛", ["rulesvc-editors"])
    me = sign_in(client, "mallory")
    client.cookies.clear()
    made = client.post("/v1/admin/users", json={"name": "王芳", "roles": ["admin"]}, headers=auth(admin_key))
    assert made.status_code == 201, made.text
    admin_id = made.json()["user_id"]
    with engine_of(app).begin() as conn:
        subject = conn.execute(
            text("SELECT oidc_subject FROM principals WHERE principal_id = :p"), {"p": me["user_id"]}
        ).scalar_one()
        conn.execute(
            text("UPDATE principals SET oidc_subject = NULL WHERE principal_id = :p"), {"p": me["user_id"]}
        )
        conn.execute(
            text("UPDATE principals SET oidc_subject = :s WHERE principal_id = :p"),
            {"s": subject, "p": admin_id},
        )
    refused = callback(client, at_provider(start(client), "mallory"))
    assert refused.status_code == 401 and refused.json()["code"] == "auth.grant_mismatch"
    assert "rulesvc_session" not in refused.headers.get("set-cookie", "")


def back_without_a_password(browser: httpx.Client, authorization_url: str) -> bool:
    """Whether the provider sends this browser straight back (its session still open), without asking."""
    location = authorization_url
    for _ in range(10):
        if location.startswith(REDIRECT_URL):
            return True
        response = browser.get(location)
        if response.status_code not in (302, 303):
            assert 'name="prompt" value="login"' in response.text, response.text
            return False
        location = urljoin(location, response.headers["location"])
    raise AssertionError("the provider kept redirecting")


def test_signing_out_signs_out_at_the_provider_too(
    database_url: str, book: Evaluator, oidc_provider: Provider
) -> None:
    """Without it the next person at the same browser would pass the provider without a password."""
    settings = oidc_settings(database_url, oidc_provider, oidc_post_logout_url=POST_LOGOUT_URL)
    oidc_provider.set_account("sunli", "孙丽", ["rulesvc-editors"])
    with TestClient(create_app(settings, book=book)) as client, httpx.Client(timeout=10) as browser:
        answer = callback(client, at_provider(start(client), "sunli", browser=browser))
        assert answer.status_code == 303, answer.text
        assert back_without_a_password(browser, start(client))  # the provider's session is open
        csrf = client.cookies.get("rulesvc_csrf")
        assert csrf
        out = client.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200, out.text
        provider_url = out.json()["provider_logout_url"]
        parts = urlsplit(provider_url)
        assert provider_url.startswith(oidc_provider.issuer + "/")
        assert parse_qs(parts.query) == {
            "client_id": [CLIENT_ID],
            "post_logout_redirect_uri": [POST_LOGOUT_URL],
        }
        assert client.get("/v1/auth/me").status_code == 401  # the service's session ended at once

        page = browser.get(provider_url)  # the provider asks to confirm, then sends the browser back
        assert page.status_code == 200, page.text
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', page.text)
        assert action is not None and xsrf is not None, page.text
        done = browser.post(
            urljoin(provider_url, action.group(1)), data={"xsrf": xsrf.group(1), "logout": "yes"}
        )
        assert done.status_code in (302, 303) and done.headers["location"] == POST_LOGOUT_URL
        assert not back_without_a_password(browser, start(client))  # the provider asks again

        # a local account signs out of the service only
        admin = create_api_key(
            client.app.state.runtime.service.keys, frozenset({Role.ADMIN}), SystemClock(), "it"
        )[1]
        body = {"name": "周立", "roles": ["editor"], "password": "长城-Great-Wall-2026"}
        assert client.post("/v1/admin/users", json=body, headers=auth(admin)).status_code == 201
        client.cookies.clear()
        signed = client.post("/v1/auth/login", json={"username": "周立", "password": body["password"]})
        assert signed.status_code == 200, signed.text
        local = client.post("/v1/auth/logout", headers={"X-CSRF-Token": signed.json()["csrf_token"]})
        assert local.status_code == 200 and "provider_logout_url" not in local.json()
