"""Webhook subscriptions and dead letters (role `admin`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import json_body, require
from api.responses import JSONBytes
from api.routes.common import errors
from api.timer_schemas import (
    DELIVERY_ID_PATTERN,
    SUBSCRIPTION_ID_PATTERN,
    DeadLettersQuery,
    DeliveriesOut,
    DeliveriesQuery,
    DeliveryOut,
    RedriveOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionsOut,
    page,
)
from api.timers import timers_runtime
from rulesvc.apikeys import Permission, Principal

router = APIRouter(tags=["webhooks"])
SUBSCRIPTION_ID = Path(
    pattern=SUBSCRIPTION_ID_PATTERN, description="订阅 id（webhook 为 wh_ 开头，通知渠道为 ch_<渠道名>）"
)
DELIVERY_ID = Path(pattern=DELIVERY_ID_PATTERN, description="投递 id（<订阅 id>-<游标>）")
ADMIN = Depends(require(Permission.WEBHOOKS_ADMIN))


def _deliveries_page(records: list[Any], after: int) -> Response:
    return JSONBytes(
        {
            "deliveries": [DeliveryOut.of(r).model_dump(mode="json") for r in records],
            "next_after": page(records, after),
        }
    )


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=SubscriptionOut,
    summary="创建 webhook 订阅",
    description="按工单类型与动作类型过滤；答复中的 `secret` 只出现这一次，用于校验签名。",
    responses=errors(401, 403, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubscriptionIn"}}},
        }
    },
)
async def create_subscription(request: Request, _principal: Principal = ADMIN) -> Response:
    body = SubscriptionIn.model_validate(await json_body(request))
    service = timers_runtime(request).webhooks
    record = await run_in_threadpool(
        lambda: service.create_subscription(
            body.url,
            secret=body.secret,
            kinds=body.kinds,
            action_types=body.action_types,
            description=body.description,
            from_start=body.from_start,
            classes=body.classes,
        )
    )
    return JSONBytes(SubscriptionOut.of(record, with_secret=True).model_dump(mode="json"), status_code=201)


@router.get(
    "/v1/webhooks", response_model=SubscriptionsOut, summary="列出 webhook 订阅", responses=errors(401, 403)
)
async def list_subscriptions(request: Request, _principal: Principal = ADMIN) -> Response:
    records = await run_in_threadpool(timers_runtime(request).webhooks.subscriptions)
    return JSONBytes({"subscriptions": [SubscriptionOut.of(r).model_dump(mode="json") for r in records]})


@router.get(
    "/v1/webhooks/dead-letters",
    response_model=DeliveriesOut,
    summary="死信列表（多次投递失败的动作）",
    responses=errors(401, 403, 422),
)
async def dead_letters(
    request: Request, query: Annotated[DeadLettersQuery, Query()], _principal: Principal = ADMIN
) -> Response:
    service = timers_runtime(request).webhooks
    records = await run_in_threadpool(service.dead_letters, query.subscription_id, query.after, query.limit)
    return _deliveries_page(records, query.after)


@router.post(
    "/v1/webhooks/dead-letters/{delivery_id}/redrive",
    response_model=RedriveOut,
    summary="重新投递一条死信",
    responses=errors(401, 403, 404),
)
async def redrive_one(
    request: Request, delivery_id: str = DELIVERY_ID, _principal: Principal = ADMIN
) -> Response:
    count = await run_in_threadpool(lambda: timers_runtime(request).webhooks.redrive(delivery_id=delivery_id))
    return JSONBytes({"redriven": count})


@router.delete(
    "/v1/webhooks/dead-letters/{delivery_id}",
    status_code=204,
    summary="放弃一条死信（其后同一工单的动作继续投递）",
    responses=errors(401, 403, 404),
)
async def discard(
    request: Request, delivery_id: str = DELIVERY_ID, _principal: Principal = ADMIN
) -> Response:
    await run_in_threadpool(timers_runtime(request).webhooks.discard, delivery_id)
    return Response(status_code=204)


@router.get(
    "/v1/webhooks/{subscription_id}",
    response_model=SubscriptionOut,
    summary="读取订阅",
    responses=errors(401, 403, 404),
)
async def get_subscription(
    request: Request, subscription_id: str = SUBSCRIPTION_ID, _principal: Principal = ADMIN
) -> Response:
    record = await run_in_threadpool(timers_runtime(request).webhooks.subscription, subscription_id)
    return JSONBytes(SubscriptionOut.of(record).model_dump(mode="json"))


@router.patch(
    "/v1/webhooks/{subscription_id}",
    response_model=SubscriptionOut,
    summary="暂停或恢复订阅",
    responses=errors(401, 403, 404, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubscriptionPatch"}}},
        }
    },
)
async def patch_subscription(
    request: Request, subscription_id: str = SUBSCRIPTION_ID, _principal: Principal = ADMIN
) -> Response:
    patch = SubscriptionPatch.model_validate(await json_body(request))
    service = timers_runtime(request).webhooks
    record = await run_in_threadpool(service.set_active, subscription_id, patch.active)
    return JSONBytes(SubscriptionOut.of(record).model_dump(mode="json"))


@router.delete(
    "/v1/webhooks/{subscription_id}", status_code=204, summary="删除订阅", responses=errors(401, 403, 404)
)
async def delete_subscription(
    request: Request, subscription_id: str = SUBSCRIPTION_ID, _principal: Principal = ADMIN
) -> Response:
    await run_in_threadpool(timers_runtime(request).webhooks.delete_subscription, subscription_id)
    return Response(status_code=204)


@router.get(
    "/v1/webhooks/{subscription_id}/deliveries",
    response_model=DeliveriesOut,
    summary="订阅的投递记录",
    responses=errors(401, 403, 404, 422),
)
async def deliveries(
    request: Request,
    query: Annotated[DeliveriesQuery, Query()],
    subscription_id: str = SUBSCRIPTION_ID,
    _principal: Principal = ADMIN,
) -> Response:
    service = timers_runtime(request).webhooks
    await run_in_threadpool(service.subscription, subscription_id)
    records = await run_in_threadpool(
        service.deliveries, subscription_id, query.status, query.after, query.limit
    )
    return _deliveries_page(records, query.after)


@router.post(
    "/v1/webhooks/{subscription_id}/redrive",
    response_model=RedriveOut,
    summary="重新投递该订阅的全部死信",
    responses=errors(401, 403, 404),
)
async def redrive_subscription(
    request: Request, subscription_id: str = SUBSCRIPTION_ID, _principal: Principal = ADMIN
) -> Response:
    service = timers_runtime(request).webhooks
    await run_in_threadpool(service.subscription, subscription_id)
    count = await run_in_threadpool(lambda: service.redrive(subscription_id=subscription_id))
    return JSONBytes({"redriven": count})
