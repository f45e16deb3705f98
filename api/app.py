"""`create_app(settings)`: the FastAPI application, HTTP over the services `rulesvc.wiring` builds.

Building the app migrates the database and loads the rulesets (fail fast: a service that cannot decide
should not start). Nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.console import install_console
from api.deps import Runtime
from api.docs_pages import install_docs_pages
from api.errors import install_error_handlers
from api.lifecycle import install_lifecycle
from api.metrics import Metrics
from api.middleware import ServiceMiddleware
from api.ops_metrics import CheckpointReader, OpsCollector
from api.people_schemas import BODY_MODELS as PEOPLE_BODY_MODELS
from api.responses import JSONBytes
from api.routes import actions, audit, auth, decisions, events, health, oidc, reports, simulate, webhooks
from api.routes.admin import install_admin
from api.routes.auth import BODY_MODELS as AUTH_BODY_MODELS
from api.routes.rulesets import BODY_MODELS
from api.schemas import EventIn, SimulateIn
from api.timer_schemas import TIMER_BODY_MODELS
from api.timers import TimerRuntime, install_timers
from rulesvc.audit.checkpoints import CheckpointError, CheckpointKeeper
from rulesvc.decisions.service import Evaluator, Simulator
from rulesvc.people.ratelimit import RateLimiter, SharedRateLimiter
from rulesvc.people.signin import SignIn
from rulesvc.settings import Settings
from rulesvc.sla.clock import Clock
from rulesvc.tracing import Tracer
from rulesvc.wiring.ops import instrument_pool
from rulesvc.wiring.services import build_services

log = logging.getLogger("rulesvc.api")

DESCRIPTION = """
rulesvc 决策服务：工单系统提交事件，服务按规则集返回动作（分派、审批层级、复核、自动审批、付款、SLA 计时、提醒、升级）。

认证：`Authorization: Bearer <API 密钥>`（`rulesvc keys create --role ROLE` 创建）。
错误统一为 `{"code", "message", "details"}`。
"""


def create_app(
    settings: Settings,
    *,
    book: Evaluator | None = None,
    clock: Clock | None = None,
    simulator: Simulator | None = None,
    tracer: Tracer | None = None,
) -> FastAPI:
    """The service app; `clock` defaults to the system clock.

    Without `book`, decisions use the ruleset versions kept in the database, as of each event's time (the
    rules folder becomes version 1 on first start), and the lifecycle routes are mounted. A given `book`
    decides everything instead (tests, embedding) and there is no lifecycle.
    """
    services = build_services(settings, book=book, clock=clock, simulator=simulator, tracer=tracer)
    checkpoints, lifecycle = services.checkpoints, services.lifecycle
    metrics = Metrics()
    instrument_pool(services.engine, "api", metrics)
    if lifecycle is not None:
        lifecycle.registry.listen(metrics.reloaded)
    if services.ops is not None:
        metrics.ops = OpsCollector(services.ops.snapshot, _checkpoint_reader(checkpoints))
    redis_client = _redis(settings.redis_url)
    runtime = Runtime(
        settings,
        services.decisions,
        metrics,
        services.engine,
        redis_client,
        services.people,
        services.signin,
        services.oidc,
        _limiter(settings.signin_rate_per_minute, "signin", services.signin, redis_client),
        _limiter(settings.invalid_key_rate_per_minute, "invalid_keys", services.signin, redis_client),
        ops=services.ops,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        periodic = (
            asyncio.create_task(_checkpoint_every(checkpoints, settings.checkpoint_interval))
            if checkpoints is not None and settings.checkpoint_interval > 0
            else None
        )
        yield
        if periodic is not None:
            periodic.cancel()
        services.close()
        if redis_client is not None:
            redis_client.close()

    app = FastAPI(
        title="rulesvc",
        version="1",
        description=DESCRIPTION,
        default_response_class=JSONBytes,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are served with local assets by install_docs_pages
        redoc_url=None,
        # The service exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks, left on, look up
        # the global providers (and the environment) on every request although none is configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    for module in (events, simulate, decisions, actions, audit, health):
        app.include_router(module.router)
    app.router.routes.insert(0, events.FastEventRoute())
    install_error_handlers(app)
    install_admin(app)
    app.include_router(auth.router)
    app.include_router(oidc.router)
    install_docs_pages(app)
    if lifecycle is not None:
        install_lifecycle(app, lifecycle)
    install_timers(app, TimerRuntime(services.webhooks, services.sla, services.notifier))
    app.include_router(webhooks.router)
    app.include_router(reports.router)
    install_console(app)
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        access_log_enabled=settings.access_log,
        request_timeout=settings.request_timeout or None,
    )
    _install_openapi(
        app, [EventIn, SimulateIn, *BODY_MODELS, *TIMER_BODY_MODELS, *PEOPLE_BODY_MODELS, *AUTH_BODY_MODELS]
    )
    return app


async def _checkpoint_every(keeper: CheckpointKeeper, seconds: float) -> None:
    """Sign the head every `seconds` (a refusal — the chain no longer verifies — is logged as an alert)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            checkpoint = await run_in_threadpool(keeper.make)
            log.info("checkpoint signed at seq %d", checkpoint.seq)
        except CheckpointError as exc:
            log.error("integrity: checkpoint refused (%s): %s", exc.code, exc)
        except Exception:
            log.exception("checkpoint failed")


def _checkpoint_reader(keeper: CheckpointKeeper | None) -> CheckpointReader | None:
    """The newest checkpoint's (seq, time), for `rulesvc_chain_checkpoint_*`."""
    if keeper is None:
        return None

    def read() -> tuple[int, datetime] | None:
        latest = keeper.latest()
        if latest is None:
            return None
        at = datetime.fromisoformat(latest.at)
        return latest.seq, at if at.tzinfo is not None else at.replace(tzinfo=UTC)

    return read


def _limiter(per_minute: int, what: str, signin: SignIn, redis_client: Any | None) -> RateLimiter | None:
    """A per-address limiter whose first refusal of an address in a minute is a `signin` chain entry;
    counted across every replica in Redis when there is one (`rulesvc:ratelimit:<what>:<address>`)."""
    if per_minute <= 0:
        return None

    def tripped(address: str, attempts: int) -> None:
        payload = {"change": "rate_limited", "limit": what, "address": address, "attempts": attempts}
        payload["per_minute"] = per_minute
        try:
            signin.store.record_burst(datetime.now(UTC), f"address:{address}", payload)
        except Exception:  # the refusal stands whether or not the entry could be written
            log.exception("could not record the rate limit in the audit chain")

    if redis_client is not None:
        return SharedRateLimiter(redis_client, f"rulesvc:ratelimit:{what}:", per_minute, 60.0, tripped)
    return RateLimiter(per_minute, 60.0, tripped)


def _redis(url: str | None) -> Any | None:
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


def _install_openapi(app: FastAPI, body_models: list[type[BaseModel]]) -> None:
    """Add the models of routes that parse their own JSON bodies to the schema's components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in body_models:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in model_schema.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components[model.__name__] = model_schema
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
