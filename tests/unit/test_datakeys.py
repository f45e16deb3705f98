"""Envelope encryption of the clear inputs: round trip, binding to the row, keys by id, re-wrapping."""

from __future__ import annotations

import pytest

from rulesvc.datakeys import DataKeyError, Keyring, key_id_of, new_key_text, read_key

A, B = new_key_text(), new_key_text()


def test_round_trip_and_binding() -> None:
    ring = Keyring.from_texts({"a": A})
    stored = ring.encrypt('{"mobile":"13812345678"}', "d1")
    assert stored.startswith("enc:v1:a:") and "13812345678" not in stored
    assert ring.decrypt(stored, "d1") == '{"mobile":"13812345678"}'
    with pytest.raises(DataKeyError):
        ring.decrypt(stored, "d2")
    assert ring.decrypt("{}", "d1") == "{}"  # stored in clear before a key was configured
    assert ring.encrypt("x", "d1") != ring.encrypt("x", "d1")


def test_rewrap_keeps_the_ciphertext_and_old_keys_read() -> None:
    old = Keyring.from_texts({"a": A})
    both = Keyring.from_texts({"a": A, "b": B})
    assert both.current == "b"
    stored = old.encrypt("secret", "d1")
    assert both.decrypt(stored, "d1") == "secret"
    moved = both.rewrap(stored, "d1")
    assert (
        moved is not None and key_id_of(moved) == "b" and moved.rsplit(":", 1)[1] == stored.rsplit(":", 1)[1]
    )
    assert both.rewrap(moved, "d1") is None
    assert Keyring.from_texts({"b": B}).decrypt(moved, "d1") == "secret"
    with pytest.raises(DataKeyError, match="不在密钥环"):
        Keyring.from_texts({"b": B}).decrypt(stored, "d1")


def test_keys_are_read_in_base64_or_hex() -> None:
    raw = read_key(A)
    assert read_key(raw.hex()) == raw
    with pytest.raises(ValueError):
        read_key("short")
    with pytest.raises(ValueError):
        Keyring.from_texts({"a": A}, "missing")
