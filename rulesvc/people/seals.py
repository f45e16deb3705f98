"""What a key grants and what a person holds, sealed into the chain: a database writer who widens a key's
roles (`update api_keys set roles='ingest,compliance'`), moves a key to another owner, revives a revoked
key, re-enables a disabled person, gives them a role or swaps their password hash is refused when the key
or session is next used, and reported by `verify`.

Every write of a key or a principal (person or service account) appends its chain entry in the same
transaction (`key` / `user` entries, see `rulesvc.storage.people_store`); that entry's payload carries the
SHA-256 of the row's sealed columns (`key_sha256`, `user_sha256`) and the row's `seal_seq` points at it.
Rows stored before sealing existed are sealed by one `grants_sealed` entry (`{"keys": {id: sha256},
"users": {id: sha256}}`, migration 0013). A sign-in session is a `session` entry (subject the person,
`session_sha256` over the session's token hash, person and expiry) its row points at: a session row
written into the database by hand signs nobody in (sessions open before migration 0013 are ended).

Sealed, for a key: its id, hash, roles, owner and whether it is revoked. For a principal: id, kind, name,
sign-in name, roles, disabled, owner, password hash, TOTP secret and OIDC identity. Not sealed: counters and times that
only say when to look again (failed sign-ins, lockout end, a TOTP secret not yet confirmed).

A row is in order when the entry its `seal_seq` names still hashes to itself, is an entry about that row,
holds the row's digest, and no later entry about the row exists (`seal_stale`: an older sealed state put
back, e.g. a revoked key revived with its `created` entry).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from rulesvc.audit.chain import KIND_KEY, ChainEntry, entry_hash, sha256_hex
from rulesvc.audit.evidence import alert
from rulesvc.people.errors import GrantMismatchError
from rulesvc.people.ports import KIND_USER

KIND_GRANTS_SEALED = "grants_sealed"
KIND_SESSION = "session"
"""A sign-in session made: subject the person, payload `{"user_id", "session_sha256"}`."""
SESSIONS = "sessions"
KEY_MISMATCH = "auth.key_mismatch"
GRANT_MISMATCH = "auth.grant_mismatch"
CHANGE_REFUSED = "people.grant_mismatch"
KEYS = "api_keys"
USERS = "principals"

_ENTRY_KIND = {KEYS: KIND_KEY, USERS: KIND_USER}
_DIGEST_FIELD = {KEYS: "key_sha256", USERS: "user_sha256"}
_SEALED_MAP = {KEYS: "keys", USERS: "users"}


def _roles(text: str | None) -> list[str]:
    return sorted({r.strip() for r in (text or "").split(",") if r.strip()})


def key_digest(
    key_id: str,
    key_hash: str,
    roles: str | None,
    principal_id: str | None,
    revoked: bool,
    expires_at: datetime | None = None,
) -> str:
    """SHA-256 of a key's sealed columns (roles as stored, compared as a set). The end of a rotated key's
    overlap window is sealed when set (keys never rotated keep the digest they had before rotation)."""
    sealed: list[Any] = ["key", key_id, key_hash, _roles(roles), principal_id, bool(revoked)]
    if expires_at is not None:
        sealed.append(int(expires_at.timestamp()))
    return sha256_hex(orjson.dumps(sealed))


def user_digest(
    principal_id: str,
    kind: str,
    name: str,
    username: str | None,
    roles: str | None,
    disabled: bool,
    owner_id: str | None,
    password_hash: str | None,
    totp_secret: str | None,
    oidc_subject: str | None = None,
) -> str:
    """SHA-256 of a principal's sealed columns. The OIDC identity a person signs in with (issuer and
    subject) is sealed when set (rows without one keep the digest they had before single sign-on)."""
    sealed: list[Any] = [
        "user",
        principal_id,
        kind,
        name,
        username,
        _roles(roles),
        bool(disabled),
        owner_id,
        password_hash,
        totp_secret,
    ]
    if oidc_subject is not None:
        sealed.append(oidc_subject)
    return sha256_hex(orjson.dumps(sealed))


def session_digest(session_hash: str, principal_id: str, expires_at: datetime) -> str:
    """SHA-256 of a session's sealed columns (the expiry to the second)."""
    return sha256_hex(orjson.dumps(["session", session_hash, principal_id, int(expires_at.timestamp())]))


def session_problem(
    session_hash: str, principal_id: str, digest: str, seal_seq: int | None, entry: ChainEntry | None
) -> tuple[str, str] | None:
    """(reason, message) unless the session row is one a sign-in recorded in the chain."""
    if seal_seq is None or entry is None or entry.seq != seal_seq:
        return "seal_missing", f"用户 {principal_id} 的登录会话没有对应的审计日志条目（被直接写入数据库）"
    if entry_hash(entry.seq, entry.at, entry.kind, entry.subject, entry.payload_text, entry.prev_hash) != (
        entry.hash
    ):
        return "entry_mismatch", f"用户 {principal_id} 的登录会话所指的审计日志条目被修改"
    payload = entry.payload
    if (
        entry.kind != KIND_SESSION
        or entry.subject != principal_id
        or not isinstance(payload, Mapping)
        or payload.get("session_sha256") != digest
    ):
        return "grant_mismatch", f"用户 {principal_id} 的登录会话与审计日志记录的不符（被修改）"
    return None


def digest_field(table: str) -> str:
    """The payload field of a `key` / `user` entry holding the row's digest."""
    return _DIGEST_FIELD[table]


def sealed_digest(entry: ChainEntry, table: str, row_id: str) -> str | None:
    """The digest `entry` records for the row `row_id` of `table` (`api_keys` or `principals`), or None."""
    payload = entry.payload
    if not isinstance(payload, Mapping):
        return None
    if entry.kind == KIND_GRANTS_SEALED:
        sealed = payload.get(_SEALED_MAP[table])
        value = sealed.get(row_id) if isinstance(sealed, Mapping) else None
        return str(value) if value is not None else None
    if table == KEYS and entry.kind == KIND_KEY and entry.subject == row_id:
        value = payload.get("key_sha256")
    elif table == USERS and entry.kind == KIND_USER and entry.subject == row_id:
        value = payload.get("user_sha256")
    elif table == USERS and entry.kind == KIND_KEY and payload.get("user_id") == row_id:
        value = payload.get("user_sha256")  # a service account made with its key, sealed by the key entry
    else:
        value = None
    return str(value) if value is not None else None


def entry_kind(table: str) -> str:
    """The kind of the entries recording changes to rows of `table` (their subject is the row's id)."""
    return _ENTRY_KIND[table]


def seal_problem(
    table: str,
    row_id: str,
    digest: str,
    seal_seq: int | None,
    entry: ChainEntry | None,
    newest: int | None,
) -> tuple[str, str] | None:
    """(reason, message) unless the row is what the entry its `seal_seq` names recorded, and that entry is
    the newest about the row (`newest`: the highest seq of an entry of the row's kind naming it)."""
    what = "API 密钥" if table == KEYS else "用户/服务账号"
    if seal_seq is None:
        return "seal_missing", f"{what} {row_id} 没有对应的审计日志条目（被直接写入数据库）"
    if entry is None or entry.seq != seal_seq:
        return "seal_missing", f"{what} {row_id} 所指的审计日志条目不存在"
    if entry_hash(entry.seq, entry.at, entry.kind, entry.subject, entry.payload_text, entry.prev_hash) != (
        entry.hash
    ):
        return "entry_mismatch", f"{what} {row_id} 所指的审计日志条目被修改"
    if sealed_digest(entry, table, row_id) != digest:
        return "grant_mismatch", f"{what} {row_id} 的角色、归属或状态与审计日志记录的不符（被修改）"
    if newest is not None and newest > seal_seq:
        return (
            "seal_stale",
            f"{what} {row_id} 被换回较早的状态（审计日志第 {newest} 条已记录更新的状态）",
        )
    return None


def grants_payload(keys: Mapping[str, str], users: Mapping[str, str]) -> dict[str, Any]:
    """The payload of a `grants_sealed` entry."""
    return {"keys": dict(sorted(keys.items())), "users": dict(sorted(users.items()))}


def refused(table: str, row_id: str, found: tuple[str, str], code: str) -> GrantMismatchError:
    """Alert (log line `integrity: ...`, `rulesvc_integrity_refusals_total{table}`) and the error refusing
    the use of the row."""
    alert(table, row_id, found)
    return GrantMismatchError(
        f"{found[1]}；已拒绝使用，请从备份恢复或联系管理员",
        {"table": table, "row": row_id, "reason": found[0]},
        code,
    )
