"""What the ruleset and calendar lifecycle routes share: permissions, request bodies (YAML files, optional
JSON), OpenAPI documentation of bodies and errors, and the routes both artifacts have in common (drafts,
review, publishing, versions, diff, history), mounted once per artifact with its own Chinese texts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import json_body, require
from api.errors import ApiError
from api.responses import JSONBytes
from api.ruleset_schemas import DiffQuery, DraftListQuery, PublishIn, ReviewIn, SubmitIn
from api.schemas import ErrorOut
from rulesvc.apikeys import Permission, Principal
from rulesvc.lifecycle.service import LifecycleService
from rulesvc.lifecycle.views import draft_json, version_json
from rulesvc.wiring.lifecycle import Lifecycle

READ = require(Permission.RULESETS_READ)
WRITE = require(Permission.RULESETS_WRITE)
REVIEW = require(Permission.RULESETS_REVIEW)
PUBLISH = require(Permission.RULESETS_PUBLISH)
REPLAY = require(Permission.RULESETS_REPLAY)

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
CHANGE_STATUSES = (404, 409, 413, 415, 422)
"""What a route that changes a draft may answer besides 401/403."""
_DESCRIPTIONS = {
    401: "缺少或无效的 API 密钥",
    403: "角色无权访问；或违反四眼原则（作者不能审批自己的草稿）",
    404: "规则集、版本或草稿不存在",
    406: "本机无法生成所请求的文件格式（PDF 需要 WeasyPrint 与 Pango）",
    409: "草稿状态不允许此操作，或草稿已过时（之后又发布了新版本）",
    413: "请求体过大",
    415: "请求体类型不支持",
    422: "请求不合法：规则集错误（file:line:col）、合规样例未通过、时间不合法等",
}


def errors_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route answers (401 and 403 always)."""
    return {s: {"model": ErrorOut, "description": _DESCRIPTIONS[s]} for s in (401, 403, *statuses)}


def json_body_doc(model: str, required: bool = True) -> dict[str, Any]:
    """OpenAPI request body of a JSON model the route parses itself."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }


def yaml_body_doc(description: str, json_model: str | None = None) -> dict[str, Any]:
    """OpenAPI request body of a YAML file (optionally also accepted as a JSON model)."""
    content: dict[str, Any] = {"application/yaml": {"schema": {"type": "string"}}}
    if json_model is not None:
        content["application/json"] = {"schema": {"$ref": f"#/components/schemas/{json_model}"}}
    return {"requestBody": {"required": True, "description": description, "content": content}}


def lifecycle_of(request: Request) -> Lifecycle:
    lifecycle: Lifecycle = request.app.state.lifecycle
    return lifecycle


def media_of(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


async def yaml_text(request: Request) -> str:
    """The request body as a YAML file's text: 415 for another media type, 422 for non-UTF-8 or empty."""
    if media_of(request) not in YAML_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            "请求体必须是 YAML 文件（Content-Type: application/yaml）",
            {"content_type": request.headers.get("content-type", "")},
        )
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(422, "invalid_encoding", "请求体不是合法的 UTF-8", {"position": exc.start}) from None
    if not text.strip():
        raise ApiError(
            422,
            "invalid_request",
            "请求体为空",
            [{"path": "", "code": "validation.missing", "message": "缺少请求体"}],
        )
    return text


async def optional_json(request: Request) -> Any:
    """An optional JSON body: none (or empty) → {}."""
    if not (await request.body()).strip():
        return {}
    return await json_body(request)


@dataclass(frozen=True)
class LifecycleRoutes:
    """One artifact's common routes: where they live, which service answers, and what they say.

    `summaries` has an entry per route (list_drafts, get_draft, submit, approve, reject, publish, versions,
    version, diff, history); `descriptions` and `models` (response models) are optional per route."""

    base: str
    kind: str
    service: Callable[[Request], LifecycleService]
    summaries: Mapping[str, str]
    descriptions: Mapping[str, str] = field(default_factory=dict)
    models: Mapping[str, Any] = field(default_factory=dict)


def mount_lifecycle_routes(router: APIRouter, spec: LifecycleRoutes) -> None:
    """Add the routes every lifecycle artifact has to `router` (four-eyes and the state machine are the
    lifecycle service's; these only carry HTTP)."""
    kind = spec.kind

    def route(method: str, name: str, path: str, *statuses: int, **extra: Any) -> Callable[[Any], Any]:
        return router.api_route(
            spec.base + path,
            methods=[method],
            name=f"{kind}_{name}",
            response_model=spec.models.get(name),
            summary=spec.summaries[name],
            description=spec.descriptions.get(name),
            responses=errors_doc(*statuses),
            **extra,
        )

    def draft(record: Any, **kwargs: Any) -> dict[str, Any]:
        return draft_json(record, kind=kind, **kwargs)

    @route("GET", "list_drafts", "/{name}/drafts", 422)
    async def list_drafts(
        name: str,
        request: Request,
        query: Annotated[DraftListQuery, Query()],
        _principal: Principal = Depends(READ),
    ) -> Response:
        drafts = await run_in_threadpool(spec.service(request).queries.drafts, name, query.status)
        return JSONBytes({"drafts": [draft(d) for d in drafts]})

    @route("GET", "get_draft", "/{name}/drafts/{draft_id}", 404, 422)
    async def get_draft(
        name: str, draft_id: str, request: Request, _principal: Principal = Depends(READ)
    ) -> Response:
        queries = spec.service(request).queries
        record = await run_in_threadpool(queries.draft, name, draft_id)
        diff = await run_in_threadpool(queries.draft_diff, record)
        return JSONBytes(draft(record, diff=diff, content=True))

    @route(
        "POST",
        "submit",
        "/{name}/drafts/{draft_id}/submit",
        *CHANGE_STATUSES,
        openapi_extra=json_body_doc("SubmitIn", required=False),
    )
    async def submit_draft(
        name: str, draft_id: str, request: Request, principal: Principal = Depends(WRITE)
    ) -> Response:
        body = SubmitIn.model_validate(await optional_json(request))
        record = await run_in_threadpool(
            spec.service(request).submit, principal.actor, name, draft_id, body.gaps_reason
        )
        return JSONBytes(draft(record))

    async def review(
        request: Request, principal: Principal, name: str, draft_id: str, approve: bool
    ) -> Response:
        body = ReviewIn.model_validate(await optional_json(request))
        service = spec.service(request)
        if approve:
            record = await run_in_threadpool(
                service.approve, principal.actor, name, draft_id, body.comment, body.accept_gaps
            )
        else:
            record = await run_in_threadpool(service.reject, principal.actor, name, draft_id, body.comment)
        return JSONBytes(draft(record))

    @route(
        "POST",
        "approve",
        "/{name}/drafts/{draft_id}/approve",
        *CHANGE_STATUSES,
        openapi_extra=json_body_doc("ReviewIn", required=False),
    )
    async def approve_draft(
        name: str, draft_id: str, request: Request, principal: Principal = Depends(REVIEW)
    ) -> Response:
        return await review(request, principal, name, draft_id, approve=True)

    @route(
        "POST",
        "reject",
        "/{name}/drafts/{draft_id}/reject",
        *CHANGE_STATUSES,
        openapi_extra=json_body_doc("ReviewIn"),
    )
    async def reject_draft(
        name: str, draft_id: str, request: Request, principal: Principal = Depends(REVIEW)
    ) -> Response:
        return await review(request, principal, name, draft_id, approve=False)

    @route(
        "POST",
        "publish",
        "/{name}/drafts/{draft_id}/publish",
        *CHANGE_STATUSES,
        openapi_extra=json_body_doc("PublishIn", required=False),
    )
    async def publish_draft(
        name: str, draft_id: str, request: Request, principal: Principal = Depends(PUBLISH)
    ) -> Response:
        body = PublishIn.model_validate(await optional_json(request))
        service = spec.service(request)
        publication = await run_in_threadpool(
            service.publish, principal.actor, name, draft_id, body.effective_at
        )
        states = await run_in_threadpool(service.queries.states, name)
        record = publication.version
        return JSONBytes(
            {
                **version_json(record, state=states.get(record.version), kind=kind),
                "supersedes": publication.supersedes,
                **publication.effects,
            }
        )

    @route("GET", "versions", "/{name}/versions", 404)
    async def list_versions(name: str, request: Request, _principal: Principal = Depends(READ)) -> Response:
        queries = spec.service(request).queries
        versions = await run_in_threadpool(queries.versions, name)
        states = await run_in_threadpool(queries.states, name)
        return JSONBytes(
            {
                kind: name,
                "versions": [version_json(v, state=states.get(v.version), kind=kind) for v in versions],
            }
        )

    @route("GET", "version", "/{name}/versions/{version}", 404, 422)
    async def get_version(
        name: str,
        version: Annotated[int, Path(ge=1, le=1_000_000)],
        request: Request,
        _principal: Principal = Depends(READ),
    ) -> Response:
        queries = spec.service(request).queries
        record = await run_in_threadpool(queries.version, name, version)
        states = await run_in_threadpool(queries.states, name)
        return JSONBytes(version_json(record, content=True, state=states.get(record.version), kind=kind))

    @route("GET", "diff", "/{name}/diff", 404, 422)
    async def diff_versions(
        name: str,
        request: Request,
        query: Annotated[DiffQuery, Query()],
        _principal: Principal = Depends(READ),
    ) -> Response:
        queries = spec.service(request).queries
        return JSONBytes(await run_in_threadpool(queries.diff, name, query.from_ref, query.to_ref))

    @route("GET", "history", "/{name}/history", 404)
    async def history(name: str, request: Request, _principal: Principal = Depends(READ)) -> Response:
        entries = await run_in_threadpool(spec.service(request).queries.history, name)
        return JSONBytes({kind: name, "entries": entries})
