"""看板与报表: SLA attainment by ruleset, auto-approval, time per stage, workload, rule and row hits (those
never fired), over a period (default the last 30 days) and optionally one kind; each with its CSV and XLSX
download (the `/v1/reports/...` routes, same figures). Tables scroll sideways on a phone."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.console.pages import BASE, PageRoute, person, render
from api.timers import timers_runtime
from rulesvc.apikeys import Permission
from rulesvc.decisions import ticket_reports
from rulesvc.sla.reports import sla_report

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _day(text: str | None, default: datetime) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI) if text else default
    except ValueError:
        return default


@router.get(f"{BASE}/reports")
async def reports_page(request: Request) -> Response:
    principal = await person(request, Permission.REPORTS_READ)
    today = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    end = _day(request.query_params.get("to"), today)
    start = _day(request.query_params.get("from"), end - timedelta(days=30))
    if start >= end:
        start = end - timedelta(days=1)
    kind = (request.query_params.get("kind") or "").strip() or None
    service = request.app.state.runtime.service
    source = timers_runtime(request).reports

    def build() -> dict[str, Any]:
        records = list(service.ticket_records(start, end))
        return {
            "sla": sla_report(
                source,
                start,
                end,
                ("ruleset",),
                "Asia/Shanghai",
                getattr(service.book, "calendars", {}),
                service.clock.now(),
            ),
            "approvals": ticket_reports.approvals(records, start, end, "Asia/Shanghai", "month", kind),
            "stages": ticket_reports.stages(records, start, end, "Asia/Shanghai", kind),
            "workload": ticket_reports.workload(records, start, end, "Asia/Shanghai", None),
            "rules": service.rule_hits(start, end, None),
        }

    reports = await run_in_threadpool(build)
    window = {"from": start.isoformat(), "to": end.isoformat()}
    links = {
        "sla": "/v1/reports/sla?" + urlencode({**window, "group_by": "ruleset"}),
        "approvals": "/v1/reports/approvals?"
        + urlencode({**window, "period": "month", **({"kind": kind} if kind else {})}),
        "stages": "/v1/reports/stages?" + urlencode({**window, **({"kind": kind} if kind else {})}),
        "workload": "/v1/reports/workload?" + urlencode(window),
        "rules": "/v1/reports/rules?" + urlencode(window),
    }
    return render(
        request,
        "reports.html",
        principal,
        nav="reports",
        title="看板与报表",
        reports=reports,
        links=links,
        start=start.date().isoformat(),
        end=end.date().isoformat(),
        kind=kind or "",
    )
