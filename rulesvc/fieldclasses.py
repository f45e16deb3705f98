"""Field-level classes: a kind declares a class per field (`class: 个人信息`), roles are granted classes, and
wherever a reader lacking a field's class reads it — decision detail, the feed, replay examples — the value
leaves masked.

Classes, from open to closed: 公开 (public), 内部 (internal), 敏感 (sensitive), 个人信息 (personal data).
A field without a declared class is 内部. Grants by role (`DEFAULT_GRANTS`, changed with
`RULESVC_FIELD_CLASS_GRANTS`, a JSON object role → classes): compliance holds every class; admin, auditor,
editor and approver hold 公开, 内部 and 敏感; ingest (the feed) holds 公开 and 内部.

Fields are recognized by name wherever ticket data occurs (the ticket in a decision's event, an action
parameter, a trace's `ticket.<field>`; not the timer structure the engine writes into actions, such as a
start_timer's warning points: `rulesvc.masking.MaskPolicy.mask_action`), across every kind: a name declared with different classes in two kinds takes
the most closed. A masked value keeps the shape its personal-data masking gives it (`138****5678`), or
becomes `****`. A reader without 个人信息 also gets personal data masked by format and field name
(`rulesvc.masking`), whatever the classes say; a reader holding 个人信息 (compliance) reads in clear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rulesvc.apikeys import Role
from rulesvc.lang.model import KindSchema
from rulesvc.masking import DEFAULT_FIELD_RULES, MaskKind, MaskPolicy

PUBLIC = "公开"
INTERNAL = "内部"
SENSITIVE = "敏感"
PERSONAL = "个人信息"
CLASSES: tuple[str, ...] = (PUBLIC, INTERNAL, SENSITIVE, PERSONAL)
"""From open to closed."""
DEFAULT_CLASS = INTERNAL

DEFAULT_GRANTS: Mapping[str, frozenset[str]] = {
    Role.COMPLIANCE.value: frozenset(CLASSES),
    Role.ADMIN.value: frozenset({PUBLIC, INTERNAL, SENSITIVE}),
    Role.AUDITOR.value: frozenset({PUBLIC, INTERNAL, SENSITIVE}),
    Role.EDITOR.value: frozenset({PUBLIC, INTERNAL, SENSITIVE}),
    Role.APPROVER.value: frozenset({PUBLIC, INTERNAL, SENSITIVE}),
    Role.INGEST.value: frozenset({PUBLIC, INTERNAL}),
}
SUBSCRIPTION_DEFAULT = frozenset({PUBLIC, INTERNAL})
"""What a webhook subscription receives in clear unless it is granted more."""

# The personal-data masking a field's format implies (a masked value keeps its shape).
_FORMAT_MASKS: Mapping[str, MaskKind] = {
    "cn_mobile": "mobile",
    "cn_id_card": "id_card",
    "bank_card": "bank_card",
    "cn_uscc": "uscc",
    "email": "email",
}


def parse_grants(values: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Role → classes (the defaults, with `values` replacing the roles it names); raises ValueError naming
    an unknown role or class."""
    grants = dict(DEFAULT_GRANTS)
    for role, classes in values.items():
        if role not in DEFAULT_GRANTS:
            raise ValueError(f"字段级别授权里有未知角色 {role!r}；可用角色：{'、'.join(DEFAULT_GRANTS)}")
        chosen = frozenset(classes)
        unknown = sorted(chosen - set(CLASSES))
        if unknown:
            raise ValueError(f"未知的字段级别 {'、'.join(unknown)}；可用级别：{'、'.join(CLASSES)}")
        grants[role] = chosen
    return grants


def granted(roles: Iterable[str], grants: Mapping[str, frozenset[str]] = DEFAULT_GRANTS) -> frozenset[str]:
    """The classes a caller holding `roles` may read in clear."""
    result: set[str] = set()
    for role in roles:
        result |= grants.get(str(role), frozenset())
    return frozenset(result)


def _closed(first: str, second: str) -> str:
    return first if CLASSES.index(first) >= CLASSES.index(second) else second


def field_classes(kinds: Iterable[KindSchema]) -> dict[str, tuple[str, MaskKind]]:
    """Field name → (class, how its value is masked) over every kind; names of no declared class are left
    out (they are `DEFAULT_CLASS`, which every role holds by default)."""
    found: dict[str, tuple[str, MaskKind]] = {}
    for kind in kinds:
        for name, spec in kind.specs.items():
            data_class = spec.data_class or DEFAULT_CLASS
            mask: MaskKind = _FORMAT_MASKS.get(spec.format or "") or DEFAULT_FIELD_RULES.get(
                name.casefold(), "full"
            )
            if name in found:
                data_class = _closed(found[name][0], data_class)
            found[name] = (data_class, mask)
    return found


@dataclass
class ClassMasking:
    """The masking each reader gets: by their granted classes, on the kinds in force (`field_classes`)."""

    base: MaskPolicy
    """Personal data by format and name (`Settings.mask_policy()`), for readers without 个人信息."""
    grants: Mapping[str, frozenset[str]] = field(default_factory=lambda: dict(DEFAULT_GRANTS))
    _cache: dict[tuple[int, frozenset[str]], tuple[object, MaskPolicy | None]] = field(default_factory=dict)

    def for_roles(self, roles: Iterable[str], kinds: Mapping[str, KindSchema]) -> MaskPolicy | None:
        return self.for_classes(granted(roles, self.grants), kinds)

    def for_classes(self, classes: frozenset[str], kinds: Mapping[str, KindSchema]) -> MaskPolicy | None:
        """The policy for a reader holding `classes`; None: nothing to mask (every class held)."""
        key = (id(kinds), classes)
        cached = self._cache.get(key)
        if cached is None or cached[0] is not kinds:  # the kinds object itself is kept: ids are reused
            if len(self._cache) > 64:
                self._cache.clear()
            cached = (kinds, self._build(classes, kinds))
            self._cache[key] = cached
        return cached[1]

    def _build(self, classes: frozenset[str], kinds: Mapping[str, KindSchema]) -> MaskPolicy | None:
        hidden = {
            name: mask
            for name, (data_class, mask) in field_classes(kinds.values()).items()
            if data_class not in classes
        }
        if PERSONAL in classes:
            return MaskPolicy.build(fields=hidden, patterns={}) if hidden else None
        return MaskPolicy.build(fields={**self.base_fields(), **hidden}, patterns=self.base_patterns())

    def base_fields(self) -> dict[str, MaskKind]:
        return dict(self.base.fields)

    def base_patterns(self) -> dict[str, MaskKind]:
        return {pattern.pattern: kind for pattern, kind in self.base.patterns}
