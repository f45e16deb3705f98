"""Who may take which lifecycle step (the four-eyes rule itself is in the service: it depends on the draft).

| permission          | routes                                                   | editor | approver | compliance | auditor | admin |
|---------------------|----------------------------------------------------------|--------|----------|------------|---------|-------|
| `rulesets:read`     | GET /v1/rulesets..., versions, diff, drafts, history     | ✓      | ✓        | ✓          | ✓       | ✓     |
| `rulesets:write`    | POST drafts, PUT cases, submit, rollback, import (drafts)| ✓      |          |            |         | ✓     |
| `rulesets:review`   | approve, reject                                          |        | ✓        |            |         | ✓     |
| `rulesets:publish`  | publish an approved draft                                | ✓      | ✓        |            |         | ✓     |
| `rulesets:replay`   | backtest a draft on logged decisions (masked examples)   | ✓      | ✓        |            |         | ✓     |

Importing into an empty database (version 1 without approval) needs `admin`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from rulesvc.apikeys import Role


class RulesetPermission(StrEnum):
    READ = "rulesets:read"
    WRITE = "rulesets:write"
    REVIEW = "rulesets:review"
    PUBLISH = "rulesets:publish"
    REPLAY = "rulesets:replay"


RULESET_PERMISSIONS: dict[RulesetPermission, frozenset[Role]] = {
    RulesetPermission.READ: frozenset(
        {Role.EDITOR, Role.APPROVER, Role.COMPLIANCE, Role.AUDITOR, Role.ADMIN}
    ),
    RulesetPermission.WRITE: frozenset({Role.EDITOR, Role.ADMIN}),
    RulesetPermission.REVIEW: frozenset({Role.APPROVER, Role.ADMIN}),
    RulesetPermission.PUBLISH: frozenset({Role.EDITOR, Role.APPROVER, Role.ADMIN}),
    RulesetPermission.REPLAY: frozenset({Role.EDITOR, Role.APPROVER, Role.ADMIN}),
}


def may(roles: Iterable[Role], permission: RulesetPermission) -> bool:
    return not RULESET_PERMISSIONS[permission].isdisjoint(roles)


def may_bootstrap(roles: Iterable[Role]) -> bool:
    return Role.ADMIN in set(roles)
