"""Sign-in with a local account: argon2id password, optional TOTP second factor, lockout after repeated
failures, and server-side sessions with idle and absolute timeouts.

A session is a random token (the cookie) of which only the SHA-256 is stored, with a CSRF token the
browser must echo in `X-CSRF-Token` on state-changing requests. A disabled person's sessions stop at once
(every use reads the person). A lockout — `max_failures` wrong passwords or codes in a row — is a `user`
chain entry (who, how many failures, until when); passwords and codes are never stored, logged or returned.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from rulesvc.apikeys import Principal
from rulesvc.people.errors import (
    DisabledError,
    InvalidCredentialsError,
    InvalidError,
    LockedError,
    SessionExpiredError,
    TotpRequiredError,
)
from rulesvc.people.model import PrincipalRecord, shown
from rulesvc.people.passwords import hash_password, needs_rehash, verify_password
from rulesvc.people.totp import new_secret, provisioning_uri, verify_code
from rulesvc.sla.clock import Clock

TOUCH_EVERY = timedelta(seconds=60)
"""A session's last use is written at most this often (idle timeouts are minutes long)."""


@dataclass(frozen=True)
class SignInPolicy:
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class Credentials:
    user: PrincipalRecord
    password_hash: str | None
    totp_secret: str | None
    totp_pending: str | None
    failed_logins: int
    locked_until: datetime | None


@dataclass(frozen=True)
class SessionRecord:
    session_hash: str
    principal_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class NewSession:
    token: str
    """The cookie's value; shown to the browser only."""
    record: SessionRecord
    user: PrincipalRecord


class SignInStore(Protocol):
    def credentials(self, username: str) -> Credentials | None: ...

    def credentials_of(self, principal_id: str) -> Credentials | None: ...

    def record_failure(
        self, principal_id: str, at: datetime, max_failures: int, locked_until: datetime, reason: str
    ) -> bool:
        """Count a failed sign-in; at `max_failures` in a row lock the account until `locked_until` (and
        append the `user` chain entry). True when this failure locked it."""
        ...

    def record_success(self, principal_id: str, rehashed: str | None) -> None: ...

    def set_password(self, principal_id: str, password_hash: str, at: datetime, by: str) -> None: ...

    def set_totp_pending(self, principal_id: str, secret: str) -> None:
        """Enrolment begun: the secret is kept aside until a code from it is confirmed."""
        ...

    def enable_totp(self, principal_id: str, at: datetime, by: str) -> None:
        """The pending secret becomes the second factor (a `user` chain entry)."""
        ...

    def add_session(self, record: SessionRecord) -> None: ...

    def session(self, session_hash: str) -> tuple[SessionRecord, PrincipalRecord] | None: ...

    def touch_session(self, session_hash: str, at: datetime) -> None: ...

    def revoke_session(self, session_hash: str, at: datetime) -> None: ...

    def record_burst(self, at: datetime, subject: str, payload: dict[str, Any]) -> None:
        """A `signin` chain entry: a burst of failed sign-ins or a rate limit tripped."""
        ...


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SignIn:
    def __init__(self, store: SignInStore, clock: Clock, policy: SignInPolicy | None = None) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy or SignInPolicy()

    def login(self, username: str, password: str, totp: str | None = None) -> NewSession:
        now = self.clock.now()
        found = self.store.credentials(username.strip())
        if found is None or not found.user.is_user:
            verify_password(None, password)  # the same work as for a real account
            raise _invalid()
        user = found.user
        if found.locked_until is not None and found.locked_until > now:
            raise _locked(found.locked_until)
        if not verify_password(found.password_hash, password):
            self._fail(user, now, "password")
        if found.totp_secret is not None:
            if not totp:
                raise TotpRequiredError("需要动态验证码（totp）", {"totp": "required"})
            if not verify_code(found.totp_secret, totp, now):
                self._fail(user, now, "totp")
        if user.disabled:
            raise DisabledError("账户已停用，请联系管理员", {"user_id": user.principal_id})
        assert found.password_hash is not None
        self.store.record_success(
            user.principal_id, hash_password(password) if needs_rehash(found.password_hash) else None
        )
        return self.open_session(user)

    def open_session(self, user: PrincipalRecord) -> NewSession:
        """A new session for a person who has just proved who they are (password or OIDC)."""
        now = self.clock.now()
        token = secrets.token_urlsafe(32)
        record = SessionRecord(
            session_hash=session_hash(token),
            principal_id=user.principal_id,
            csrf_token=secrets.token_urlsafe(24),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.policy.absolute,
        )
        self.store.add_session(record)
        return NewSession(token, record, user)

    def _fail(self, user: PrincipalRecord, now: datetime, reason: str) -> None:
        until = now + self.policy.lockout
        if self.store.record_failure(user.principal_id, now, self.policy.max_failures, until, reason):
            raise _locked(until)
        raise _invalid()

    def session(self, token: str) -> tuple[SessionRecord, Principal]:
        """The live session of this cookie and who it is; raises `SessionExpiredError` otherwise."""
        now = self.clock.now()
        found = self.store.session(session_hash(token))
        if found is None:
            raise SessionExpiredError("登录会话无效或已过期，请重新登录", None)
        record, user = found
        expired = (
            record.revoked_at is not None
            or now >= record.expires_at
            or now - record.last_seen_at >= self.policy.idle
            or user.disabled
        )
        if expired:
            if record.revoked_at is None:
                self.store.revoke_session(record.session_hash, now)
            raise SessionExpiredError("登录会话无效或已过期，请重新登录", None)
        if now - record.last_seen_at >= TOUCH_EVERY:
            self.store.touch_session(record.session_hash, now)
            record = replace(record, last_seen_at=now)
        principal = Principal(
            "",
            user.roles,
            principal_id=user.principal_id,
            name=user.name,
            kind=user.kind,
            session_id=record.session_hash[:12],
        )
        return record, principal

    def logout(self, token: str) -> None:
        self.store.revoke_session(session_hash(token), self.clock.now())

    def begin_totp(self, principal_id: str, issuer: str = "rulesvc") -> dict[str, str]:
        """A new secret for the person's authenticator app (not in force until confirmed with a code)."""
        found = self._credentials(principal_id)
        secret = new_secret()
        self.store.set_totp_pending(principal_id, secret)
        return {
            "secret": secret,
            "uri": provisioning_uri(secret, found.user.username or principal_id, issuer),
        }

    def enable_totp(self, principal_id: str, code: str, by: str) -> None:
        found = self._credentials(principal_id)
        now = self.clock.now()
        if found.totp_pending is None or not verify_code(found.totp_pending, code, now):
            raise InvalidError("动态验证码不正确（请先获取密钥，并输入验证器当前显示的 6 位数字）", None)
        self.store.enable_totp(principal_id, now, by)

    def change_password(self, principal_id: str, current: str, new: str, by: str) -> None:
        found = self._credentials(principal_id)
        if not verify_password(found.password_hash, current):
            raise InvalidCredentialsError("当前密码不正确", None)
        self.store.set_password(principal_id, hash_password(new), self.clock.now(), by)

    def _credentials(self, principal_id: str) -> Credentials:
        found = self.store.credentials_of(principal_id)
        if found is None or not found.user.is_user:
            raise InvalidError("只有用户（不是服务账号或 API 密钥）才能设置密码和动态验证码", None)
        return found


def _invalid() -> InvalidCredentialsError:
    return InvalidCredentialsError("用户名或密码错误", None)


def _locked(until: datetime) -> LockedError:
    return LockedError(
        f"连续登录失败次数过多，账户已锁定至 {shown(until)}（北京时间），请稍后再试或联系管理员",
        {"locked_until": shown(until)},
    )
