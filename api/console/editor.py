"""The ruleset text editor of the 编辑 page: the file in a code editor (`codeedit.js`: a textarea with a
line-number gutter and diagnostics markers) checked as you type through `POST /console/api/rulesets/{name}
/check` — the same check as `rulesvc check` and as a draft upload, every error at its line and column —
and saved as a draft through `POST /v1/rulesets/{name}/drafts`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.console.pages import BASE, PageRoute, person, render
from api.deps import json_body, require
from api.responses import JSONBytes
from api.routes.lifecycle_http import lifecycle_of
from rulesvc.apikeys import Permission, Principal

router = APIRouter(route_class=PageRoute, include_in_schema=False)
api_router = APIRouter(include_in_schema=False)

MAX_TEXT = 2_000_000
"""The longest ruleset file the editor checks (characters), as a draft upload's body limit."""


@router.get(f"{BASE}/rulesets/{{name}}/edit/text")
async def text_page(request: Request, name: str) -> Response:
    principal = await person(request, Permission.RULESETS_WRITE)
    queries = lifecycle_of(request).service.queries

    def read() -> dict[str, Any]:
        latest = max(queries.versions(name), key=lambda v: v.version)
        return {"name": name, "base": latest}

    data = await run_in_threadpool(read)
    return render(request, "edit_text.html", principal, nav="rulesets", title=f"编辑 {name}（文本）", **data)


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(max_length=MAX_TEXT)


@api_router.post(f"{BASE}/api/rulesets/{{name}}/check")
async def check_text(
    request: Request, name: str, principal: Principal = Depends(require(Permission.RULESETS_WRITE))
) -> Response:
    """`{content}` → `{ok, content_sha256, diagnostics: [{line, col, code, message, hint}]}`: nothing is
    stored; an empty file is one diagnostic at 1:1."""
    body = CheckIn.model_validate(await json_body(request))
    artifact = lifecycle_of(request).service.artifact
    if not body.content.strip():
        return JSONBytes(
            {
                "ok": False,
                "content_sha256": None,
                "diagnostics": [
                    {"line": 1, "col": 1, "code": "empty", "message": "规则集文件为空", "hint": None}
                ],
            }
        )
    checked_hash, errors = await run_in_threadpool(artifact.check, name, body.content)
    diagnostics = [
        {
            "line": max(e.location.line, 1),
            "col": max(e.location.col, 1),
            "code": e.code,
            "message": e.message,
            "hint": e.hint,
        }
        for e in sorted(errors, key=lambda e: e.sort_key())
    ]
    return JSONBytes(
        {"ok": checked_hash is not None, "content_sha256": checked_hash, "diagnostics": diagnostics}
    )
