"""Encryption at rest of the clear inputs (the copy of each event only compliance reads): envelope
encryption with AES-256-GCM.

Each stored input gets a data key of its own (32 random bytes) that encrypts it, bound to its decision id
(the associated data: a ciphertext moved to another row does not decrypt); the data key is stored wrapped
(AES-256-GCM) by a key-encryption key kept outside the database — in the environment or a key file — and
named by its id:

    enc:v1:<key id>:<base64url(nonce ‖ wrapped data key)>:<base64url(nonce ‖ ciphertext)>

A keyring holds the current key (new inputs are wrapped by it) and older ones (still read). Rotation without
downtime: add the new key to every replica's keyring as current (old keys stay readable), then
`rulesvc data-keys rotate` re-wraps every stored data key under it (only the small wrapped key changes, not
the ciphertext), then the old key may be dropped. Rows stored in clear (before a key was configured) stay
readable and are encrypted by `rotate`.

The audit chain's digest is over the clear input, so encrypting or re-wrapping changes nothing it vouches
for; `verify` decrypts (a database checked without the keys cannot check the clear inputs).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rulesvc.errors import RulesvcError

PREFIX = "enc:v1:"
_NONCE = 12


class DataKeyError(RulesvcError):
    """A stored input cannot be decrypted: its key is not in the keyring, or the ciphertext was altered."""

    code = "crypto.data_key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read_key(text: str) -> bytes:
    """A 32-byte key written in base64 (standard or URL-safe) or hex."""
    text = text.strip()
    candidates: list[bytes] = []
    with contextlib.suppress(ValueError):
        candidates.append(bytes.fromhex(text))
    with contextlib.suppress(ValueError, TypeError):
        candidates.append(_unb64(text.replace("+", "-").replace("/", "_")))
    for key in candidates:
        if len(key) == 32:
            return key
    raise ValueError("a data key must be 32 bytes, in base64 or hex")


def new_key_text() -> str:
    """A fresh key as base64url text (what `rulesvc data-keys new` prints)."""
    return _b64(secrets.token_bytes(32))


@dataclass(frozen=True)
class Keyring:
    """Key-encryption keys by id; `current` wraps new data keys."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"the current data key {self.current!r} is not among the keys")
        for key_id, key in self.keys.items():
            if not key_id or ":" in key_id or len(key) != 32:
                raise ValueError(f"data key {key_id!r}: ids are non-empty without ':', keys 32 bytes")

    @classmethod
    def from_texts(cls, keys: Mapping[str, str], current: str | None = None) -> Keyring:
        parsed = {str(k): read_key(v) for k, v in keys.items()}
        if not parsed:
            raise ValueError("no data keys given")
        return cls(parsed, current or next(reversed(parsed)))

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        """A JSON file `{"current": "<id>", "keys": {"<id>": "<base64 or hex>", ...}}`."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls.from_texts(data["keys"], data.get("current"))

    def encrypt(self, clear: str, row: str) -> str:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(data_key).encrypt(nonce, clear.encode("utf-8"), row.encode("utf-8"))
        return f"{PREFIX}{self.current}:{self._wrap(self.current, data_key)}:{_b64(nonce + sealed)}"

    def decrypt(self, stored: str, row: str) -> str:
        """The clear text of a stored input (a row stored in clear is returned as it is)."""
        if not stored.startswith(PREFIX):
            return stored
        key_id, wrapped, body = _parts(stored)
        data_key = self._unwrap(key_id, wrapped)
        raw = _unb64(body)
        try:
            return AESGCM(data_key).decrypt(raw[:_NONCE], raw[_NONCE:], row.encode("utf-8")).decode("utf-8")
        except InvalidTag:
            raise DataKeyError(f"决策 {row} 的输入密文被修改或不属于这一行，无法解密") from None

    def rewrap(self, stored: str, row: str) -> str | None:
        """The stored input with its data key wrapped by the current key (a clear row encrypted); None
        when it already is."""
        if not stored.startswith(PREFIX):
            return self.encrypt(stored, row)
        key_id, wrapped, body = _parts(stored)
        if key_id == self.current:
            return None
        data_key = self._unwrap(key_id, wrapped)
        return f"{PREFIX}{self.current}:{self._wrap(self.current, data_key)}:{body}"

    def _wrap(self, key_id: str, data_key: bytes) -> str:
        nonce = os.urandom(_NONCE)
        return _b64(nonce + AESGCM(self.keys[key_id]).encrypt(nonce, data_key, key_id.encode("utf-8")))

    def _unwrap(self, key_id: str, wrapped: str) -> bytes:
        key = self.keys.get(key_id)
        if key is None:
            raise DataKeyError(f"数据密钥 {key_id} 不在密钥环中（RULESVC_DATA_KEYS / RULESVC_DATA_KEY_FILE）")
        raw = _unb64(wrapped)
        try:
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], key_id.encode("utf-8"))
        except InvalidTag:
            raise DataKeyError(f"用数据密钥 {key_id} 包装的密钥无法解开（密钥不对或被修改）") from None


def key_id_of(stored: str) -> str | None:
    """The id of the key wrapping a stored input, or None for a row stored in clear."""
    return _parts(stored)[0] if stored.startswith(PREFIX) else None


def _parts(stored: str) -> tuple[str, str, str]:
    try:
        key_id, wrapped, body = stored[len(PREFIX) :].split(":")
    except ValueError:
        raise DataKeyError("加密的输入格式不正确") from None
    return key_id, wrapped, body
