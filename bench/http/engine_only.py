"""Reference points: the same FastAPI server deciding events with the shipped rulesets, storing nothing (no
database, no chain, no masking, no authentication).

`app` parses the body and evaluates it: its req/s is the ceiling that evaluation itself puts on
`POST /v1/events` on this machine. `validated_app` does the same after reading the body as ingest does
(`rulesvc.exactjson`: numbers from their text, duplicate keys refused; `rulesvc.validation`: the ticket
checked against its kind): the difference between the two is what validation costs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from rulesvc import exactjson
from rulesvc.errors import InvalidEventError
from rulesvc.events import event_from_json
from rulesvc.rulebook import RuleBook
from rulesvc.validation import read_event

book = RuleBook.load([Path(os.environ.get("RULESVC_RULESETS", "rulesets"))])
app = FastAPI()
validated_app = FastAPI()


@app.post("/v1/events")
async def decide(request: Request) -> Response:
    event = event_from_json(exactjson.loads(await request.body()))
    decision = book.evaluate(event)
    return Response(
        exactjson.dumps_bytes({"actions": decision.actions_json(), "fired": decision.fired_json()}),
        media_type="application/json",
    )


@validated_app.post("/v1/events")
async def validate_and_decide(request: Request) -> Response:
    try:
        event = read_event(exactjson.loads(await request.body()), book.kinds, now=datetime.now(UTC)).event
    except InvalidEventError as exc:
        return Response(exactjson.dumps_bytes([p.to_json() for p in exc.problems]), status_code=422)
    decision = book.evaluate(event)
    return Response(
        exactjson.dumps_bytes({"actions": decision.actions_json(), "fired": decision.fired_json()}),
        media_type="application/json",
    )
