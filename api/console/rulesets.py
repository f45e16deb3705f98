"""规则集 pages: the list (version in force, effective time, pending drafts) and one ruleset (its decision
tables as grids, its rules as readable text, its version history). Reads go through the lifecycle's
`RulesetQueries`, the same the `/v1/rulesets` routes answer from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.console.pages import BASE, PageRoute, person, render
from api.console.views import ruleset_view
from api.routes.lifecycle_http import lifecycle_of
from rulesvc.apikeys import Permission
from rulesvc.lifecycle.ports import APPROVED, DRAFT, SUBMITTED

router = APIRouter(route_class=PageRoute, include_in_schema=False)

OPEN_STATUSES = (DRAFT, SUBMITTED, APPROVED)


@router.get(f"{BASE}/rulesets")
async def rulesets_page(request: Request) -> Response:
    principal = await person(request, Permission.RULESETS_READ)
    queries = lifecycle_of(request).service.queries

    def read() -> list[dict[str, Any]]:
        rows = []
        for entry in queries.overview():
            drafts = [d for d in queries.drafts(entry["name"]) if d.status in OPEN_STATUSES]
            rows.append({**entry, "drafts": drafts})
        return rows

    rows = await run_in_threadpool(read)
    return render(request, "rulesets.html", principal, nav="rulesets", title="规则集", rows=rows)


@router.get(f"{BASE}/rulesets/{{name}}")
async def ruleset_page(request: Request, name: str, version: int | None = None) -> Response:
    principal = await person(request, Permission.RULESETS_READ)
    service = lifecycle_of(request).service
    queries = service.queries

    def read() -> dict[str, Any]:
        versions = queries.versions(name)
        states = queries.states(name)
        in_force = next((v for v in versions if states[v.version].state == "in_force"), None)
        shown = queries.version(name, version) if version is not None else (in_force or versions[-1])
        ruleset = queries.factory.ruleset(name, shown.content, shown.version)
        drafts = [d for d in queries.drafts(name) if d.status in OPEN_STATUSES]
        return {
            "name": name,
            "shown": shown,
            "in_force": in_force,
            "versions": sorted(versions, key=lambda v: v.version, reverse=True),
            "states": states,
            "view": ruleset_view(ruleset, queries.factory.kinds.get(ruleset.kind)),
            "drafts": drafts,
        }

    data = await run_in_threadpool(read)
    return render(request, "ruleset.html", principal, nav="rulesets", title=f"规则集 {name}", **data)
