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
| `people:admin`      | /v1/admin/... (users, keys)    |        |        |          |            |         | ✓     |

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
    PEOPLE_ADMIN = "people:admin"


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
    Permission.PEOPLE_ADMIN: frozenset({Role.ADMIN}),
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
                raise ValueError(f"未知角色 {name!r}；可用角色：{'、'.join(r.value for r in Role)}") from None
    if not roles:
        raise ValueError("至少需要一个角色")
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


def actor_name(ident: str, label: str = "") -> str:
    """How a caller is named in lifecycle records and chain entries: `张敏 (u_3f2a9c1e0b7d)`,
    `风险专员张敏 (3f2a9c1e0b7d)`, or the bare id. The id in parentheses is what four eyes compares."""
    label = " ".join(label.split())[:48]
    return f"{label} ({ident})" if label else ident


_ACTOR_ID = re.compile(r"\(([^()\s]+)\)$")


def actor_id(actor: str) -> str:
    """The id an actor name ends with (`张敏 (u_3f2a9c1e0b7d)` → `u_3f2a9c1e0b7d`), or the name itself."""
    match = _ACTOR_ID.search(actor)
    return match.group(1) if match else actor


def same_actor(first: str, second: str) -> bool:
    """Do two actor names name the same person or service (by id; display names may be shared)?"""
    return actor_id(first) == actor_id(second)


USER = "user"
SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (never the key) or the session's, the roles in effect (the key's,
    never more than its owner's) and the owner — a person (`user`) or a service account (`service`)."""

    key_id: str
    roles: frozenset[Role]
    principal_id: str = ""
    name: str = ""
    kind: str = SERVICE
    label: str = ""
    """The key's label (service accounts are named by their key in lifecycle records)."""
    session_id: str = ""
    """Set when the caller signed in (a browser session) rather than presenting a key."""

    def may(self, permission: Permission) -> bool:
        return allowed(self.roles, permission)

    @property
    def actor(self) -> str:
        """The name recorded as author, reviewer or publisher: a person by their user id, whatever key or
        session they use (four eyes is per person); a service account by its key."""
        if self.kind == USER and self.principal_id:
            return actor_name(self.principal_id, self.name)
        return actor_name(self.key_id, self.label)

    @property
    def clearance(self) -> bool:
        return has_clearance(self.roles)
