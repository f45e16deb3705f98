"""日历 (a calendar's year: working days, days off, make-up working days, days past `confirmed_through`)
and 审计 (the last verification of the chain and its result, kept by `/v1/audit/verify` for every replica,
and a button verifying it now: a whole verification reads every decision, far too long for a page; the
latest signed checkpoint and a button making one
now; the history of every ruleset and calendar change, and of key and user administration). Reads are the
lifecycle queries and the `DecisionService` calls `/v1/calendars`, `/v1/audit/verify`,
`/v1/audit/checkpoints/latest` and `/v1/audit/administration` answer with."""

from __future__ import annotations

import calendar as monthly
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.console.pages import BASE, PageRoute, person, render
from api.deps import runtime
from api.errors import ApiError
from api.routes.lifecycle_http import lifecycle_of
from rulesvc.apikeys import Permission
from rulesvc.audit.checkpoints import CheckpointError
from rulesvc.lifecycle.errors import NotFoundError
from rulesvc.opsstate import VERIFY
from rulesvc.sla.calendar import BusinessCalendar, format_period

router = APIRouter(route_class=PageRoute, include_in_schema=False)

WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")


def _day(cal: BusinessCalendar, day: date) -> dict[str, Any]:
    periods = cal.periods_on(day)
    if day in cal.workdays:
        kind, mark = "makeup", "班"
    elif day in cal.holidays:
        kind, mark = "holiday", "休"
    elif periods:
        kind, mark = "work", ""
    else:
        kind, mark = "rest", ""
    provisional = cal.confirmed_through is not None and day > cal.confirmed_through
    label = cal.day_labels.get(day, "")
    hours = "、".join(format_period(p) for p in periods) or "不工作"
    return {
        "day": day.day,
        "kind": kind,
        "mark": mark,
        "provisional": provisional,
        "title": f"{day.isoformat()} 星期{WEEKDAYS[day.weekday()]}：{label + '，' if label else ''}{hours}"
        + ("（未确认）" if provisional else ""),
    }


def year_view(cal: BusinessCalendar, year: int) -> list[dict[str, Any]]:
    """Twelve months, each a list of weeks (Monday first) of days or None."""
    months = []
    for month in range(1, 13):
        weeks = [
            [_day(cal, d) if d.month == month else None for d in week]
            for week in monthly.Calendar().monthdatescalendar(year, month)
        ]
        months.append({"month": month, "weeks": weeks})
    return months


@router.get(f"{BASE}/calendars")
async def calendars_page(
    request: Request, name: str | None = None, year: int | None = Query(None, ge=2000, le=2100)
) -> Response:
    principal = await person(request, Permission.RULESETS_READ)
    lifecycle = lifecycle_of(request)

    def read() -> dict[str, Any]:
        factory = lifecycle.service.queries.factory
        calendars = dict(factory.calendars)
        entries = {e["name"]: e for e in lifecycle.calendars.queries.overview()}
        chosen = name or ("cn" if "cn" in calendars else next(iter(sorted(calendars)), None))
        if chosen is not None and chosen not in calendars:
            raise ApiError(404, "calendar.not_found", f"日历 {chosen} 不存在")
        cal = calendars.get(chosen) if chosen else None
        now = lifecycle.service.queries.clock.now()
        shown_year = year or (now.astimezone(cal.tz).year if cal is not None else now.year)
        return {
            "names": sorted(calendars),
            "entries": entries,
            "chosen": chosen,
            "cal": cal,
            "year": shown_year,
            "months": year_view(cal, shown_year) if cal is not None else [],
            "counts": _counts(cal, shown_year) if cal is not None else {},
            "weekdays": WEEKDAYS,
        }

    data = await run_in_threadpool(read)
    return render(request, "calendars.html", principal, nav="calendars", title="日历", **data)


def _counts(cal: BusinessCalendar, year: int) -> dict[str, int]:
    day, end = date(year, 1, 1), date(year + 1, 1, 1)
    working = 0
    while day < end:
        working += bool(cal.periods_on(day))
        day += timedelta(days=1)
    return {
        "working": working,
        "holidays": sum(1 for d in cal.holidays if d.year == year),
        "makeup": sum(1 for d in cal.workdays if d.year == year),
    }


@router.get(f"{BASE}/audit")
async def audit_page(request: Request) -> Response:
    principal = await person(request, Permission.AUDIT_VERIFY)
    lifecycle = lifecycle_of(request)
    rt = runtime(request)
    service = rt.service

    def read() -> dict[str, Any]:
        last = rt.ops.get(VERIFY) if rt.ops is not None else None
        if last is not None:
            result: dict[str, Any] | None = {**last.payload, "at": last.at}
        elif rt.ops is None:  # no shared status to keep a result in: verify now
            result = {**service.verify_audit().to_json(), "at": None}
        else:
            result = None
        changes: list[dict[str, Any]] = []
        for artifact in (lifecycle.service, lifecycle.calendars):
            queries = artifact.queries
            for entry in queries.overview():
                try:
                    history = queries.history(entry["name"])
                except NotFoundError:  # nothing recorded for it yet
                    continue
                label = artifact.artifact.label
                changes.extend({**h, "artifact": label, "name": entry["name"]} for h in history)
        changes.sort(key=lambda h: h["seq"], reverse=True)
        try:
            latest = service.latest_checkpoint()
            checkpoint: dict[str, Any] = {"latest": latest.to_json() if latest else None, "problem": ""}
        except CheckpointError as exc:
            checkpoint = {"latest": None, "problem": f"{exc}（{exc.code}）"}
        return {
            "verify": result,
            "changes": changes[:500],
            "administration": service.administration(500),
            "checkpoint": checkpoint,
        }

    data = await run_in_threadpool(read)
    return render(request, "audit.html", principal, nav="audit", title="审计", **data)
