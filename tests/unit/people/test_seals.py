"""Digests of what keys grant and people hold, and how a row is held against its sealing entry."""

from __future__ import annotations

from rulesvc.audit.chain import GENESIS, KIND_KEY, next_entry
from rulesvc.people.seals import (
    KEYS,
    KIND_GRANTS_SEALED,
    USERS,
    grants_payload,
    key_digest,
    seal_problem,
    sealed_digest,
    user_digest,
)


def test_key_digest_covers_roles_owner_hash_and_status() -> None:
    base = key_digest("k1", "h", "ingest", "s_k1", False)
    assert key_digest("k1", "h", " ingest ", "s_k1", False) == base
    assert key_digest("k1", "h", "ingest,compliance", "s_k1", False) != base
    assert key_digest("k1", "h", "ingest", "u_boss", False) != base
    assert key_digest("k1", "other", "ingest", "s_k1", False) != base
    assert key_digest("k1", "h", "ingest", "s_k1", True) != base
    assert key_digest("k1", "h", "compliance,ingest", "s_k1", False) == key_digest(
        "k1", "h", "ingest,compliance", "s_k1", False
    )


def test_user_digest_covers_grants_and_credentials() -> None:
    args = ("u1", "user", "张敏", "zm", "editor", False, None, "hash", None)
    base = user_digest(*args)
    assert user_digest(*args[:4], "editor,compliance", *args[5:]) != base
    assert user_digest(*args[:5], True, *args[6:]) != base
    assert user_digest(*args[:7], "other-hash", None) != base
    assert user_digest(*args[:8], "totp") != base


def test_row_against_its_entry() -> None:
    digest = key_digest("k1", "h", "ingest", "s_k1", False)
    entry = next_entry(0, GENESIS, "2026-12-05T00:00:00+00:00", KIND_KEY, "k1", {"key_sha256": digest})
    assert sealed_digest(entry, KEYS, "k1") == digest
    assert sealed_digest(entry, KEYS, "k2") is None
    assert seal_problem(KEYS, "k1", digest, entry.seq, entry, entry.seq) is None
    assert seal_problem(KEYS, "k1", "x", entry.seq, entry, entry.seq)[0] == "grant_mismatch"  # type: ignore[index]
    assert seal_problem(KEYS, "k1", digest, None, None, None)[0] == "seal_missing"  # type: ignore[index]
    assert seal_problem(KEYS, "k1", digest, entry.seq, entry, 7)[0] == "seal_stale"  # type: ignore[index]
    forged = next_entry(0, GENESIS, entry.at, KIND_KEY, "k1", {"key_sha256": "x"})
    edited = type(entry)(*[*vars(forged).values()][:-1], entry.hash)  # payload changed, hash kept
    assert seal_problem(KEYS, "k1", "x", 1, edited, 1)[0] == "entry_mismatch"  # type: ignore[index]


def test_bulk_seal_entry() -> None:
    entry = next_entry(
        0,
        GENESIS,
        "2026-12-05T00:00:00+00:00",
        KIND_GRANTS_SEALED,
        "",
        grants_payload({"k1": "a"}, {"u1": "b"}),
    )
    assert sealed_digest(entry, KEYS, "k1") == "a"
    assert sealed_digest(entry, USERS, "u1") == "b"
    assert sealed_digest(entry, USERS, "k1") is None
