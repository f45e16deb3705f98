"""The tamper-evident decision log: canonical encoding, SHA-256 chain hashing and verification.

Pure: no I/O. Storage appends entries (serialized across processes) and hands them back in `seq` order
for `verify`.

An entry is `(seq, at, kind, subject, payload, prev_hash, hash)` where `seq` counts 1, 2, 3, ... without
gaps, `prev_hash` is the previous entry's `hash` (`GENESIS` for the first) and

    hash = SHA-256( canonical({"seq", "at", "kind", "subject", "payload", "prev"}) )

`canonical` is JSON with sorted keys, no whitespace, UTF-8, no NaN: the same value always gives the same
bytes, whichever process or database wrote it. `payload` is stored as its canonical text, so verification
hashes the stored bytes and never depends on how a database re-serializes JSON.

What each check catches: an edited row changes its recomputed hash; a deleted row leaves a `seq` gap and a
`prev` that no longer matches; swapped rows break `prev` and `seq`; a deleted tail no longer reaches the
chain head kept in a separate row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64

KIND_DECISION = "decision"
KIND_CLEAR_READ = "clear_read"


def canonical(value: Any) -> str:
    """Canonical JSON text of a JSON-compatible value (raises ValueError/TypeError otherwise)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def entry_hash(seq: int, at: str, kind: str, subject: str, payload_text: str, prev_hash: str) -> str:
    """The hash of one entry; `payload_text` is the canonical text of its payload."""
    # Byte-for-byte canonical({"at", "kind", "payload", "prev", "seq", "subject"}) with keys in sorted order;
    # the payload is already canonical text, so it is spliced in rather than parsed and re-encoded.
    body = (
        f'{{"at":{canonical(at)},"kind":{canonical(kind)},"payload":{payload_text},'
        f'"prev":{canonical(prev_hash)},"seq":{int(seq)},"subject":{canonical(subject)}}}'
    )
    return sha256_hex(body)


@dataclass(frozen=True)
class ChainEntry:
    seq: int
    at: str
    kind: str
    subject: str
    payload_text: str
    prev_hash: str
    hash: str

    @property
    def payload(self) -> Any:
        return json.loads(self.payload_text)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "kind": self.kind, "subject": self.subject, "hash": self.hash}


def next_entry(head_seq: int, head_hash: str, at: str, kind: str, subject: str, payload: Any) -> ChainEntry:
    """The entry appended after a chain whose head is (`head_seq`, `head_hash`)."""
    payload_text = canonical(payload)
    seq = head_seq + 1
    return ChainEntry(
        seq=seq,
        at=at,
        kind=kind,
        subject=subject,
        payload_text=payload_text,
        prev_hash=head_hash,
        hash=entry_hash(seq, at, kind, subject, payload_text, head_hash),
    )


@dataclass(frozen=True)
class BrokenEntry:
    """The first entry that does not verify, and why (`reason` is a stable code, `message` readable)."""

    seq: int
    reason: str
    message: str
    subject: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "reason": self.reason, "message": self.message, "subject": self.subject}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    broken: BrokenEntry | None = None

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"ok": self.ok, "checked": self.checked}
        if self.broken is not None:
            result["first_broken"] = self.broken.to_json()
        return result


def verify_chain(entries: Iterable[ChainEntry], head: tuple[int, str] | None = None) -> VerifyResult:
    """Recompute the chain over `entries` (in ascending `seq` order); stop at the first bad entry.

    `head` is the (seq, hash) the store recorded as the chain's end; when given, a chain that stops short
    of it (deleted tail) or runs past it is reported too.
    """
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    for entry in entries:
        if entry.seq != expected_seq:
            reason, message = (
                ("missing", f"第 {expected_seq} 条日志缺失（下一条是第 {entry.seq} 条）")
                if entry.seq > expected_seq
                else ("out_of_order", f"日志序号错乱：期望第 {expected_seq} 条，实际第 {entry.seq} 条")
            )
            return VerifyResult(False, checked, BrokenEntry(expected_seq, reason, message, entry.subject))
        if entry.prev_hash != prev_hash:
            return VerifyResult(
                False,
                checked,
                BrokenEntry(
                    entry.seq, "prev_mismatch", f"第 {entry.seq} 条日志的前序哈希与上一条不符", entry.subject
                ),
            )
        recomputed = entry_hash(
            entry.seq, entry.at, entry.kind, entry.subject, entry.payload_text, entry.prev_hash
        )
        if recomputed != entry.hash:
            return VerifyResult(
                False,
                checked,
                BrokenEntry(
                    entry.seq, "hash_mismatch", f"第 {entry.seq} 条日志内容被修改（哈希不符）", entry.subject
                ),
            )
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
    if head is not None and head != (checked, prev_hash if checked else GENESIS):
        head_seq = head[0]
        if head_seq > checked:
            seq = checked + 1  # entries after the last one checked were removed
        elif head_seq < checked:
            seq = head_seq + 1  # entries were appended behind the store's back
        else:
            seq = checked  # the last entry was replaced
        return VerifyResult(
            False,
            checked,
            BrokenEntry(
                seq, "head_mismatch", f"日志链末端与记录的链头（第 {head_seq} 条）不符，日志被截断或追加"
            ),
        )
    return VerifyResult(True, checked)


def check_record(entry: ChainEntry, expected: Mapping[str, Any]) -> BrokenEntry | None:
    """Compare the digests an entry's payload holds with those recomputed from the stored record."""
    payload = entry.payload
    for key, value in expected.items():
        if not isinstance(payload, Mapping) or payload.get(key) != value:
            return BrokenEntry(
                entry.seq,
                "record_mismatch",
                f"第 {entry.seq} 条日志对应的决策记录被修改（{key} 不符）",
                entry.subject,
            )
    return None
