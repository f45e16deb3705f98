"""OpenAPI response declarations shared by the routers."""

from __future__ import annotations

from typing import Any

from api.schemas import ErrorOut

_DESCRIPTIONS = {
    401: "缺少或无效的 API 密钥",
    403: "角色无权访问",
    404: "不存在",
    409: "event_id 已用于不同内容的事件",
    413: "请求体过大",
    415: "请求体不是 JSON",
    422: "请求不合法（含字段路径）",
    503: "依赖暂不可用",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorOut, "description": _DESCRIPTIONS[status]} for status in statuses}


def json_request_body(model_name: str, examples: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body itself (see api.deps.json_body)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{model_name}"},
                    "examples": {name: {"value": value} for name, value in examples.items()},
                }
            },
        }
    }
