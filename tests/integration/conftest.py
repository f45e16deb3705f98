"""Fixtures for the HTTP service tests: every storage test runs on SQLite (a temp file) and on PostgreSQL
(a database created for this test session over a real connection, dropped afterwards).

Under CI=true a test needing PostgreSQL or Redis fails when the server is unreachable; elsewhere it is
skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.settings import Settings
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import make_engine, migrate
from rulesvc.wiring.services import load_book

REPO = Path(__file__).resolve().parents[2]
RULESETS = REPO / "rulesets"
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_HOST = os.environ.get("RULESVC_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("RULESVC_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("RULESVC_TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("RULESVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TABLES = (
    "decision_inputs",
    "decision_terms",
    "decision_facts",
    "report_rollups",
    "report_rollup_days",
    "actions",
    "decisions",
    "audit_log",
    "api_keys",
    "principals",
    "sessions",
    "oidc_logins",
    "ruleset_drafts",
    "ruleset_versions",
    "webhook_deliveries",
    "webhook_subscriptions",
    "ops_status",
    "sla_results",
    "timers",
    "tickets",
)


def unavailable(what: str, reason: object) -> None:
    """Fail under CI (the service must be there), skip elsewhere."""
    message = f"{what} unreachable: {reason}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: PostgreSQL and Redis are required)")
    pytest.skip(message)


def pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(pg_url("postgres"), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT}", exc)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (per xdist worker), migrated; dropped at the end."""
    admin = _pg_admin()
    name = f"rulesvc_test_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = pg_url(name)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        admin = _pg_admin()
        with admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster than per test)."""
    path = tmp_path_factory.mktemp("template") / "rulesvc.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def reset_pg(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            conn.execute(text("UPDATE audit_head SET seq = 0, hash = :g WHERE id = 1"), {"g": "0" * 64})
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "rulesvc.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_database")
    reset_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    target = tmp_path / "rulesvc.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def book() -> Evaluator:
    return load_book(Settings(rulesets=RULESETS))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    # The 5 s request deadline is the subject of its own tests (they pass `request_timeout`); elsewhere a
    # loaded test machine must not turn a slow answer into a 503.
    values: dict[str, Any] = {
        "database_url": database_url,
        "rulesets": RULESETS,
        "access_log": False,
        "request_timeout": 60.0,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def app(settings: Settings, book: Evaluator) -> FastAPI:
    return create_app(settings, book=book)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def keys(app: FastAPI) -> dict[str, str]:
    """One key per role, plus "all" holding every role."""
    store = app.state.runtime.service.keys
    result = {
        role.value: create_api_key(store, frozenset({role}), SystemClock(), role.value)[1] for role in Role
    }
    result["all"] = create_api_key(store, frozenset(Role), SystemClock(), "all")[1]
    return result


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def engine_of(app: FastAPI) -> Engine:
    engine: Engine = app.state.runtime.engine
    return engine


def event(event_id: str, kind: str = "expense", **ticket: Any) -> dict[str, Any]:
    """An event body; the default ticket is a 差旅费 claim that qualifies for auto-approval."""
    defaults: dict[str, dict[str, Any]] = {
        "expense": {
            "id": f"E-{event_id}",
            "expense_type": "差旅费",
            "amount": 4999.99,
            "applicant_rank": "部门经理",
            "applicant": "赵敏",
        },
        "loan": {
            "id": f"L-{event_id}",
            "region": "上海浦东",
            "amount": 800000,
            "credit_rating": "AA",
            "owner": "王经理",
            "stage": "初审",
            "customer_name": "张三",
            "id_card": "110105199001011232",
            "mobile": "13812345678",
        },
        "complaint": {"id": f"C-{event_id}", "owner": "李娜", "channel": "电话"},
    }
    return {
        "event_id": event_id,
        "type": "ticket.created",
        "occurred_at": "2026-09-30T10:00:00+08:00",
        "ticket": {"kind": kind, **defaults.get(kind, {"id": f"X-{event_id}"}), **ticket},
    }


# -- real processes --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rulesvc_command() -> list[str]:
    script = Path(sys.executable).with_name("rulesvc")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cli import main; main()"]


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RULESVC_")}
    env.update(RULESVC_DATABASE_URL=database_url, RULESVC_RULESETS=str(RULESETS), PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*rulesvc_command(), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def invoke_cli(args: list[str], database_url: str) -> Any:
    """Run an operations command in this process (fast); returns typer's Result (exit_code, stdout)."""
    import typer
    from typer.testing import CliRunner

    from cli import ops as cli_ops
    from cli import people as cli_people

    app = typer.Typer()
    cli_ops.register(app)
    cli_people.register(app)
    return CliRunner().invoke(
        app, args, env={"RULESVC_DATABASE_URL": database_url, "RULESVC_RULESETS": str(RULESETS)}
    )


class Server:
    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log


def start_server(
    env: dict[str, str], log: Path, workers: int = 1, *, scheme: str = "http", verify: Any = True
) -> Server:
    """`rulesvc serve` on a free port, once `/healthz` answers (`scheme="https"` with `verify`, the client's
    SSL context, when the environment configures a certificate)."""
    port = free_port()
    handle = log.open("wb")
    process = subprocess.Popen(
        [*rulesvc_command(), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=REPO,
        stdout=handle,
        stderr=subprocess.STDOUT,
        # Its own process group, so that stopping it also stops every uvicorn worker it forked.
        start_new_session=True,
    )
    base_url = f"{scheme}://127.0.0.1:{port}"
    # Generous: several workers importing the app on a loaded 2-core machine take tens of seconds.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rulesvc serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1, verify=verify).status_code == 200:
                return Server(process, base_url, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    kill_group(process)
    raise RuntimeError(f"rulesvc serve did not become healthy:\n{log.read_text()}")


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill a process started with start_new_session=True together with all its children."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_server(server: Server) -> None:
    server.process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=20)
    # Workers left behind by a parent that died or hung must not outlive the test.
    kill_group(server.process)


def now() -> datetime:
    return datetime.now(UTC)
