"""What a presented key grants: the roles in effect are the key's roles that its owner still holds; a
revoked key, a rotated key past its overlap window, or a key whose owner is disabled, grants nothing."""

from __future__ import annotations

from datetime import datetime

from rulesvc.apikeys import SERVICE, Principal
from rulesvc.people.model import ApiKeyRecord


def key_principal(record: ApiKeyRecord | None, at: datetime | None = None) -> Principal | None:
    """`at`: now, for a rotated key's overlap window (past its end the key grants nothing)."""
    if record is None or not record.active:
        return None
    if at is not None and not record.valid_at(at):
        return None
    owner = record.owner
    if owner is None:
        return Principal(record.key_id, record.roles, label=record.label, kind=SERVICE)
    if owner.disabled:
        return None
    return Principal(
        record.key_id,
        record.roles & owner.roles,
        principal_id=owner.principal_id,
        name=owner.name,
        kind=owner.kind,
        label=record.label,
    )
