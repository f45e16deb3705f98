"""SQLAlchemy implementation of `PeopleStore` and of the key half of `KeyStore` (PostgreSQL and SQLite).

Every write takes the audit chain's head lock first, changes the rows and appends its chain entry in the
same transaction: a `user` entry (subject: the principal's id) when a person or service account is made or
their roles or status change, a `key` entry (subject: the key id) when a key is made or revoked; both
name who did it (`by`) and the resulting roles and status.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from rulesvc.apikeys import SERVICE, Role, parse_roles
from rulesvc.audit.chain import KIND_KEY, Problem
from rulesvc.people.errors import UsernameTakenError
from rulesvc.people.model import ApiKeyRecord, KeyView, PrincipalRecord
from rulesvc.people.ports import KIND_USER
from rulesvc.people.seals import (
    CHANGE_REFUSED,
    KEY_MISMATCH,
    KEYS,
    KIND_SESSION,
    USERS,
    entry_kind,
    key_digest,
    refused,
    seal_problem,
    user_digest,
)
from rulesvc.storage.bulk import Statements
from rulesvc.storage.decision_writes import (
    chain,
    chain_entry,
    chain_head,
    lock_chain_head,
    raise_watermark,
    write_entries,
)
from rulesvc.storage.engine import writer
from rulesvc.storage.people_tables import PrincipalRow, SessionRow
from rulesvc.storage.tables import ApiKeyRow, AuditRow


class SqlPeopleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=writer(engine), expire_on_commit=False)

    @contextmanager
    def _chained(self) -> Iterator[tuple[Session, list[tuple[str, str, str, Any]]]]:
        """A write transaction holding the chain-head lock; the notes appended to the yielded list become
        chain entries committed with it."""
        notes: list[tuple[str, str, str, Any]] = []
        with self._write() as session, session.begin():
            sql = Statements(session.connection())
            head = chain_head(lock_chain_head(sql))
            yield session, notes
            session.flush()
            sealed = [_seal(session, note) for note in notes]
            entries = chain(head, notes)
            write_entries(sql, entries)
            for rows, entry in zip(sealed, entries, strict=True):
                for row in rows:
                    row.seal_seq = entry.seq
        if entries:
            raise_watermark(self.engine.pool, entries[-1].seq)

    # -- principals ---------------------------------------------------------------------------------------

    def add_principal(self, record: PrincipalRecord, password_hash: str | None, by: str) -> None:
        try:
            with self._chained() as (session, notes):
                _insert_principal(session, notes, record, password_hash, by)
        except IntegrityError:
            raise _taken(record.username) from None

    def get_principal(self, principal_id: str) -> PrincipalRecord | None:
        with self._read() as session:
            row = session.get(PrincipalRow, principal_id)
            return principal_record(row) if row else None

    def find_username(self, username: str) -> PrincipalRecord | None:
        with self._read() as session:
            row = session.scalars(select(PrincipalRow).where(PrincipalRow.username == username)).first()
            return principal_record(row) if row else None

    def list_principals(self) -> list[PrincipalRecord]:
        with self._read() as session:
            rows = session.scalars(select(PrincipalRow).order_by(PrincipalRow.created_at)).all()
            return [principal_record(row) for row in rows]

    def update_principal(
        self,
        principal_id: str,
        at: datetime,
        by: str,
        *,
        roles: frozenset[Role] | None = None,
        disabled: bool | None = None,
    ) -> PrincipalRecord | None:
        with self._chained() as (session, notes):
            row = session.get(PrincipalRow, principal_id)
            if row is None:
                return None
            check_user(session, row, CHANGE_REFUSED)
            before = principal_record(row)
            if roles is not None:
                row.roles = ",".join(sorted(roles))
            if disabled is not None:
                row.disabled = disabled
            row.updated_at = at
            after = principal_record(row)
            changed = {
                field: {"from": old, "to": new}
                for field, old, new in (
                    ("roles", sorted(before.roles), sorted(after.roles)),
                    ("status", _status(before), _status(after)),
                )
                if old != new
            }
            if changed:
                notes.append(
                    (at.isoformat(), KIND_USER, principal_id, user_payload(after, "updated", by, changed))
                )
            return after

    # -- keys ---------------------------------------------------------------------------------------------

    def add_key(self, record: ApiKeyRecord, by: str) -> None:
        with self._chained() as (session, notes):
            principal_id = record.principal_id
            owner_created = principal_id is None
            if principal_id is None:
                # A service account of the key's own, named by its label: the key's entry records it.
                principal_id = f"s_{record.key_id}"
                _insert_principal(
                    session,
                    notes,
                    PrincipalRecord(
                        principal_id=principal_id,
                        kind=SERVICE,
                        name=record.label or f"API 密钥 {record.key_id}",
                        username=None,
                        roles=record.roles,
                        disabled=False,
                        owner_id=None,
                        created_at=record.created_at,
                        updated_at=record.created_at,
                    ),
                    None,
                    by,
                    note=False,
                )
            row = ApiKeyRow(
                key_id=record.key_id,
                key_hash=record.key_hash,
                roles=",".join(sorted(record.roles)),
                label=record.label,
                created_at=record.created_at,
                revoked_at=None,
                principal_id=principal_id,
            )
            session.add(row)
            payload = _key_payload(row, "created", by)
            if owner_created:
                payload["owner_created"] = True
            notes.append((record.created_at.isoformat(), KIND_KEY, record.key_id, payload))

    def revoke_key(self, key_id: str, at: datetime, by: str) -> bool:
        with self._chained() as (session, notes):
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return False
            check_key(session, row, CHANGE_REFUSED)
            row.revoked_at = at
            notes.append((at.isoformat(), KIND_KEY, key_id, _key_payload(row, "revoked", by)))
            return True

    def rotate_key(self, key_id: str, new: ApiKeyRecord, expires_at: datetime, by: str) -> bool:
        """Store `new` for the same owner and let `key_id` work until `expires_at` (sooner if it was already
        to end sooner): two `key` entries, `created` (with `rotated_from`) and `rotated` (with
        `expires_at`, `replaced_by`). False when there is no such key still in force."""
        with self._chained() as (session, notes):
            old = session.get(ApiKeyRow, key_id, with_for_update=True)
            if old is None or old.revoked_at is not None:
                return False
            if old.expires_at is not None and old.expires_at <= new.created_at:
                return False
            check_key(session, old, CHANGE_REFUSED)
            row = ApiKeyRow(
                key_id=new.key_id,
                key_hash=new.key_hash,
                roles=old.roles,
                label=old.label,
                created_at=new.created_at,
                revoked_at=None,
                principal_id=old.principal_id,
            )
            session.add(row)
            if old.expires_at is None or expires_at < old.expires_at:
                old.expires_at = expires_at
            old.replaced_by = new.key_id
            created = _key_payload(row, "created", by)
            created["rotated_from"] = key_id
            notes.append((new.created_at.isoformat(), KIND_KEY, new.key_id, created))
            rotated = _key_payload(old, "rotated", by)
            rotated.update(expires_at=old.expires_at.isoformat(), replaced_by=new.key_id)
            notes.append((new.created_at.isoformat(), KIND_KEY, key_id, rotated))
            return True

    def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with its owner (for authentication)."""
        with self._read() as session:
            found = session.execute(
                select(ApiKeyRow, PrincipalRow)
                .outerjoin(PrincipalRow, PrincipalRow.principal_id == ApiKeyRow.principal_id)
                .where(ApiKeyRow.key_hash == key_hash)
            ).first()
            if found is None:
                return None
            key, owner = found
            check_key(session, key, KEY_MISMATCH)
            if owner is None and key.principal_id is not None:
                raise refused(
                    USERS,
                    key.principal_id,
                    ("owner_missing", f"API 密钥 {key.key_id} 的所有者 {key.principal_id} 已被删除"),
                    KEY_MISMATCH,
                )
            if owner is not None:
                check_user(session, owner, KEY_MISMATCH)
            return key_record(key, principal_record(owner) if owner is not None else None)

    def grant_problems(self) -> list[Problem]:
        """`verify`: every key and principal against the chain entry sealing it (`rulesvc.people.seals`),
        keys whose owner row is gone, and rows the chain recorded that were deleted."""
        problems: list[Problem] = []
        with self._read() as session:
            newest = {
                (str(kind), str(subject)): int(seq)
                for kind, subject, seq in session.execute(
                    select(AuditRow.kind, AuditRow.subject, func.max(AuditRow.seq))
                    .where(AuditRow.kind.in_([entry_kind(KEYS), entry_kind(USERS)]))
                    .group_by(AuditRow.kind, AuditRow.subject)
                )
            }
            users = {row.principal_id: row for row in session.scalars(select(PrincipalRow))}
            for row in users.values():
                found = _grant_problem(session, USERS, row.principal_id, user_row_digest(row), row.seal_seq)
                if found is not None:
                    problems.append(Problem(USERS, row.principal_id, found[0], found[1], row.seal_seq))
            keys = {row.key_id: row for row in session.scalars(select(ApiKeyRow))}
            for key in keys.values():
                found = _grant_problem(session, KEYS, key.key_id, key_row_digest(key), key.seal_seq)
                if found is None and key.principal_id is not None and key.principal_id not in users:
                    found = ("owner_missing", f"API 密钥 {key.key_id} 的所有者 {key.principal_id} 已被删除")
                if found is not None:
                    problems.append(Problem(KEYS, key.key_id, found[0], found[1], key.seal_seq))
        for (kind, subject), seq in sorted(newest.items(), key=lambda item: item[1]):
            table, rows = (KEYS, keys) if kind == entry_kind(KEYS) else (USERS, users)
            if subject not in rows:
                what = "API 密钥" if table == KEYS else "用户/服务账号"
                problems.append(
                    Problem(
                        table, subject, "row_missing", f"{what} {subject} 已写入审计日志，但记录已被删除", seq
                    )
                )
        return problems

    def list_keys(self) -> list[ApiKeyRecord]:
        with self._read() as session:
            return [
                key_record(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)).all()
            ]

    def count_keys(self) -> int:
        with self._read() as session:
            return int(session.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)

    def get_key(self, key_id: str) -> KeyView | None:
        with self._read() as session:
            found = session.execute(
                select(ApiKeyRow, PrincipalRow)
                .outerjoin(PrincipalRow, PrincipalRow.principal_id == ApiKeyRow.principal_id)
                .where(ApiKeyRow.key_id == key_id)
            ).first()
            return _view(*found) if found is not None else None

    def key_views(self) -> list[KeyView]:
        with self._read() as session:
            rows = session.execute(
                select(ApiKeyRow, PrincipalRow)
                .outerjoin(PrincipalRow, PrincipalRow.principal_id == ApiKeyRow.principal_id)
                .order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
            ).all()
            return [_view(key, owner) for key, owner in rows]


def _insert_principal(
    session: Session,
    notes: list[tuple[str, str, str, Any]],
    record: PrincipalRecord,
    password_hash: str | None,
    by: str,
    *,
    note: bool = True,
) -> None:
    if record.username is not None and session.scalar(
        select(func.count()).select_from(PrincipalRow).where(PrincipalRow.username == record.username)
    ):
        raise _taken(record.username)
    session.add(
        PrincipalRow(
            principal_id=record.principal_id,
            kind=record.kind,
            name=record.name,
            username=record.username,
            roles=",".join(sorted(record.roles)),
            disabled=record.disabled,
            owner_id=record.owner_id,
            password_hash=password_hash,
            totp_secret=None,
            failed_logins=0,
            locked_until=None,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )
    )
    session.flush()
    if note:
        notes.append(
            (
                record.created_at.isoformat(),
                KIND_USER,
                record.principal_id,
                user_payload(record, "created", by),
            )
        )


def _grant_problem(
    session: Session, table: str, row_id: str, digest: str, seal_seq: int | None
) -> tuple[str, str] | None:
    audit = session.get(AuditRow, seal_seq) if seal_seq is not None else None
    newest = session.scalar(
        select(func.max(AuditRow.seq)).where(AuditRow.kind == entry_kind(table), AuditRow.subject == row_id)
    )
    entry = chain_entry(audit) if audit is not None else None
    return seal_problem(table, row_id, digest, seal_seq, entry, int(newest) if newest is not None else None)


def check_key(session: Session, row: ApiKeyRow, code: str) -> None:
    """Raise `GrantMismatchError` (after an alert) unless the key row is what the chain sealed."""
    found = _grant_problem(session, KEYS, row.key_id, key_row_digest(row), row.seal_seq)
    if found is not None:
        raise refused(KEYS, row.key_id, found, code)


def check_user(session: Session, row: PrincipalRow, code: str) -> None:
    """Raise `GrantMismatchError` (after an alert) unless the principal row is what the chain sealed."""
    found = _grant_problem(session, USERS, row.principal_id, user_row_digest(row), row.seal_seq)
    if found is not None:
        raise refused(USERS, row.principal_id, found, code)


def _seal(session: Session, note: tuple[str, str, str, Any]) -> list[ApiKeyRow | PrincipalRow | SessionRow]:
    """Put the digest of the row a `key` / `user` note is about into its payload (`rulesvc.people.seals`);
    the rows returned get the note's entry as their `seal_seq` (a `session` note's digest is made by its
    writer: its row is the new session of that person)."""
    _, kind, subject, payload = note
    rows: list[ApiKeyRow | PrincipalRow | SessionRow] = []
    if kind == KIND_SESSION:
        rows.extend(
            row
            for row in session.identity_map.values()
            if isinstance(row, SessionRow) and row.principal_id == subject and row.seal_seq is None
        )
    if kind == KIND_KEY:
        key = session.get(ApiKeyRow, subject)
        if key is not None:
            payload["key_sha256"] = key_row_digest(key)
            rows.append(key)
            owner = session.get(PrincipalRow, key.principal_id) if payload.get("owner_created") else None
            if owner is not None:
                payload["user_sha256"] = user_row_digest(owner)
                rows.append(owner)
    elif kind == KIND_USER:
        user = session.get(PrincipalRow, subject)
        if user is not None:
            payload["user_sha256"] = user_row_digest(user)
            rows.append(user)
    return rows


def key_row_digest(row: ApiKeyRow) -> str:
    return key_digest(
        row.key_id, row.key_hash, row.roles, row.principal_id, row.revoked_at is not None, row.expires_at
    )


def user_row_digest(row: PrincipalRow) -> str:
    return user_digest(
        row.principal_id,
        row.kind,
        row.name,
        row.username,
        row.roles,
        bool(row.disabled),
        row.owner_id,
        row.password_hash,
        row.totp_secret,
        row.oidc_subject,
    )


def _taken(username: str | None) -> UsernameTakenError:
    return UsernameTakenError(f"登录名 {username} 已被占用，请另给 username", {"username": username})


def _status(record: PrincipalRecord) -> str:
    return "disabled" if record.disabled else "enabled"


def user_payload(
    record: PrincipalRecord, change: str, by: str, changed: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "change": change,
        "by": by,
        "user_id": record.principal_id,
        "kind": record.kind,
        "name": record.name,
        "username": record.username,
        "roles": sorted(record.roles),
        "status": _status(record),
        "owner_id": record.owner_id,
    }
    if changed:
        payload["changed"] = changed
    return payload


def _key_payload(row: ApiKeyRow, change: str, by: str) -> dict[str, Any]:
    return {
        "change": change,
        "by": by,
        "key_id": row.key_id,
        "user_id": row.principal_id,
        "roles": sorted(r for r in row.roles.split(",") if r),
        "label": row.label,
        "status": "revoked" if row.revoked_at is not None else "active",
    }


def principal_record(row: PrincipalRow) -> PrincipalRecord:
    return PrincipalRecord(
        principal_id=row.principal_id,
        kind=row.kind,
        name=row.name,
        username=row.username,
        roles=parse_roles([row.roles]) if row.roles else frozenset(),
        disabled=bool(row.disabled),
        owner_id=row.owner_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        has_password=row.password_hash is not None,
        totp_enabled=row.totp_secret is not None,
    )


def key_record(row: ApiKeyRow, owner: PrincipalRecord | None = None) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        key_hash=row.key_hash,
        roles=parse_roles([row.roles]),
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        principal_id=row.principal_id,
        owner=owner,
        expires_at=row.expires_at,
    )


def _view(key: ApiKeyRow, owner: PrincipalRow | None) -> KeyView:
    return KeyView(
        key_id=key.key_id,
        roles=parse_roles([key.roles]),
        label=key.label,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        owner=principal_record(owner) if owner is not None else None,
        expires_at=key.expires_at,
        replaced_by=key.replaced_by,
    )
