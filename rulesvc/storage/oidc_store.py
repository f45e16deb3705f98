"""SQLAlchemy implementation of `OidcStore`: sign-ins under way, people by their OIDC identity, their roles
as the provider's claims say at each sign-in, and sign-in failure bursts. Changes to a person are `user`
chain entries and bursts `signin` entries, written under the chain-head lock like every people write."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from rulesvc.apikeys import Role
from rulesvc.people.errors import OidcError
from rulesvc.people.model import PrincipalRecord
from rulesvc.people.oidc import PendingLogin
from rulesvc.people.ports import KIND_USER
from rulesvc.people.seals import GRANT_MISMATCH
from rulesvc.storage.people_store import _insert_principal, check_user, principal_record, user_payload
from rulesvc.storage.people_tables import OidcLoginRow, PrincipalRow
from rulesvc.storage.signin_store import SqlSignInStore


class SqlOidcStore(SqlSignInStore):
    def add_pending(self, pending: PendingLogin) -> None:
        with self._write() as session, session.begin():
            session.execute(delete(OidcLoginRow).where(OidcLoginRow.expires_at < pending.created_at))
            session.add(
                OidcLoginRow(
                    state_hash=pending.state_hash,
                    nonce=pending.nonce,
                    code_verifier=pending.code_verifier,
                    next_url=pending.next_url,
                    created_at=pending.created_at,
                    expires_at=pending.expires_at,
                )
            )

    def take_pending(self, state_hash: str, now: datetime) -> PendingLogin | None:
        with self._write() as session, session.begin():
            row = session.get(OidcLoginRow, state_hash, with_for_update=True)
            if row is None:
                return None
            pending = PendingLogin(
                state_hash=row.state_hash,
                nonce=row.nonce,
                code_verifier=row.code_verifier,
                next_url=row.next_url,
                created_at=row.created_at,
                expires_at=row.expires_at,
            )
            gone = session.execute(delete(OidcLoginRow).where(OidcLoginRow.state_hash == state_hash))
            if getattr(gone, "rowcount", 1) != 1 or pending.expires_at <= now:
                return None
            return pending

    def by_subject(self, subject: str) -> PrincipalRecord | None:
        with self._read() as session:
            row = session.scalars(select(PrincipalRow).where(PrincipalRow.oidc_subject == subject)).first()
            if row is not None:  # an identity moved onto another person's row by hand signs nobody in
                check_user(session, row, GRANT_MISMATCH)
            return principal_record(row) if row is not None else None

    def has_subject(self, principal_id: str) -> bool:
        with self._read() as session:
            subject = session.scalar(
                select(PrincipalRow.oidc_subject).where(PrincipalRow.principal_id == principal_id)
            )
        return subject is not None

    def provision(self, record: PrincipalRecord, subject: str, by: str) -> None:
        try:
            with self._chained() as (session, notes):
                _insert_principal(session, notes, record, None, by)
                row = session.get(PrincipalRow, record.principal_id)
                assert row is not None
                row.oidc_subject = subject
                notes[-1][3]["via"] = "oidc"
        except IntegrityError:
            raise OidcError(
                "auth.oidc.conflict", "同一身份正在另一处首次登录，请稍后重试", {"subject": subject}
            ) from None

    def sync_claims(
        self, principal_id: str, roles: frozenset[Role], name: str, at: datetime, by: str
    ) -> PrincipalRecord | None:
        with self._chained() as (session, notes):
            row = session.get(PrincipalRow, principal_id, with_for_update=True)
            if row is None:
                return None
            check_user(session, row, GRANT_MISMATCH)
            before = principal_record(row)
            if before.roles == roles and before.name == name:
                return before
            row.roles = ",".join(sorted(roles))
            row.name = name
            row.updated_at = at
            after = principal_record(row)
            changed: dict[str, Any] = {}
            if before.roles != after.roles:
                changed["roles"] = {"from": sorted(before.roles), "to": sorted(after.roles)}
            if before.name != after.name:
                changed["name"] = {"from": before.name, "to": after.name}
            payload = user_payload(after, "updated", by, changed)
            payload["via"] = "oidc"
            notes.append((at.isoformat(), KIND_USER, principal_id, payload))
            return after
