"""SQLAlchemy implementation of `SignInStore`: credentials, failure counting and lockout, sessions.

A lockout, a password change and a confirmed TOTP factor are `user` chain entries written in the same
transaction (under the chain-head lock, like every people write); failure counting and session use are
not (they would flood the chain), only the burst that locks an account is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rulesvc.people.model import PrincipalRecord
from rulesvc.people.ports import KIND_SIGNIN, KIND_USER
from rulesvc.people.seals import (
    CHANGE_REFUSED,
    GRANT_MISMATCH,
    KIND_SESSION,
    SESSIONS,
    refused,
    session_digest,
    session_problem,
)
from rulesvc.people.signin import Credentials, SessionRecord
from rulesvc.storage.decision_writes import chain_entry
from rulesvc.storage.people_store import SqlPeopleStore, check_user, principal_record, user_payload
from rulesvc.storage.people_tables import PrincipalRow, SessionRow
from rulesvc.storage.tables import AuditRow


class SqlSignInStore(SqlPeopleStore):
    def credentials(self, username: str) -> Credentials | None:
        """A sign-in's credentials; a person whose row no longer matches its seal is refused
        (`auth.grant_mismatch`): a swapped password hash or a widened role never signs in."""
        with self._read() as session:
            row = session.scalars(select(PrincipalRow).where(PrincipalRow.username == username)).first()
            if row is not None:
                check_user(session, row, GRANT_MISMATCH)
            return _credentials(row) if row is not None else None

    def credentials_of(self, principal_id: str) -> Credentials | None:
        with self._read() as session:
            row = session.get(PrincipalRow, principal_id)
            return _credentials(row) if row is not None else None

    def record_failure(
        self, principal_id: str, at: datetime, max_failures: int, locked_until: datetime, reason: str
    ) -> bool:
        with self._chained() as (session, notes):
            row = session.get(PrincipalRow, principal_id, with_for_update=True)
            if row is None:
                return False
            check_user(session, row, GRANT_MISMATCH)
            row.failed_logins = (row.failed_logins or 0) + 1
            if row.failed_logins < max_failures:
                return False
            failures, row.failed_logins, row.locked_until = row.failed_logins, 0, locked_until
            payload = user_payload(principal_record(row), "locked", "sign-in")
            payload.update(failures=failures, last_failure=reason, locked_until=locked_until.isoformat())
            notes.append((at.isoformat(), KIND_USER, principal_id, payload))
            return True

    def record_success(self, principal_id: str, rehashed: str | None) -> None:
        values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if rehashed is not None:  # the password hash is sealed: its new form is a chain entry
            with self._chained() as (session, notes):
                row = session.get(PrincipalRow, principal_id)
                if row is None:
                    return
                check_user(session, row, GRANT_MISMATCH)
                row.password_hash, row.failed_logins, row.locked_until = rehashed, 0, None
                notes.append(
                    (
                        datetime.now(UTC).isoformat(),
                        KIND_USER,
                        principal_id,
                        user_payload(principal_record(row), "password_rehashed", "sign-in"),
                    )
                )
            return
        with self._write() as session, session.begin():
            session.execute(
                update(PrincipalRow).where(PrincipalRow.principal_id == principal_id).values(**values)
            )

    def set_password(self, principal_id: str, password_hash: str, at: datetime, by: str) -> None:
        with self._chained() as (session, notes):
            row = session.get(PrincipalRow, principal_id)
            if row is None:
                return
            check_user(session, row, CHANGE_REFUSED)
            row.password_hash, row.updated_at = password_hash, at
            notes.append(
                (
                    at.isoformat(),
                    KIND_USER,
                    principal_id,
                    user_payload(principal_record(row), "password_changed", by),
                )
            )

    def set_totp_pending(self, principal_id: str, secret: str) -> None:
        with self._write() as session, session.begin():
            session.execute(
                update(PrincipalRow)
                .where(PrincipalRow.principal_id == principal_id)
                .values(totp_pending=secret)
            )

    def enable_totp(self, principal_id: str, at: datetime, by: str) -> None:
        with self._chained() as (session, notes):
            row = session.get(PrincipalRow, principal_id)
            if row is None or row.totp_pending is None:
                return
            check_user(session, row, CHANGE_REFUSED)
            row.totp_secret, row.totp_pending, row.updated_at = row.totp_pending, None, at
            notes.append(
                (
                    at.isoformat(),
                    KIND_USER,
                    principal_id,
                    user_payload(principal_record(row), "totp_enabled", by),
                )
            )

    def add_session(self, record: SessionRecord) -> None:
        """The session row and its `session` chain entry (sealing token hash, person and expiry)."""
        with self._chained() as (session, notes):
            row = SessionRow(
                session_hash=record.session_hash,
                principal_id=record.principal_id,
                csrf_token=record.csrf_token,
                created_at=record.created_at,
                last_seen_at=record.last_seen_at,
                expires_at=record.expires_at,
                revoked_at=record.revoked_at,
            )
            session.add(row)
            digest = session_digest(record.session_hash, record.principal_id, record.expires_at)
            payload = {"user_id": record.principal_id, "session_sha256": digest}
            notes.append((record.created_at.isoformat(), KIND_SESSION, record.principal_id, payload))

    def _sealed(self, session: Session, row: SessionRow) -> None:
        """Raise `GrantMismatchError` (after an alert) unless the session row is one a sign-in recorded."""
        audit = session.get(AuditRow, row.seal_seq) if row.seal_seq is not None else None
        found = session_problem(
            row.session_hash,
            row.principal_id,
            session_digest(row.session_hash, row.principal_id, row.expires_at),
            row.seal_seq,
            chain_entry(audit) if audit is not None else None,
        )
        if found is not None:
            raise refused(SESSIONS, row.session_hash[:12], found, GRANT_MISMATCH)

    def session(self, session_hash: str) -> tuple[SessionRecord, PrincipalRecord] | None:
        with self._read() as session:
            found = session.execute(
                select(SessionRow, PrincipalRow)
                .join(PrincipalRow, PrincipalRow.principal_id == SessionRow.principal_id)
                .where(SessionRow.session_hash == session_hash)
            ).first()
            if found is None:
                return None
            row, owner = found
            self._sealed(session, row)
            check_user(session, owner, GRANT_MISMATCH)
            return _session(row), principal_record(owner)

    def touch_session(self, session_hash: str, at: datetime) -> None:
        with self._write() as session, session.begin():
            session.execute(
                update(SessionRow).where(SessionRow.session_hash == session_hash).values(last_seen_at=at)
            )

    def record_burst(self, at: datetime, subject: str, payload: dict[str, Any]) -> None:
        """A `signin` chain entry: a burst of failed sign-ins or a rate limit tripped."""
        with self._chained() as (_session, notes):
            notes.append((at.isoformat(), KIND_SIGNIN, subject, payload))

    def revoke_session(self, session_hash: str, at: datetime) -> None:
        with self._write() as session, session.begin():
            session.execute(
                update(SessionRow)
                .where(SessionRow.session_hash == session_hash, SessionRow.revoked_at.is_(None))
                .values(revoked_at=at)
            )


def _credentials(row: PrincipalRow) -> Credentials:
    return Credentials(
        user=principal_record(row),
        password_hash=row.password_hash,
        totp_secret=row.totp_secret,
        totp_pending=row.totp_pending,
        failed_logins=row.failed_logins or 0,
        locked_until=row.locked_until,
    )


def _session(row: SessionRow) -> SessionRecord:
    return SessionRecord(
        session_hash=row.session_hash,
        principal_id=row.principal_id,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
