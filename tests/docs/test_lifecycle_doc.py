"""docs/lifecycle.md "Changing a rule safely" is replayed against a live service: every `rulesvc rulesets`
command (and the `sed`/`curl` lines) runs in order and must print what the document shows.

The service runs in this process (uvicorn in a thread) on a fresh SQLite database with its clock pinned to
the walk-through's day, so "effective 2026-12-01" stays in the future whenever the test runs. Draft ids and
key ids differ per run (learned from the answers and substituted); times of that day stand for "now".
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.cli.rulesets import app as rulesets_cli
from rulesvc.decisions.service import create_api_key
from rulesvc.settings import Settings
from rulesvc.sla.clock import VirtualClock
from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "lifecycle.md"
NOW = datetime.fromisoformat("2026-11-26T04:01:30+08:00")
KEYS = {
    "EDITOR_KEY": (Role.EDITOR, "风险专员张敏"),
    "APPROVER_KEY": (Role.APPROVER, "风控审批人李强"),
    "AUDITOR_KEY": (Role.AUDITOR, "稽核王芳"),
}
CLAIMS = [1200, 4999.99, 5000, 6500, 7999, 8000, 12000]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
KEY_ID = re.compile(r"\([0-9a-f]{12}\)")
TODAY = re.compile(r"2026-11-26T\d\d:\d\d:\d\d\+08:00")


def console_blocks() -> list[tuple[str, list[str]]]:
    blocks = re.findall(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    result = []
    for block in blocks:
        lines = block.rstrip("\n").split("\n")
        result.append((lines[0].removeprefix("$ "), lines[1:]))
    return result


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    work = tmp_path_factory.mktemp("lifecycle-doc")
    settings = Settings(
        database_url=f"sqlite:///{work / 'rulesvc.db'}",
        rulesets=ROOT / "rulesets",
        access_log=False,
        bootstrap_admin_key=False,
    )
    clock = VirtualClock(NOW)
    app = create_app(settings, clock=clock)
    store = app.state.runtime.service.keys
    keys = {
        name: create_api_key(store, frozenset({role}), clock, label)[1]
        for name, (role, label) in KEYS.items()
    }
    ingest = create_api_key(store, frozenset({Role.INGEST}), clock, "报销系统")[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.config.port}"
    for index, amount in enumerate(CLAIMS, start=1):
        response = httpx.post(
            f"{url}/v1/events",
            headers={"Authorization": f"Bearer {ingest}"},
            json={
                "event_id": f"EX-2026-110{index}-created",
                "type": "ticket.created",
                "occurred_at": f"2026-11-1{index}T10:00:00+08:00",
                "ticket": {
                    "kind": "expense",
                    "id": f"EX-2026-110{index}",
                    "expense_type": "差旅费",
                    "amount": amount,
                    "applicant_rank": "部门经理",
                    "applicant": "赵敏",
                },
            },
        )
        assert response.status_code == 200, response.text
    try:
        yield url, keys, work
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run(command: str, url: str, keys: dict[str, str]) -> str:
    words = shlex.split(command)
    if words[0].startswith("RULESVC_KEY=$") and words[1:3] == ["rulesvc", "rulesets"]:
        env = {"RULESVC_URL": url, "RULESVC_KEY": keys[words[0].split("$")[1]], "RULESVC_TZ": "Asia/Shanghai"}
        return CliRunner().invoke(rulesets_cli, words[3:], env=env).output
    if words[0] == "curl" and not shutil.which("curl"):
        pytest.skip("the walk-through runs curl")
    env = {**os.environ, "RULESVC_URL": url, **keys}
    done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def normal(lines: list[str]) -> list[str]:
    return [TODAY.sub("<today>", KEY_ID.sub("(<key>)", line)).rstrip() for line in lines]


def test_changing_a_rule_safely_as_documented(
    service: tuple[str, dict[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, keys, work = service
    monkeypatch.chdir(work)
    blocks = console_blocks()
    assert len(blocks) >= 20
    ids: dict[str, str] = {}  # the document's draft ids → this run's
    for command, documented in blocks:
        for doc_id, run_id in ids.items():
            command = command.replace(doc_id, run_id)
        output = run(command, url, keys).rstrip("\n")
        actual = output.split("\n") if output else []
        doc_ids = [i for i in UUID.findall("\n".join(documented)) if i not in ids]
        run_ids = [i for i in UUID.findall("\n".join(actual)) if i not in ids.values()]
        for doc_id, run_id in zip(dict.fromkeys(doc_ids), dict.fromkeys(run_ids), strict=False):
            ids[doc_id] = run_id
        expected = []
        for line in documented:
            for doc_id, run_id in ids.items():
                line = line.replace(doc_id, run_id).replace(doc_id[:8], run_id[:8])
            expected.append(line)
        _same(command, normal(expected), normal(actual))


def _same(command: str, expected: list[str], actual: list[str]) -> Any:
    """Every documented line, in order (`...` elides lines); without `...` nothing else either."""
    position = 0
    for line in expected:
        if line.strip() == "...":
            continue
        if line not in actual[position:]:
            pytest.fail(f"$ {command}\nmissing: {line}\n--- actual ---\n" + "\n".join(actual))
        position = actual.index(line, position) + 1
    if "..." not in expected:
        assert actual == expected, f"$ {command}"
