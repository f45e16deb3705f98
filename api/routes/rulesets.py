"""Ruleset lifecycle routes: versions, drafts through test gate and four-eyes approval, publishing,
rollback, diff, history, backtest, import/export. A thin layer over `rulesvc.lifecycle.LifecycleService`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import json_body, require
from api.report_files import EVIDENCE_RESPONSES, evidence_response
from api.responses import JSONBytes
from api.routes.lifecycle_http import (
    CHANGE_STATUSES,
    READ,
    REPLAY,
    WRITE,
    LifecycleRoutes,
    errors_doc,
    json_body_doc,
    lifecycle_of,
    media_of,
    mount_lifecycle_routes,
    yaml_body_doc,
    yaml_text,
)
from api.routes.sheets import SHEET_MEDIA, cases_body_doc, put_cases_sheet
from api.ruleset_schemas import (
    AsOfQuery,
    CasesQuery,
    DiffOut,
    DraftIn,
    DraftListOut,
    DraftOut,
    DraftQuery,
    EvidenceQuery,
    ExportOut,
    HistoryOut,
    ImportIn,
    ImportOut,
    PublishIn,
    PublishOut,
    ReplayIn,
    ReviewIn,
    RollbackIn,
    RulesetListOut,
    RulesetVerifyOut,
    SubmitIn,
    VersionListOut,
    VersionOut,
)
from rulesvc.apikeys import Permission, Principal, Role
from rulesvc.lifecycle.ports import KIND_RULESET
from rulesvc.lifecycle.queries import RulesetQueries
from rulesvc.lifecycle.service import LifecycleService
from rulesvc.lifecycle.views import draft_json, overview_json, version_json

router = APIRouter(tags=["rulesets"])

BODY_MODELS: list[type[BaseModel]] = [DraftIn, ReviewIn, SubmitIn, PublishIn, RollbackIn, ReplayIn, ImportIn]
"""Models of bodies the routes parse themselves: added to the OpenAPI components by the app."""


def _service(request: Request) -> LifecycleService:
    return lifecycle_of(request).service


def _queries(request: Request) -> RulesetQueries:
    return lifecycle_of(request).service.queries


def _as_of(request: Request, query: AsOfQuery) -> tuple[RulesetQueries, datetime]:
    """The queries and the instant they answer for: `?as_of=`, or now."""
    queries = _queries(request)
    return queries, query.as_of or queries.clock.now()


# -- rulesets ---------------------------------------------------------------------------------------------


@router.get(
    "/v1/rulesets",
    response_model=RulesetListOut,
    summary="规则集列表：每个规则集当前（或 as_of 时刻）生效的版本",
    description="`as_of` 可查询任一时刻生效的版本（监管问询：某天哪个规则在生效）；`pending` 为已发布但尚未生效的版本。",
    responses=errors_doc(422),
)
async def list_rulesets(
    request: Request,
    query: Annotated[AsOfQuery, Query()],
    _principal: Principal = Depends(READ),
) -> Response:
    queries, instant = _as_of(request, query)
    entries = await run_in_threadpool(queries.overview, instant)
    return JSONBytes({"as_of": instant.isoformat(), "rulesets": [overview_json(e) for e in entries]})


@router.post(
    "/v1/rulesets/import",
    response_model=ImportOut,
    summary="导入规则集文件夹",
    description=(
        "数据库为空时（需 admin）：每个规则集成为版本 1。否则与最新版本不同的规则集各生成一个草稿，照常测试、审批、发布。"
    ),
    responses=errors_doc(413, 415, 422),
    openapi_extra=json_body_doc("ImportIn"),
)
async def import_rulesets(request: Request, principal: Principal = Depends(WRITE)) -> Response:
    body = ImportIn.model_validate(await json_body(request))
    queries = _queries(request)
    result = await run_in_threadpool(
        _service(request).import_rulesets,
        principal.actor,
        body.rulesets,
        body.cases,
        may_bootstrap=Role.ADMIN in principal.roles,
        base_versions=body.base_versions,
    )
    return JSONBytes(
        {
            "imported": [
                version_json(v, state=(await run_in_threadpool(queries.states, v.name)).get(v.version))
                for v in result.imported
            ],
            "drafts": [draft_json(d) for d in result.drafts],
            "unchanged": result.unchanged,
        }
    )


@router.get(
    "/v1/rulesets/export",
    response_model=ExportOut,
    summary="导出生效版本及其样例（写回规则文件夹，GitOps）",
    description=(
        "默认导出当前生效的版本；`as_of` 为将来时刻时导出届时生效的（待生效）版本。每个规则集注明所基于的版本、状态、"
        "最新版本号和之后待生效的版本；推送草稿时带上 `base_version`，不是最新版本则拒绝（409 `draft.stale_base`）。"
    ),
    responses=errors_doc(422),
)
async def export_rulesets(
    request: Request,
    query: Annotated[AsOfQuery, Query()],
    _principal: Principal = Depends(READ),
) -> Response:
    queries, instant = _as_of(request, query)
    return JSONBytes(await run_in_threadpool(queries.export, instant))


@router.get(
    "/v1/rulesets/verify",
    response_model=RulesetVerifyOut,
    summary="校验每个已发布版本的内容与审计链中审批时的哈希一致",
    description="发现直接改库（改动、增加或替换版本内容/样例）的版本；审计链本身由 `/v1/audit/verify` 校验。",
    responses=errors_doc(),
)
async def verify_versions(
    request: Request, _principal: Principal = Depends(require(Permission.AUDIT_VERIFY))
) -> Response:
    return JSONBytes(await run_in_threadpool(_queries(request).verify))


# -- drafts -----------------------------------------------------------------------------------------------


@router.post(
    "/v1/rulesets/{name}/drafts",
    status_code=201,
    response_model=DraftOut,
    summary="上传草稿（规则集 YAML 文件）",
    description=(
        "校验规则集（错误与 `rulesvc check` 相同，带 file:line:col）并运行全部合规样例（内置 + 上传）。"
        "请求体为 YAML 文件（`?reason=` 写明修改原因），或 JSON `{content, reason, cases}`。"
    ),
    responses=errors_doc(*CHANGE_STATUSES),
    openapi_extra=yaml_body_doc("规则集文件", "DraftIn"),
)
async def create_draft(
    name: str,
    request: Request,
    query: Annotated[DraftQuery, Query()],
    principal: Principal = Depends(WRITE),
) -> Response:
    cases: dict[str, str] = {}
    reason = query.reason
    if media_of(request) == "application/json":
        body = DraftIn.model_validate(await json_body(request))
        content, reason, cases = body.content, body.reason or reason, body.cases
        base_version, base_sha256 = body.base_version, body.base_sha256
    else:
        content = await yaml_text(request)
        base_version, base_sha256 = query.base_version, None
    service = _service(request)
    actor = principal.actor
    draft = await run_in_threadpool(
        lambda: service.create_draft(
            actor, name, content, reason, cases, base_version=base_version, base_sha256=base_sha256
        )
    )
    diff = await run_in_threadpool(service.queries.draft_diff, draft)
    return JSONBytes(draft_json(draft, diff=diff), status_code=201)


@router.put(
    "/v1/rulesets/{name}/drafts/{draft_id}/cases",
    response_model=DraftOut,
    summary="为草稿上传合规样例文件（YAML，或 XLSX/CSV 表格）并重新测试",
    description=(
        "默认替换 `cases/<name>.yaml`；`?file=` 指定其他样例文件（不含 .yaml）。只有草稿作者可以上传。"
        "请求体也可以是合规样例表格（`rulesvc cases export` 或下载得到的 XLSX/CSV，按 Content-Type 或 "
        "`?format=xlsx|csv`）：未改动的样例保留原文与注释；表格有错误时返回 422 `sheet.invalid`，`details` 逐格列出。"
    ),
    responses=errors_doc(*CHANGE_STATUSES),
    openapi_extra=cases_body_doc(),
)
async def upload_cases(
    name: str,
    draft_id: str,
    request: Request,
    query: Annotated[CasesQuery, Query()],
    principal: Principal = Depends(WRITE),
) -> Response:
    fmt = query.format or SHEET_MEDIA.get(media_of(request))
    if fmt == "xlsx" or fmt == "csv":
        return await put_cases_sheet(request, principal, name, draft_id, fmt, query.filename)
    text = await yaml_text(request)
    service = _service(request)
    draft = await run_in_threadpool(service.upload_cases, principal.actor, name, draft_id, query.file, text)
    diff = await run_in_threadpool(service.queries.draft_diff, draft)
    return JSONBytes(draft_json(draft, diff=diff))


@router.post(
    "/v1/rulesets/{name}/drafts/{draft_id}/withdraw",
    response_model=DraftOut,
    summary="撤回已提交的草稿，回到编辑状态（作者本人）",
    description="提交后证据（测试、覆盖率、回放）冻结；要重新回放或修改样例，须先撤回，再重新提交。",
    responses=errors_doc(404, 409),
)
async def withdraw_draft(
    name: str, draft_id: str, request: Request, principal: Principal = Depends(WRITE)
) -> Response:
    draft = await run_in_threadpool(_service(request).withdraw, principal.actor, name, draft_id)
    return JSONBytes(draft_json(draft))


@router.post(
    "/v1/rulesets/{name}/drafts/{draft_id}/replay",
    response_model=DraftOut,
    summary="回放：用草稿重新判定某时段已记录的决策，统计结果变化（示例已脱敏）",
    responses=errors_doc(*CHANGE_STATUSES),
    openapi_extra=json_body_doc("ReplayIn"),
)
async def replay_draft(
    name: str, draft_id: str, request: Request, principal: Principal = Depends(REPLAY)
) -> Response:
    body = ReplayIn.model_validate(await json_body(request))
    service = _service(request)
    draft = await run_in_threadpool(
        service.replay, principal.actor, name, draft_id, body.start, body.end, body.limit
    )
    return JSONBytes(draft_json(draft))


# -- evidence files ---------------------------------------------------------------------------------------

_EVIDENCE_TEXT = (
    "重新运行全部合规样例，生成可归档的证据文件：规则集版本与内容哈希、审计链位置、作者与审批人、每个样例的结果"
    "（失败时期望与实际）、规则覆盖率、生成时间（北京时间）与报告摘要（SHA-256，`rulesvc report verify` 校验）。"
    "与 `rulesvc test --report` 同一渲染。"
)


@router.get(
    "/v1/rulesets/{name}/drafts/{draft_id}/report",
    summary="草稿的合规测试证据文件（HTML、XLSX 或 PDF）",
    description=_EVIDENCE_TEXT + "草稿与其他规则集的现行版本一起运行。",
    responses={**errors_doc(404, 406, 422), **EVIDENCE_RESPONSES},
    response_class=Response,
)
async def draft_report(
    name: str,
    draft_id: str,
    request: Request,
    query: Annotated[EvidenceQuery, Query()],
    _principal: Principal = Depends(READ),
) -> Response:
    service = _service(request)
    evidence = await run_in_threadpool(lambda: service.evidence(name, draft_id=draft_id))
    stem = f"evidence-{name}-draft-{draft_id[:8]}"
    return await run_in_threadpool(evidence_response, evidence, query.format, stem)


@router.get(
    "/v1/rulesets/{name}/versions/{version}/report",
    summary="已发布版本的合规测试证据文件（HTML、XLSX 或 PDF）",
    description=_EVIDENCE_TEXT + "该版本与其生效时其他规则集的版本一起运行。",
    responses={**errors_doc(404, 406, 422), **EVIDENCE_RESPONSES},
    response_class=Response,
)
async def version_report(
    name: str,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    request: Request,
    query: Annotated[EvidenceQuery, Query()],
    _principal: Principal = Depends(READ),
) -> Response:
    service = _service(request)
    evidence = await run_in_threadpool(lambda: service.evidence(name, version=version))
    return await run_in_threadpool(evidence_response, evidence, query.format, f"evidence-{name}-v{version}")


# -- versions ---------------------------------------------------------------------------------------------


@router.post(
    "/v1/rulesets/{name}/rollback",
    status_code=201,
    response_model=DraftOut,
    summary="回滚：以旧版本内容生成新草稿，并按同样流程审批、发布",
    description="样例全部通过时草稿直接进入 submitted 状态，等待另一人审批。",
    responses=errors_doc(*CHANGE_STATUSES),
    openapi_extra=json_body_doc("RollbackIn"),
)
async def rollback(name: str, request: Request, principal: Principal = Depends(WRITE)) -> Response:
    body = RollbackIn.model_validate(await json_body(request))
    service = _service(request)
    draft = await run_in_threadpool(service.rollback, principal.actor, name, body.to_version, body.reason)
    diff = await run_in_threadpool(service.queries.draft_diff, draft)
    return JSONBytes(draft_json(draft, diff=diff), status_code=201)


mount_lifecycle_routes(
    router,
    LifecycleRoutes(
        base="/v1/rulesets",
        kind=KIND_RULESET,
        service=_service,
        summaries={
            "list_drafts": "草稿列表",
            "get_draft": "草稿详情：差异、测试结果、回放结果（审批人据此审批）",
            "submit": "提交审批（全部合规样例通过才可提交；测试缺口须写明理由）",
            "approve": "批准（四眼原则：作者本人即使持有 approver 角色也返回 403；有测试缺口须 accept_gaps）",
            "reject": "驳回（须写明理由；作者本人不能驳回自己的草稿）",
            "publish": "发布已批准的草稿为新版本（可指定未来生效时间）",
            "versions": "版本列表（作者、审批人、原因、创建/审批/生效时间、内容哈希）",
            "version": "某个版本（含规则集文件内容与样例文件）",
            "diff": "两个版本（或草稿）之间的差异：结构化（阈值 旧 → 新）与文本",
            "history": "审计历史：该规则集每一步（谁、做了什么、何时、为何、内容哈希）及其哈希链位置",
        },
        descriptions={
            "submit": (
                "重新运行全部合规样例（所有规则集，现行版本及每个待生效版本组合）；有失败时返回 422 `cases_failed`，"
                "`details.failures` 列出失败样例及期望/实际。覆盖率不足 100% 或删除了唯一覆盖某行/阈值的样例时，"
                "须在 `gaps_reason` 写明理由（否则 422 `gate.gaps_unexplained`）。提交后测试、覆盖率与回放结果冻结。"
            ),
            "publish": "`effective_at` 默认当前；不能早于当前。发布后 1 秒内在所有副本生效；未来时间到点自动生效。",
            "diff": (
                "`from`/`to` 为版本号（`3` 或 `v3`）或草稿 id。默认 `to` 为最新版本，"
                "`from` 为草稿的基础版本或 `to` 的上一版本。"
            ),
        },
        models={
            "list_drafts": DraftListOut,
            "get_draft": DraftOut,
            "submit": DraftOut,
            "approve": DraftOut,
            "reject": DraftOut,
            "publish": PublishOut,
            "versions": VersionListOut,
            "version": VersionOut,
            "diff": DiffOut,
            "history": HistoryOut,
        },
    ),
)
