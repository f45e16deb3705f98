"""决策查询 pages: the search form with its results (the same use case as `GET /v1/decisions`, masked
alike), and one decision answering "为什么": the event (masked unless the reader has `compliance`), the
rules and table rows that fired with each condition and the value it saw, the ruleset versions in force,
the actions, the ticket's SLA timers on a timeline (started, warning points, deadline, fired / late /
void, pauses, moves, the stop; provisional points marked), and the decision's place in the hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.console.pages import BASE, PageRoute, person, render
from api.deps import runtime
from rulesvc.apikeys import Permission
from rulesvc.decisions.search import Cursor, DecisionQuery, InvalidSearchError
from rulesvc.decisions.service import DecisionNotFoundError

router = APIRouter(route_class=PageRoute, include_in_schema=False)

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIELDS = ("ticket_id", "event_id", "from", "to", "rule", "action_type")


def _time(text: str, path: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidSearchError(
            "decisions.bad_time",
            f"{path}：时间格式不对，应为北京时间 2026-12-05 09:00（或带时区 2026-12-05T09:00+08:00）",
            path,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)  # people type Beijing time
    return moment


@router.get(f"{BASE}/decisions")
async def decisions_page(request: Request) -> Response:
    principal = await person(request, Permission.DECISIONS_READ)
    form = {name: (request.query_params.get(name) or "").strip() for name in FIELDS}
    after = request.query_params.get("after") or None
    page: dict[str, Any] | None = None
    error = ""
    if any(form.values()) or after:
        try:
            query = DecisionQuery(
                ticket_id=form["ticket_id"] or None,
                event_id=form["event_id"] or None,
                from_=_time(form["from"], "from") if form["from"] else None,
                to=_time(form["to"], "to") if form["to"] else None,
                rule=form["rule"] or None,
                action_type=form["action_type"] or None,
                limit=50,
                after=Cursor.decode(after) if after else None,
            )
            page = await run_in_threadpool(runtime(request).service.search_decisions, query, principal)
        except InvalidSearchError as exc:
            error = str(exc)
    more = {k: v for k, v in form.items() if v}
    return render(
        request,
        "decisions.html",
        principal,
        nav="decisions",
        title="决策查询",
        form=form,
        page=page,
        error=error,
        more=more,
    )


@router.get(f"{BASE}/decisions/{{decision_id}}")
async def decision_page(request: Request, decision_id: str) -> Response:
    principal = await person(request, Permission.DECISIONS_READ)
    service = runtime(request).service
    try:
        record = await run_in_threadpool(service.get_decision, decision_id, principal)
        timers = await run_in_threadpool(service.decision_timers, decision_id)
    except DecisionNotFoundError:
        return render(
            request, "decision.html", principal, nav="decisions", title="决策", record=None, status_code=404
        )
    return render(
        request,
        "decision.html",
        principal,
        nav="decisions",
        title="决策：为什么",
        record=record,
        timers=timers,
        decision_id=decision_id,
    )
