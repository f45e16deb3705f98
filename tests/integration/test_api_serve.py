"""The real thing: `rulesvc serve` as a subprocess (the Dockerfile's command on SQLite, and two workers on
PostgreSQL + Redis), keys created with the CLI, racing identical POSTs settled into one decision."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from rulesvc.storage import make_engine
from tests.integration.conftest import (
    REDIS_URL,
    REPO,
    cli_env,
    event,
    free_port,
    reset_pg,
    rulesvc_command,
    run_cli,
    start_server,
    stop_server,
    unavailable,
)


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON-array form of the last `name` instruction (CMD, or the command of HEALTHCHECK)."""
    text_ = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text_.splitlines() if line.strip().startswith(name + " ")]
    assert lines, f"no {name} in Dockerfile"
    array = lines[-1][lines[-1].index("[") :]
    command: list[str] = json.loads(array)
    return command


def test_dockerfile_command_serves_on_sqlite(tmp_path: Path) -> None:
    cmd = dockerfile_instruction("CMD")
    assert cmd[:2] == ["rulesvc", "serve"] and "--host" in cmd and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    health = dockerfile_instruction("HEALTHCHECK")
    docker = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER rulesvc$", docker, re.M) and "FROM python:3.11-slim" in docker

    port = free_port()
    env = cli_env(f"sqlite:///{tmp_path / 'data' / 'rulesvc.db'}", RULESVC_PORT=str(port))
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [*rulesvc_command(), *cmd[1:]], env=env, cwd=tmp_path, stdout=handle, stderr=subprocess.PIPE
        )
    try:
        probe = [sys.executable if health[0] == "python" else health[0], *health[1:]]
        deadline = time.monotonic() + 60
        while subprocess.run(probe, env=env, capture_output=True).returncode != 0:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "HEALTHCHECK never passed"
            time.sleep(0.2)
        # First start on the embedded default prints a local admin key, alone on its line.
        admin = next(line for line in log.read_text().splitlines() if line.startswith("rsk_"))
        base = f"http://127.0.0.1:{port}"
        ingest = run_cli(["keys", "create", "--role", "ingest"], env).stdout.splitlines()[-1]
        assert ingest.startswith("rsk_") and ingest != admin
        posted = httpx.post(
            f"{base}/v1/events", json=event("docker-1"), headers={"Authorization": f"Bearer {ingest}"}
        )
        assert posted.status_code == 200, posted.text
        assert [a["type"] for a in posted.json()["actions"]] == ["auto_approve", "trigger_payment"]
        read = httpx.get(
            f"{base}/v1/decisions/{posted.json()['decision_id']}",
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert read.status_code == 200 and read.json()["event"]["ticket"]["applicant"] == "赵*"
        listed = run_cli(["keys", "list"], env).stdout
        assert "admin" in listed and "ingest" in listed and "rsk_" not in listed
        assert (
            admin not in (tmp_path / "serve.log").read_text().split(admin, 1)[1]
        )  # printed once, never logged
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert (tmp_path / "data" / "rulesvc.db").exists()


def redis_available() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)


def test_two_workers_on_postgresql_settle_racing_posts(pg_database: str, tmp_path: Path) -> None:
    redis_available()
    reset_pg(pg_database)
    env = cli_env(pg_database, RULESVC_REDIS_URL=REDIS_URL)
    key = run_cli(["keys", "create", "--role", "ingest", "--role", "auditor"], env).stdout.splitlines()[-1]
    server = start_server(env, tmp_path / "serve.log", workers=2)
    headers = {"Authorization": f"Bearer {key}"}
    body = event("race-http")

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/v1/events", json=body, headers=headers) for _ in range(24))
            )

    try:
        ready = httpx.get(f"{server.base_url}/readyz", timeout=10).json()
        assert (ready["status"], ready["checks"]) == (
            "ready",
            {"rulesets": "ok", "database": "ok", "redis": "ok"},
        )
        responses = asyncio.run(fire())
        metrics = httpx.get(f"{server.base_url}/metrics", timeout=10).text
        verify = httpx.get(f"{server.base_url}/v1/audit/verify", headers=headers, timeout=10).json()
    finally:
        stop_server(server)
    assert {r.status_code for r in responses} == {200}
    bodies: list[dict[str, Any]] = [r.json() for r in responses]
    assert len({b["decision_id"] for b in bodies}) == 1
    engine = make_engine(pg_database)
    try:
        with engine.connect() as conn:
            decisions = conn.execute(text("SELECT count(*) FROM decisions")).scalar_one()
            actions = conn.execute(text("SELECT count(*) FROM actions")).scalar_one()
    finally:
        engine.dispose()
    assert (decisions, actions) == (1, len(bodies[0]["actions"]))
    # The chain: the key created above (sealed), the five shipped rulesets and the two calendars imported
    # as version 1 (once, although both workers started on the empty database), then the one decision.
    assert verify == {"ok": True, "checked": 9}
    # Both workers' counts are aggregated: 24 answered, one of them created.
    assert 'rulesvc_decisions_total{outcome="created"} 1.0' in metrics
    assert 'rulesvc_decisions_total{outcome="replayed"} 23.0' in metrics


def test_serve_refuses_broken_rulesets(tmp_path: Path) -> None:
    broken = tmp_path / "rules"
    (broken / "kinds").mkdir(parents=True)
    (broken / "kinds" / "loan.yaml").write_text("kind: loan\nfields: {id: string}\n")
    (broken / "loan.yaml").write_text(
        "ruleset: loan-x\nkind: loan\nrules:\n  - id: r\n    on: [ticket.created]\n    when: ticket.nope > 1\n    then: []\n"
    )
    env = cli_env(
        f"sqlite:///{tmp_path / 'x.db'}", RULESVC_RULESETS=str(broken), RULESVC_PORT=str(free_port())
    )
    result = subprocess.run(
        [*rulesvc_command(), "serve"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert re.search(r"loan\.yaml:\d+:\d+: ", result.stderr), result.stderr
