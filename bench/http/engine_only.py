"""A second reference point: the same FastAPI server deciding events with the shipped rulesets, but
storing nothing (no database, no chain, no masking, no authentication).

Its req/s is the ceiling that evaluation itself puts on `POST /v1/events` on this machine: whatever the
persistence costs, the full endpoint cannot beat it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from rulesvc import exactjson
from rulesvc.events import event_from_json
from rulesvc.rulebook import RuleBook

book = RuleBook.load([Path(os.environ.get("RULESVC_RULESETS", "rulesets"))])
app = FastAPI()


@app.post("/v1/events")
async def decide(request: Request) -> Response:
    event = event_from_json(exactjson.loads(await request.body()))
    decision = book.evaluate(event)
    return Response(
        exactjson.dumps_bytes({"actions": decision.actions_json(), "fired": decision.fired_json()}),
        media_type="application/json",
    )
