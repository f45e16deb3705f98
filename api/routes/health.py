"""Liveness, readiness and Prometheus metrics (no key needed: probes and scrapers carry no personal data)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import runtime
from api.metrics import Metrics
from api.responses import JSONBytes
from api.schemas import HealthOut, ReadyOut
from rulesvc.sla.coverage import days_left, today_in

log = logging.getLogger("rulesvc.api")

router = APIRouter(tags=["health"])

READY_TIMEOUT = 0.5
"""Seconds /readyz waits for its probes (it answers within a second, hung database or not)."""

DEGRADING = frozenset({"redis"})
"""Checks whose failure degrades the replica but leaves it able to decide (so still ready)."""


@router.get("/healthz", response_model=HealthOut, summary="存活检查")
async def healthz() -> Response:
    return JSONBytes({"status": "ok"})


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="就绪检查：能否做出决策（数据库、规则集）；Redis 不可达只降级",
    description=(
        "数据库可达即就绪（200）。Redis 不可达时副本仍能决策，并靠轮询数据库加载新发布的规则集版本："
        '`status` 为 `degraded`，`checks.redis` 写明错误，指标 `rulesvc_dependency_up{dependency="redis"}` 为 0，'
        "但不返回 503（否则 Redis 故障时负载均衡会摘掉所有副本）。数据库不可达 → 503。"
        "`calendars` 列出每个声明了 confirmed_through 的日历还剩几天官方安排（指标 "
        "`rulesvc_calendar_coverage_days`）；之后的截止时间为暂定（provisional），不影响就绪。"
    ),
    responses={503: {"model": ReadyOut, "description": "未就绪（数据库不可达）"}},
)
async def readyz(request: Request) -> Response:
    rt = runtime(request)
    checks: dict[str, str] = {"rulesets": "ok"}

    def probe() -> None:
        try:
            before = rt.service.clock.now()
            database_now = rt.service.store.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        else:
            if database_now is not None:
                observe_offset(rt.metrics, before + (rt.service.clock.now() - before) / 2 - database_now)
        if rt.redis is not None:
            try:
                rt.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"

    # A hung database must not hang the probe: answer within READY_TIMEOUT whatever the probe does.
    running = asyncio.ensure_future(run_in_threadpool(probe))
    done, _ = await asyncio.wait({running}, timeout=READY_TIMEOUT)
    if running not in done:
        running.add_done_callback(_forget)
        checks = {
            **checks,
            "database": checks.get("database") or f"error: no answer within {READY_TIMEOUT:g} s",
        }
    for dependency in ("database", "redis"):
        if dependency in checks:
            rt.metrics.dependency_up.labels(dependency).set(1 if checks[dependency] == "ok" else 0)
    ready = all(value == "ok" for name, value in checks.items() if name not in DEGRADING)
    status = "not_ready" if not ready else "ready" if all(v == "ok" for v in checks.values()) else "degraded"
    body = {"status": status, "checks": checks, "calendars": _coverage(request)}
    return JSONBytes(body, status_code=200 if ready else 503)


CLOCK_OFFSET_ALERT = timedelta(seconds=1)


def observe_offset(metrics: Metrics, offset: timedelta) -> None:
    """Record this replica's clock offset from the database server's (`rulesvc_clock_offset_seconds`) and
    log an alert beyond a second: replicas apart judge event time (clock-skew bound, points due) apart."""
    metrics.clock_offset.set(offset.total_seconds())
    if abs(offset) > CLOCK_OFFSET_ALERT:
        log.warning(
            "clock.offset: this replica's clock is %+.3f s off the database server's (alert beyond %g s): "
            "check NTP",
            offset.total_seconds(),
            CLOCK_OFFSET_ALERT.total_seconds(),
        )


def _forget(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # a probe given up on: its outcome was already answered


def _coverage(request: Request) -> dict[str, dict[str, object]]:
    """Confirmed coverage of the calendars in force; also sets the `rulesvc_calendar_coverage_days` gauge."""
    rt = runtime(request)
    calendars = getattr(rt.service.book, "calendars", {})
    today = today_in()
    left = {name: days_left(calendar, today) for name, calendar in calendars.items()}
    known = {name: days for name, days in sorted(left.items()) if days is not None}
    rt.metrics.observe_coverage(known)
    return {
        name: {"confirmed_through": str(calendars[name].confirmed_through), "days_left": days}
        for name, days in known.items()
    }


@router.get(
    "/metrics",
    summary="Prometheus 指标",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    _coverage(request)
    body = runtime(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
