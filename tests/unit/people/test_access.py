"""What a key grants given its owner, and how actors are compared for four eyes (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from rulesvc.apikeys import Principal, Role, actor_id, same_actor
from rulesvc.people.access import key_principal
from rulesvc.people.model import ApiKeyRecord, PrincipalRecord

NOW = datetime(2026, 12, 5, tzinfo=UTC)
ZHANG = PrincipalRecord(
    "u_3f2a9c1e0b7d", "user", "张敏", "张敏", frozenset({Role.EDITOR, Role.APPROVER}), False, None, NOW, NOW
)
KEY = ApiKeyRecord(
    "a1b2c3d4e5f6", "h", frozenset({Role.EDITOR, Role.ADMIN}), "笔记本", NOW, None, ZHANG.principal_id, ZHANG
)


def test_a_key_grants_only_what_its_owner_holds() -> None:
    principal = key_principal(KEY)
    assert principal is not None and principal.roles == frozenset({Role.EDITOR})
    assert principal.actor == "张敏 (u_3f2a9c1e0b7d)"  # the person, not the key


def test_revoked_keys_and_disabled_owners_grant_nothing() -> None:
    assert key_principal(replace(KEY, revoked_at=NOW)) is None
    assert key_principal(replace(KEY, owner=replace(ZHANG, disabled=True))) is None
    assert key_principal(None) is None


def test_service_accounts_are_named_by_their_key() -> None:
    service = replace(ZHANG, principal_id="s_a1b2c3d4e5f6", kind="service", name="CRM", username=None)
    principal = key_principal(replace(KEY, label="CRM", owner=service))
    assert principal is not None and principal.actor == "CRM (a1b2c3d4e5f6)"
    assert Principal("a1b2c3d4e5f6", frozenset()).actor == "a1b2c3d4e5f6"


def test_actors_are_compared_by_id() -> None:
    assert actor_id("张敏 (u_3f2a9c1e0b7d)") == "u_3f2a9c1e0b7d"
    assert actor_id("a1b2c3d4e5f6") == "a1b2c3d4e5f6"
    assert same_actor("张敏 (u_3f2a9c1e0b7d)", "风险专员 张敏 (u_3f2a9c1e0b7d)")
    assert not same_actor("张敏 (u_3f2a9c1e0b7d)", "张敏 (u_000000000000)")  # two people of one name
    assert not same_actor("editor (a1b2c3d4e5f6)", "editor (b1b2c3d4e5f6)")
