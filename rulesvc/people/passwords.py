"""Password hashing (argon2id, argon2-cffi's defaults) and one-time passwords. Passwords are never stored,
logged or returned; only the argon2id hash is kept."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rulesvc.people.errors import WeakPasswordError

MIN_LENGTH = 10
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile


@cache
def _dummy() -> str:
    """Verified against when the user does not exist, so that the answer takes as long."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    check_strength(password)
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def one_time_password() -> str:
    """A random password to hand over once (16 characters without look-alikes, ~93 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"密码至少 {MIN_LENGTH} 个字符", {"min_length": MIN_LENGTH})
    if password.strip() != password or not password.strip():
        raise WeakPasswordError("密码首尾不能是空白字符", None)
