"""Field-level masking of personal data (ID card numbers, mobile numbers, names).

Pure functions over JSON-like values. A `MaskPolicy` masks

- every value under a configured field name (case-insensitive, at any depth; containers are masked leaf
  by leaf; a dotted key such as `ticket.customer_name` in a rule trace counts by its last part), with that
  field's mask kind, and
- every match of a configured regular expression inside any other string value (an ID card number written
  into a free-text `remark` is caught too).

Mask kinds: `id_card` keeps the first 6 and last 4 characters (`110105********1234`), `mobile` the first 3
and last 4 (`138****5678`), `name` the first character (`张*`, `欧**`), `full` hides everything.
Masking is deterministic and never reversible; the clear value lives only in the compliance store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rulesvc.model import to_jsonable

MaskKind = Literal["id_card", "mobile", "name", "full"]

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
}

# Mainland resident ID (18 characters, last may be X) and mainland mobile numbers, not inside longer digit runs.
DEFAULT_PATTERN_RULES: Mapping[str, MaskKind] = {
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])": (
        "id_card"
    ),
    r"(?<!\d)1[3-9]\d{9}(?!\d)": "mobile",
}


def mask_id_card(text: str) -> str:
    if len(text) < 10:
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_mobile(text: str) -> str:
    if len(text) < 8:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


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
}


def mask_text(kind: MaskKind, text: str) -> str:
    return MASKERS[kind](text)


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
                raise ValueError(f"unknown mask kind {kind!r}; use one of {', '.join(MASKERS)}")
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

    def _walk(self, value: Any, kind: MaskKind | None) -> Any:
        # Exact type checks first: JSON values are dicts, lists and scalars, and ABC checks are slow.
        value_type = type(value)
        if value_type is dict or (value_type is not str and isinstance(value, Mapping)):
            return {key: self._walk(item, kind or self._field_kind(str(key))) for key, item in value.items()}
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

    def _field_kind(self, key: str) -> MaskKind | None:
        """The kind for a field name; a dotted path (`ticket.customer_name`, as traces use) by its last part."""
        if not self.fields:
            return None
        name = key.casefold()
        kind = self.fields.get(name)
        if kind is None and "." in name:
            kind = self.fields.get(name.rsplit(".", 1)[1])
        return kind

    def _mask_patterns(self, text: str) -> str:
        if self.any_pattern is not None and self.any_pattern.search(text) is None:
            return text  # one scan for all patterns; most values match none
        for pattern, kind in self.patterns:
            text = pattern.sub(lambda m, k=kind: mask_text(k, m.group(0)), text)  # type: ignore[misc]
        return text
