"""Editing and reviewing: the table grid editor (saved as a draft), the 草稿 list, a draft's page (cell-level
diff against its base version, every case with pass/fail and expected-vs-actual, submit / approve / reject /
publish through the `/v1` routes); a draft's 修改样例 opens the one case form of `api/console/cases.py`.

Saving goes through the lifecycle service's `create_draft` and `upload_cases`, the same use cases as
`POST /v1/rulesets/{name}/drafts` and `PUT .../cases`; the file's text is changed by
`rulesvc.lang.tableedit`, which touches only the lines that changed."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from api.console.pages import BASE, PageRoute, person, render
from api.console.views import case_results, replay_window, ruleset_diff, table_view
from api.deps import json_body, require
from api.errors import ApiError
from api.responses import JSONBytes
from api.routes.lifecycle_http import lifecycle_of
from rulesvc.apikeys import Permission, Principal, same_actor
from rulesvc.lang.tableedit import RowEdit, TableEditError, edit_table
from rulesvc.lifecycle.ports import APPROVED, DRAFT, SUBMITTED, DraftRecord
from rulesvc.lifecycle.service import LifecycleService
from rulesvc.yamlpos import load_yaml, plain

router = APIRouter(route_class=PageRoute, include_in_schema=False)
api_router = APIRouter(include_in_schema=False)

WRITE = require(Permission.RULESETS_WRITE)


def _service(request: Request) -> LifecycleService:
    return lifecycle_of(request).service


def _case_text(service: LifecycleService, draft: DraftRecord) -> str:
    """The draft's own case file: uploaded with the draft, else the one of its base version."""
    if draft.name in draft.cases:
        return draft.cases[draft.name]
    if draft.base_version is not None:
        base = service.queries.version(draft.name, draft.base_version)
        return str(base.cases.get(draft.name, ""))
    return service.shipped_cases.get(draft.name, "")


def _cases(text: str) -> list[dict[str, Any]]:
    """The cases of a case file as plain data, read as the case runner reads them (libyaml, YAML 1.2)."""
    source = load_yaml("cases.yaml", text)[0] if text.strip() else None
    data = plain(source.data) if source is not None else None
    cases = data.get("cases") if isinstance(data, dict) else None
    return [c for c in cases if isinstance(c, dict)] if isinstance(cases, list) else []


# -- the grid editor --------------------------------------------------------------------------------------


@router.get(f"{BASE}/rulesets/{{name}}/edit")
async def edit_page(request: Request, name: str) -> Response:
    principal = await person(request, Permission.RULESETS_WRITE)
    queries = _service(request).queries

    def read() -> dict[str, Any]:
        latest = max(queries.versions(name), key=lambda v: v.version)
        ruleset = queries.factory.ruleset(name, latest.content, latest.version)
        kind = queries.factory.kinds.get(ruleset.kind)
        return {"name": name, "base": latest, "tables": [table_view(t, kind) for t in ruleset.tables]}

    data = await run_in_threadpool(read)
    return render(request, "edit.html", principal, nav="rulesets", title=f"编辑 {name}", **data)


class RowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    cells: dict[str, str] = Field(default_factory=dict)


class TableDraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[RowIn] = Field(max_length=2000)
    reason: str = Field(default="", max_length=2000)
    base_version: int = Field(ge=1)


@api_router.post(f"{BASE}/api/rulesets/{{name}}/tables/{{table_id}}/draft")
async def save_table(
    request: Request, name: str, table_id: str, principal: Principal = Depends(WRITE)
) -> Response:
    body = TableDraftIn.model_validate(await json_body(request))
    service = _service(request)

    def save() -> DraftRecord:
        base = service.queries.version(name, body.base_version)
        rows = [RowEdit(r.id, r.source, r.cells) for r in body.rows]
        content = edit_table(base.content, table_id, rows)
        return service.create_draft(
            principal.actor, name, content, body.reason or "控制台修改决策表", base_version=body.base_version
        )

    try:
        draft = await run_in_threadpool(save)
    except TableEditError as exc:
        raise ApiError(422, exc.code, exc.message) from None
    return JSONBytes(
        {"draft_id": draft.draft_id, "url": f"{BASE}/rulesets/{name}/drafts/{draft.draft_id}"},
        status_code=201,
    )


# -- drafts -----------------------------------------------------------------------------------------------


@router.get(f"{BASE}/drafts")
async def drafts_page(request: Request) -> Response:
    principal = await person(request, Permission.RULESETS_READ)
    queries = _service(request).queries

    def read() -> list[DraftRecord]:
        found = [d for entry in queries.overview() for d in queries.drafts(entry["name"])]
        return sorted(found, key=lambda d: d.updated_at, reverse=True)

    drafts = await run_in_threadpool(read)
    return render(request, "drafts.html", principal, nav="drafts", title="草稿", drafts=drafts)


@router.get(f"{BASE}/rulesets/{{name}}/drafts/{{draft_id}}")
async def draft_page(request: Request, name: str, draft_id: str) -> Response:
    principal = await person(request, Permission.RULESETS_READ)
    service = _service(request)
    queries = service.queries

    def read() -> dict[str, Any]:
        draft = queries.draft(name, draft_id)
        new = queries.factory.ruleset(name, draft.content)
        base = queries.version(name, draft.base_version) if draft.base_version else None
        old = queries.factory.ruleset(name, base.content, base.version) if base else None
        names = [str(c.get("name", "")) for c in _cases(_case_text(service, draft))]
        return {
            "name": name,
            "draft": draft,
            "base": base,
            "tables": ruleset_diff(old, new),
            "diff": queries.draft_diff(draft),
            "cases": case_results(names, draft.tests),
            "is_author": same_actor(draft.author, principal.actor),
            "editable": draft.status == DRAFT,
            "statuses": {"draft": DRAFT, "submitted": SUBMITTED, "approved": APPROVED},
            "replay_window": replay_window(queries.clock.now()),
        }

    data = await run_in_threadpool(read)
    return render(request, "draft.html", principal, nav="drafts", title=f"草稿 {name}", **data)


# -- the case form ----------------------------------------------------------------------------------------


@router.get(f"{BASE}/rulesets/{{name}}/drafts/{{draft_id}}/cases/{{index}}")
async def case_page(request: Request, name: str, draft_id: str, index: int) -> Response:
    """The draft's case `index` in the one case form (`api/console/cases.py`), which returns to the draft."""
    await person(request, Permission.RULESETS_WRITE)
    query = urlencode({"draft": draft_id, "from": "draft"})
    return RedirectResponse(f"{BASE}/cases/{quote(name, safe='')}/{index}?{query}", status_code=303)
