"""Calendar lifecycle routes, mirroring `/v1/rulesets`: versions, drafts through the check and four-eyes
approval, effective-dated publishing (which re-plans the open timers on the calendar), diff and history.
A thin layer over the same `LifecycleService`, given the calendar artifact type."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.responses import JSONBytes
from api.routes.rulesets import (
    DRAFT_ID,
    PUBLISH,
    READ,
    REVIEW,
    WRITE,
    _actor,
    _errors,
    _json_body,
    _optional_json,
    _yaml_body,
    _yaml_text,
    lifecycle_of,
)
from api.ruleset_schemas import AsOfQuery, DiffQuery, DraftListQuery, DraftQuery, PublishIn, ReviewIn
from rulesvc.apikeys import Principal
from rulesvc.lifecycle.ports import KIND_CALENDAR
from rulesvc.lifecycle.service import LifecycleService
from rulesvc.lifecycle.views import draft_json, overview_json, version_json
from rulesvc.sla.coverage import days_left, today_in

router = APIRouter(tags=["calendars"])

__all__ = ["DRAFT_ID", "router"]


def _service(request: Request) -> LifecycleService:
    return lifecycle_of(request).calendars


def _draft(draft: Any, **kwargs: Any) -> dict[str, Any]:
    return draft_json(draft, kind=KIND_CALENDAR, **kwargs)


@router.get(
    "/v1/calendars",
    summary="日历列表：每个日历当前（或 as_of 时刻）生效的版本及官方安排确认到哪天",
    responses=_errors(422),
)
async def list_calendars(
    request: Request, query: Annotated[AsOfQuery, Query()], _principal: Principal = Depends(READ)
) -> Response:
    queries = _service(request).queries
    instant = query.as_of or queries.clock.now()
    entries = await run_in_threadpool(queries.overview, instant)
    calendars = lifecycle_of(request).registry.timeline.at(instant).calendars
    result = []
    for entry in entries:
        item = overview_json(entry)
        calendar = calendars.get(entry["name"])
        if calendar is not None and calendar.confirmed_through is not None:
            item["confirmed_through"] = calendar.confirmed_through.isoformat()
            item["days_left"] = days_left(calendar, today_in(calendar.tz.key, instant))
        result.append(item)
    return JSONBytes({"as_of": instant.isoformat(), "calendars": result})


@router.post(
    "/v1/calendars/{name}/drafts",
    status_code=201,
    summary="上传日历草稿（日历 YAML 文件）",
    description=(
        "校验日历文件（错误带 file:line:col，与 `rulesvc check` 相同），并用草稿日历运行全部合规样例。"
        "`?reason=` 写明修改原因（例如：国务院 2027 年放假安排）。"
    ),
    responses=_errors(404, 409, 413, 415, 422),
    openapi_extra=_yaml_body("日历文件"),
)
async def create_draft(
    name: str,
    request: Request,
    query: Annotated[DraftQuery, Query()],
    principal: Principal = Depends(WRITE),
) -> Response:
    content = await _yaml_text(request)
    service = _service(request)
    actor = await _actor(request, principal)
    draft = await run_in_threadpool(
        lambda: service.create_draft(actor, name, content, query.reason, base_version=query.base_version)
    )
    diff = await run_in_threadpool(service.queries.draft_diff, draft)
    return JSONBytes(_draft(draft, diff=diff), status_code=201)


@router.get("/v1/calendars/{name}/drafts", summary="日历草稿列表", responses=_errors(422))
async def list_drafts(
    name: str,
    request: Request,
    query: Annotated[DraftListQuery, Query()],
    _principal: Principal = Depends(READ),
) -> Response:
    drafts = await run_in_threadpool(_service(request).queries.drafts, name, query.status)
    return JSONBytes({"drafts": [_draft(d) for d in drafts]})


@router.get(
    "/v1/calendars/{name}/drafts/{draft_id}",
    summary="日历草稿详情：逐日差异与测试结果（审批人据此审批）",
    responses=_errors(404, 422),
)
async def get_draft(
    name: str, draft_id: str, request: Request, _principal: Principal = Depends(READ)
) -> Response:
    queries = _service(request).queries
    draft = await run_in_threadpool(queries.draft, name, draft_id)
    diff = await run_in_threadpool(queries.draft_diff, draft)
    return JSONBytes(_draft(draft, diff=diff, content=True))


@router.post(
    "/v1/calendars/{name}/drafts/{draft_id}/submit",
    summary="提交审批",
    responses=_errors(404, 409, 413, 415, 422),
)
async def submit_draft(
    name: str, draft_id: str, request: Request, principal: Principal = Depends(WRITE)
) -> Response:
    draft = await run_in_threadpool(
        _service(request).submit, await _actor(request, principal), name, draft_id
    )
    return JSONBytes(_draft(draft))


async def _review(
    request: Request, principal: Principal, name: str, draft_id: str, *, approve: bool
) -> Response:
    body = ReviewIn.model_validate(await _optional_json(request))
    service = _service(request)
    actor = await _actor(request, principal)
    if approve:
        draft = await run_in_threadpool(service.approve, actor, name, draft_id, body.comment)
    else:
        draft = await run_in_threadpool(service.reject, actor, name, draft_id, body.comment)
    return JSONBytes(_draft(draft))


@router.post(
    "/v1/calendars/{name}/drafts/{draft_id}/approve",
    summary="批准（四眼原则：草稿作者本人返回 403）",
    responses=_errors(404, 409, 413, 415, 422),
    openapi_extra=_json_body("ReviewIn", required=False),
)
async def approve_draft(
    name: str, draft_id: str, request: Request, principal: Principal = Depends(REVIEW)
) -> Response:
    return await _review(request, principal, name, draft_id, approve=True)


@router.post(
    "/v1/calendars/{name}/drafts/{draft_id}/reject",
    summary="驳回（须写明理由；作者本人不能驳回）",
    responses=_errors(404, 409, 413, 415, 422),
    openapi_extra=_json_body("ReviewIn"),
)
async def reject_draft(
    name: str, draft_id: str, request: Request, principal: Principal = Depends(REVIEW)
) -> Response:
    return await _review(request, principal, name, draft_id, approve=False)


@router.post(
    "/v1/calendars/{name}/drafts/{draft_id}/publish",
    summary="发布已批准的日历草稿（可指定未来生效时间）；该日历上未结束的计时器按新版本重新计划",
    description="`effective_at` 默认当前，不能早于当前。",
    responses=_errors(404, 409, 413, 415, 422),
    openapi_extra=_json_body("PublishIn", required=False),
)
async def publish_draft(
    name: str, draft_id: str, request: Request, principal: Principal = Depends(PUBLISH)
) -> Response:
    body = PublishIn.model_validate(await _optional_json(request))
    service = _service(request)
    publication = await run_in_threadpool(
        service.publish, await _actor(request, principal), name, draft_id, body.effective_at
    )
    states = await run_in_threadpool(service.queries.states, name)
    record = publication.version
    return JSONBytes(
        {
            **version_json(record, state=states.get(record.version), kind=KIND_CALENDAR),
            "supersedes": publication.supersedes,
            **publication.effects,
        }
    )


@router.get("/v1/calendars/{name}/versions", summary="日历版本列表", responses=_errors(404))
async def list_versions(name: str, request: Request, _principal: Principal = Depends(READ)) -> Response:
    queries = _service(request).queries
    versions = await run_in_threadpool(queries.versions, name)
    states = await run_in_threadpool(queries.states, name)
    return JSONBytes(
        {
            "calendar": name,
            "versions": [version_json(v, state=states.get(v.version), kind=KIND_CALENDAR) for v in versions],
        }
    )


@router.get(
    "/v1/calendars/{name}/versions/{version}",
    summary="某个日历版本（content 为日历文件内容）",
    responses=_errors(404, 422),
)
async def get_version(
    name: str,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    request: Request,
    _principal: Principal = Depends(READ),
) -> Response:
    queries = _service(request).queries
    record = await run_in_threadpool(queries.version, name, version)
    states = await run_in_threadpool(queries.states, name)
    return JSONBytes(version_json(record, content=True, state=states.get(record.version), kind=KIND_CALENDAR))


@router.get(
    "/v1/calendars/{name}/diff",
    summary="两个日历版本（或草稿）之间的逐日差异（2027-02-07 (sun): 调休上班 added）与文本差异",
    description="`from`/`to` 为版本号（`3` 或 `v3`）或草稿 id；默认 `to` 为最新版本，`from` 为其上一版本或草稿的基础版本。",
    responses=_errors(404, 422),
)
async def diff_versions(
    name: str,
    request: Request,
    query: Annotated[DiffQuery, Query()],
    _principal: Principal = Depends(READ),
) -> Response:
    queries = _service(request).queries
    return JSONBytes(await run_in_threadpool(queries.diff, name, query.from_ref, query.to_ref))


@router.get(
    "/v1/calendars/{name}/history",
    summary="审计历史：该日历每一步（谁、何时、为何、内容哈希）及其哈希链位置",
    responses=_errors(404),
)
async def history(name: str, request: Request, _principal: Principal = Depends(READ)) -> Response:
    entries = await run_in_threadpool(_service(request).queries.history, name)
    return JSONBytes({"calendar": name, "entries": entries})
