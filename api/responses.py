"""JSON responses rendered with orjson (FastAPI's own ORJSONResponse is deprecated; this is the same idea)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from rulesvc import exactjson


class JSONBytes(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return exactjson.dumps_bytes(content, non_str_keys=True)
