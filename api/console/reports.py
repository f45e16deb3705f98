"""看板与报表: timer points due within 24 hours and overdue, late fires, SLA attainment by ruleset and group,
auto-approval, the distribution of tickets by any field over time, time per stage, workload, rule and row
hits (those never fired), over a period (default the last 30 days), filtered by kind, ruleset and group;
each with its CSV and XLSX download (the `/v1/reports/...` routes, same figures). On PostgreSQL the ticket
reports are aggregated by the database (`DecisionService.ticket_reports`), their closed days and the rule
and row hits read from per-day roll-ups. Tables scroll sideways on a phone."""

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
from rulesvc.decisions.ticket_reports import TicketReport
from rulesvc.sla.reports import sla_report

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _day(text: str | None, default: datetime, what: str, refused: list[str]) -> datetime:
    """Midnight in Beijing of a `YYYY-MM-DD` typed into the form; `default`, with the reason in `refused`,
    for anything else."""
    text = (text or "").strip()
    if not text:
        return default
    try:
        if len(text) != 10:
            raise ValueError(text)
        return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)
    except ValueError:
        refused.append(f"{what}「{text}」不是日期，应写成 2026-12-05；已按 {default.date().isoformat()} 显示")
        return default


FILTERS = ("kind", "ruleset", "group", "field")
PERIOD_LABELS = {"day": "日", "week": "周", "month": "月"}
DUE_WITHIN = timedelta(hours=24)


@router.get(f"{BASE}/reports")
async def reports_page(request: Request) -> Response:
    principal = await person(request, Permission.REPORTS_READ)
    today = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    refused: list[str] = []
    end = _day(request.query_params.get("to"), today, "止", refused)
    start = _day(request.query_params.get("from"), end - timedelta(days=30), "起", refused)
    if start >= end:
        start = end - timedelta(days=1)
    chosen = {name: (request.query_params.get(name) or "").strip() or None for name in FILTERS}
    kind, ruleset, group = chosen["kind"], chosen["ruleset"], chosen["group"]
    field = chosen["field"] or "kind"
    period = request.query_params.get("period") or "week"
    period = period if period in PERIOD_LABELS else "week"
    service = request.app.state.runtime.service
    source = timers_runtime(request).reports
    tz = "Asia/Shanghai"

    def build() -> dict[str, Any]:
        approvals, spread, stages, workload = service.ticket_reports(
            [
                TicketReport("approvals", start, end, tz, "month", kind),
                TicketReport("tickets", start, end, tz, period, kind, field),
                TicketReport("stages", start, end, tz, kind=kind),
                TicketReport("workload", start, end, tz, group=group),
            ]
        )
        sla = sla_report(
            source,
            start,
            end,
            ("ruleset", "group"),
            tz,
            getattr(service.book, "calendars", {}),
            service.clock.now(),
        )
        sla["groups"] = [
            g
            for g in sla["groups"]
            if (not ruleset or g["key"]["ruleset"] == ruleset) and (not group or g["key"]["group"] == group)
        ]
        return {
            "timers": service.timers_due_report(DUE_WITHIN, ruleset, group),
            "late": service.late_fires_report(start, end, ruleset, group),
            "sla": sla,
            "approvals": approvals,
            "spread": spread,
            "spread_table": _spread_table(spread, period),
            "stages": stages,
            "workload": workload,
            "rules": service.rule_hits(start, end, ruleset),
        }

    reports = await run_in_threadpool(build)
    window = {"from": start.isoformat(), "to": end.isoformat()}
    only = {k: v for k, v in (("ruleset", ruleset), ("group", group)) if v}
    of_kind = {"kind": kind} if kind else {}
    links = {
        "timers": "/v1/reports/timers?" + urlencode({"within_hours": 24, **only}),
        "late": "/v1/reports/late-fires?" + urlencode({**window, **only}),
        "sla": "/v1/reports/sla?" + urlencode({**window, "group_by": "ruleset,group"}),
        "approvals": "/v1/reports/approvals?" + urlencode({**window, "period": "month", **of_kind}),
        "spread": "/v1/reports/tickets?" + urlencode({**window, "period": period, "field": field, **of_kind}),
        "stages": "/v1/reports/stages?" + urlencode({**window, **of_kind}),
        "workload": "/v1/reports/workload?" + urlencode({**window, **({"group": group} if group else {})}),
        "rules": "/v1/reports/rules?" + urlencode({**window, **({"ruleset": ruleset} if ruleset else {})}),
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
        filters={**chosen, "field": field, "period": period},
        periods=PERIOD_LABELS,
        rulesets=sorted(service.book.versions()),
        error="；".join(refused),
    )


def _spread_table(report: dict[str, Any], period: str) -> dict[str, Any]:
    """The distribution as a table: one row per period, one column per value (the most frequent first, at
    most 12; the rest summed as 其他), each cell the tickets."""
    totals: dict[str, int] = {}
    for g in report["groups"]:
        totals[g["key"]["value"]] = totals.get(g["key"]["value"], 0) + g["tickets"]
    ranked = sorted(totals, key=lambda v: (-totals[v], v))
    shown, rest = ranked[:12], set(ranked[12:])
    rows: dict[str, dict[str, int]] = {}
    for g in report["groups"]:
        value = g["key"]["value"]
        cells = rows.setdefault(g["key"][period], {})
        column = "其他" if value in rest else value
        cells[column] = cells.get(column, 0) + g["tickets"]
    columns = shown + (["其他"] if rest else [])
    return {"columns": columns, "rows": sorted(rows.items())}
