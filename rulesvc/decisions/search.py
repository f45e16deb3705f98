"""Searching stored decisions: the query, its opaque keyset cursor, and the search terms of a record.

Results come newest first, ordered by (decided_at, chain_seq) descending; the cursor names the last record
returned, so the next page starts strictly after it whatever is stored meanwhile. A decision's search
terms (the rulesets, rules, tables and table rows that fired, the types of its actions) are written next
to it by storage, so every filter is an index lookup.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rulesvc.errors import RulesvcError

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_TERM = 400

RULE_TERM = "r:"
ACTION_TERM = "a:"


class InvalidSearchError(RulesvcError):
    """A search parameter that cannot be used (bad cursor, empty range); `path` names the parameter."""

    code = "decisions.invalid_query"

    def __init__(self, code: str, message: str, path: str) -> None:
        self.code = code
        self.path = path
        super().__init__(message)


@dataclass(frozen=True)
class Cursor:
    """The last record of a page: the next page holds records strictly before it."""

    decided_at: datetime
    chain_seq: int

    def encode(self) -> str:
        raw = json.dumps([self.decided_at.astimezone(UTC).isoformat(), self.chain_seq], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            at, seq = json.loads(raw)
            instant = datetime.fromisoformat(at)
            if instant.tzinfo is None or not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError(text)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise InvalidSearchError(
                "decisions.bad_cursor", "游标 after 无效：请使用上一页返回的 next_after", "after"
            ) from None
        return cls(instant.astimezone(UTC), seq)


@dataclass(frozen=True)
class DecisionQuery:
    """Every filter is optional; those given must all hold. `rule` is `ruleset`, `ruleset/rule`,
    `ruleset/table` or `ruleset/table#row`; `from_`/`to` bound `decided_at` as [from, to)."""

    ticket_id: str | None = None
    event_id: str | None = None
    from_: datetime | None = None
    to: datetime | None = None
    rule: str | None = None
    action_type: str | None = None
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None

    def terms(self) -> list[str]:
        """The search terms a decision must carry."""
        found = []
        if self.rule:
            found.append(RULE_TERM + self.rule)
        if self.action_type:
            found.append(ACTION_TERM + self.action_type)
        return found

    def checked(self) -> DecisionQuery:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidSearchError("decisions.bad_limit", f"limit 须在 1 到 {MAX_LIMIT} 之间", "limit")
        if self.from_ is not None and self.to is not None and self.from_ >= self.to:
            raise InvalidSearchError("decisions.bad_range", "时间区间为空：from 须早于 to", "from")
        for path, term in (("rule", self.rule), ("action_type", self.action_type)):
            if term is not None and len(term) + 2 > MAX_TERM:
                raise InvalidSearchError("decisions.bad_term", f"{path} 过长", path)
        return self


def decision_terms(record: Mapping[str, Any]) -> list[str]:
    """The search terms of a stored (masked) decision record, without repeats."""
    terms: dict[str, None] = {}
    fired: Iterable[Any] = record.get("fired") or ()
    for hit in fired:
        if not isinstance(hit, Mapping):
            continue
        ruleset, rule = str(hit.get("ruleset", "")), str(hit.get("rule", ""))
        if not ruleset:
            continue
        terms[RULE_TERM + ruleset] = None
        if rule:
            terms[f"{RULE_TERM}{ruleset}/{rule}"] = None
            if "#" in rule:
                terms[f"{RULE_TERM}{ruleset}/{rule.split('#', 1)[0]}"] = None
    actions: Iterable[Any] = record.get("actions") or ()
    for action in actions:
        if isinstance(action, Mapping) and action.get("type"):
            terms[ACTION_TERM + str(action["type"])] = None
    return [term for term in terms if len(term) <= MAX_TERM]
