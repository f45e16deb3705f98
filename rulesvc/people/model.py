"""Principals and key listings as the people domain sees them (frozen; storage maps its rows to these)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rulesvc.apikeys import SERVICE, USER, Role

__all__ = ["SERVICE", "USER", "ApiKeyRecord", "KeyView", "PrincipalRecord", "shown"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shown(at: datetime | None) -> str | None:
    """A time as people read it: ISO 8601 in Beijing time."""
    return at.astimezone(SHANGHAI).isoformat() if at is not None else None


@dataclass(frozen=True)
class PrincipalRecord:
    """A person or a service account. Secrets (password hash, TOTP secret) are not part of it."""

    principal_id: str
    kind: str
    name: str
    username: str | None
    roles: frozenset[Role]
    disabled: bool
    owner_id: str | None
    created_at: datetime
    updated_at: datetime
    has_password: bool = False
    totp_enabled: bool = False

    @property
    def is_user(self) -> bool:
        return self.kind == USER

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.principal_id,
            "kind": self.kind,
            "name": self.name,
            "username": self.username,
            "roles": sorted(self.roles),
            "disabled": self.disabled,
            "status": "disabled" if self.disabled else "enabled",
            "owner_id": self.owner_id,
            "password": self.has_password,
            "totp": self.totp_enabled,
            "created_at": shown(self.created_at),
            "updated_at": shown(self.updated_at),
        }


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored API key (its SHA-256, never the key) with the person or service account it belongs to."""

    key_id: str
    key_hash: str
    roles: frozenset[Role]
    label: str
    created_at: datetime
    revoked_at: datetime | None
    principal_id: str | None = None
    """The person or service account the key belongs to (None only before it is stored)."""
    owner: PrincipalRecord | None = None
    """The owner as read with the key (for authentication)."""
    expires_at: datetime | None = None
    """Set when the key was rotated: the end of the overlap window."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def valid_at(self, at: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or at < self.expires_at)


@dataclass(frozen=True)
class KeyView:
    """A key as administrators list it: never the key or its hash."""

    key_id: str
    roles: frozenset[Role]
    label: str
    created_at: datetime
    revoked_at: datetime | None
    owner: PrincipalRecord | None
    expires_at: datetime | None = None
    replaced_by: str | None = None

    def status(self, at: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None:
            return "expired" if at is not None and at >= self.expires_at else "expiring"
        return "active"

    def to_json(self, at: datetime | None = None) -> dict[str, Any]:
        owner = self.owner
        return {
            "key_id": self.key_id,
            "roles": sorted(self.roles),
            "label": self.label,
            "status": self.status(at),
            "created_at": shown(self.created_at),
            "revoked_at": shown(self.revoked_at),
            "expires_at": shown(self.expires_at),
            "replaced_by": self.replaced_by,
            "user_id": owner.principal_id if owner else None,
            "owner_kind": owner.kind if owner else None,
            "owner_name": owner.name if owner else None,
        }
