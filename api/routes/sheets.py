"""Decision tables and compliance cases as XLSX/CSV files on the ruleset routes: download from the version in
force (or `?version=`) or a draft, upload into a draft (never published from here: the draft is submitted,
approved and published as any other). A sheet with errors is a 422 `sheet.invalid` whose `details` list
each error at its cell (`file.xlsx!Sheet!C7`) with its `sheet.*` code. A thin layer over
`rulesvc.lifecycle.sheets.DraftSheets`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.errors import ApiError
from api.report_files import XLSX_TYPE, attachment
from api.responses import JSONBytes
from api.routes.lifecycle_http import (
    CHANGE_STATUSES,
    READ,
    WRITE,
    errors_doc,
    lifecycle_of,
    media_of,
)
from api.ruleset_schemas import DraftOut, DraftSheetQuery, SheetFormat, SheetQuery, SheetUploadQuery
from rulesvc.apikeys import Principal
from rulesvc.lifecycle.ports import DraftRecord
from rulesvc.lifecycle.sheets import DraftSheets, SheetFile
from rulesvc.lifecycle.views import draft_json

router = APIRouter(tags=["rulesets"])

SHEET_MEDIA: dict[str, SheetFormat] = {XLSX_TYPE: "xlsx", "text/csv": "csv", "application/csv": "csv"}
FILE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX_TYPE: {}, "text/csv": {}}, "description": "XLSX 或 CSV（UTF-8 带 BOM）文件"}
}


def _sheet_body_doc(what: str, *, yaml: bool = False) -> dict[str, object]:
    text = {"schema": {"type": "string"}}
    content = {XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}, "text/csv": text}
    if yaml:
        content["application/yaml"] = text
    return {"requestBody": {"required": True, "description": what, "content": content}}


def cases_body_doc() -> dict[str, object]:
    """The case upload's body: a YAML case file, or a cases sheet."""
    return _sheet_body_doc("合规样例文件（YAML），或合规样例表格（XLSX/CSV）", yaml=True)


def _sheets(request: Request) -> DraftSheets:
    return DraftSheets(lifecycle_of(request).service)


def download(sheet: SheetFile, fmt: SheetFormat) -> Response:
    ascii_name = "".join(c if c.isascii() and c not in '"\\;' else "_" for c in sheet.file_name)
    return attachment(sheet.data, fmt, ascii_name, sheet.file_name)


async def sheet_body(request: Request, fmt: SheetFormat | None) -> tuple[SheetFormat, bytes]:
    """The uploaded sheet and its format (`?format=`, else the Content-Type): 415 for another type, 422 empty."""
    chosen = fmt or SHEET_MEDIA.get(media_of(request))
    if chosen is None:
        raise ApiError(
            415,
            "unsupported_media_type",
            "请求体须是 Excel 表格（Content-Type: "
            + XLSX_TYPE
            + "）或 CSV（text/csv），或用 ?format=xlsx|csv 指明",
            {"content_type": request.headers.get("content-type", "")},
        )
    data = await request.body()
    if not data.strip():
        raise ApiError(
            422,
            "invalid_request",
            "请求体为空",
            [{"path": "", "code": "validation.missing", "message": "缺少请求体"}],
        )
    return chosen, data


async def _upload(
    request: Request,
    fmt: SheetFormat | None,
    name: str,
    change: Callable[[DraftSheets, str, bytes], DraftRecord],
    status_code: int = 200,
) -> Response:
    """The uploaded sheet into a draft, answered as the draft routes answer (the draft with its diff);
    `name` is the file's name in errors (the format's extension added unless it has it)."""
    chosen, data = await sheet_body(request, fmt)
    suffix = (".xlsx", ".xlsm") if chosen == "xlsx" else (".csv",)
    file_name = name if name.lower().endswith(suffix) else f"{name}.{chosen}"  # the format reads it
    sheets = _sheets(request)
    record = await run_in_threadpool(change, sheets, file_name, data)
    diff = await run_in_threadpool(sheets.queries.draft_diff, record)
    return JSONBytes(draft_json(record, diff=diff), status_code=status_code)


# -- downloads --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """Where a downloaded sheet is read from: a version (None: the one in force) or a draft."""

    fmt: SheetFormat
    version: int | None = None
    draft_id: str | None = None

    def what(self) -> dict[str, Any]:
        """The format and source as `DraftSheets.table_sheet` and `cases_sheet` take them."""
        return {"fmt": self.fmt, "version": self.version, "draft_id": self.draft_id}


def _in_force(query: Annotated[SheetQuery, Query()]) -> _Source:
    return _Source(query.format, version=query.version)


def _in_draft(draft_id: str, query: Annotated[DraftSheetQuery, Query()]) -> _Source:
    return _Source(query.format, draft_id=draft_id)


async def _download(request: Request, source: _Source, make: Callable[[DraftSheets], SheetFile]) -> Response:
    sheets = _sheets(request)
    return download(await run_in_threadpool(make, sheets), source.fmt)


@dataclass(frozen=True)
class _Downloads:
    """The table and cases downloads from one source: its path prefix, how its query reads, and what the
    routes say (`name` prefixes the routes' names, so their OpenAPI operation ids)."""

    prefix: str
    source: Callable[..., _Source]
    name: str
    table_summary: str
    cases_summary: str
    table_description: str | None = None
    cases_description: str | None = None


_VERSION = "`?version=` 取某个版本。"
DOWNLOADS = (
    _Downloads(
        "/v1/rulesets/{name}",
        _in_force,
        "",
        "下载规则表（XLSX 或 CSV），默认当前生效的版本",
        "下载合规样例（XLSX 或 CSV，每行一个事件），默认当前生效的版本",
        _VERSION + "表格格式与 `rulesvc tables export` 相同；改好后上传到草稿。",
        _VERSION + "表格格式与 `rulesvc cases export` 相同；改好后上传到草稿的 cases。",
    ),
    _Downloads(
        "/v1/rulesets/{name}/drafts/{draft_id}",
        _in_draft,
        "draft_",
        "下载草稿中的规则表（XLSX 或 CSV）",
        "下载草稿的合规样例（XLSX 或 CSV）",
    ),
)


def _mount_downloads(spec: _Downloads) -> None:
    def route(path: str, name: str, summary: str, description: str | None) -> Callable[[Any], Any]:
        return router.get(
            spec.prefix + path,
            name=spec.name + name,
            summary=summary,
            description=description,
            responses={**FILE_DOC, **errors_doc(404, 422)},
        )

    @route("/tables/{table_id}", "table_file", spec.table_summary, spec.table_description)
    async def table_file(
        name: str,
        table_id: str,
        request: Request,
        source: _Source = Depends(spec.source),
        _principal: Principal = Depends(READ),
    ) -> Response:
        return await _download(request, source, lambda s: s.table_sheet(name, table_id, **source.what()))

    @route("/cases", "cases_file", spec.cases_summary, spec.cases_description)
    async def cases_file(
        name: str,
        request: Request,
        source: _Source = Depends(spec.source),
        _principal: Principal = Depends(READ),
    ) -> Response:
        return await _download(request, source, lambda s: s.cases_sheet(name, **source.what()))


for _spec in DOWNLOADS:
    _mount_downloads(_spec)


# -- uploads ----------------------------------------------------------------------------------------------


@router.put(
    "/v1/rulesets/{name}/drafts/{draft_id}/tables/{table_id}",
    response_model=DraftOut,
    summary="上传表格替换草稿中的规则表（行、默认行、命中策略、汇总）并重新测试",
    description=(
        "只有草稿作者、草稿状态为 draft 时可以上传；不会发布。表格有错误时返回 422 `sheet.invalid`，"
        "`details` 逐格列出（`文件.xlsx!工作表!E5`，`sheet.*` 错误码）。`?filename=` 为错误中显示的文件名。"
    ),
    responses=errors_doc(*CHANGE_STATUSES),
    openapi_extra=_sheet_body_doc("规则表（rulesvc tables export 或下载得到的表格）"),
)
async def put_draft_table(
    name: str,
    draft_id: str,
    table_id: str,
    request: Request,
    query: Annotated[SheetUploadQuery, Query()],
    principal: Principal = Depends(WRITE),
) -> Response:
    actor = principal.actor
    return await _upload(
        request,
        query.format,
        query.filename or table_id,
        lambda s, file, data: s.put_table(actor, name, draft_id, table_id, file, data),
    )


@router.post(
    "/v1/rulesets/{name}/tables/{table_id}",
    status_code=201,
    response_model=DraftOut,
    summary="上传表格，以最新版本为基础新建草稿（替换其中的规则表）",
    description="与上传到已有草稿相同的检查；`?reason=` 写明修改原因。新草稿照常测试、提交、审批、发布。",
    responses=errors_doc(*CHANGE_STATUSES),
    openapi_extra=_sheet_body_doc("规则表（rulesvc tables export 或下载得到的表格）"),
)
async def post_table_draft(
    name: str,
    table_id: str,
    request: Request,
    query: Annotated[SheetUploadQuery, Query()],
    principal: Principal = Depends(WRITE),
) -> Response:
    actor, reason = principal.actor, query.reason
    return await _upload(
        request,
        query.format,
        query.filename or table_id,
        lambda s, file, data: s.new_table_draft(actor, name, table_id, file, data, reason),
        status_code=201,
    )


async def put_cases_sheet(
    request: Request,
    principal: Principal,
    name: str,
    draft_id: str,
    fmt: SheetFormat | None,
    filename: str | None,
) -> Response:
    """`PUT .../drafts/{draft_id}/cases` with a sheet body (the route itself is in `rulesets`)."""
    actor = principal.actor
    return await _upload(
        request,
        fmt,
        filename or f"{name}-样例",
        lambda s, file, data: s.put_cases(actor, name, draft_id, file, data),
    )
