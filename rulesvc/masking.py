"""Masking of personal data by field name and by what the data is (ID numbers, mobile numbers, bank cards,
unified social credit codes, e-mail addresses, names). The one module that recognizes personal data.

Pure functions over JSON-like values. A `MaskPolicy` masks

- every value under a configured field name (case-insensitive, at any depth; containers are masked leaf
  by leaf; a dotted key such as `ticket.customer_name` in a rule trace counts by its last part), with that
  field's mask kind, and
- every match of a configured regular expression inside any other string value (an ID card number written
  into a free-text `remark` is caught too).

Recognized by format, anywhere in a string (ids, free text, template output): 18- and 15-digit resident ID
numbers, mainland mobile numbers in every common spelling (`13812345678`, `+8613812345678`,
`+86 138 1234 5678`, `138-1234-5678`), bank card numbers (16–19 digits, grouped or not, Luhn-valid),
unified social credit codes and e-mail addresses.

Mask kinds: `id_card` keeps the first 6 and last 4 characters (`110105********1234`), `mobile` the first 3
and last 4 digits of the national number (`138****5678`, `+86 138****5678`), `bank_card` the first 6 and
last 4 digits, `uscc` the first 2 and last 4 characters, `email` the first character of the local part and
the domain (`z***@example.com`), `name` the first character (`张*`, `欧**`), `full` hides everything.
Masking is deterministic and never reversible; the clear value lives only in the compliance store.

Never masked: the values under `NEVER_MASKED` keys (rule, ruleset and timer names, timer points): they name
the service's own rules and timers, not people (a timer object's `name` is a timer name).

Which values are the ticket's data and which are the rules' own structure is told by where they sit:

- `mask` is for data: an event and its ticket (every key is a field name of the ticket or the event).
- `mask_action` is for one action the rules produced. Its parameters (`to`, `message`, `amount`, ...) may
  carry ticket values (`notify: {to: ticket.mobile}`, `trigger_payment: {amount: ticket.amount}`), so each
  is masked by the field rule of its name and by the patterns, as data. The timer structure the engine
  writes itself (`ENGINE_STRUCTURE`: the timer and its points, a start_timer's `warnings` with each point's
  `name`, `after` and `at`, the times, `fired_by`) comes from the ruleset's text and the clock, never from a
  ticket, and is left as it is: a warning point named 预警 is not a person's name.
- `mask_record` is for a stored decision record: `event` as data, each of `actions` by `mask_action`, and
  the trace's values by their path: `ticket.<field>` (and a derived fact's `<fact>.<field>`) by the field's
  rule, `timer.*` and `event.*` (the engine's timer and event) never by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rulesvc.model import to_jsonable

MaskKind = Literal["id_card", "mobile", "name", "full", "bank_card", "uscc", "email"]

DEFAULT_FIELD_RULES: Mapping[str, MaskKind] = {
    "id_card": "id_card",
    "id_card_no": "id_card",
    "id_number": "id_card",
    "id_no": "id_card",
    "身份证": "id_card",
    "身份证号": "id_card",
    "证件号码": "id_card",
    "mobile": "mobile",
    "phone": "mobile",
    "mobile_phone": "mobile",
    "手机": "mobile",
    "手机号": "mobile",
    "联系电话": "mobile",
    "name": "name",
    "customer_name": "name",
    "applicant": "name",
    "applicant_name": "name",
    "borrower": "name",
    "contact_name": "name",
    "姓名": "name",
    "客户姓名": "name",
    "申请人": "name",
    "借款人": "name",
    "email": "email",
    "e_mail": "email",
    "邮箱": "email",
    "电子邮箱": "email",
    "bank_card": "bank_card",
    "card_no": "bank_card",
    "account_no": "bank_card",
    "银行卡号": "bank_card",
    "uscc": "uscc",
    "credit_code": "uscc",
    "统一社会信用代码": "uscc",
}

_EDGE = r"(?![0-9A-Za-z])"
_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_USCC_CHAR = "[0-9A-HJ-NPQRTUWXY]"

# Applied in this order (a value masked by an earlier pattern no longer matches a later one).
DEFAULT_PATTERN_RULES: Mapping[str, MaskKind] = {
    # resident ID, 18 characters (last may be X) and the older 15 digits
    _ALNUM_BEFORE + r"[1-9]\d{5}(?:18|19|20)\d{2}" + _DATE + r"\d{3}[\dXx]" + _EDGE: "id_card",
    _ALNUM_BEFORE + r"[1-9]\d{7}" + _DATE + r"\d{3}" + _EDGE: "id_card",
    # mobile: optional +86 / 0086 / 86, digits optionally grouped 3-4-4 by spaces or hyphens
    r"(?<![\d+])(?:(?:\+|00)?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)": "mobile",
    # bank card: 16-19 digits, optionally in groups (masked only when the Luhn check holds)
    _ALNUM_BEFORE + r"\d{4}(?:[ -]?\d{4}){3}(?:[ -]?\d{1,3})?" + _EDGE: "bank_card",
    # unified social credit code (18 characters)
    _ALNUM_BEFORE + _USCC_CHAR + r"{2}\d{6}" + _USCC_CHAR + r"{10}" + _EDGE: "uscc",
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}": "email",
}

NEVER_MASKED = frozenset({"rule", "ruleset", "rules", "timer", "point", "fired_by"})
"""Keys whose values are never masked: the service's own rule, ruleset and timer names."""

ENGINE_STRUCTURE = frozenset(
    {
        *NEVER_MASKED,
        "type",
        "warnings",
        "duration",
        "calendar",
        "due_at",
        "previous_due_at",
        "started_at",
        "provisional",
    }
)
"""Keys of an action (`mask_action`) whose values the engine writes from the ruleset's text and the clock:
the action's type and rule, the timer, its duration, calendar, times and warning points (each `{name,
after, at}`: `name` is a point's name), whether it is provisional and which timer point fired it."""

ENGINE_ROOTS = frozenset({"timer", "event"})
"""Roots of trace paths that are the engine's own (`timer.name`, `event.type`): not ticket fields."""


def mask_id_card(text: str) -> str:
    if len(text) < 10:
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_mobile(text: str) -> str:
    if "*" in text:
        return text  # masked already (a stored record read again)
    digits = "".join(c for c in text if c.isdigit())
    prefix = ""
    if len(digits) > 11:
        prefix, digits = "+86 ", digits[-11:]
    if len(digits) < 8:
        return "*" * len(text)
    return prefix + digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def mask_bank_card(text: str) -> str:
    """First 6 and last 4 digits of the longest leading run of 16–19 digits that passes the Luhn check
    (the rest of the match stays as written); a run that never passes is not a card and stays."""
    positions = [i for i, c in enumerate(text) if c.isdigit()]
    digits = "".join(text[i] for i in positions)
    for length in range(min(len(digits), 19), 15, -1):
        if luhn(digits[:length]):
            card = digits[:length]
            return card[:6] + "*" * (length - 10) + card[-4:] + text[positions[length - 1] + 1 :]
    return text


def mask_uscc(text: str) -> str:
    return text[:2] + "*" * (len(text) - 6) + text[-4:] if len(text) > 6 else "*" * len(text)


def mask_email(text: str) -> str:
    local, at, domain = text.partition("@")
    if not at:
        return mask_full(text)
    return (local[:1] or "*") + "***@" + domain


def mask_name(text: str) -> str:
    if len(text) < 2:
        return "*"
    return text[0] + "*" * (len(text) - 1)


def mask_full(text: str) -> str:
    return "****" if text else text


MASKERS: Mapping[MaskKind, Callable[[str], str]] = {
    "id_card": mask_id_card,
    "mobile": mask_mobile,
    "name": mask_name,
    "full": mask_full,
    "bank_card": mask_bank_card,
    "uscc": mask_uscc,
    "email": mask_email,
}


def mask_text(kind: MaskKind, text: str) -> str:
    return MASKERS[kind](text)


def default_policy() -> MaskPolicy:
    """The shipped rules (error bodies and log lines use them whatever the deployment adds)."""
    if not _DEFAULT:
        _DEFAULT.append(MaskPolicy.build())
    return _DEFAULT[0]


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True)
class MaskPolicy:
    """Which fields and patterns are personal data. Build with `MaskPolicy.build(...)`."""

    fields: Mapping[str, MaskKind]
    patterns: tuple[tuple[re.Pattern[str], MaskKind], ...]
    any_pattern: re.Pattern[str] | None = None

    @classmethod
    def build(
        cls,
        fields: Mapping[str, MaskKind] = DEFAULT_FIELD_RULES,
        patterns: Mapping[str, MaskKind] = DEFAULT_PATTERN_RULES,
    ) -> MaskPolicy:
        """Field names are matched case-insensitively; patterns are compiled once (a bad one raises re.error)."""
        for kind in (*fields.values(), *patterns.values()):
            if kind not in MASKERS:
                raise ValueError(f"未知的脱敏方式 {kind!r}；可用：{'、'.join(MASKERS)}")
        compiled = tuple((re.compile(p), kind) for p, kind in patterns.items())
        return cls(
            fields={name.casefold(): kind for name, kind in fields.items()},
            patterns=compiled,
            any_pattern=re.compile("|".join(f"(?:{p.pattern})" for p, _ in compiled)) if compiled else None,
        )

    def mask(self, value: Any) -> Any:
        """A masked, JSON-ready copy of a JSON-like value (mappings, lists, scalars; decimals, datetimes and
        durations become JSON as `to_jsonable` makes them, in the same walk); the input is left untouched."""
        return self._walk(value, None)

    def mask_action(self, action: Mapping[str, Any]) -> dict[str, Any]:
        """A masked, JSON-ready copy of one action the rules produced: its parameters as data (the field
        rule of the parameter's name, the patterns), the engine's structure (`ENGINE_STRUCTURE`) as it is."""
        return {
            key: to_jsonable(item)
            if key in ENGINE_STRUCTURE
            else self._walk(item, self._field_kind(str(key)))
            for key, item in action.items()
        }

    def mask_actions(self, actions: Any) -> Any:
        """`mask_action` over a list of actions (anything else: as data)."""
        if isinstance(actions, list | tuple):
            return [self.mask_action(a) if isinstance(a, Mapping) else self._walk(a, None) for a in actions]
        return self.mask(actions)

    def mask_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A stored decision record masked part by part: `actions` by `mask_action`, everything else (the
        event, the trace by its paths, ids) as data."""
        return {
            key: self.mask_actions(item) if key == "actions" else self._walk(item, None)
            for key, item in record.items()
        }

    def _walk(self, value: Any, kind: MaskKind | None) -> Any:
        # Exact type checks first: JSON values are dicts, lists and scalars, and ABC checks are slow.
        value_type = type(value)
        if value_type is dict or (value_type is not str and isinstance(value, Mapping)):
            return {
                key: to_jsonable(item)
                if key in NEVER_MASKED
                else self._walk(item, kind or self._field_kind(str(key)))
                for key, item in value.items()
            }
        if value_type is list or value_type is tuple:
            return [self._walk(item, kind) for item in value]
        if value_type not in _JSON_SCALARS:
            value = to_jsonable(value)
            value_type = type(value)
        if kind is not None:
            if value is None or value_type is bool:
                return value
            return mask_text(kind, str(value))
        if value_type is str:
            return self._mask_patterns(value) if self.patterns else value
        return value

    def mask_text(self, text: str) -> str:
        """`text` with every recognized piece of personal data in it masked (ids, messages, log lines)."""
        return self._mask_patterns(text) if self.patterns else text

    def _field_kind(self, key: str) -> MaskKind | None:
        """The kind for a field name; a dotted path (`ticket.customer_name`, as traces use) by its last part,
        unless it is the engine's own (`timer.name`, `event.type`: `ENGINE_ROOTS`)."""
        if not self.fields:
            return None
        name = key.casefold()
        kind = self.fields.get(name)
        if kind is None and "." in name:
            root, _, rest = name.partition(".")
            if root not in ENGINE_ROOTS:
                kind = self.fields.get(rest.rsplit(".", 1)[-1])
        return kind

    def _mask_patterns(self, text: str) -> str:
        if self.any_pattern is not None and self.any_pattern.search(text) is None:
            return text  # one scan for all patterns; most values match none
        for pattern, kind in self.patterns:
            text = pattern.sub(lambda m, k=kind: mask_text(k, m.group(0)), text)  # type: ignore[misc]
        return text


_DEFAULT: list[MaskPolicy] = []
