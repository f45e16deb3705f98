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
    with pytest.raises(ValueError, match="未知的脱敏方式"):
        MaskPolicy.build({"x": "hash"})  # type: ignore[dict-item]


def test_null_and_bool_values_are_kept() -> None:
    assert MaskPolicy.build().mask({"name": None, "mobile": True}) == {"name": None, "mobile": True}


def test_dotted_trace_keys_count_by_last_part() -> None:
    masked = MaskPolicy.build().mask({"values": {"ticket.customer_name": "张三", "ticket.amount": 1}})
    assert masked == {"values": {"ticket.customer_name": "张*", "ticket.amount": 1}}


START_TIMER = {
    "type": "start_timer",
    "rule": "complaint-sla/启动首次响应计时",
    "timer": "首次响应",
    "duration": "2h",
    "calendar": "24x7",
    "started_at": "2026-12-06T10:00:51+08:00",
    "due_at": "2026-12-06T12:00:51+08:00",
    "warnings": [{"name": "预警", "after": "1h30m", "at": "2026-12-06T11:30:51+08:00"}],
}


def test_the_engines_timer_structure_in_an_action_is_not_personal_data() -> None:
    """A warning point's `name` is the point's name (预警), not a person's: field rules do not reach the
    timer structure the engine writes, while a ticket's own `name` field is still masked."""
    policy = MaskPolicy.build()
    assert policy.mask_action(START_TIMER) == START_TIMER
    assert policy.mask({"ticket": {"name": "预警人"}}) == {"ticket": {"name": "预**"}}
    fired = {"type": "notify", "to": "owner", "fired_by": {"timer": "首次响应", "point": "预警"}}
    assert policy.mask_action(fired) == fired


def test_ticket_values_copied_into_action_parameters_stay_masked() -> None:
    """A notify to the customer's mobile copied from the ticket, the number in its message, a parameter
    named like a personal field: masked by the patterns and the field rule of the parameter's name."""
    policy = MaskPolicy.build()
    notify = {
        "type": "notify",
        "to": "13812345678",
        "channels": ["sms"],
        "message": "请回访客户 13812345678",
        "customer_name": "王小明",
        "rule": "complaint-contact/短信回访",
    }
    assert policy.mask_action(notify) == {
        **notify,
        "to": "138****5678",
        "message": "请回访客户 138****5678",
        "customer_name": "王**",
    }
    # A parameter beside the timer structure is data all the same.
    phone_like = {**START_TIMER, "to": "+86 138 1234 5678"}
    assert policy.mask_action(phone_like)["to"] == "+86 138****5678"


def test_a_record_masks_its_event_as_data_its_actions_as_actions_its_trace_by_path() -> None:
    policy = MaskPolicy.build()
    record = {
        "ticket_id": "C-13812345678",
        "event": {"type": "timer.warning", "ticket": {"name": "王小明", "mobile": "13812345678"}},
        "actions": [START_TIMER],
        "trace": [
            {
                "ruleset": "complaint-sla",
                "rule": "投诉超时预警",
                "conditions": [
                    {"condition": 'timer.name == "首次响应"', "values": {"timer.name": "首次响应"}},
                    {"condition": 'ticket.name != ""', "values": {"ticket.name": "王小明"}},
                    {"condition": "客户.name", "values": {"客户.name": "王小明"}},
                ],
            }
        ],
    }
    shown = policy.mask_record(record)
    assert shown["ticket_id"] == "C-138****5678"
    assert shown["event"]["ticket"] == {"name": "王**", "mobile": "138****5678"}
    assert shown["actions"] == [START_TIMER]
    values = [c["values"] for c in shown["trace"][0]["conditions"]]
    assert values == [{"timer.name": "首次响应"}, {"ticket.name": "王**"}, {"客户.name": "王**"}]
