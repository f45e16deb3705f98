"""What the HTTP service serves, wired from settings: the decision use cases on the SQL store, the ruleset
and calendar lifecycle (publishing a calendar re-plans its open timers), webhook subscriptions and the
SLA report's source. The app (`api.app.create_app`) adds only HTTP to it."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine

from rulesvc.apikeys import parse_roles
from rulesvc.audit.checkpoints import CheckpointKeeper, build_keeper
from rulesvc.decisions.replan import INLINE_SECONDS, CalendarReplanner
from rulesvc.decisions.service import DecisionService, Evaluator, Simulator
from rulesvc.delivery.notify import KEYS, Notifier, shared_notifier
from rulesvc.delivery.service import WebhookService
from rulesvc.fieldclasses import ClassMasking, parse_grants
from rulesvc.lifecycle.service import Publication
from rulesvc.opsstate import OpsStatus
from rulesvc.people.oidc import OidcConfig, OidcSignIn
from rulesvc.people.service import PeopleService
from rulesvc.people.signin import SignIn, SignInPolicy
from rulesvc.settings import Settings
from rulesvc.sla.clock import Clock, SystemClock
from rulesvc.sla.reports import SlaSource
from rulesvc.storage import SqlStore
from rulesvc.storage.evidence_reads import SqlEvidenceReader
from rulesvc.storage.oidc_store import SqlOidcStore
from rulesvc.storage.ops_store import SqlOpsStatus
from rulesvc.storage.signin_store import SqlSignInStore
from rulesvc.storage.timer_store import SqlTimerStore
from rulesvc.storage.webhook_store import SqlWebhookStore
from rulesvc.tracing import Tracer
from rulesvc.wiring.database import open_database, table_checks
from rulesvc.wiring.lifecycle import Lifecycle, build_lifecycle
from rulesvc.wiring.tracing import build_tracer

log = logging.getLogger("rulesvc.api")


@dataclass
class Services:
    engine: Engine
    store: SqlStore
    decisions: DecisionService
    lifecycle: Lifecycle | None
    """None when a given book decides everything (tests, embedding): no lifecycle then."""
    webhooks: WebhookService
    sla: SlaSource
    notifier: Notifier | None
    checkpoints: CheckpointKeeper | None
    people: PeopleService
    signin: SignIn
    oidc: OidcSignIn | None = None
    ops: OpsStatus | None = None
    """The operational state `/metrics` reads and the last verify is recorded in."""
    """Single sign-on, when configured (`RULESVC_OIDC_*`)."""

    def close(self) -> None:
        if self.oidc is not None:
            self.oidc.client.close()
        if self.lifecycle is not None:
            self.lifecycle.close()
        self.store.close()
        self.engine.dispose()


def build_services(
    settings: Settings,
    *,
    book: Evaluator | None = None,
    clock: Clock | None = None,
    simulator: Simulator | None = None,
    tracer: Tracer | None = None,
) -> Services:
    """Everything the HTTP service uses, on the configured database (migrated first). Without `book`,
    events are decided on the ruleset versions kept in the database as of each event's time (the rules
    folder becomes version 1 on first start). Without `tracer`, the settings' (`RULESVC_OTLP_ENDPOINT`)."""
    engine = open_database(settings.database_url, keyring=settings.keyring(), **settings.engine_options())
    store = SqlStore(engine, group_commit=settings.group_commit, rollups=settings.report_rollups)
    clock = clock or SystemClock()
    masking = settings.mask_policy()
    engine_lock = threading.Lock()
    lifecycle: Lifecycle | None = None
    if book is None:
        lifecycle = build_lifecycle(
            engine,
            settings.rulesets,
            clock,
            masking,
            redis_url=settings.redis_url,
            engine_lock=engine_lock,
            poll_seconds=settings.ruleset_poll_seconds,
        )
        book = lifecycle.book
    notifier = shared_notifier(settings.redis_url)
    if lifecycle is not None:
        replanner = CalendarReplanner(
            SqlTimerStore(engine), lifecycle.book, clock, masking, notifier, batch=settings.replan_batch
        )
        lifecycle.calendars.on_published = partial(
            _replan, replanner, lifecycle, settings.replan_inline_tickets
        )
    checkpoints = checkpoint_keeper(settings, store)
    decisions = DecisionService(
        store,
        store,
        book,
        clock,
        masking,
        simulator=simulator,
        engine_lock=engine_lock,
        notifier=notifier,
        limits=settings.validation_limits(),
        evidence=SqlEvidenceReader(engine),
        checkpoints=checkpoints,
        more_checks=table_checks(engine),
        clock_skew=timedelta(seconds=settings.event_clock_skew),
        evaluate_in_thread=settings.evaluate_in_thread,
        key_cache_seconds=settings.key_cache_seconds,
        classes=ClassMasking(masking, parse_grants(settings.field_class_grants)),
        tracer=tracer or build_tracer(settings),
    )
    if lifecycle is not None:
        lifecycle.service.classes = decisions.classes
    people = PeopleService(store.people, clock, partial(_keys_changed, decisions, notifier))
    notifier.subscribe(_forgetter(decisions))
    # Webhook retries run on real time (SystemClock) whatever clock decides events.
    webhooks = WebhookService(
        SqlWebhookStore(engine),
        SystemClock(),
        evidence=SqlEvidenceReader(engine),
        masking=masking,
        classes=decisions.classes,
        kinds=lambda: decisions.book.kinds,
    )
    signin = SignIn(SqlSignInStore(engine), clock, signin_policy(settings))
    oidc = (
        OidcSignIn(
            oidc_config(settings),
            SqlOidcStore(engine),
            signin,
            clock,
            on_change=partial(_keys_changed, decisions, notifier),
        )
        if settings.oidc_enabled
        else None
    )
    return Services(
        engine,
        store,
        decisions,
        lifecycle,
        webhooks,
        SqlTimerStore(engine),
        notifier,
        checkpoints,
        people,
        signin,
        oidc,
        SqlOpsStatus(engine),
    )


def oidc_config(settings: Settings) -> OidcConfig:
    """The single sign-on settings as the OIDC client uses them (raises when they are incomplete)."""
    if not settings.oidc_enabled:
        from rulesvc.people.errors import OidcNotConfiguredError

        raise OidcNotConfiguredError()
    assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_url
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    return OidcConfig(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=secret,
        redirect_url=settings.oidc_redirect_url,
        scopes=settings.oidc_scopes,
        role_claim=settings.oidc_role_claim,
        role_map={group: parse_roles(roles) for group, roles in settings.oidc_role_map.items()},
        name_claim=settings.oidc_name_claim,
        after_login=settings.oidc_after_login_url,
        post_logout=settings.oidc_post_logout_url,
        timeout=settings.oidc_timeout,
    )


def signin_policy(settings: Settings) -> SignInPolicy:
    return SignInPolicy(
        max_failures=settings.login_max_failures,
        lockout=timedelta(minutes=settings.login_lockout_minutes),
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_absolute_hours),
    )


def checkpoint_keeper(settings: Settings, store: SqlStore) -> CheckpointKeeper | None:
    """The keeper of the configured checkpoint directory; its newest checkpoint is a floor for the head."""
    key = settings.checkpoint_key.get_secret_value() if settings.checkpoint_key else None
    keeper = build_keeper(
        store,
        SystemClock(),
        settings.checkpoint_directory(),
        key,
        settings.checkpoint_key_file,
        settings.checkpoint_public_keys,
    )
    if keeper is not None:
        keeper.seed_watermark()
    return keeper


def load_book(settings: Settings) -> Evaluator:
    """The rules folder compiled (raises InvalidRulesetError listing every authoring error)."""
    from rulesvc.rulebook import RuleBook

    book: Evaluator = RuleBook.load([settings.rulesets])
    return book


def _keys_changed(service: DecisionService, notifier: Notifier) -> None:
    """A key was revoked or an owner's rights changed: this process forgets cached keys now, the others
    when the notification reaches them (their caches expire within a second without Redis)."""
    service.forget_keys()
    notifier.publish(KEYS)


def _forgetter(service: DecisionService) -> Callable[[str], None]:
    """A listener dropping `service`'s key cache on `keys` notifications (holding the service weakly:
    the process's notifier outlives the services built on it)."""
    ref = weakref.ref(service)

    def listener(topic: str) -> None:
        target = ref()
        if topic == KEYS and target is not None:
            target.forget_keys()

    return listener


def _replan(
    replanner: CalendarReplanner,
    lifecycle: Lifecycle,
    inline_tickets: int,
    publication: Publication,
    actor: str,
) -> dict[str, Any]:
    """Publishing a calendar version re-plans the open timers on it, up to `inline_tickets` tickets (and
    `INLINE_SECONDS`) in the request; the workers re-plan the rest (and what a crash leaves). Each claim is
    its own audited step (a record and chain entry with its count and versions); the publication's step
    records what the request did and what it left pending."""
    record = publication.version
    result = replanner.replan(record.name, tickets=inline_tickets, seconds=INLINE_SECONDS)
    lifecycle.calendars.record_step(
        actor,
        record.name,
        "replanned",
        version=record.version,
        from_version=record.version - 1,
        effective_at=record.effective_at.isoformat(),
        tickets=result.tickets,
        moved=result.moved,
        pending=result.pending,
    )
    return {"replanned": result.to_json()}
