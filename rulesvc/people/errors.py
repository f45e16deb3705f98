"""Errors of people administration and sign-in: a stable dotted code, a Chinese message for people, details.
The HTTP layer maps each class to one status (`api.errors.ERROR_STATUS`)."""

from __future__ import annotations

from typing import Any

from rulesvc.errors import RulesvcError


class PeopleError(RulesvcError):
    code = "people.invalid"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidError(PeopleError):
    """A request that cannot be carried out as given (an unknown role, an empty name)."""

    code = "people.invalid"


class NotFoundError(PeopleError):
    code = "people.not_found"


class UsernameTakenError(PeopleError):
    code = "people.username_taken"


class RolesExceedOwnerError(PeopleError):
    """A key may not hold a role its owner does not hold."""

    code = "people.roles_exceed_owner"


class WeakPasswordError(PeopleError):
    code = "people.password_weak"


class SelfLockoutError(PeopleError):
    """An administrator may not disable themself or take away their own admin role (someone must remain
    able to administer)."""

    code = "people.self_lockout"


class InvalidCredentialsError(PeopleError):
    """Wrong username, password or code (the answer does not say which)."""

    code = "auth.invalid_credentials"


class TotpRequiredError(PeopleError):
    code = "auth.totp_required"


class LockedError(PeopleError):
    """Too many failed sign-ins in a row: the account is locked for a while."""

    code = "auth.locked"


class DisabledError(PeopleError):
    code = "auth.disabled"


class SessionExpiredError(PeopleError):
    code = "auth.session_expired"


class GrantMismatchError(PeopleError):
    """A key, or the person or service account behind a key or session, no longer matches what the audit
    chain recorded (a database writer widened roles, revived a revoked key, swapped an owner...): refused,
    and the row is reported by `verify`. `code` is `auth.key_mismatch` for a key presented,
    `auth.grant_mismatch` for a session or sign-in, `people.grant_mismatch` for an administrative change
    of such a row (which would otherwise seal the edit as genuine)."""

    code = "auth.grant_mismatch"

    def __init__(self, message: str, details: Any = None, code: str | None = None) -> None:
        super().__init__(message, details)
        if code is not None:
            self.code = code


class OidcError(PeopleError):
    """An OIDC sign-in that cannot complete; `code` names the step (`auth.oidc.state`, `auth.oidc.token`,
    ...), the message says it in Chinese."""

    code = "auth.oidc"

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details)
        self.code = code


class OidcNotConfiguredError(OidcError):
    def __init__(self) -> None:
        super().__init__(
            "auth.oidc.not_configured",
            "未配置单点登录（OIDC）：请设置 RULESVC_OIDC_ISSUER、RULESVC_OIDC_CLIENT_ID 和 RULESVC_OIDC_REDIRECT_URL",
        )


class OidcProviderError(OidcError):
    """The identity provider could not be reached or answered something unusable."""


class OidcNoRoleError(OidcError):
    """Signed in at the provider, but no claim maps to a rulesvc role."""


class KeyNotActiveError(PeopleError):
    """Rotating a key that is revoked or past its overlap window."""

    code = "people.key_inactive"
