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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64

KIND_DECISION = "decision"
KIND_CLEAR_READ = "clear_read"
KIND_KEY = "key"


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
        f'{{"at":{_text(at)},"kind":{_text(kind)},"payload":{payload_text},'
        f'"prev":{_text(prev_hash)},"seq":{int(seq)},"subject":{_text(subject)}}}'
    )
    return sha256_hex(body)


# What `json.dumps(..., ensure_ascii=False)` escapes in a string: a string without any is its text quoted.
_ESCAPED = re.compile(r'[\x00-\x1f\\"]')


def _text(value: str) -> str:
    """`canonical(value)` of a string (dates, kinds, hashes and ids: quoted as they are, without json)."""
    if isinstance(value, str) and _ESCAPED.search(value) is None:
        return f'"{value}"'
    return canonical(value)


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
class Problem:
    """A stored row that no longer matches what the chain recorded (`reason` a stable code)."""

    table: str
    row: str
    reason: str
    message: str
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "table": self.table,
            "row": self.row,
            "reason": self.reason,
            "message": self.message,
        }
        if self.seq is not None:
            result["seq"] = self.seq
        return result


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    broken: BrokenEntry | None = None
    problems: tuple[Problem, ...] = ()
    checkpoints: int | None = None
    """How many signed checkpoints the chain was checked against (None: none given)."""

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"ok": self.ok, "checked": self.checked}
        if self.broken is not None:
            result["first_broken"] = self.broken.to_json()
        if self.problems:
            result["problems"] = [problem.to_json() for problem in self.problems]
        if self.checkpoints is not None:
            result["checkpoints"] = self.checkpoints
        return result

    def with_problems(self, problems: Iterable[Problem], checkpoints: int | None = None) -> VerifyResult:
        found = (*self.problems, *problems)
        return VerifyResult(
            self.ok and not found,
            self.checked,
            self.broken,
            found,
            checkpoints if checkpoints is not None else self.checkpoints,
        )


def verify_chain(
    entries: Iterable[ChainEntry],
    head: tuple[int, str] | None = None,
    checkpoints: Iterable[tuple[int, str]] = (),
    start: tuple[int, str] = (0, GENESIS),
) -> VerifyResult:
    """Recompute the chain over `entries` (in ascending `seq` order); stop at the first bad entry.

    `head` is the (seq, hash) the store recorded as the chain's end; when given, a chain that stops short
    of it (deleted tail) or runs past it is reported too. `checkpoints` are (seq, hash) pairs signed
    earlier (their signatures already checked): the verified chain must still hold each of them, so a
    tail deleted together with a head moved back, or a rewritten chain, is reported even when the chain
    is consistent in itself. `start` (seq, hash) checks only the entries after an entry already trusted
    (`checked` then counts those alone).
    """
    wanted = {seq: head_hash for seq, head_hash in checkpoints}
    seen: dict[int, str] = {start[0]: start[1]}
    result = _walk(entries, head, wanted, seen, start)
    problems = []
    for seq, head_hash in sorted(wanted.items()):
        if seq not in seen:
            problems.append(
                Problem(
                    "audit_log",
                    str(seq),
                    "checkpoint_not_extended",
                    f"已签名检查点记录了第 {seq} 条日志，现在的日志链不再包含它（末尾被删除或链被改写）",
                    seq,
                )
            )
        elif seen[seq] != head_hash:
            problems.append(
                Problem(
                    "audit_log",
                    str(seq),
                    "checkpoint_mismatch",
                    f"第 {seq} 条日志的哈希与已签名检查点不符（日志链被改写）",
                    seq,
                )
            )
    return result.with_problems(problems, len(wanted) if wanted else None)


def _walk(
    entries: Iterable[ChainEntry],
    head: tuple[int, str] | None,
    wanted: Mapping[int, str],
    seen: dict[int, str],
    start: tuple[int, str],
) -> VerifyResult:
    prev_hash = start[1]
    expected_seq = start[0] + 1
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
        if entry.seq in wanted:
            seen[entry.seq] = entry.hash
        expected_seq += 1
        checked += 1
    last = start[0] + checked
    if head is not None and head != (last, prev_hash):
        head_seq = head[0]
        if head_seq > last:
            seq = last + 1  # entries after the last one checked were removed
        elif head_seq < last:
            seq = head_seq + 1  # entries were appended behind the store's back
        else:
            seq = last  # the last entry was replaced
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
