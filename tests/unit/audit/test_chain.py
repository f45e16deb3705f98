"""The hash chain: canonical encoding, chaining, and verification naming the first bad entry."""

from __future__ import annotations

import dataclasses

import pytest

from rulesvc.audit.chain import (
    GENESIS,
    ChainEntry,
    canonical,
    check_record,
    entry_hash,
    next_entry,
    sha256_hex,
    verify_chain,
)


def build_chain(n: int) -> list[ChainEntry]:
    entries: list[ChainEntry] = []
    seq, head = 0, GENESIS
    for i in range(n):
        entry = next_entry(
            seq, head, f"2026-09-30T0{i % 10}:00:00+00:00", "decision", f"d{i + 1}", {"n": i, "名": "张三"}
        )
        entries.append(entry)
        seq, head = entry.seq, entry.hash
    return entries


def test_canonical_is_key_order_and_whitespace_independent() -> None:
    assert canonical({"b": 1, "a": [1, {"d": "中", "c": None}]}) == '{"a":[1,{"c":null,"d":"中"}],"b":1}'
    assert canonical({"a": 1, "b": 2}) == canonical({"b": 2, "a": 1})


def test_canonical_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical({"x": float("nan")})


def test_entry_hash_matches_hash_of_full_canonical_object() -> None:
    payload = {"z": 1, "a": "中文"}
    expected = sha256_hex(
        canonical({"seq": 1, "at": "t", "kind": "k", "subject": "s", "prev": GENESIS, "payload": payload})
    )
    assert entry_hash(1, "t", "k", "s", canonical(payload), GENESIS) == expected


def test_entries_chain_to_previous_hash() -> None:
    entries = build_chain(3)
    assert entries[0].prev_hash == GENESIS
    assert entries[1].prev_hash == entries[0].hash
    assert [e.seq for e in entries] == [1, 2, 3]


def test_intact_chain_verifies() -> None:
    entries = build_chain(5)
    result = verify_chain(entries, (5, entries[-1].hash))
    assert result.ok and result.checked == 5 and result.broken is None
    assert result.to_json() == {"ok": True, "checked": 5}


def test_empty_chain_verifies_against_genesis_head() -> None:
    assert verify_chain([], (0, GENESIS)).ok


def test_edited_payload_is_named() -> None:
    entries = build_chain(5)
    entries[2] = dataclasses.replace(entries[2], payload_text=entries[2].payload_text.replace("张三", "李四"))
    result = verify_chain(entries)
    assert not result.ok and result.checked == 2
    assert result.broken is not None and (result.broken.seq, result.broken.reason) == (3, "hash_mismatch")


def test_edit_with_recomputed_hash_breaks_the_next_link() -> None:
    entries = build_chain(5)
    forged = next_entry(1, entries[0].hash, entries[1].at, "decision", "d2", {"forged": True})
    entries[1] = forged
    result = verify_chain(entries)
    assert result.broken is not None and (result.broken.seq, result.broken.reason) == (3, "prev_mismatch")


def test_deleted_entry_is_named() -> None:
    entries = build_chain(5)
    del entries[1]
    result = verify_chain(entries)
    assert result.broken is not None and (result.broken.seq, result.broken.reason) == (2, "missing")


def test_swapped_entries_are_named() -> None:
    entries = build_chain(5)
    entries[1], entries[3] = entries[3], entries[1]
    result = verify_chain(entries)
    assert result.broken is not None and result.broken.seq == 2


def test_renumbered_swap_is_named() -> None:
    entries = build_chain(5)
    a, b = entries[1], entries[3]
    entries[1] = dataclasses.replace(b, seq=2)
    entries[3] = dataclasses.replace(a, seq=4)
    result = verify_chain(entries)
    assert result.broken is not None and (result.broken.seq, result.broken.reason) == (2, "prev_mismatch")


def test_truncated_tail_is_caught_by_head() -> None:
    entries = build_chain(5)
    head = (5, entries[-1].hash)
    result = verify_chain(entries[:3], head)
    assert result.broken is not None and (result.broken.seq, result.broken.reason) == (4, "head_mismatch")


def test_replaced_last_entry_is_caught_by_head() -> None:
    entries = build_chain(3)
    head = (3, entries[-1].hash)
    entries[2] = next_entry(2, entries[1].hash, "t", "decision", "x", {"forged": 1})
    result = verify_chain(entries, head)
    assert result.broken is not None and (result.broken.seq, result.broken.reason) == (3, "head_mismatch")


def test_check_record_compares_payload_digests() -> None:
    entry = next_entry(0, GENESIS, "t", "decision", "d1", {"record_sha256": "aa", "event_id": "e1"})
    assert check_record(entry, {"record_sha256": "aa", "event_id": "e1"}) is None
    broken = check_record(entry, {"record_sha256": "bb", "event_id": "e1"})
    assert broken is not None and (broken.seq, broken.reason) == (1, "record_mismatch")
