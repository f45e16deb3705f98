"""Liveness, readiness and Prometheus metrics (no key needed: probes and scrapers carry no personal data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import runtime
from api.responses import JSONBytes
from api.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="存活检查")
async def healthz() -> Response:
    return JSONBytes({"status": "ok"})


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="就绪检查（数据库、Redis、规则集）",
    responses={503: {"model": ReadyOut, "description": "未就绪"}},
)
async def readyz(request: Request) -> Response:
    rt = runtime(request)
    checks: dict[str, str] = {"rulesets": "ok"}

    def probe() -> None:
        try:
            rt.service.store.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        if rt.redis is not None:
            try:
                rt.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"

    await run_in_threadpool(probe)
    ready = all(value == "ok" for value in checks.values())
    return JSONBytes(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get(
    "/metrics",
    summary="Prometheus 指标",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    body = runtime(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
