"""Health, readiness (database, Redis) and Prometheus metrics."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.logs import JsonFormatter
from rulesvc.decisions.service import Evaluator
from rulesvc.storage import make_engine
from tests.integration.conftest import REDIS_URL, RULESETS, auth, event, free_port, make_settings, unavailable


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_database(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert {key: body[key] for key in ("status", "checks")} == {
        "status": "ready",
        "checks": {"rulesets": "ok", "database": "ok"},
    }


def test_readyz_with_redis(sqlite_url: str, book: Evaluator) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)
    with TestClient(create_app(make_settings(sqlite_url, redis_url=REDIS_URL), book=book)) as client:
        assert client.get("/readyz").json()["checks"]["redis"] == "ok"


def test_readyz_unreachable_redis_degrades_but_stays_ready(sqlite_url: str, book: Evaluator) -> None:
    """A replica without Redis still decides (and reloads rulesets by polling the database): a load balancer
    must not take every replica out during a Redis outage. The outage shows in the details and the metrics."""
    settings = make_settings(sqlite_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings, book=book)) as client:
        response = client.get("/readyz")
        metrics = client.get("/metrics").text
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["redis"].startswith("error: ")
    assert 'rulesvc_dependency_up{dependency="redis"} 0.0' in metrics
    assert 'rulesvc_dependency_up{dependency="database"} 1.0' in metrics


def test_readyz_fails_without_database(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    store = client.app.state.runtime.service.store  # type: ignore[attr-defined]
    unreachable = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/rulesvc")
    monkeypatch.setattr(store, "engine", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.json()["status"] == "not_ready"


def test_readyz_measures_the_replicas_clock_against_the_database_server(
    client: TestClient, database_url: str
) -> None:
    assert client.get("/readyz").status_code == 200
    [line] = [
        x for x in client.get("/metrics").text.splitlines() if x.startswith("rulesvc_clock_offset_seconds ")
    ]
    offset = float(line.split()[1])
    if database_url.startswith("postgresql"):
        assert offset != 0.0 and abs(offset) < 1.0  # the same host: apart by the round trip's asymmetry only
    else:
        assert offset == 0.0  # SQLite has no clock of its own: nothing measured


def test_metrics_by_ruleset_rule_and_action_type(client: TestClient, keys: dict[str, str]) -> None:
    client.post("/v1/events", json=event("m1"), headers=auth(keys["ingest"]))
    client.post("/v1/events", json=event("m1"), headers=auth(keys["ingest"]))
    client.post("/v1/events", json=event("m2", "mortgage"), headers=auth(keys["ingest"]))
    client.get("/v1/actions")
    text = client.get("/metrics").text
    assert 'rulesvc_decisions_total{outcome="created"} 1.0' in text
    assert 'rulesvc_decisions_total{outcome="replayed"} 1.0' in text
    assert (
        'rulesvc_actions_total{rule="报销审批#差旅费小额自动审批",ruleset="expense-approval",type="auto_approve"} 1.0'
        in text
    )
    assert (
        'rulesvc_rules_fired_total{rule="报销审批#差旅费小额自动审批",ruleset="expense-approval"} 1.0' in text
    )
    assert 'rulesvc_http_request_duration_seconds_bucket{le="0.25",method="POST",route="/v1/events"}' in text
    assert 'rulesvc_errors_total{code="event.invalid"} 1.0' in text
    assert 'rulesvc_errors_total{code="unauthorized"} 1.0' in text


def test_access_log_is_json_with_request_id_and_no_secrets(
    sqlite_url: str, book: Evaluator, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(sqlite_url, access_log=True), book=book)
    from rulesvc.apikeys import Role
    from rulesvc.decisions.service import create_api_key
    from rulesvc.sla.clock import SystemClock

    _, key = create_api_key(app.state.runtime.service.keys, frozenset({Role.INGEST}), SystemClock())
    body = event("log-1", "loan", customer_name="张三", mobile="13812345678")
    with caplog.at_level(logging.INFO, logger="rulesvc"), TestClient(app) as client:
        client.post("/v1/events", json=body, headers={**auth(key), "X-Request-ID": "trace-42"})
    records = [r for r in caplog.records if r.name == "rulesvc.access"]
    assert records
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["request_id"] == "trace-42" and line["status"] == 200 and line["route"] == "/v1/events"
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for secret in (key, "张三", "13812345678"):
        assert secret not in everything


def test_app_factory_takes_startup_objects_out_of_the_collector(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Full collections under load would otherwise walk every compiled ruleset and route: with them,
    p99 under load was about 3× higher (bench/http)."""
    import gc

    import api.main

    monkeypatch.setenv("RULESVC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RULESVC_RULESETS", str(RULESETS))
    monkeypatch.setattr(api.main, "configure_logging", lambda level: None)
    gc.unfreeze()
    try:
        app = api.main.app_from_env()
        assert gc.get_freeze_count() > 10_000
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
    finally:
        gc.unfreeze()
