"""What the people use cases need from storage. Every write appends its chain entry (who, whom, what) in
the same transaction as the row it changes."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from rulesvc.apikeys import Role
from rulesvc.people.model import ApiKeyRecord, KeyView, PrincipalRecord

KIND_USER = "user"
"""Chain entries recording a principal's creation and every change to its roles or status."""


class PeopleStore(Protocol):
    def add_principal(self, record: PrincipalRecord, password_hash: str | None, by: str) -> None:
        """Raises `UsernameTakenError` when the sign-in name is in use."""
        ...

    def get_principal(self, principal_id: str) -> PrincipalRecord | None: ...

    def list_principals(self) -> list[PrincipalRecord]: ...

    def update_principal(
        self,
        principal_id: str,
        at: datetime,
        by: str,
        *,
        roles: frozenset[Role] | None = None,
        disabled: bool | None = None,
    ) -> PrincipalRecord | None: ...

    def add_key(self, record: ApiKeyRecord, by: str) -> None:
        """Store the key; without `record.principal_id` a service account is made for it."""
        ...

    def get_key(self, key_id: str) -> KeyView | None: ...

    def key_views(self) -> list[KeyView]: ...

    def rotate_key(self, key_id: str, new: ApiKeyRecord, expires_at: datetime, by: str) -> bool:
        """A new key for the same owner and roles; the old one works until `expires_at`. False when the
        old key is revoked, expired or missing."""
        ...

    def revoke_key(self, key_id: str, at: datetime, by: str) -> bool:
        """False when there is no such active key."""
        ...


KIND_SIGNIN = "signin"
"""Chain entries recording a burst of failed sign-ins or refused keys (source, count, reasons)."""
