"""HTTP benchmark: POST /v1/events (rulesets evaluated, decision persisted) vs a bare FastAPI endpoint."""
