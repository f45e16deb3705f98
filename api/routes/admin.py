"""People administration (role `admin`): users and service accounts, their API keys. A thin layer over
`rulesvc.people.service.PeopleService`; every change is a chain entry naming the acting person."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import json_body, runtime
from api.deps import require as require_permission
from api.people_schemas import (
    CreatedKeyOut,
    KeyIn,
    KeyListOut,
    KeyOut,
    RotatedKeyOut,
    RotateIn,
    UserIn,
    UserListOut,
    UserOut,
    UserPatchIn,
)
from api.responses import JSONBytes
from api.schemas import ErrorOut
from rulesvc.apikeys import Permission, Principal
from rulesvc.people.service import PeopleService

router = APIRouter(tags=["admin"])

ADMIN = require_permission(Permission.PEOPLE_ADMIN)
USER_ID = Path(description="用户或服务账号 id（u_... / s_...）")
KEY_ID = Path(description="密钥 id（列表中的 key_id，不是密钥本身）")

_DESCRIPTIONS = {
    401: "缺少或无效的 API 密钥 / 会话",
    403: "需要 admin 角色",
    404: "用户或密钥不存在",
    409: "登录名已被占用；或管理员试图停用自己",
    413: "请求体过大",
    415: "请求体不是 JSON",
    422: "请求不合法：角色未知、密钥角色超过归属人、密码太短等",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorOut, "description": _DESCRIPTIONS[s]} for s in (401, 403, *statuses)}


def _json_body(model: str, required: bool = True) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }


def install_admin(app: FastAPI) -> None:
    app.include_router(router)


def people(request: Request) -> PeopleService:
    service = runtime(request).people
    assert service is not None
    return service


@router.post(
    "/v1/admin/users",
    status_code=201,
    response_model=UserOut,
    summary="创建用户（或服务账号：kind=service）",
    description="登录名为 `username`，不给则为 `name`（唯一）。密码只保存 argon2id 哈希，从不返回。",
    responses=_errors(409, 413, 415, 422),
    openapi_extra=_json_body("UserIn"),
)
async def create_user(request: Request, principal: Principal = Depends(ADMIN)) -> Response:
    body = UserIn.model_validate(await json_body(request))
    service = people(request)
    if body.kind == "service":
        record = await run_in_threadpool(
            service.create_service, principal.actor, body.name, body.roles, body.owner_id
        )
    else:
        password = body.password.get_secret_value() if body.password is not None else None
        created = await run_in_threadpool(
            lambda: service.create_user(
                principal.actor, body.name, body.roles, username=body.username, password=password
            )
        )
        record = created.user
    return JSONBytes(record.to_json(), status_code=201)


@router.get("/v1/admin/users", response_model=UserListOut, summary="用户和服务账号列表", responses=_errors())
async def list_users(request: Request, _principal: Principal = Depends(ADMIN)) -> dict[str, Any]:
    records = await run_in_threadpool(people(request).principals)
    return {"users": [r.to_json() for r in records]}


@router.get(
    "/v1/admin/users/{user_id}", response_model=UserOut, summary="一个用户或服务账号", responses=_errors(404)
)
async def get_user(
    request: Request, user_id: str = USER_ID, _principal: Principal = Depends(ADMIN)
) -> dict[str, Any]:
    record = await run_in_threadpool(people(request).principal, user_id)
    return record.to_json()


@router.patch(
    "/v1/admin/users/{user_id}",
    response_model=UserOut,
    summary="修改角色或停用/启用",
    description="停用后，其全部密钥和会话立即失效（所有副本）；角色变少时，其密钥只保留仍持有的角色。",
    responses=_errors(404, 409, 413, 415, 422),
    openapi_extra=_json_body("UserPatchIn"),
)
async def update_user(
    request: Request, user_id: str = USER_ID, principal: Principal = Depends(ADMIN)
) -> dict[str, Any]:
    body = UserPatchIn.model_validate(await json_body(request))
    record = await run_in_threadpool(
        lambda: people(request).update(principal.actor, user_id, roles=body.roles, disabled=body.disabled)
    )
    return record.to_json()


@router.post(
    "/v1/admin/users/{user_id}/keys",
    status_code=201,
    response_model=CreatedKeyOut,
    summary="为用户或服务账号创建 API 密钥（密钥只显示这一次）",
    description="角色默认为归属人的全部角色，不能超过归属人的角色。",
    responses=_errors(404, 413, 415, 422),
    openapi_extra=_json_body("KeyIn", required=False),
)
async def create_key(
    request: Request, user_id: str = USER_ID, principal: Principal = Depends(ADMIN)
) -> Response:
    raw = await request.body()
    body = KeyIn.model_validate(await json_body(request) if raw.strip() else {})
    created = await run_in_threadpool(
        lambda: people(request).create_key(principal.actor, user_id, body.roles, body.label)
    )
    return JSONBytes(
        {
            "key_id": created.key_id,
            "key": created.key,
            "roles": sorted(created.roles),
            "user_id": created.owner.principal_id,
        },
        status_code=201,
    )


@router.get(
    "/v1/admin/keys", response_model=KeyListOut, summary="密钥列表（不含密钥本身）", responses=_errors()
)
async def list_keys(request: Request, _principal: Principal = Depends(ADMIN)) -> dict[str, Any]:
    service = people(request)
    views = await run_in_threadpool(service.all_keys)
    now = service.clock.now()
    return {"keys": [v.to_json(now) for v in views]}


@router.post(
    "/v1/admin/keys/{key_id}/rotate",
    status_code=201,
    response_model=RotatedKeyOut,
    summary="轮换密钥：生成新密钥，旧密钥在重叠期内继续有效",
    description=(
        "新密钥与旧密钥归属同一人、角色与用途相同，只显示这一次；旧密钥到 `expires_at`（默认 1 天后）失效，"
        "调用方在此期间切换到新密钥。旧密钥已吊销或已过期时 409 `people.key_inactive`。"
    ),
    responses=_errors(404, 409, 413, 415, 422),
    openapi_extra=_json_body("RotateIn", required=False),
)
async def rotate_key(
    request: Request, key_id: str = KEY_ID, principal: Principal = Depends(ADMIN)
) -> Response:
    raw = await request.body()
    body = RotateIn.model_validate(await json_body(request) if raw.strip() else {})
    service = people(request)
    created, old = await run_in_threadpool(
        service.rotate_key, principal.actor, key_id, timedelta(seconds=body.overlap_seconds)
    )
    return JSONBytes(
        {
            "key_id": created.key_id,
            "key": created.key,
            "roles": sorted(created.roles),
            "user_id": created.owner.principal_id,
            "replaces": old.to_json(service.clock.now()),
        },
        status_code=201,
    )


@router.delete(
    "/v1/admin/keys/{key_id}",
    response_model=KeyOut,
    summary="吊销密钥（所有副本立即生效）",
    responses=_errors(404),
)
async def revoke_key(
    request: Request, key_id: str = KEY_ID, principal: Principal = Depends(ADMIN)
) -> dict[str, Any]:
    service = people(request)
    view = await run_in_threadpool(service.revoke_key, principal.actor, key_id)
    return view.to_json(service.clock.now())
