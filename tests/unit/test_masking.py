"""Masking of personal data by field name and by pattern."""

from __future__ import annotations

import pytest

from rulesvc.masking import MaskPolicy, mask_id_card, mask_mobile, mask_name


def test_kinds() -> None:
    assert mask_id_card("110105199001011234") == "110105********1234"
    assert mask_id_card("11010519900101123X") == "110105********123X"
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳修") == "欧**"
    assert mask_name("张") == "*"


def test_fields_by_name_case_insensitive_at_any_depth() -> None:
    policy = MaskPolicy.build()
    event = {
        "event_id": "e1",
        "ticket": {
            "kind": "loan",
            "id": "L1",
            "Customer_Name": "张三",
            "ID_CARD": "110105199001011234",
            "mobile": 13812345678,
            "contacts": [{"name": "李四", "phone": "13987654321"}],
            "amount": 4999.99,
            "owner": "王经理",
        },
    }
    masked = policy.mask(event)
    ticket = masked["ticket"]
    assert ticket["Customer_Name"] == "张*"
    assert ticket["ID_CARD"] == "110105********1234"
    assert ticket["mobile"] == "138****5678"
    assert ticket["contacts"] == [{"name": "李*", "phone": "139****4321"}]
    assert ticket["amount"] == 4999.99 and ticket["owner"] == "王经理" and ticket["id"] == "L1"
    assert event["ticket"]["Customer_Name"] == "张三"  # input untouched


def test_patterns_inside_free_text() -> None:
    policy = MaskPolicy.build()
    text = "客户身份证110105199001011234，电话13812345678，订单号 2026093012345678901234 不动"
    assert policy.mask({"remark": text})["remark"] == (
        "客户身份证110105********1234，电话138****5678，订单号 2026093012345678901234 不动"
    )


def test_configurable_fields_and_patterns() -> None:
    policy = MaskPolicy.build({"证件": "id_card", "secret": "full"}, {r"VIP\d+": "full"})
    masked = policy.mask(
        {"证件": "110105199001011234", "secret": "abc", "note": "客户 VIP123", "name": "张三"}
    )
    assert masked == {"证件": "110105********1234", "secret": "****", "note": "客户 ****", "name": "张三"}


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mask kind"):
        MaskPolicy.build({"x": "hash"})  # type: ignore[dict-item]


def test_null_and_bool_values_are_kept() -> None:
    assert MaskPolicy.build().mask({"name": None, "mobile": True}) == {"name": None, "mobile": True}


def test_dotted_trace_keys_count_by_last_part() -> None:
    masked = MaskPolicy.build().mask({"values": {"ticket.customer_name": "张三", "ticket.amount": 1}})
    assert masked == {"values": {"ticket.customer_name": "张*", "ticket.amount": 1}}
