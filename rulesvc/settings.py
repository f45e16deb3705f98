"""Service settings, read from the environment with the prefix `RULESVC_`.

Built in `main()` / `create_app()` and passed down; never a module-level global. Complex values (the
masking tables) are given as JSON in the environment, e.g.
`RULESVC_MASK_FIELDS='{"id_no": "id_card", "手机号": "mobile"}'`.

The settings that hold secrets can be read from a file instead (Docker and Kubernetes secrets): the variable
of `SECRET_FILES` names the file, whose content (less a final line break) is the value.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from rulesvc.apikeys import parse_roles
from rulesvc.datakeys import Keyring
from rulesvc.masking import DEFAULT_FIELD_RULES, DEFAULT_PATTERN_RULES, MaskKind, MaskPolicy
from rulesvc.validation import Limits

# Setting → the variable naming a file that holds its value (a mounted secret). The file wins over the plain
# variable when both are set (the image sets RULESVC_DATABASE_URL to its SQLite default). The checkpoint
# signing key and the data keys have file settings of their own (RULESVC_CHECKPOINT_KEY_FILE,
# RULESVC_DATA_KEY_FILE).
SECRET_FILES = {
    "database_url": "RULESVC_DATABASE_URL_FILE",
    "database_password": "RULESVC_DATABASE_PASSWORD_FILE",
    "redis_url": "RULESVC_REDIS_URL_FILE",
    "redis_password": "RULESVC_REDIS_PASSWORD_FILE",
    "oidc_client_secret": "RULESVC_OIDC_CLIENT_SECRET_FILE",
    "otlp_headers": "RULESVC_OTLP_HEADERS_FILE",  # JSON, as in RULESVC_OTLP_HEADERS
}
_JSON_SECRETS = frozenset({"otlp_headers"})


class _SecretFiles(PydanticBaseSettingsSource):
    """The values of `SECRET_FILES` whose file variable is set, read from their files."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read in __call__

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, variable in SECRET_FILES.items():
            path = os.environ.get(variable)
            if not path:
                continue
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise SettingsError(f"{variable}：读不了 {path}：{exc.strerror}") from None
            value = text.removesuffix("\n").removesuffix("\r")
            if name in _JSON_SECRETS:
                try:
                    value = json.loads(value)
                except ValueError as exc:
                    raise SettingsError(f"{variable}：{path} 不是 JSON：{exc}") from None
            values[name] = value
        return values


CHANNEL_NAME = r"^[a-z0-9][a-z0-9_-]{0,36}$"
SMTPS_PORT = 465
NotifyAction = Literal["notify", "escalate"]


def _both_actions() -> list[NotifyAction]:
    return ["notify", "escalate"]


class ChannelConfig(BaseModel):
    """One notification channel of `RULESVC_NOTIFY_CHANNELS` (docs/notifications.md): a 企业微信 or 钉钉 group
    robot, or SMTP e-mail, receiving the `notify`/`escalate` actions it matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["wecom", "dingtalk", "email"]
    actions: list[NotifyAction] = Field(default_factory=_both_actions)
    notify_channels: list[str] = Field(
        default_factory=list,
        description="Only `notify` actions whose `channels` name one of these (empty: every notify).",
    )
    kinds: list[str] = Field(default_factory=list, description="Only tickets of these kinds (empty: all).")
    msgtype: Literal["text", "markdown"] = "markdown"
    webhook_url: SecretStr | None = Field(
        default=None,
        description="The robot's webhook (企业微信: ...send?key=KEY; 钉钉: ...send?access_token=T).",
    )
    secret: SecretStr | None = Field(
        default=None, description="钉钉 加签 secret (SEC...), when the robot signs."
    )
    mention: dict[str, list[str]] = Field(
        default_factory=dict, description="The action's `to` → mobile numbers @-mentioned in the group."
    )
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    smtps: bool = Field(
        default=False,
        description="SMTP over TLS from the first byte (implicit TLS, SMTPS; usually port 465), the server's "
        "certificate checked as for starttls.",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="CA certificates (PEM) the SMTP server's certificate is checked against (default: the system's).",
    )
    username: str | None = None
    password: SecretStr | None = None
    sender: str | None = Field(default=None, description="The From address.")
    to: list[str] = Field(default_factory=list, description="Addresses every message goes to.")
    recipients: dict[str, list[str]] = Field(
        default_factory=dict, description="The action's `to` (owner, supervisor, ...) → more addresses."
    )
    subject_prefix: str = "【rulesvc】"
    timeout: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _complete(self) -> ChannelConfig:
        if self.type in ("wecom", "dingtalk") and self.webhook_url is None:
            raise ValueError(f"{self.type} 通道需要 webhook_url")
        if self.type == "email" and not (self.smtp_host and self.sender and (self.to or self.recipients)):
            raise ValueError("email 通道需要 smtp_host、sender 和 to（或 recipients）")
        if self.starttls and self.smtps:
            raise ValueError("starttls 与 smtps 不能同时设置：smtps 从连接开始就是 TLS")
        if self.type == "email" and self.smtp_port == SMTPS_PORT and not (self.starttls or self.smtps):
            raise ValueError(f"smtp_port {SMTPS_PORT} 是 SMTP over TLS 端口：请设 smtps: true（或 starttls）")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RULESVC_", extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _SecretFiles(settings_cls), env_settings, dotenv_settings, file_secret_settings

    database_url: str = Field(
        default="sqlite:///./var/rulesvc.db",
        description="SQLAlchemy URL; `postgresql://...` is run with psycopg 3.",
    )
    database_password: SecretStr | None = Field(
        default=None,
        description="PostgreSQL password, put into the URL (so that the URL itself holds no secret).",
    )
    redis_url: str | None = Field(default=None, description="Redis URL, e.g. redis://127.0.0.1:6379/0.")
    redis_password: SecretStr | None = Field(
        default=None, description="Redis password (requirepass), put into the Redis URL."
    )
    rulesets: Path = Field(
        default=Path("rulesets"),
        description="Rules folder: kinds, calendars and cases; its rulesets become version 1 at first start.",
    )
    ruleset_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between checks for new ruleset versions (Redis or not).",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger request bodies get 413.")
    max_json_depth: int = Field(default=32, ge=4, description="Deeper JSON request bodies get 422.")
    max_simulate_events: int = Field(default=1000, ge=1)
    event_time_earliest: AwareDatetime = Field(
        default=datetime(2000, 1, 1, tzinfo=UTC),
        description="An event's occurred_at before this instant is refused (422 validation.time_out_of_range).",
    )
    event_time_ahead_days: float = Field(
        default=366,
        gt=0,
        description="An event's occurred_at more than this many days after now is refused (a sanity range; "
        "the tighter clock-skew tolerance for future events is a separate setting).",
    )
    max_number: Decimal = Field(
        default=Decimal(10) ** 15,
        gt=0,
        description="Largest absolute value of a ticket number whose field declares no bounds of its own.",
    )
    mask_fields: dict[str, MaskKind] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_RULES),
        description="Ticket field name (case-insensitive, any depth) → mask kind.",
    )
    mask_patterns: dict[str, MaskKind] = Field(
        default_factory=lambda: dict(DEFAULT_PATTERN_RULES),
        description="Regular expression → mask kind, applied to every string value.",
    )
    field_class_grants: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Role → field classes (公开, 内部, 敏感, 个人信息) it reads in clear, replacing the defaults "
        "of the roles named (rulesvc.fieldclasses.DEFAULT_GRANTS); JSON in RULESVC_FIELD_CLASS_GRANTS.",
    )
    data_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Encryption at rest of the clear inputs: key id → 32-byte key (base64 or hex), JSON; "
        "the last (or data_key_id) wraps new inputs, the others are still read (rulesvc.datakeys).",
    )
    data_key_id: str | None = Field(
        default=None, description="The current data key's id (default: the last)."
    )
    data_key_file: Path | None = Field(
        default=None,
        description='A JSON key file {"current": id, "keys": {id: key}} instead of RULESVC_DATA_KEYS.',
    )
    bootstrap_admin_key: bool = Field(
        default=True,
        description="On the embedded SQLite default, `serve` prints a local admin key when no key exists.",
    )
    group_commit: bool = Field(
        default=True,
        description="Concurrent decisions of one process share a transaction (one chain lock, one fsync).",
    )
    report_rollups: bool = Field(
        default=True,
        description=(
            "On PostgreSQL the reports read the closed days of their period from per-day roll-ups (rolled on "
            "first read); off, every report reads the facts of its whole period."
        ),
    )
    evaluate_in_thread: bool = Field(
        default=False,
        description=(
            "Evaluate events in the thread pool instead of on the event loop. Off by default: the shipped "
            "rulesets evaluate in ~0.1 ms, less than the thread hand-off costs (measured: -25% req/s with it "
            "on); turn it on for rulesets slow enough to stall the loop. Parallelism comes from --workers."
        ),
    )
    worker_in_serve: bool = Field(
        default=True, description="`rulesvc serve` also runs the timer poller and webhook delivery."
    )
    worker_health_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`rulesvc worker` answers liveness probes on this port (GET /healthz, every interface).",
    )
    worker_stall_seconds: float = Field(
        default=60,
        ge=1,
        le=3600,
        description=(
            "Seconds without a heartbeat of its scheduler after which `rulesvc worker` counts as stuck: its "
            "/healthz answers 503 and it exits with status 70, for its supervisor to start it again. Keep it "
            "above the heartbeat interval (5 s) plus the database's statement timeout (30 s)."
        ),
    )
    timer_poll_interval: float = Field(default=0.5, gt=0, le=60, description="Seconds between timer polls.")
    timer_batch: int = Field(default=100, ge=1, le=10_000, description="Tickets locked per timer poll.")
    replan_batch: int = Field(
        default=500, ge=1, le=10_000, description="Tickets locked per claim when re-planning timers."
    )
    replan_lanes: int = Field(
        default=2,
        ge=1,
        le=8,
        description=(
            "Claims a worker re-plans at once (each its own transaction; PostgreSQL only, SQLite and a worker "
            "inside `serve` use 1): one claim's rows are planned while another's are written."
        ),
    )
    replan_inline_tickets: int = Field(
        default=1_000,
        ge=0,
        description=(
            "Tickets whose timers the request publishing a calendar re-plans itself (at most 1 s of it); the "
            "worker re-plans the rest, and the answer says how many are pending."
        ),
    )
    event_clock_skew: float = Field(
        default=300.0,
        gt=0,
        description=(
            "Seconds an event's occurred_at may be ahead of the server's clock (clocks synchronised by NTP); "
            "further ahead is refused with 422 event.clock_skew."
        ),
    )
    webhook_timeout: float = Field(default=5.0, gt=0, le=120, description="Seconds a receiver has to answer.")
    webhook_max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts before a dead letter.")
    webhook_backoff_base: float = Field(default=1.0, gt=0, description="Seconds before the first retry.")
    webhook_backoff_max: float = Field(default=300.0, gt=0, description="Longest wait between retries.")
    checkpoint_dir: Path | None = Field(
        default=None,
        description=(
            "Directory outside the database where signed checkpoints of the audit chain are written and "
            "read back by verify. Default: `checkpoints/` next to an SQLite file; none for PostgreSQL."
        ),
    )
    checkpoint_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 signing key for checkpoints: PEM, or the 32 raw bytes as base64 or hex.",
    )
    checkpoint_key_file: Path | None = Field(
        default=None,
        description=(
            "File holding the signing key (PEM). Default: `checkpoint-signing.key` beside the checkpoint "
            "directory, created on first use (mode 0600)."
        ),
    )
    checkpoint_public_keys: list[str] = Field(
        default_factory=list,
        description="Public keys (hex) of earlier signing keys whose checkpoints stay trusted (rotation).",
    )
    checkpoint_interval: float = Field(
        default=300.0,
        ge=0,
        description="Seconds between automatic checkpoints in `serve` (0: on demand only).",
    )
    request_timeout: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Seconds a request may wait (for a hung database, say) before it is answered 503; 0 waits forever. "
            "Long-running routes (verify, simulate, import, drafts and backtests) are not bounded."
        ),
    )
    db_connect_timeout: float = Field(default=3.0, gt=0, description="Seconds to open a database connection.")
    db_pool_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a free pooled connection before 503."
    )
    db_statement_timeout: float = Field(
        default=30.0, ge=0, description="PostgreSQL statement_timeout in seconds (0: none)."
    )
    key_cache_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description=(
            "Seconds a replica keeps what a presented API key grants. Revoking a key, or disabling its owner, "
            "drops every replica's cache at once through Redis; without Redis this is the longest a replica "
            "may still accept a revoked key."
        ),
    )
    session_idle_minutes: float = Field(
        default=30, gt=0, description="A sign-in session unused this long ends (the person signs in again)."
    )
    session_absolute_hours: float = Field(
        default=12, gt=0, description="A sign-in session ends this long after sign-in, however busy."
    )
    session_cookie_secure: bool = Field(
        default=False,
        description="Mark the session cookies Secure (sent over HTTPS only): set true behind HTTPS.",
    )
    session_cookie_samesite: Literal["lax", "strict"] = Field(
        default="lax", description="SameSite attribute of the session cookies."
    )
    login_max_failures: int = Field(
        default=5, ge=1, le=100, description="Failed sign-ins in a row that lock a local account."
    )
    login_lockout_minutes: float = Field(
        default=15, gt=0, description="How long a locked local account stays locked."
    )
    signin_rate_per_minute: int = Field(
        default=10,
        ge=0,
        description="Sign-in attempts (local or single sign-on) one address may make per minute; then 429 (0: no limit).",
    )
    invalid_key_rate_per_minute: int = Field(
        default=20,
        ge=0,
        description="Invalid API keys one address may present per minute; then 429 for unknown keys (0: no limit).",
    )
    oidc_issuer: str | None = Field(
        default=None,
        description=(
            "Single sign-on: the OpenID Connect issuer URL (e.g. https://sso.bank.cn/realms/bank for "
            "Keycloak); with a client id and redirect URL it turns on GET /v1/auth/oidc/login."
        ),
    )
    oidc_client_id: str | None = Field(default=None, description="The client id registered at the provider.")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="The client's secret (confidential client); none for a public client."
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        description="This service's callback as the browser reaches it: https://HOST/v1/auth/oidc/callback.",
    )
    oidc_scopes: str = Field(default="openid profile email", description="Scopes asked for at sign-in.")
    oidc_role_claim: str = Field(
        default="groups",
        description="The claim listing the person's groups or roles (dotted path allowed: realm_access.roles).",
    )
    oidc_role_map: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            'Claim value → rulesvc roles, JSON: {"rulesvc-editors": ["editor"], "rulesvc-admins": ["admin"]}. '
            "Read again at every sign-in; a person whose values map to no role cannot sign in."
        ),
    )
    oidc_name_claim: str = Field(default="name", description="The claim holding the display name.")
    oidc_after_login_url: str = Field(
        default="/console/", description="Where the browser goes after sign-in when no `next` was given."
    )
    oidc_post_logout_url: str | None = Field(
        default=None,
        description=(
            "Where the provider sends the browser after signing the person out there too (register it at the "
            "provider as a post-logout redirect URI), e.g. https://HOST/console/; none: the provider's page."
        ),
    )
    oidc_timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds to wait for the provider.")
    notify_channels: dict[str, ChannelConfig] = Field(
        default_factory=dict,
        description=(
            "Notification channels for notify/escalate actions, JSON: name → channel (docs/notifications.md); "
            "delivered by the worker with the webhooks' retries and dead letters."
        ),
    )
    notify_channels_file: Path | None = Field(
        default=None,
        description="A JSON file of the same channels instead (keeps robot keys and passwords out of the environment).",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description=(
            "Tracing: the OTLP/HTTP traces endpoint of an OpenTelemetry collector, e.g. "
            "http://otel-collector:4318/v1/traces; set, it turns tracing on (off by default)."
        ),
    )
    otlp_headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Headers sent with every OTLP export, JSON, e.g. {"Authorization": "Bearer ..."}.',
    )
    trace_service_name: str = Field(default="rulesvc", description="`service.name` of the spans.")
    trace_sample_ratio: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of traces kept (each decision, timer fire or delivery is kept or dropped whole).",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="HTTPS served by `rulesvc serve`: the certificate (PEM, with its chain); with tls_key_file "
        "the port speaks HTTPS only, TLS 1.2 and 1.3.",
    )
    tls_key_file: Path | None = Field(default=None, description="The certificate's private key (PEM).")
    database_ca_file: Path | None = Field(
        default=None,
        description="PostgreSQL over TLS: the CA certificate (PEM) the server's certificate must chain to; "
        "connections use sslmode=verify-full (the host name is checked) unless the URL names an sslmode.",
    )
    redis_ca_file: Path | None = Field(
        default=None,
        description="Redis over TLS (a rediss:// URL): the CA certificate (PEM) the server's certificate must "
        "chain to; the host name is checked.",
    )
    log_level: str = "INFO"
    access_log: bool = True

    @field_validator("database_url")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("database_url 不能为空")
        return value.strip()

    @model_validator(mode="before")
    @classmethod
    def _passwords_into_urls(cls, data: Any) -> Any:
        """The separate passwords go into the URLs every part of the service connects with."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for url_name, password_name in (
            ("database_url", "database_password"),
            ("redis_url", "redis_password"),
        ):
            password = _secret_text(data.get(password_name))
            url = data.get(url_name)
            if password is None:
                continue
            if not isinstance(url, str) or not url.strip():
                raise ValueError(f"设置了 {password_name}，但没有设置 {url_name}")
            data[url_name] = with_password(url.strip(), password)
        return _cas_into_urls(data)

    @model_validator(mode="after")
    def _certificate_with_key(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file 与 tls_key_file 须同时设置（HTTPS 两者都需要）")
        for name in ("tls_cert_file", "tls_key_file", "database_ca_file", "redis_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}：{path} 不是文件")
        return self

    @field_validator("oidc_role_map")
    @classmethod
    def _known_roles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for group, roles in value.items():
            try:
                parse_roles(roles)
            except ValueError as exc:
                raise ValueError(f"oidc_role_map[{group!r}]: {exc}") from None
        return value

    @field_validator("notify_channels")
    @classmethod
    def _channel_names(cls, value: dict[str, ChannelConfig]) -> dict[str, ChannelConfig]:
        for name in value:
            if not re.match(CHANNEL_NAME, name):
                raise ValueError(f"notify_channels：通道名 {name!r} 应符合 {CHANNEL_NAME}")
        return value

    def channels(self) -> dict[str, ChannelConfig]:
        """The notification channels: `notify_channels_file`'s, or `notify_channels`."""
        if self.notify_channels_file is None:
            return dict(self.notify_channels)
        raw = json.loads(self.notify_channels_file.read_text(encoding="utf-8"))
        channels = {name: ChannelConfig.model_validate(config) for name, config in raw.items()}
        return self._channel_names(channels)

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_redirect_url)

    def validation_limits(self) -> Limits:
        return Limits(
            earliest=self.event_time_earliest,
            ahead=timedelta(days=self.event_time_ahead_days),
            max_number=self.max_number,
        )

    def keyring(self) -> Keyring | None:
        """The data keys (None: clear inputs are stored in clear)."""
        if self.data_key_file is not None:
            return Keyring.from_file(self.data_key_file)
        if self.data_keys:
            keys = {k: v.get_secret_value() for k, v in self.data_keys.items()}
            return Keyring.from_texts(keys, self.data_key_id)
        return None

    def mask_policy(self) -> MaskPolicy:
        return MaskPolicy.build(self.mask_fields, self.mask_patterns)

    def engine_options(self) -> dict[str, float]:
        """Timeouts for `make_engine` (connect, pool wait, statement)."""
        return {
            "connect_timeout": self.db_connect_timeout,
            "pool_timeout": self.db_pool_timeout,
            "statement_timeout": self.db_statement_timeout,
        }

    def checkpoint_directory(self) -> Path | None:
        if self.checkpoint_dir is not None:
            return self.checkpoint_dir
        if self.is_embedded:
            database = self.database_url.split("///", 1)[-1]
            if database and database != ":memory:" and not database.startswith("file:"):
                return Path(database).parent / "checkpoints"
        return None

    @property
    def is_embedded(self) -> bool:
        """True for the embedded SQLite default (one process trying rulesvc out)."""
        return self.database_url.startswith("sqlite")


def _secret_text(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value if isinstance(value, str) and value else None


def _cas_into_urls(data: dict[str, Any]) -> dict[str, Any]:
    """The CA files go into the URLs as the drivers read them: libpq's `sslmode`/`sslrootcert` (psycopg and
    pg_dump alike), redis-py's `ssl_ca_certs`/`ssl_cert_reqs`/`ssl_check_hostname`."""
    database_ca = data.get("database_ca_file")
    if database_ca:
        url = str(data.get("database_url") or "sqlite:///")
        if not url.startswith(("postgresql", "postgres:")):
            raise ValueError("设置了 database_ca_file，但 database_url 不是 postgresql:// 地址")
        sslmode = {} if "sslmode=" in urlsplit(url).query else {"sslmode": "verify-full"}
        data["database_url"] = with_query(url, {**sslmode, "sslrootcert": str(database_ca)})
    redis_ca = data.get("redis_ca_file")
    if redis_ca:
        url = str(data.get("redis_url") or "")
        if not url.startswith("rediss://"):
            raise ValueError("设置了 redis_ca_file，但 redis_url 不是 rediss:// 地址（TLS 上的 Redis）")
        data["redis_url"] = with_query(
            url, {"ssl_ca_certs": str(redis_ca), "ssl_cert_reqs": "required", "ssl_check_hostname": "true"}
        )
    return data


def with_query(url: str, parameters: dict[str, str]) -> str:
    """`url` with `parameters` added to (or replacing the same names in) its query."""
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in parameters}
    return urlunsplit(parts._replace(query=urlencode({**query, **parameters})))


def with_password(url: str, password: str) -> str:
    """`url` with its password replaced by `password` (quoted); the user name is kept (or empty)."""
    parts = urlsplit(url)
    if not parts.hostname and not parts.netloc:
        raise ValueError(f"密码需要带主机名的地址：{parts.scheme}://...")
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]  # as written (already quoted)
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
