"""TOTP second factor (RFC 6238, 30-second steps, 6 digits) through pyotp; the clock is injected."""

from __future__ import annotations

from datetime import datetime

import pyotp


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The `otpauth://` URI an authenticator app reads (usually shown as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def verify_code(secret: str, code: str, at: datetime) -> bool:
    """Is `code` valid at `at`, allowing one step of clock drift either way?"""
    code = code.strip()
    return code.isdigit() and pyotp.TOTP(secret).verify(code, for_time=at, valid_window=1)


def code_at(secret: str, at: datetime) -> str:
    """The code an authenticator shows at `at` (for tests and tools)."""
    return pyotp.TOTP(secret).at(at)
