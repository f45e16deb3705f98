"""docs/lifecycle.md "Changing a rule safely" is replayed against a live service: every `rulesvc keys`,
`rulesvc rulesets` command (and the `sed`/`curl` lines, the claims sent from docs/examples/) runs in order and
must print what the document shows.

The service runs in this process (uvicorn in a thread) on a fresh SQLite database and the real clock, as a
newcomer's would: a date in the document that has passed (a publication "effective" in the past, say) fails
here before it fails a reader. Draft ids and key ids differ per run (learned from the answers and
substituted); the document's times of its capture day stand for "now".
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from typer.testing import CliRunner

from api.app import create_app
from cli.rulesets import app as rulesets_cli
from rulesvc.settings import Settings
from tests.integration.conftest import cli_env, free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "lifecycle.md"
CAPTURED = "2026-11-26"  # the day the document's answers were captured: its "now"
KEY_NAMES = ("EDITOR_KEY", "APPROVER_KEY", "AUDITOR_KEY", "INGEST_KEY")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
KEY_ID = re.compile(r"\([0-9a-f]{12}\)")
EXPORT = re.compile(r"^export (\w+)=\$\((rulesvc keys create .*)\)$", re.M)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def console_blocks() -> list[tuple[str, list[str]]]:
    blocks = re.findall(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    result = []
    for block in blocks:
        lines = block.rstrip("\n").split("\n")
        result.append((lines[0].removeprefix("$ "), lines[1:]))
    return result


def today_pattern() -> re.Pattern[str]:
    """Times of today (and tomorrow, should the run cross midnight) in Beijing time, and of the capture day."""
    today = datetime.now(SHANGHAI).date()
    days = "|".join(str(day) for day in (CAPTURED, today, today + timedelta(days=1)))
    return re.compile(rf"(?:{days})T\d\d:\d\d:\d\d\+08:00")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    work = tmp_path_factory.mktemp("lifecycle-doc")
    database_url = f"sqlite:///{work / 'rulesvc.db'}"
    settings = Settings(
        database_url=database_url, rulesets=ROOT / "rulesets", access_log=False, bootstrap_admin_key=False
    )
    app = create_app(settings)
    # the document's `export ...=$(rulesvc keys create ...)` lines, run as typed on the service's database
    env = {**os.environ, **cli_env(database_url)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    keys: dict[str, str] = {}
    for name, command in EXPORT.findall(DOC.read_text(encoding="utf-8")):
        done = subprocess.run(
            ["bash", "-c", command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
        )
        keys[name] = done.stdout.strip()
    assert set(keys) == set(KEY_NAMES)
    (work / "docs").symlink_to(ROOT / "docs")  # the examples the document sends, at the same relative path
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.config.port}"
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
    if "curl" in words and not (shutil.which("curl") and shutil.which("jq")):
        pytest.skip("the walk-through runs curl and jq")
    env = {**os.environ, "RULESVC_URL": url, **keys}
    done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def normal(lines: list[str]) -> list[str]:
    today = today_pattern()
    return [today.sub("<today>", KEY_ID.sub("(<key>)", line)).rstrip() for line in lines]


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
