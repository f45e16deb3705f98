"""The README's backup and restore procedures ("备份与恢复") are run as written, through bash with the
`rulesvc` of this environment on the PATH: on SQLite in a directory holding a live `var/rulesvc.db`, on
PostgreSQL against a database of the test server. The PostgreSQL settings block (a placeholder host) is
replaced by this test's own exports; the database names the procedure creates are made unique; `/backup/` is a
temporary directory. Every command must succeed (a restore that does not verify exits 1)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.settings import Settings
from rulesvc.sla.clock import SystemClock
from rulesvc.wiring.services import load_book
from tests.integration.conftest import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    _pg_admin,
    auth,
    event,
    make_settings,
    pg_url,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
NAMES = ("rulesvc_restored", "rulesvc_by_hand")


def blocks(region: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    begin = text.index(f"<!-- backup:{region} -->")
    end = text.index("<!-- backup:end -->", begin)
    return re.findall(r"```sh\n(.*?)```", text[begin:end], flags=re.S)


def run(script: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{script}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    return done.stdout


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RULESVC_", "PG"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["RULESVC_RULESETS"] = str(ROOT / "rulesets")
    return env


def decide_something(database_url: str, book: Evaluator, **settings: object) -> None:
    with TestClient(create_app(make_settings(database_url, **settings), book=book)) as client:
        store = client.app.state.runtime.service.keys  # type: ignore[attr-defined]
        key = create_api_key(store, frozenset({Role.INGEST}), SystemClock(), "docs")[1]
        for number in range(3):
            assert (
                client.post("/v1/events", json=event(f"doc-{number}"), headers=auth(key)).status_code == 200
            )


@pytest.fixture(scope="module")
def book() -> Evaluator:
    return load_book(Settings(rulesets=ROOT / "rulesets"))


def test_the_sqlite_procedure(tmp_path: Path, book: Evaluator) -> None:
    live = tmp_path / "var" / "rulesvc.db"
    decide_something(f"sqlite:///{live}", book)
    script = "\n".join(blocks("sqlite")).replace("/backup/", f"{tmp_path}/backup/")
    (tmp_path / "backup").mkdir()
    out = run(script, tmp_path, base_env())
    *_, restored, verified = (json.loads(line) for line in out.splitlines())
    assert restored["verify"]["ok"] is True and verified["ok"] is True and verified["checkpoints"] >= 1, out
    assert (tmp_path / "var" / "damaged" / "rulesvc.db").exists() and live.exists()


def test_the_postgresql_procedure(tmp_path: Path, book: Evaluator) -> None:
    live = f"rulesvc_doc_{secrets.token_hex(4)}"
    names = {name: f"{name}_{secrets.token_hex(4)}" for name in NAMES}
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{live}"')
    try:
        checkpoints = tmp_path / "checkpoints"
        decide_something(pg_url(live), book, checkpoint_dir=checkpoints)
        settings, *procedure = blocks("postgresql")
        assert settings.startswith("export PGHOST=") and "RULESVC_CHECKPOINT_DIR=" in settings
        script = "\n".join(procedure).replace("/backup/", f"{tmp_path}/backup/")
        script = script.replace("/srv/rulesvc/checkpoints", str(checkpoints))
        for name, unique in names.items():
            assert name in script
            script = re.sub(rf"\b{name}\b", unique, script)
        (tmp_path / "backup").mkdir()
        env = base_env() | {
            "PGHOST": PG_HOST,
            "PGPORT": str(PG_PORT),
            "PGUSER": PG_USER,
            "RULESVC_DATABASE_URL": pg_url(live),
            "RULESVC_CHECKPOINT_DIR": str(checkpoints),
        }
        out = run(script, tmp_path, env)
        assert out.count('"ok": true') == 2, out  # the restore's verify and the by-hand verify
    finally:
        with _pg_admin() as admin:
            for name in [live, *names.values()]:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
