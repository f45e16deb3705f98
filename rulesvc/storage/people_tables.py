"""ORM tables of principals (people and service accounts) and sign-in sessions. Private to
`rulesvc.storage`; migrations 0011 and 0012 create them (0013 adds `seal_seq`, 0014 `oidc_subject`
and `oidc_logins`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rulesvc.storage.tables import Base, UTCDateTime


class PrincipalRow(Base):
    __tablename__ = "principals"

    principal_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    roles: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_pending: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    oidc_subject: Mapped[str | None] = mapped_column(String(400), unique=True, nullable=True)
    """`issuer#sub` of the OIDC identity this person signs in with (None: local account only)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seal_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The chain entry holding the digest of this principal's grants (`rulesvc.people.seals`)."""


class SessionRow(Base):
    """A sign-in session: only the SHA-256 of its token (the cookie) is stored."""

    __tablename__ = "sessions"

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(16), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    seal_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The `session` chain entry recording the sign-in (`rulesvc.people.seals`)."""


class OidcLoginRow(Base):
    """An OIDC sign-in under way: what the callback needs (nonce, PKCE verifier, where to go next), keyed by
    the SHA-256 of the state; deleted when used."""

    __tablename__ = "oidc_logins"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(200))
    next_url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
