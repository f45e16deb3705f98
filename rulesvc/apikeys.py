"""API keys, roles and what each role may do.

A key is `rsk_<key_id>_<secret>`; only `sha256(key)` is stored, `key_id` names the key in listings and
revocation without revealing it. A key carries one or more roles.

Role matrix (✓ allowed; "clear" = personal data unmasked, and the read itself appended to the audit chain):

| permission          | route                          | ingest | editor | approver | compliance | auditor | admin |
|---------------------|--------------------------------|--------|--------|----------|------------|---------|-------|
| `events:write`      | POST /v1/events                | ✓      |        |          |            |         | ✓     |
| `simulate`          | POST /v1/simulate              | ✓      | ✓      | ✓        | ✓          |         | ✓     |
| `actions:read`      | GET /v1/actions                | ✓      |        |          |            |         | ✓     |
| `decisions:read`    | GET /v1/decisions/{id}         |        |        |          | ✓ clear    | ✓ masked| ✓ masked |
| `audit:verify`      | GET /v1/audit/verify, GET /v1/audit/checkpoints/latest | | |  | ✓          | ✓       | ✓     |
| `audit:checkpoint`  | POST /v1/audit/checkpoints     |        |        |          |            | ✓       | ✓     |
| `rulesets:read`     | GET /v1/rulesets/...           |        | ✓      | ✓        | ✓          | ✓       | ✓     |
| `rulesets:write`    | drafts, cases, submit, rollback, import |  | ✓  |          |            |         | ✓     |
| `rulesets:review`   | approve, reject (never own)    |        |        | ✓        |            |         | ✓     |
| `rulesets:publish`  | publish an approved draft      |        | ✓      | ✓        |            |         | ✓     |
| `rulesets:replay`   | backtest a draft (masked)      |        | ✓      | ✓        |            |         | ✓     |
| `webhooks:admin`    | /v1/webhooks/... (subscriptions, dead letters) | |  |          |            |         | ✓     |
| `reports:read`      | GET /v1/reports/sla            |        |        |          | ✓          | ✓       | ✓     |

`admin` may call every route but holds no personal-data clearance: only `compliance` reads in clear
(separation of duties — operators run the service, compliance looks at customers' data). Editors and
approvers may simulate (to see what a change would do) but see no production decisions; the auditor
checks the log without touching production traffic or personal data. `/healthz`, `/readyz`, `/metrics`,
`/openapi.json` and `/docs` need no key (probes and scrapers; they carry no personal data).
Four eyes: a draft's author may not approve or reject it whatever roles the key holds (checked by the
lifecycle, which knows the author); importing into an empty database needs `admin`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

KEY_PREFIX = "rsk_"
_KEY_RE = re.compile(r"^rsk_([0-9a-f]{12})_[A-Za-z0-9_-]{20,100}$")


class Role(StrEnum):
    INGEST = "ingest"
    EDITOR = "editor"
    APPROVER = "approver"
    COMPLIANCE = "compliance"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    EVENTS_WRITE = "events:write"
    SIMULATE = "simulate"
    ACTIONS_READ = "actions:read"
    DECISIONS_READ = "decisions:read"
    AUDIT_VERIFY = "audit:verify"
    AUDIT_CHECKPOINT = "audit:checkpoint"
    RULESETS_READ = "rulesets:read"
    RULESETS_WRITE = "rulesets:write"
    RULESETS_REVIEW = "rulesets:review"
    RULESETS_PUBLISH = "rulesets:publish"
    RULESETS_REPLAY = "rulesets:replay"
    WEBHOOKS_ADMIN = "webhooks:admin"
    REPORTS_READ = "reports:read"


PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.EVENTS_WRITE: frozenset({Role.INGEST, Role.ADMIN}),
    Permission.SIMULATE: frozenset({Role.INGEST, Role.EDITOR, Role.APPROVER, Role.COMPLIANCE, Role.ADMIN}),
    Permission.ACTIONS_READ: frozenset({Role.INGEST, Role.ADMIN}),
    Permission.DECISIONS_READ: frozenset({Role.COMPLIANCE, Role.AUDITOR, Role.ADMIN}),
    Permission.AUDIT_VERIFY: frozenset({Role.COMPLIANCE, Role.AUDITOR, Role.ADMIN}),
    Permission.AUDIT_CHECKPOINT: frozenset({Role.AUDITOR, Role.ADMIN}),
    Permission.RULESETS_READ: frozenset(
        {Role.EDITOR, Role.APPROVER, Role.COMPLIANCE, Role.AUDITOR, Role.ADMIN}
    ),
    Permission.RULESETS_WRITE: frozenset({Role.EDITOR, Role.ADMIN}),
    Permission.RULESETS_REVIEW: frozenset({Role.APPROVER, Role.ADMIN}),
    Permission.RULESETS_PUBLISH: frozenset({Role.EDITOR, Role.APPROVER, Role.ADMIN}),
    Permission.RULESETS_REPLAY: frozenset({Role.EDITOR, Role.APPROVER, Role.ADMIN}),
    Permission.WEBHOOKS_ADMIN: frozenset({Role.ADMIN}),
    Permission.REPORTS_READ: frozenset({Role.COMPLIANCE, Role.AUDITOR, Role.ADMIN}),
}

CLEARANCE_ROLES = frozenset({Role.COMPLIANCE})


def allowed(roles: Iterable[Role], permission: Permission) -> bool:
    return not PERMISSIONS[permission].isdisjoint(roles)


def has_clearance(roles: Iterable[Role]) -> bool:
    """May these roles read personal data in clear?"""
    return not CLEARANCE_ROLES.isdisjoint(roles)


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """Role names (also comma-separated) → roles; unknown names raise ValueError naming the valid ones."""
    roles: set[Role] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            try:
                roles.add(Role(name))
            except ValueError:
                raise ValueError(
                    f"unknown role {name!r}; roles: {', '.join(r.value for r in Role)}"
                ) from None
    if not roles:
        raise ValueError("at least one role is required")
    return frozenset(roles)


def generate_key() -> tuple[str, str]:
    """A new (key_id, key). The key is shown once; store only `hash_key(key)`."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The key id of a well-formed key, or None (then the key is rejected without a database lookup)."""
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (never the key) and its roles."""

    key_id: str
    roles: frozenset[Role]

    def may(self, permission: Permission) -> bool:
        return allowed(self.roles, permission)

    @property
    def clearance(self) -> bool:
        return has_clearance(self.roles)
