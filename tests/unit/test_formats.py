"""Named formats validate for real: check digits and dates, not only shapes."""

from __future__ import annotations

import pytest

from rulesvc.formats import FORMATS


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("cn_id_card", "110105199001011232"),
        ("cn_id_card", "11010519491231002x"),
        ("cn_mobile", "13812345678"),
        ("cn_uscc", "91350100M000100Y43"),
        ("cn_uscc", "91110108MA01A2B3CF"),
        ("bank_card", "6222021234567890128"),
        ("bank_card", "4111111111111111"),
        ("email", "zhao.min@bank.cn"),
    ],
)
def test_valid_values(fmt: str, value: str) -> None:
    assert FORMATS[fmt](value) is None


@pytest.mark.parametrize(
    ("fmt", "value", "reason"),
    [
        ("cn_id_card", "110105199001011234", "校验码"),
        ("cn_id_card", "110105199002301231", "出生日期"),
        ("cn_id_card", "11010519900101123", "18 位"),
        ("cn_mobile", "12812345678", "11 位"),
        ("cn_mobile", "1381234567", "11 位"),
        ("cn_uscc", "91350100M000100Y44", "校验码"),
        ("cn_uscc", "91350100M000100I43", "18 位"),
        ("bank_card", "6222021234567890127", "Luhn"),
        ("bank_card", "62220212345", "12–19"),
        ("email", "zhao..min@bank.cn", "邮箱"),
        ("email", "zhao@bank", "邮箱"),
    ],
)
def test_invalid_values_say_why(fmt: str, value: str, reason: str) -> None:
    message = FORMATS[fmt](value)
    assert message is not None and reason in message
