"""Named data formats with real validation: 身份证号 (GB 11643), 手机号, 统一社会信用代码 (GB 32100), 银行卡号
(Luhn), email.

Pure functions, one per format, each answering `None` for a valid value or a Chinese reason for an invalid
one. Kind schemas declare `format: cn_id_card` on a field (validation at ingest); masking may key off the
same names (`FORMATS` is the registry both read).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Final

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"
_ID_SHAPE: Final = re.compile(r"^\d{17}[\dX]$")


def check_cn_id_card(value: str) -> str | None:
    """18-character resident identity number: region, birth date YYYYMMDD, sequence, check character."""
    text = value.upper()
    if not _ID_SHAPE.match(text):
        return "身份证号应为 18 位：17 位数字加 1 位校验码（数字或 X）"
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return f"身份证号中的出生日期 {text[6:14]} 不是有效日期"
    if born.year < 1900:
        return f"身份证号中的出生日期 {text[6:14]} 早于 1900 年"
    total = sum(int(digit) * weight for digit, weight in zip(text[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != text[17]:
        return "身份证号校验码不正确"
    return None


_MOBILE: Final = re.compile(r"^1[3-9]\d{9}$")


def check_cn_mobile(value: str) -> str | None:
    """Mainland mobile number: 11 digits starting 13–19 (no country code, no separators)."""
    return None if _MOBILE.match(value) else "手机号应为 11 位数字，以 13–19 开头"


_USCC_CHARS: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE: Final = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def check_cn_uscc(value: str) -> str | None:
    """统一社会信用代码: 18 characters of the GB 32100 alphabet (no I, O, S, V, Z), last one a check character."""
    text = value.upper()
    if not _USCC_SHAPE.match(text):
        return "统一社会信用代码应为 18 位（数字与除 I、O、S、V、Z 外的大写字母，第 3–8 位为数字）"
    total = sum(
        _USCC_CHARS.index(char) * weight for char, weight in zip(text[:17], _USCC_WEIGHTS, strict=True)
    )
    if _USCC_CHARS[(31 - total % 31) % 31] != text[17]:
        return "统一社会信用代码校验码不正确"
    return None


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


_CARD: Final = re.compile(r"^\d{12,19}$")


def check_bank_card(value: str) -> str | None:
    """Bank card number: 12–19 digits passing the Luhn check."""
    if not _CARD.match(value):
        return "银行卡号应为 12–19 位数字"
    return None if luhn_ok(value) else "银行卡号校验位不正确（Luhn）"


_EMAIL: Final = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def check_email(value: str) -> str | None:
    """An address `local@domain.tld` (ASCII, at most 254 characters, no dots at the ends of the local part)."""
    local = value.partition("@")[0]
    if (
        len(value) > 254
        or not _EMAIL.match(value)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        return "邮箱地址格式不正确"
    return None


FORMATS: Final[Mapping[str, Callable[[str], str | None]]] = {
    "cn_id_card": check_cn_id_card,
    "cn_mobile": check_cn_mobile,
    "cn_uscc": check_cn_uscc,
    "bank_card": check_bank_card,
    "email": check_email,
}
