"""Signed checkpoints of the audit chain: Ed25519 over (seq, head hash, time), kept outside the database.

Like Certificate Transparency's signed tree heads: whoever holds a checkpoint can later prove that the
chain still extends it. Someone with write access to the database can rewrite or truncate the chain and
move `audit_head` along, and the chain stays consistent in itself; they cannot sign a new checkpoint
without the signing key, which lives outside the database (a key file or the environment), and they
cannot reach the checkpoint directory through the database.

Signed bytes: `b"rulesvc-checkpoint-v1\\n" + canonical({"at", "head_hash", "seq"})`.
A checkpoint file is JSON: `{"seq", "head_hash", "at", "key_id", "public_key", "signature"}` (hex).

Rotation: the key file (or `RULESVC_CHECKPOINT_KEY`) holds the current private key; public keys of older
keys stay trusted through `RULESVC_CHECKPOINT_PUBLIC_KEYS`, so checkpoints signed before a rotation keep
verifying. A checkpoint signed by a key that is not trusted is reported, never silently used.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rulesvc.audit.chain import GENESIS, ChainEntry, Problem, canonical, sha256_hex, verify_chain
from rulesvc.errors import RulesvcError
from rulesvc.sla.clock import Clock

if TYPE_CHECKING:
    from rulesvc.settings import Settings

_DOMAIN = b"rulesvc-checkpoint-v1\n"


class CheckpointError(RulesvcError):
    """Checkpoints cannot be made or read as configured (stable `code`, Chinese message)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    at: str
    key_id: str
    public_key: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "head_hash": self.head_hash,
            "at": self.at,
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        if not isinstance(data, dict):
            raise ValueError("a checkpoint is a JSON object")
        return cls(
            seq=int(data["seq"]),
            head_hash=str(data["head_hash"]),
            at=str(data["at"]),
            key_id=str(data["key_id"]),
            public_key=str(data["public_key"]),
            signature=str(data["signature"]),
        )


def signed_bytes(seq: int, head_hash: str, at: str) -> bytes:
    return _DOMAIN + canonical({"seq": int(seq), "head_hash": head_hash, "at": at}).encode("utf-8")


def key_id(public_key_hex: str) -> str:
    return sha256_hex(bytes.fromhex(public_key_hex))[:16]


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_private_key(text: str | bytes) -> Ed25519PrivateKey:
    """A PEM (PKCS#8, as `openssl genpkey -algorithm ed25519` writes) or the 32 raw bytes in base64/hex."""
    data = text.encode("ascii") if isinstance(text, str) else text
    if b"-----BEGIN" in data:
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError("audit.checkpoint_key_invalid", "检查点签名密钥不是 Ed25519 私钥")
        return key
    raw = data.strip()
    try:
        seed = bytes.fromhex(raw.decode("ascii")) if len(raw) == 64 else base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        seed = b""
    if len(seed) != 32:
        raise CheckpointError(
            "audit.checkpoint_key_invalid", "检查点签名密钥应为 PEM，或 32 字节私钥的 base64/十六进制"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def new_key_file(path: Path) -> Ed25519PrivateKey:
    """Create a fresh signing key as a PEM file readable only by its owner."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


class Signer:
    """Signs checkpoints with the current key and checks them against every trusted public key."""

    def __init__(self, key: Ed25519PrivateKey | None, trusted: Iterable[str] = ()) -> None:
        self._key = key
        self.trusted = {k.lower() for k in trusted}
        if key is not None:
            self.trusted.add(public_hex(key))

    def sign(self, seq: int, head_hash: str, at: str) -> Checkpoint:
        if self._key is None:
            raise CheckpointError("audit.checkpoint_key_missing", "未配置检查点签名密钥，无法签名")
        public = public_hex(self._key)
        signature = self._key.sign(signed_bytes(seq, head_hash, at)).hex()
        return Checkpoint(seq, head_hash, at, key_id(public), public, signature)

    def problem(self, checkpoint: Checkpoint, where: str) -> Problem | None:
        """Why this checkpoint cannot be relied on (None: its signature holds under a trusted key).

        With no trusted key configured at all (an offline check given only a directory), the key a
        checkpoint names is used; the report then vouches for consistency, not for who signed."""
        public = checkpoint.public_key.lower()
        if self.trusted and public not in self.trusted:
            return Problem(
                "checkpoints",
                where,
                "checkpoint_untrusted_key",
                f"检查点由不受信任的密钥 {checkpoint.key_id} 签名",
            )
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
                bytes.fromhex(checkpoint.signature),
                signed_bytes(checkpoint.seq, checkpoint.head_hash, checkpoint.at),
            )
        except (InvalidSignature, ValueError):
            return Problem("checkpoints", where, "checkpoint_bad_signature", "检查点签名无效（文件被改动）")
        return None


class CheckpointDirectory:
    """Checkpoint files in one directory (`checkpoint-<seq>-<time>.json`), written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, checkpoint: Checkpoint) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        stamp = checkpoint.at.replace(":", "").replace("+", "Z").replace("-", "")
        target = self.path / f"checkpoint-{checkpoint.seq:012d}-{stamp}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(checkpoint.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temporary, target)
        return target

    def read(self) -> list[tuple[str, Checkpoint | None]]:
        """(file name, checkpoint or None when unreadable), oldest first."""
        if not self.path.is_dir():
            return []
        found: list[tuple[str, Checkpoint | None]] = []
        for file in sorted(self.path.glob("checkpoint-*.json")):
            try:
                found.append((file.name, Checkpoint.from_json(json.loads(file.read_text(encoding="utf-8")))))
            except (OSError, ValueError, KeyError):
                found.append((file.name, None))
        return found

    def latest(self) -> Checkpoint | None:
        readable = [checkpoint for _, checkpoint in self.read() if checkpoint is not None]
        return max(readable, key=lambda c: (c.seq, c.at)) if readable else None


def checked_checkpoints(
    directories: Sequence[CheckpointDirectory], signer: Signer
) -> tuple[list[tuple[int, str]], list[Problem]]:
    """The (seq, head hash) of every checkpoint whose signature holds, and a problem for every other."""
    pairs: list[tuple[int, str]] = []
    problems: list[Problem] = []
    for directory in directories:
        for name, checkpoint in directory.read():
            if checkpoint is None:
                problems.append(Problem("checkpoints", name, "checkpoint_unreadable", "检查点文件无法读取"))
                continue
            problem = signer.problem(checkpoint, name)
            if problem is not None:
                problems.append(problem)
            else:
                pairs.append((checkpoint.seq, checkpoint.head_hash))
    return pairs, problems


class ChainSource(Protocol):
    def chain_head(self) -> tuple[int, str]: ...

    def audit_entries(self, after: int = 0) -> Iterator[ChainEntry]: ...

    def raise_known_seq(self, seq: int) -> None: ...


class CheckpointKeeper:
    """Makes checkpoints (after checking the chain since the last one) and hands them to `verify`."""

    def __init__(
        self, chain: ChainSource, signer: Signer, directory: CheckpointDirectory, clock: Clock
    ) -> None:
        self.chain = chain
        self.signer = signer
        self.directory = directory
        self.clock = clock
        self._lock = threading.Lock()

    def make(self) -> Checkpoint:
        """Sign the current head, once the entries since the latest checkpoint verify from it."""
        with self._lock:
            seq, head_hash = self.chain.chain_head()
            latest = self.directory.latest()
            start = latest.seq if latest is not None and latest.seq <= seq else 0
            expected = latest.head_hash if latest is not None and start else GENESIS
            if latest is not None and latest.seq > seq:
                raise CheckpointError(
                    "audit.chain_rolled_back",
                    f"日志链头（第 {seq} 条）落后于上一个检查点（第 {latest.seq} 条）：日志被截断，拒绝签名",
                )
            entries = takewhile(lambda e: e.seq <= seq, self.chain.audit_entries(start))
            result = verify_chain(entries, (seq, head_hash), start=(start, expected))
            if not result.ok:
                raise CheckpointError(
                    "audit.chain_broken", "日志链校验未通过，拒绝签名检查点（请先运行校验）"
                )
            checkpoint = self.signer.sign(seq, head_hash, self.clock.now().isoformat())
            self.directory.write(checkpoint)
            self.chain.raise_known_seq(seq)
            return checkpoint

    def latest(self) -> Checkpoint | None:
        return self.directory.latest()

    def checked(self) -> tuple[list[tuple[int, str]], list[Problem]]:
        return checked_checkpoints([self.directory], self.signer)

    def seed_watermark(self) -> None:
        """At start: the newest trusted checkpoint's seq is a floor for the chain head."""
        pairs, _ = self.checked()
        if pairs:
            self.chain.raise_known_seq(max(seq for seq, _ in pairs))


def build_keeper(
    chain: ChainSource,
    clock: Clock,
    directory: Path | None,
    key_text: str | None = None,
    key_file: Path | None = None,
    trusted: Iterable[str] = (),
) -> CheckpointKeeper | None:
    """The keeper for a configured checkpoint directory (None without one). The signing key comes from
    `key_text`, else `key_file`, else `checkpoint-signing.key` beside the directory (created when absent)."""
    if directory is None:
        return None
    if key_text:
        key = load_private_key(key_text)
    else:
        path = key_file or directory.parent / "checkpoint-signing.key"
        try:
            key = load_private_key(path.read_bytes())
        except FileNotFoundError:
            if key_file is not None:
                raise CheckpointError(
                    "audit.checkpoint_key_missing", f"检查点签名密钥文件 {path} 不存在"
                ) from None
            key = new_key_file(path)
    return CheckpointKeeper(chain, Signer(key, trusted), CheckpointDirectory(directory), clock)


def trusted_keys(settings: Settings, directory: Path | None) -> list[str]:
    """Public keys (hex) a verifier trusts from the settings: the configured signing key's (when it can be
    read; a missing key file is not created) and the earlier keys listed for rotation."""
    keys = list(settings.checkpoint_public_keys)
    secret = settings.checkpoint_key.get_secret_value() if settings.checkpoint_key else None
    path = settings.checkpoint_key_file or (
        directory.parent / "checkpoint-signing.key" if directory else None
    )
    try:
        if secret:
            keys.append(public_hex(load_private_key(secret)))
        elif path is not None and path.exists():
            keys.append(public_hex(load_private_key(path.read_bytes())))
    except (OSError, CheckpointError):
        pass
    return keys
