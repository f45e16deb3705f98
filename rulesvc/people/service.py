"""Use cases of people administration: users and service accounts (create, list, change roles, disable),
their API keys (create, list without secrets, revoke). `by` is the acting person as the chain names them
(`rulesvc.apikeys.Principal.actor`, or the host account for the command line).

Changes to what a key grants (revoking it, disabling or enabling its owner, changing the owner's roles)
call `on_change`, which the service wires to a notification every replica acts on at once (their key
caches are dropped).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from rulesvc.apikeys import SERVICE, USER, Role, actor_id, generate_key, hash_key, parse_roles
from rulesvc.people.errors import (
    InvalidError,
    KeyNotActiveError,
    NotFoundError,
    RolesExceedOwnerError,
    SelfLockoutError,
)
from rulesvc.people.model import ApiKeyRecord, KeyView, PrincipalRecord
from rulesvc.people.passwords import hash_password, one_time_password
from rulesvc.people.ports import PeopleStore
from rulesvc.sla.clock import Clock

MAX_NAME = 100
MAX_OVERLAP = timedelta(days=30)
DEFAULT_OVERLAP = timedelta(hours=24)
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class CreatedUser:
    user: PrincipalRecord
    password: str | None
    """The one-time password generated for the person (shown once), or None."""


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    key: str
    roles: frozenset[Role]
    owner: PrincipalRecord


def roles_of(values: Iterable[str]) -> frozenset[Role]:
    try:
        return parse_roles(values)
    except ValueError:
        valid = [r.value for r in Role]
        raise InvalidError(
            f"角色不合法；可用角色：{', '.join(valid)}（至少一个）", {"roles": list(values), "valid": valid}
        ) from None


class PeopleService:
    def __init__(self, store: PeopleStore, clock: Clock, on_change: Callable[[], None] | None = None) -> None:
        self.store = store
        self.clock = clock
        self._on_change = on_change or (lambda: None)

    # -- principals ---------------------------------------------------------------------------------------

    def create_user(
        self,
        by: str,
        name: str,
        roles: Iterable[str],
        *,
        username: str | None = None,
        password: str | None = None,
        one_time: bool = False,
    ) -> CreatedUser:
        """A person; the sign-in name is `username`, or `name` when none is given (unique). With
        `one_time`, a random password is made and returned once (when `password` is not given)."""
        display = _display_name(name)
        login = _username(username if username is not None else display)
        chosen = roles_of(roles)
        generated = one_time_password() if one_time and password is None else None
        secret = password if password is not None else generated
        password_hash = hash_password(secret) if secret is not None else None
        now = self.clock.now()
        record = PrincipalRecord(
            principal_id=f"u_{secrets.token_hex(6)}",
            kind=USER,
            name=display,
            username=login,
            roles=chosen,
            disabled=False,
            owner_id=None,
            created_at=now,
            updated_at=now,
            has_password=password_hash is not None,
        )
        self.store.add_principal(record, password_hash, by)
        return CreatedUser(record, generated)

    def create_service(
        self, by: str, name: str, roles: Iterable[str], owner_id: str | None
    ) -> PrincipalRecord:
        """A service account (a ticket tool), owned by a person when `owner_id` is given; it cannot sign in."""
        display = _display_name(name)
        chosen = roles_of(roles)
        if owner_id is not None:
            self.user(owner_id)
        now = self.clock.now()
        record = PrincipalRecord(
            principal_id=f"s_{secrets.token_hex(6)}",
            kind=SERVICE,
            name=display,
            username=None,
            roles=chosen,
            disabled=False,
            owner_id=owner_id,
            created_at=now,
            updated_at=now,
        )
        self.store.add_principal(record, None, by)
        return record

    def principal(self, principal_id: str) -> PrincipalRecord:
        found = self.store.get_principal(principal_id)
        if found is None:
            raise NotFoundError(f"用户或服务账号 {principal_id} 不存在", {"user_id": principal_id})
        return found

    def user(self, user_id: str) -> PrincipalRecord:
        found = self.principal(user_id)
        if not found.is_user:
            raise NotFoundError(f"用户 {user_id} 不存在（这是服务账号）", {"user_id": user_id})
        return found

    def principals(self) -> list[PrincipalRecord]:
        return self.store.list_principals()

    def update(
        self,
        by: str,
        principal_id: str,
        *,
        roles: Iterable[str] | None = None,
        disabled: bool | None = None,
    ) -> PrincipalRecord:
        """Change roles and/or status. Keys keep their own roles but only those the owner still holds take
        effect; a disabled principal's keys and sessions stop working at once."""
        current = self.principal(principal_id)
        chosen = roles_of(roles) if roles is not None else None
        if actor_id(by) == principal_id and (disabled or (chosen is not None and Role.ADMIN not in chosen)):
            raise SelfLockoutError(
                "不能停用自己或取消自己的 admin 角色（请由另一位管理员操作）", {"user_id": principal_id}
            )
        updated = self.store.update_principal(
            principal_id, self.clock.now(), by, roles=chosen, disabled=disabled
        )
        if updated is None:
            raise NotFoundError(f"用户或服务账号 {principal_id} 不存在", {"user_id": principal_id})
        if (updated.roles, updated.disabled) != (current.roles, current.disabled):
            self._on_change()
        return updated

    # -- keys ---------------------------------------------------------------------------------------------

    def create_key(
        self, by: str, owner_id: str | None, roles: Iterable[str] | None = None, label: str = ""
    ) -> CreatedKey:
        """A key for a person or service account (default: the owner's roles; never more than theirs). With
        no owner, a service account is made for the key (named by its label), holding the key's roles."""
        label = " ".join(label.split())[:200]
        if owner_id is None:
            if roles is None:
                raise InvalidError("没有归属人的密钥必须指定角色", None)
            chosen = roles_of(roles)
            key_id, key = generate_key()
            self.store.add_key(
                ApiKeyRecord(key_id, hash_key(key), chosen, label, self.clock.now(), None, None), by
            )
            found = self.store.get_key(key_id)
            assert found is not None and found.owner is not None
            return CreatedKey(key_id, key, chosen, found.owner)
        owner = self.principal(owner_id)
        if owner.disabled:
            raise InvalidError(f"{owner.name} 已停用，不能为其创建密钥", {"user_id": owner_id})
        chosen = roles_of(roles) if roles is not None else owner.roles
        extra = chosen - owner.roles
        if extra:
            raise RolesExceedOwnerError(
                f"密钥的角色不能超过归属人 {owner.name} 的角色（多出：{', '.join(sorted(extra))}）",
                {"user_id": owner_id, "owner_roles": sorted(owner.roles), "extra": sorted(extra)},
            )
        key_id, key = generate_key()
        self.store.add_key(
            ApiKeyRecord(
                key_id, hash_key(key), chosen, label or owner.name, self.clock.now(), None, owner_id
            ),
            by,
        )
        return CreatedKey(key_id, key, chosen, owner)

    def rotate_key(self, by: str, key_id: str, overlap: timedelta) -> tuple[CreatedKey, KeyView]:
        """A new key for the old key's owner, roles and label (shown once); the old key keeps working for
        `overlap` (0: it stops now), so callers switch without an outage. (new key, the old key's view)."""
        if overlap < timedelta(0) or overlap > MAX_OVERLAP:
            raise InvalidError(
                f"重叠期须在 0 到 {MAX_OVERLAP.days} 天之间",
                {"max_overlap_seconds": MAX_OVERLAP.total_seconds()},
            )
        found = self.store.get_key(key_id)
        if found is None:
            raise NotFoundError(f"密钥 {key_id} 不存在", {"key_id": key_id})
        now = self.clock.now()
        owner = found.owner
        if owner is not None and owner.disabled:
            raise InvalidError(f"{owner.name} 已停用，不能轮换其密钥", {"user_id": owner.principal_id})
        new_id, key = generate_key()
        record = ApiKeyRecord(new_id, hash_key(key), found.roles, found.label, now, None, None)
        if not self.store.rotate_key(key_id, record, now + overlap, by):
            raise KeyNotActiveError(
                f"密钥 {key_id} 已吊销或已过期，不能轮换（请创建新密钥）",
                {"key_id": key_id, "status": found.status(now)},
            )
        self._on_change()
        old = self.store.get_key(key_id)
        new = self.store.get_key(new_id)
        assert old is not None and new is not None and new.owner is not None
        return CreatedKey(new_id, key, new.roles, new.owner), old

    def all_keys(self) -> list[KeyView]:
        return self.store.key_views()

    def revoke_key(self, by: str, key_id: str) -> KeyView:
        """Revoke a key; every replica refuses it at once (`on_change`). Revoking a revoked key is a no-op."""
        found = self.store.get_key(key_id)
        if found is None:
            raise NotFoundError(f"密钥 {key_id} 不存在", {"key_id": key_id})
        if found.revoked_at is None:
            self.store.revoke_key(key_id, self.clock.now(), by)
            self._on_change()
        revoked = self.store.get_key(key_id)
        assert revoked is not None
        return revoked


def _display_name(name: str) -> str:
    display = " ".join(name.split())
    if not display or len(display) > MAX_NAME:
        raise InvalidError(f"姓名不能为空，最多 {MAX_NAME} 个字符", {"name": name})
    return display


def _username(username: str) -> str:
    login = username.strip()
    if not login or len(login) > MAX_NAME or _SPACE.search(login):
        raise InvalidError(
            f"登录名不能为空、不能含空白字符，最多 {MAX_NAME} 个字符（姓名含空格时请另给 username）",
            {"username": username},
        )
    return login
