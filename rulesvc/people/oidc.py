"""Sign-in through the bank's identity provider: OpenID Connect authorization-code flow with PKCE.

`begin` keeps a sign-in under way (state, nonce, PKCE verifier; only the SHA-256 of the state is the key,
the browser holds the state in a cookie) and gives the provider's authorization URL. `finish` takes the
provider's answer: the state must be this browser's (cookie) and still under way (used once, 10 minutes),
the code is exchanged at the token endpoint with the verifier, the ID token is checked against the
issuer's published keys (JWKS: signature, `iss`, `aud`/`azp`, `exp`, `iat`, and the nonce), the userinfo
endpoint completes the claims. The person is found by issuer and subject — never by name or e-mail — and
made on first sign-in; the roles are re-read from the configured claim at every sign-in (a group removed
at the provider is a role gone here, their keys included), each change a `user` chain entry. A person
whose claims map to no role, or who was disabled here, is refused. Then the session is the same as a
local sign-in's. Failures are counted; a burst is a `signin` chain entry.

Authlib gives the protocol pieces (PKCE challenge, authorization URL, discovery metadata checks), joserfc
(Authlib's JOSE) the ID token checks; HTTP goes through httpx.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from rulesvc.apikeys import USER, Role
from rulesvc.people.bursts import Burst, FailureBursts
from rulesvc.people.errors import (
    DisabledError,
    OidcError,
    OidcNoRoleError,
    OidcProviderError,
)
from rulesvc.people.model import PrincipalRecord
from rulesvc.people.signin import NewSession, SignIn
from rulesvc.sla.clock import Clock

PENDING_FOR = timedelta(minutes=10)
"""How long a sign-in may stay at the provider before its state is refused."""
LEEWAY_SECONDS = 60
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
CALLBACK_PATH = "/v1/auth/oidc/callback"
BY = "oidc"
"""How the chain names changes made by a sign-in (the provider's claims, not an administrator)."""
MAX_NAME = 100


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    redirect_url: str
    scopes: str = "openid profile email"
    role_claim: str = "groups"
    """The claim listing the person's groups or roles (a dotted path such as `realm_access.roles` works)."""
    role_map: Mapping[str, frozenset[Role]] = field(default_factory=dict)
    """Claim value (a group such as `rulesvc-editors` or `/rulesvc/editors`) → rulesvc roles."""
    name_claim: str = "name"
    after_login: str = "/console/"
    post_logout: str | None = None
    """Where the provider sends the browser after signing the person out there (RP-initiated logout)."""
    timeout: float = 5.0
    cache_seconds: float = 300.0

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class PendingLogin:
    state_hash: str
    nonce: str
    code_verifier: str
    next_url: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Problem:
    code: str
    level: str
    """`error` (sign-in cannot work) or `warning`."""
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "level": self.level, "message": self.message}


class OidcStore(Protocol):
    def add_pending(self, pending: PendingLogin) -> None: ...

    def take_pending(self, state_hash: str, now: datetime) -> PendingLogin | None:
        """The sign-in under way with this state, deleted (used once); expired ones are dropped too."""
        ...

    def by_subject(self, subject: str) -> PrincipalRecord | None: ...

    def has_subject(self, principal_id: str) -> bool:
        """Whether the person signs in through the provider (an identity is bound to them)."""
        ...

    def provision(self, record: PrincipalRecord, subject: str, by: str) -> None:
        """A person made on first sign-in (a `user` chain entry)."""
        ...

    def sync_claims(
        self, principal_id: str, roles: frozenset[Role], name: str, at: datetime, by: str
    ) -> PrincipalRecord | None:
        """Roles and name as the provider says now (a `user` chain entry when they changed)."""
        ...

    def record_burst(self, at: datetime, subject: str, payload: dict[str, Any]) -> None:
        """A `signin` chain entry: a burst of failed sign-ins."""
        ...


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def safe_next(value: str | None, default: str) -> str:
    """Where to go after sign-in: a path on this service only (no scheme, host or `//`), else `default`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 0x20 for c in value) or len(value) > 500:
        return default
    return value


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects (`realm_access.roles`)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def roles_from_claims(
    claims: Mapping[str, Any], claim: str, role_map: Mapping[str, frozenset[Role]]
) -> frozenset[Role]:
    value = claim_at(claims, claim)
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    roles: set[Role] = set()
    for item in values:
        text = str(item)
        roles |= role_map.get(text, role_map.get(text.lstrip("/"), frozenset()))
    return frozenset(roles)


class OidcClient:
    """The provider as this service talks to it: discovery and keys (cached; keys fetched again once when
    a token names a key not yet seen — the provider rotated), the token and userinfo endpoints."""

    def __init__(self, config: OidcConfig, http: httpx.Client | None = None) -> None:
        self.config = config
        self.http = http or httpx.Client(timeout=config.timeout, follow_redirects=False)
        self._lock = threading.Lock()
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, KeySet] | None = None

    def _get_json(self, url: str, what: str, code: str) -> dict[str, Any]:
        try:
            response = self.http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcProviderError(
                code, f"无法连接身份提供方（{what}）：{url}", {"url": url, "error": str(exc)}
            ) from None
        if response.status_code != 200:
            raise OidcProviderError(
                code,
                f"身份提供方的{what}返回 HTTP {response.status_code}：{url}",
                {"url": url, "status": response.status_code},
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OidcProviderError(code, f"身份提供方的{what}不是 JSON 对象：{url}", {"url": url})
        return data

    def metadata(self, refresh: bool = False) -> dict[str, Any]:
        with self._lock:
            cached = self._metadata
        if cached is not None and not refresh and time.monotonic() - cached[0] < self.config.cache_seconds:
            return cached[1]
        data = self._get_json(self.config.discovery_url, "发现文档", "auth.oidc.discovery")
        if data.get("issuer") != self.config.issuer:
            raise OidcProviderError(
                "auth.oidc.issuer_mismatch",
                f"发现文档中的 issuer（{data.get('issuer')}）与配置的 RULESVC_OIDC_ISSUER（{self.config.issuer}）不一致",
                {"configured": self.config.issuer, "discovered": data.get("issuer")},
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(data.get(name), str):
                raise OidcProviderError(
                    "auth.oidc.discovery", f"发现文档缺少 {name}", {"url": self.config.discovery_url}
                )
        with self._lock:
            self._metadata = (time.monotonic(), data)
        return data

    def keys(self, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._keys
        if cached is not None and not refresh and time.monotonic() - cached[0] < self.config.cache_seconds:
            return cached[1]
        url = str(self.metadata()["jwks_uri"])
        data = self._get_json(url, "签名公钥（JWKS）", "auth.oidc.jwks")
        try:
            keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OidcProviderError(
                "auth.oidc.jwks", f"身份提供方的签名公钥（JWKS）无法读取：{exc}", {"url": url}
            ) from None
        with self._lock:
            self._keys = (time.monotonic(), keys)
        return keys

    def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        meta = self.metadata()
        url: str = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.config.client_id,
            "code",
            redirect_uri=self.config.redirect_url,
            scope=self.config.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return url

    def logout_url(self) -> str | None:
        """The provider's end-session endpoint (OpenID Connect RP-Initiated Logout) with this client's id and
        the post-logout redirect; None when the provider has none or does not answer."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except OidcError:
            return None
        if not isinstance(endpoint, str) or not endpoint:
            return None
        query = {"client_id": self.config.client_id}
        if self.config.post_logout:
            query["post_logout_redirect_uri"] = self.config.post_logout
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)

    def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        meta = self.metadata()
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_url,
            "code_verifier": verifier,
        }
        auth: httpx.Auth = httpx.Auth()  # no client authentication header (secret in the body, or none)
        secret = self.config.client_secret
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if secret and "client_secret_basic" in methods:
            auth = httpx.BasicAuth(quote_plus(self.config.client_id), quote_plus(secret))
        elif secret:
            body.update(client_id=self.config.client_id, client_secret=secret)
        else:
            body["client_id"] = self.config.client_id
        url = str(meta["token_endpoint"])
        try:
            response = self.http.post(url, data=body, auth=auth, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcProviderError(
                "auth.oidc.provider_unreachable", f"无法连接身份提供方的令牌端点：{url}", {"error": str(exc)}
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code != 200 or not isinstance(data, dict) or "id_token" not in data:
            details: dict[str, Any] = {"status": response.status_code}
            if isinstance(data, dict):
                details.update({k: str(data[k]) for k in ("error", "error_description") if k in data})
            raise OidcError(
                "auth.oidc.token",
                "身份提供方拒绝了授权码（可能已用过或已过期；客户端 id/密钥是否正确？），请重新登录",
                details,
            )
        return data

    def id_claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature (issuer's JWKS), issuer, audience, times and nonce hold."""
        token = None
        for refresh in (False, True):
            try:
                token = jwt.decode(id_token, self.keys(refresh=refresh), algorithms=ALGORITHMS)
                break
            except JoseError as exc:
                if refresh:
                    raise OidcError(
                        "auth.oidc.id_token",
                        "ID 令牌签名无效（不是身份提供方公钥签发的）",
                        {"error": exc.error if hasattr(exc, "error") else type(exc).__name__},
                    ) from None
        assert token is not None
        claims = dict(token.claims)
        registry = JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise OidcError(
                "auth.oidc.id_token",
                "ID 令牌不可接受（签发方、受众或有效期不对）",
                {"error": str(exc)},
            ) from None
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcError("auth.oidc.id_token", "ID 令牌的 azp 不是本服务", {"azp": claims.get("azp")})
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise OidcError(
                "auth.oidc.nonce", "ID 令牌的 nonce 与本次登录不符（可能是重放），请重新登录", None
            )
        return claims

    def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The userinfo endpoint's claims (empty when the provider has none); `sub` must be the token's."""
        endpoint = self.metadata().get("userinfo_endpoint")
        if not isinstance(endpoint, str) or not access_token:
            return {}
        try:
            response = self.http.get(
                endpoint, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
            )
            data = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("sub") != subject:
            return {}
        return data

    def close(self) -> None:
        self.http.close()


class OidcSignIn:
    def __init__(
        self,
        config: OidcConfig,
        store: OidcStore,
        signin: SignIn,
        clock: Clock,
        client: OidcClient | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.signin = signin
        self.clock = clock
        self.client = client or OidcClient(config)
        self._on_change = on_change or (lambda: None)
        policy = signin.policy
        self.bursts = FailureBursts(policy.max_failures, policy.lockout, self._record_burst)

    def begin(self, next_url: str | None = None) -> tuple[str, str]:
        """(the provider's authorization URL, the state the browser keeps in a cookie)."""
        now = self.clock.now()
        state, nonce, verifier = generate_token(43), generate_token(32), generate_token(64)
        url = self.client.authorization_url(state, nonce, verifier)
        self.store.add_pending(
            PendingLogin(
                state_hash=state_hash(state),
                nonce=nonce,
                code_verifier=verifier,
                next_url=safe_next(next_url, self.config.after_login),
                created_at=now,
                expires_at=now + PENDING_FOR,
            )
        )
        return url, state

    def finish(
        self,
        cookie_state: str | None,
        state: str | None,
        code: str | None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> tuple[NewSession, str]:
        """The session of the person the provider vouches for, and where to send the browser."""
        source = "oidc"
        try:
            pending = self._pending(cookie_state, state)
            if error:
                raise OidcError(
                    "auth.oidc.denied",
                    "身份提供方未完成登录（用户取消或无权使用本服务）",
                    {"error": error[:100], "error_description": (error_description or "")[:300]},
                )
            if not code:
                raise OidcError("auth.oidc.state", "回调缺少授权码（code）", None)
            tokens = self.client.exchange(code, pending.code_verifier)
            claims = self.client.id_claims(str(tokens["id_token"]), pending.nonce)
            subject = f"{self.config.issuer}#{claims['sub']}"
            source = subject
            more = self.client.userinfo(str(tokens.get("access_token") or ""), str(claims["sub"]))
            claims = {**more, **claims}
            user = self._person(subject, claims)
            source = user.principal_id
            return self.signin.open_session(user), pending.next_url
        except OidcError as exc:
            self.bursts.failed(source, exc.code, self.clock.now())
            raise
        except DisabledError:
            self.bursts.failed(source, "auth.disabled", self.clock.now())
            raise

    def logout_url(self, principal_id: str) -> str | None:
        """Where to send the browser of a person signing out so that the provider signs them out too (else
        the next sign-in at the same browser passes without a password): for people who sign in through
        the provider only."""
        if not principal_id or not self.store.has_subject(principal_id):
            return None
        return self.client.logout_url()

    def _pending(self, cookie_state: str | None, state: str | None) -> PendingLogin:
        if not state or not cookie_state or not hmac.compare_digest(cookie_state.encode(), state.encode()):
            raise OidcError(
                "auth.oidc.state",
                "登录状态（state）与本浏览器发起的登录不符，请从登录页重新开始",
                None,
            )
        pending = self.store.take_pending(state_hash(state), self.clock.now())
        if pending is None:
            raise OidcError(
                "auth.oidc.state", "登录已过期或已完成（state 只能使用一次），请从登录页重新开始", None
            )
        return pending

    def _person(self, subject: str, claims: Mapping[str, Any]) -> PrincipalRecord:
        now = self.clock.now()
        roles = roles_from_claims(claims, self.config.role_claim, self.config.role_map)
        name = _name(claims, self.config.name_claim)
        found = self.store.by_subject(subject)
        if found is None:
            if not roles:
                raise _no_role(self.config.role_claim, claims)
            record = PrincipalRecord(
                principal_id=f"u_{secrets.token_hex(6)}",
                kind=USER,
                name=name,
                username=None,
                roles=roles,
                disabled=False,
                owner_id=None,
                created_at=now,
                updated_at=now,
            )
            self.store.provision(record, subject, BY)
            return record
        updated = self.store.sync_claims(found.principal_id, roles, name, now, BY)
        assert updated is not None
        if updated.roles != found.roles:
            self._on_change()
        if updated.disabled:
            raise DisabledError("账户已停用，请联系管理员", {"user_id": updated.principal_id})
        if not roles:
            raise _no_role(self.config.role_claim, claims)
        return updated

    def _record_burst(self, burst: Burst) -> None:
        payload: dict[str, Any] = {"change": "signin_failures", "via": "oidc", **burst.to_json()}
        self.store.record_burst(burst.last_at, burst.source, payload)

    def check(self) -> list[Problem]:
        return check(self.config, self.client)


def _name(claims: Mapping[str, Any], claim: str) -> str:
    for candidate in (claim_at(claims, claim), claims.get("preferred_username"), claims.get("sub")):
        if isinstance(candidate, str) and candidate.strip():
            return " ".join(candidate.split())[:MAX_NAME]
    return "单点登录用户"


def _no_role(claim: str, claims: Mapping[str, Any]) -> OidcNoRoleError:
    value = claim_at(claims, claim)
    shown = value if isinstance(value, list | str) else None
    return OidcNoRoleError(
        "auth.oidc.no_role",
        f"您在身份提供方的 {claim} 中没有对应 rulesvc 角色的组，请联系管理员开通",
        {"claim": claim, "values": shown},
    )


# -- settings check ---------------------------------------------------------------------------------------


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(config: OidcConfig, client: OidcClient) -> list[Problem]:
    """What stands between these settings and a working sign-in, each problem with a code and a Chinese
    message (fetches the discovery document and the keys)."""
    problems: list[Problem] = []

    def add(code: str, message: str, level: str = "error") -> None:
        problems.append(Problem(code, level, message))

    parts = urlsplit(config.redirect_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        add(
            "oidc.redirect_url_invalid",
            f"回调地址 RULESVC_OIDC_REDIRECT_URL 不是完整网址：{config.redirect_url}",
        )
    elif not parts.path.endswith(CALLBACK_PATH):
        add(
            "oidc.redirect_url_path",
            f"回调地址应以 {CALLBACK_PATH} 结尾（在身份提供方登记同一地址）：{config.redirect_url}",
        )
    elif parts.scheme != "https" and not _loopback(config.redirect_url):
        add("oidc.insecure_url", f"回调地址应使用 https：{config.redirect_url}")
    if config.post_logout is not None:
        after = urlsplit(config.post_logout)
        if after.scheme not in ("http", "https") or not after.netloc:
            add(
                "oidc.post_logout_url_invalid",
                f"退出后地址 RULESVC_OIDC_POST_LOGOUT_URL 不是完整网址（在身份提供方登记同一地址）：{config.post_logout}",
            )
    if "openid" not in config.scopes.split():
        add("oidc.scope_openid", f"RULESVC_OIDC_SCOPES 必须包含 openid（当前：{config.scopes}）")
    if not config.role_map:
        add("oidc.role_map_empty", "未配置 RULESVC_OIDC_ROLE_MAP：没有人能通过单点登录获得角色")
    if not config.client_secret:
        add(
            "oidc.client_secret_missing",
            "未配置客户端密钥 RULESVC_OIDC_CLIENT_SECRET：仅适用于公开客户端（只靠 PKCE）",
            "warning",
        )
    try:
        meta = client.metadata(refresh=True)
    except OidcError as exc:
        code = "oidc.issuer_mismatch" if exc.code == "auth.oidc.issuer_mismatch" else "oidc.discovery_failed"
        add(code, exc.message)
        return problems
    metadata = OpenIDProviderMetadata(meta)
    for name in dir(metadata):
        if not name.startswith("validate_"):
            continue
        try:
            getattr(metadata, name)()
        except ValueError as exc:
            text = str(exc)
            if "https" in text:
                if not _loopback(config.issuer):
                    add("oidc.insecure_url", f"身份提供方的地址应使用 https（{text}）")
            else:
                add("oidc.discovery_invalid", f"发现文档不合规范（{text}）")
    if "code" not in (meta.get("response_types_supported") or []):
        add(
            "oidc.code_flow_unsupported", "身份提供方不支持授权码流程（response_types_supported 中没有 code）"
        )
    methods = meta.get("code_challenge_methods_supported")
    if methods is None:
        add(
            "oidc.pkce_unknown",
            "发现文档未声明 code_challenge_methods_supported（无法确认支持 PKCE S256）",
            "warning",
        )
    elif "S256" not in methods:
        add(
            "oidc.pkce_unsupported",
            "身份提供方不支持 PKCE S256（code_challenge_methods_supported 中没有 S256）",
        )
    if not meta.get("end_session_endpoint"):
        add(
            "oidc.end_session_unsupported",
            "发现文档未声明 end_session_endpoint：退出登录只退出 rulesvc，身份提供方的登录仍然有效"
            "（同一浏览器再次单点登录无需密码）",
            "warning",
        )
    algs = meta.get("id_token_signing_alg_values_supported") or []
    if algs and not set(algs) & set(ALGORITHMS):
        add("oidc.alg_unsupported", f"身份提供方的 ID 令牌签名算法都不受支持：{', '.join(map(str, algs))}")
    auth_methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if config.client_secret and not {"client_secret_basic", "client_secret_post"} & set(auth_methods):
        add(
            "oidc.client_auth_unsupported",
            f"身份提供方的令牌端点不接受客户端密钥（支持：{', '.join(map(str, auth_methods))}）",
        )
    supported = meta.get("claims_supported")
    top = config.role_claim.split(".", 1)[0]
    if isinstance(supported, list) and top not in supported:
        add(
            "oidc.role_claim_unlisted",
            f"发现文档的 claims_supported 中没有角色声明 {top}：请确认身份提供方把它放进 ID 令牌或 userinfo",
            "warning",
        )
    try:
        keys = client.keys(refresh=True)
        if not keys.keys:
            add("oidc.jwks_empty", "身份提供方的签名公钥（JWKS）为空")
    except OidcError as exc:
        add("oidc.jwks_failed", exc.message)
    return problems
