from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from rulesvc.apikeys import Role
from rulesvc.people.bursts import Burst, FailureBursts
from rulesvc.people.oidc import OidcClient, OidcConfig, check, claim_at, roles_from_claims, safe_next

MAP = {"rulesvc-editors": frozenset({Role.EDITOR}), "admins": frozenset({Role.ADMIN})}


def test_roles_from_a_list_a_string_full_paths_and_nested_claims() -> None:
    assert roles_from_claims({"groups": ["rulesvc-editors", "x"]}, "groups", MAP) == {Role.EDITOR}
    assert roles_from_claims({"groups": "admins"}, "groups", MAP) == {Role.ADMIN}
    assert roles_from_claims({"groups": ["/rulesvc-editors", "/admins"]}, "groups", MAP) == {
        Role.EDITOR,
        Role.ADMIN,
    }
    nested = {"realm_access": {"roles": ["admins"]}}
    assert roles_from_claims(nested, "realm_access.roles", MAP) == {Role.ADMIN}
    assert roles_from_claims({}, "groups", MAP) == frozenset()
    assert roles_from_claims({"groups": {"a": 1}}, "groups", MAP) == frozenset()
    assert claim_at({"a.b": 1}, "a.b") == 1


def test_next_is_a_path_on_this_service_only() -> None:
    assert safe_next("/v1/rulesets?x=1", "/d") == "/v1/rulesets?x=1"
    for bad in (None, "", "https://evil.example/", "//evil.example/x", "/\\evil", "v1", "/a\nb"):
        assert safe_next(bad, "/d") == "/d"


def test_a_burst_is_reported_once_at_the_threshold_within_the_window() -> None:
    seen: list[Burst] = []
    bursts = FailureBursts(3, timedelta(minutes=1), seen.append)
    at = datetime(2026, 12, 5, tzinfo=UTC)
    assert bursts.failed("a", "x", at) is None
    assert bursts.failed("a", "x", at + timedelta(minutes=2)) is None  # the first fell out of the window
    assert bursts.failed("b", "y", at) is None
    assert bursts.failed("a", "y", at + timedelta(minutes=2, seconds=1)) is None
    burst = bursts.failed("a", "x", at + timedelta(minutes=2, seconds=2))
    assert burst is not None and burst.failures == 3 and burst.reasons == {"x": 2, "y": 1}
    assert seen == [burst]
    assert bursts.failed("a", "x", at + timedelta(minutes=2, seconds=3)) is None  # counting starts again


def test_a_provider_without_an_end_session_endpoint_is_a_warning_and_no_logout_address() -> None:
    """A provider's discovery document served over an in-memory transport (no network)."""
    issuer = "https://sso.bank.cn/realms/bank"
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/certs",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    }

    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=document)
        return httpx.Response(200, json={"keys": []})

    config = OidcConfig(
        issuer=issuer,
        client_id="rulesvc",
        client_secret="s",
        redirect_url="https://rulesvc.bank.cn/v1/auth/oidc/callback",
        role_map=MAP,
        post_logout="https://rulesvc.bank.cn/console/",
    )
    client = OidcClient(config, httpx.Client(transport=httpx.MockTransport(serve)))
    assert client.logout_url() is None
    assert "oidc.end_session_unsupported" in {p.code for p in check(config, client)}

    document["end_session_endpoint"] = f"{issuer}/logout?ui_locales=zh-CN"
    client = OidcClient(config, httpx.Client(transport=httpx.MockTransport(serve)))
    assert client.logout_url() == (
        f"{issuer}/logout?ui_locales=zh-CN&client_id=rulesvc"
        "&post_logout_redirect_uri=https%3A%2F%2Frulesvc.bank.cn%2Fconsole%2F"
    )
    assert "oidc.end_session_unsupported" not in {p.code for p in check(config, client)}
