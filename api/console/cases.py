"""The 测试用例 page: a ruleset's compliance cases (of its latest version, or of a draft), each run on its own
or all together with pass/fail and expected-vs-actual, and the case form — given events (event type, time,
the ticket's fields from the kind), the clock the case runs to, expected actions or none — written without
YAML, tried before it is saved, and saved into a draft (a new one on the latest version, or the author's own).

Running stores nothing (`LifecycleService.try_cases`); saving goes through `create_draft` / `upload_cases`,
the same use cases as `POST /v1/rulesets/{name}/drafts` and `PUT .../cases`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.console.drafts import _case_text, _cases
from api.console.pages import BASE, PageRoute, person, render
from api.console.views import enum_options
from api.deps import json_body, require
from api.errors import ApiError
from api.responses import JSONBytes
from api.routes.lifecycle_http import lifecycle_of
from api.routes.sheets import sheet_body
from rulesvc.apikeys import Permission, Principal, same_actor
from rulesvc.cases.caseedit import CaseEditError, CaseForm, GivenEvent, form_of, put_case
from rulesvc.cases.runner import CaseResult
from rulesvc.events import TICKET_EVENT_TYPES
from rulesvc.lifecycle.case_trial import CaseTrial
from rulesvc.lifecycle.gate import corpus
from rulesvc.lifecycle.ports import DRAFT, DraftRecord
from rulesvc.lifecycle.service import LifecycleService
from rulesvc.lifecycle.sheets import DraftSheets

router = APIRouter(route_class=PageRoute, include_in_schema=False)
api_router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Source:
    """Where the cases come from: a draft (its text and case file) or the ruleset's latest version."""

    name: str
    content: str
    case_text: str
    base_version: int | None
    draft: DraftRecord | None = None

    @property
    def label(self) -> str:
        if self.draft is not None:
            return f"草稿 {self.draft.draft_id[:8]}（{self.draft.reason or '无说明'}）"
        return f"v{self.base_version}"

    @property
    def query(self) -> str:
        return f"?draft={self.draft.draft_id}" if self.draft is not None else ""


def _service(request: Request) -> LifecycleService:
    return lifecycle_of(request).service


def _source(service: LifecycleService, name: str, draft_id: str | None) -> Source:
    if draft_id:
        draft = service.queries.draft(name, draft_id)
        return Source(name, draft.content, _case_text(service, draft), draft.base_version, draft)
    latest = max(service.queries.versions(name), key=lambda v: v.version)
    text = corpus(service.shipped_cases, [latest]).get(name, "")
    return Source(name, latest.content, text, latest.version)


def _types(service: LifecycleService, source: Source) -> dict[str, str]:
    ruleset = service.queries.factory.ruleset(source.name, source.content)
    kind = service.queries.factory.kinds[ruleset.kind]
    return {field: spec.type for field, spec in kind.specs.items()}


# -- pages ------------------------------------------------------------------------------------------------


@router.get(f"{BASE}/cases")
async def cases_page(request: Request, ruleset: str = "", draft: str = "") -> Response:
    principal = await person(request, Permission.RULESETS_READ)
    service = _service(request)

    def read() -> dict[str, Any]:
        names = [entry["name"] for entry in service.queries.overview()]
        name = ruleset or (names[0] if names else "")
        if not name:
            return {"names": names, "name": "", "source": None, "cases": []}
        source = _source(service, name, draft or None)
        cases = []
        for index, case in enumerate(_cases(source.case_text)):
            form = form_of(case)
            cases.append({"index": index, **form})
        return {"names": names, "name": name, "source": source, "cases": cases}

    data = await run_in_threadpool(read)
    source = data["source"]
    return render(
        request,
        "cases.html",
        principal,
        nav="cases",
        title="测试用例",
        editable=source is not None and _may_edit(principal, source),
        **data,
    )


def _may_edit(principal: Principal, source: Source) -> bool:
    if not principal.may(Permission.RULESETS_WRITE):
        return False
    draft = source.draft
    return draft is None or (draft.status == DRAFT and same_actor(draft.author, principal.actor))


class FormQuery(BaseModel):
    """`?draft=<id>&from=draft`: the case of that draft; `from=draft`: the form returns to the draft's page
    (the draft page's 修改样例) instead of the 测试用例 page."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    draft: str = Field(default="", max_length=64)
    from_: Literal["", "cases", "draft"] = Field(default="", alias="from")


@router.get(f"{BASE}/cases/{{name}}/new")
async def new_case_page(request: Request, name: str, query: Annotated[FormQuery, Query()]) -> Response:
    return await _form_page(request, name, None, query)


@router.get(f"{BASE}/cases/{{name}}/{{index}}")
async def case_form_page(
    request: Request, name: str, index: int, query: Annotated[FormQuery, Query()]
) -> Response:
    return await _form_page(request, name, index, query)


async def _form_page(request: Request, name: str, index: int | None, query: FormQuery) -> Response:
    """The one case form: a new case or case `index` of the latest version's case file or of a draft's."""
    draft_id = query.draft
    principal = await person(request, Permission.RULESETS_WRITE)
    service = _service(request)

    def read() -> dict[str, Any]:
        source = _source(service, name, draft_id or None)
        ruleset = service.queries.factory.ruleset(name, source.content)
        kind = service.queries.factory.kinds[ruleset.kind]
        if index is None:
            form: dict[str, Any] = {
                "name": "",
                "given": [{"type": "ticket.created", "at": "", "ticket": {"kind": kind.kind}}],
                "until": "",
                "expect": [],
                "expect_not": [],
                "expect_none": False,
            }
        else:
            cases = _cases(source.case_text)
            if not 0 <= index < len(cases):
                raise ApiError(404, "case.not_found", f"样例文件中没有第 {index + 1} 个样例")
            form = form_of(cases[index])
        fields = [
            {
                "name": field,
                "type": spec.type,
                "enum": spec.enum or (spec.type if spec.type in kind.enums else None),
                "required": spec.required,
                "options": enum_options(kind, f"ticket.{field}"),
            }
            for field, spec in kind.specs.items()
        ]
        back = f"{BASE}/cases?ruleset={quote(name, safe='')}"
        if source.draft is not None:
            back += f"&draft={source.draft.draft_id}"
            if query.from_ == "draft":
                back = f"{BASE}/rulesets/{quote(name, safe='')}/drafts/{source.draft.draft_id}"
        return {"name": name, "source": source, "index": index, "form": form, "fields": fields, "back": back}

    data = await run_in_threadpool(read)
    title = "新建样例" if index is None else f"修改样例 {data['form']['name']}"
    return render(
        request,
        "caseform.html",
        principal,
        nav="drafts" if query.from_ == "draft" else "cases",
        title=title,
        event_types=TICKET_EVENT_TYPES,
        **data,
    )


# -- running and saving -----------------------------------------------------------------------------------


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(max_length=50)
    at: str = Field(max_length=50)
    ticket: dict[str, str] = Field(default_factory=dict, max_length=500)


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=500)
    given: list[EventIn] = Field(max_length=100)
    until: str = Field(default="", max_length=50)
    expect: list[str] = Field(default_factory=list, max_length=200)
    expect_not: list[str] = Field(default_factory=list, max_length=200)
    expect_none: bool = False

    def form(self) -> CaseForm:
        given = [GivenEvent(e.type, e.at, e.ticket) for e in self.given]
        return CaseForm(self.name, given, self.until, self.expect, self.expect_not, self.expect_none)


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    draft_id: str | None = Field(default=None, max_length=64)
    index: int | None = Field(default=None, ge=0)
    case: CaseIn | None = None
    """A case from the form, tried alone before it is saved (instead of the file's)."""


class SaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    draft_id: str | None = Field(default=None, max_length=64)
    index: int | None = Field(default=None, ge=0)
    """The case replaced; none: the case is added at the end."""
    case: CaseIn
    reason: str = Field(default="", max_length=2000)


def _result_json(index: int, result: CaseResult) -> dict[str, Any]:
    return {
        "index": index,
        "name": result.case.name,
        "passed": result.passed,
        "problems": [
            *result.failures,
            *([f"运行出错：{result.error}"] if result.error else []),
        ],
        "codes": [*result.failure_codes, *([result.error_code] if result.error_code else [])],
        "actual": [observed.describe() for observed in result.observed],
    }


def trial_json(trial: CaseTrial) -> dict[str, Any]:
    results = [_result_json(i, r) for i, r in zip(trial.indexes, trial.results, strict=True)]
    return {
        "total": len(results),
        "passed": sum(1 for r in results if r["passed"]),
        "failed": sum(1 for r in results if not r["passed"]),
        "results": results,
        "errors": [e.to_json() for e in trial.errors],
    }


@api_router.post(f"{BASE}/api/rulesets/{{name}}/cases/run")
async def run_cases(
    request: Request, name: str, principal: Principal = Depends(require(Permission.RULESETS_READ))
) -> Response:
    """`{draft_id?, index?, case?}` → `{total, passed, failed, results: [{index, name, passed, problems,
    actual}], errors}`: one case of the file, every case, or the form's case alone; nothing is stored."""
    body = RunIn.model_validate(await json_body(request))
    service = _service(request)

    def run() -> CaseTrial:
        source = _source(service, name, body.draft_id)
        if body.case is not None:
            text = put_case("", None, body.case.form(), _types(service, source))
            return service.try_cases(name, source.content, text)
        return service.try_cases(name, source.content, source.case_text, body.index)

    try:
        trial = await run_in_threadpool(run)
    except CaseEditError as exc:
        raise ApiError(422, exc.code, exc.message) from None
    answer = trial_json(trial)
    if body.case is not None and body.index is not None:
        for result in answer["results"]:
            result["index"] = body.index
    return JSONBytes(answer)


@api_router.post(f"{BASE}/api/rulesets/{{name}}/cases")
async def save_case(
    request: Request, name: str, principal: Principal = Depends(require(Permission.RULESETS_WRITE))
) -> Response:
    """`{draft_id?, index?, case, reason?}` → `{draft_id, url}`: the case added (or case `index` replaced)
    in the author's draft, or in a new draft on the latest version; every case is run again."""
    body = SaveIn.model_validate(await json_body(request))
    service = _service(request)

    def save() -> DraftRecord:
        source = _source(service, name, body.draft_id)
        text = put_case(source.case_text, body.index, body.case.form(), _types(service, source))
        if source.draft is not None:
            return service.upload_cases(principal.actor, name, source.draft.draft_id, name, text)
        what = "新增" if body.index is None else "修改"
        return service.create_draft(
            principal.actor,
            name,
            source.content,
            body.reason or f"{what}合规样例：{body.case.name.strip()}",
            {name: text},
            base_version=source.base_version,
        )

    try:
        draft = await run_in_threadpool(save)
    except CaseEditError as exc:
        raise ApiError(422, exc.code, exc.message) from None
    return JSONBytes(
        {"draft_id": draft.draft_id, "url": f"{BASE}/cases?ruleset={name}&draft={draft.draft_id}"},
        status_code=201 if body.draft_id is None else 200,
    )


@api_router.post(f"{BASE}/api/rulesets/{{name}}/cases/sheet")
async def upload_sheet(
    request: Request,
    name: str,
    draft_id: str = "",
    filename: str = Query("", max_length=200),
    principal: Principal = Depends(require(Permission.RULESETS_WRITE)),
) -> Response:
    """An XLSX or CSV cases sheet (body; `text/csv` or the XLSX type) → `{draft_id, url}`: the ruleset's case
    file made from it, in the author's draft (`draft_id`, as `PUT /v1/rulesets/{name}/drafts/{id}/cases`)
    or in a new draft on the latest version (201); a sheet with errors is 422 `sheet.invalid`, each error at
    its cell."""
    fmt, data = await sheet_body(request, None)
    sheets = DraftSheets(_service(request))
    file_name = filename or f"{name}-样例.{fmt}"
    if draft_id:
        draft = await run_in_threadpool(sheets.put_cases, principal.actor, name, draft_id, file_name, data)
    else:
        draft = await run_in_threadpool(
            sheets.new_cases_draft, principal.actor, name, file_name, data, f"从表格 {file_name} 导入合规样例"
        )
    return JSONBytes(
        {"draft_id": draft.draft_id, "url": f"{BASE}/cases?ruleset={name}&draft={draft.draft_id}"},
        status_code=200 if draft_id else 201,
    )
