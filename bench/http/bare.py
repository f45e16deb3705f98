"""The baseline: a bare FastAPI endpoint returning a constant, served exactly like rulesvc."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/events")
async def constant() -> dict[str, Any]:
    return {"decision_id": "0", "actions": []}
