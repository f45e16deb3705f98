"""Field classes: grants by role, field classes over kinds, and the masking each reader gets."""

from __future__ import annotations

import pytest

from rulesvc.errors import Location
from rulesvc.fieldclasses import (
    DEFAULT_GRANTS,
    PERSONAL,
    SENSITIVE,
    ClassMasking,
    field_classes,
    granted,
    parse_grants,
)
from rulesvc.lang.model import FieldSpec, KindSchema
from rulesvc.masking import default_policy


def kind(name: str, **specs: FieldSpec) -> KindSchema:
    return KindSchema(name, {}, {}, Location("k.yaml", 1, 1), specs=specs)


KINDS = {
    "loan": kind(
        "loan",
        credit_rating=FieldSpec("credit_rating", "string", data_class=SENSITIVE),
        mobile=FieldSpec("mobile", "string", format="cn_mobile", data_class=PERSONAL),
        nickname=FieldSpec("nickname", "string", data_class=PERSONAL),
        region=FieldSpec("region", "string"),
    ),
    "other": kind("other", region=FieldSpec("region", "string", data_class="公开")),
}


def test_grants() -> None:
    assert granted(["compliance"]) == frozenset(DEFAULT_GRANTS["compliance"])
    assert SENSITIVE not in granted(["ingest"]) and SENSITIVE in granted(["ingest", "auditor"])
    assert parse_grants({"auditor": ["公开"]})["auditor"] == frozenset({"公开"})
    with pytest.raises(ValueError, match="未知的字段级别"):
        parse_grants({"auditor": ["秘密"]})
    with pytest.raises(ValueError, match="未知角色"):
        parse_grants({"boss": ["公开"]})


def test_most_closed_class_wins_across_kinds() -> None:
    classes = field_classes(KINDS.values())
    assert classes["region"][0] == "内部"  # undeclared in loan: 内部, closer than 公开
    assert classes["mobile"] == (PERSONAL, "mobile") and classes["nickname"] == (PERSONAL, "full")


def test_each_reader_gets_its_masking() -> None:
    masking = ClassMasking(default_policy())
    value = {"ticket": {"credit_rating": "AA", "nickname": "小明", "mobile": "13812345678", "region": "浦东"}}
    assert masking.for_roles(["compliance"], KINDS) is None
    ingest = masking.for_roles(["ingest"], KINDS)
    auditor = masking.for_roles(["auditor"], KINDS)
    assert ingest is not None and auditor is not None
    assert ingest.mask(value)["ticket"] == {
        "credit_rating": "****",
        "nickname": "****",
        "mobile": "138****5678",
        "region": "浦东",
    }
    assert auditor.mask(value)["ticket"]["credit_rating"] == "AA"
    assert auditor.mask(value)["ticket"]["nickname"] == "****"
    personal_only = masking.for_classes(frozenset({"公开", "内部", PERSONAL}), KINDS)
    assert personal_only is not None
    assert personal_only.mask(value)["ticket"] == {**value["ticket"], "credit_rating": "****"}
