"""docs/http.md is executed: every `$ curl ...` block runs (through bash, with curl and jq) against a real
`rulesvc serve` on a fresh database, and must print what the document shows.

Values that differ from run to run are compared by shape: decision ids (the document's ids are mapped to
this run's as they appear, and substituted into later commands), server timestamps and chain hashes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rulesvc.apikeys import Role
from rulesvc.storage import make_engine, migrate
from tests.integration.conftest import cli_env, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "http.md"
DOC_BASE = "http://127.0.0.1:8000"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SERVER_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")
HASH = re.compile(r"\b[0-9a-f]{64}\b")
KEYS = {
    "INGEST_KEY": Role.INGEST,
    "AUDITOR_KEY": Role.AUDITOR,
    "COMPLIANCE_KEY": Role.COMPLIANCE,
    "EDITOR_KEY": Role.EDITOR,
}


def curl_blocks() -> list[tuple[str, str]]:
    blocks = re.findall(r"```console\n\$ (curl .*?)\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return [(command, output) for command, output in blocks]


def json_values(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    values, position, text = [], 0, text.strip()
    while position < len(text):
        value, position = decoder.raw_decode(text, position)
        values.append(value)
        while position < len(text) and text[position].isspace():
            position += 1
    return values


def learn_ids(expected: Any, actual: Any, ids: dict[str, str]) -> None:
    """Map the document's decision ids to this run's, walking both answers in step."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            if key == "decision_id" and isinstance(value, str) and isinstance(actual.get(key), str):
                ids.setdefault(value, actual[key])
            learn_ids(value, actual.get(key), ids)
    elif isinstance(expected, list) and isinstance(actual, list):
        for e, a in zip(expected, actual, strict=False):
            learn_ids(e, a, ids)


NOW_BLOCK = re.compile(r"```console\n\$ export NOW=\$\((.*?)\)\n```")
TIME_KEYS = ("occurred_at", "started_at", "due_at", "at")
ONLY_PAST_CONFIRMED = ("provisional", "calendar_version")


def learn_times(expected: Any, actual: Any, times: dict[str, str]) -> None:
    """Map the document's times of "now" (and the deadlines counted from it) to this run's."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            if key in TIME_KEYS and isinstance(value, str) and isinstance(actual.get(key), str):
                times.setdefault(value, actual[key])
            learn_times(value, actual.get(key), times)
    elif isinstance(expected, list) and isinstance(actual, list):
        for e, a in zip(expected, actual, strict=False):
            learn_times(e, a, times)


def without_provisional(expected: Any, actual: Any) -> Any:
    """`actual` without the provisional-deadline marks the document does not show: a deadline counted from
    now lies past the calendar's confirmed days near the year's end until the calendar is updated."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {
            key: without_provisional(expected.get(key), value)
            for key, value in actual.items()
            if key in expected or key not in ONLY_PAST_CONFIRMED
        }
    if isinstance(expected, list) and isinstance(actual, list):
        return [without_provisional(e, a) for e, a in zip(expected, actual, strict=False)] + actual[
            len(expected) :
        ]
    return actual


def shape(text: str) -> str:
    return HASH.sub("<hash>", SERVER_TIME.sub("<time>", UUID.sub("<uuid>", text)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not (shutil.which("curl") and shutil.which("jq") and shutil.which("bash")):
        pytest.skip("the walkthrough runs curl and jq")
    work = tmp_path_factory.mktemp("http-doc")
    url = f"sqlite:///{work / 'rulesvc.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    # the document's commands run as typed: `rulesvc` from .venv/bin on the PATH, on the server's database
    env = {**os.environ, **cli_env(url)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # the calendar coverage shown in the walkthrough is counted from a fixed day
    running = start_server(
        cli_env(url, RULESVC_BOOTSTRAP_ADMIN_KEY="false", RULESVC_TODAY="2026-12-04"), work / "serve.log"
    )
    yield running, env
    stop_server(running)


KEY_BLOCK = re.compile(r"```console\n(\$ rulesvc keys create.*?)```", re.S)
EXPORT = re.compile(r"^export (\w+)=\$\((rulesvc keys create .*)\)$")
KEY_ID = re.compile(r"(?<=key_id: )[0-9a-f]{12}\b")
SECRET = re.compile(r"^rsk_[0-9a-f]{12}_\S+$")


def key_shape(lines: list[str]) -> list[str]:
    return [SECRET.sub("rsk_<id>_…", KEY_ID.sub("<id>", line)) for line in lines]


def create_the_documented_keys(env: dict[str, str]) -> None:
    """Run the document's `rulesvc keys create` block line by line; exports land in `env`."""
    [block] = KEY_BLOCK.findall(DOC.read_text(encoding="utf-8"))
    lines = block.rstrip("\n").split("\n")
    for index, line in enumerate(lines):
        if not line.startswith("$ "):
            continue
        command = line[2:]
        exported = EXPORT.match(command)
        done = subprocess.run(
            ["bash", "-c", exported.group(2) if exported else command],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        if exported:
            env[exported.group(1)] = done.stdout.strip().splitlines()[-1]
            continue
        documented = []
        for following in lines[index + 1 :]:
            if following.startswith("$ "):
                break
            documented.append(following)
        actual = done.stderr.strip().splitlines() + done.stdout.strip().splitlines()
        assert key_shape(actual) == key_shape(documented), f"$ {command}\n{done.stderr}{done.stdout}"
    assert set(KEYS) <= set(env)


def test_walkthrough_answers_as_documented(server: Any) -> None:
    running, env = server
    create_the_documented_keys(env)
    [now_command] = NOW_BLOCK.findall(DOC.read_text(encoding="utf-8"))
    env["NOW"] = subprocess.run(
        ["bash", "-c", now_command], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    times: dict[str, str] = {}  # the document's times of "now" → this run's
    blocks = curl_blocks()
    assert len(blocks) >= 15
    ids: dict[str, str] = {}
    for command, documented in blocks:
        actual_command = command.replace(DOC_BASE, running.base_url)
        for doc_id, run_id in ids.items():
            actual_command = actual_command.replace(doc_id, run_id)
        result = subprocess.run(
            ["bash", "-c", actual_command], env=env, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        expected, actual = json_values(documented), json_values(result.stdout)
        for e, a in zip(expected, actual, strict=False):
            learn_ids(e, a, ids)
            if "$NOW" in command:
                learn_times(e, a, times)
        for doc_time, run_time in times.items():
            documented = documented.replace(doc_time, run_time)
        expected = json_values(documented)
        actual = [without_provisional(e, a) for e, a in zip(expected, actual, strict=False)] + actual[
            len(expected) :
        ]
        want = shape(json.dumps(expected, ensure_ascii=False, sort_keys=True))
        got = shape(json.dumps(actual, ensure_ascii=False, sort_keys=True))
        assert got == want, f"\n$ {command}\n--- documented ---\n{documented}--- actual ---\n{result.stdout}"


def test_the_first_start_reads_as_documented(tmp_path: Path) -> None:
    """The framed first admin key of `make serve` in the document is what `serve` prints (key shortened)."""
    from cli.ops import first_key_notice
    from rulesvc.settings import Settings
    from rulesvc.storage import SqlStore

    [block] = re.findall(r"```console\n\$ make serve\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    documented = [line for line in block.splitlines() if line != "..."]
    url = f"sqlite:///{tmp_path / 'rulesvc.db'}"
    engine = make_engine(url)
    migrate(engine)
    try:
        notice, to_stderr = first_key_notice(Settings(database_url=url), SqlStore(engine))
    finally:
        engine.dispose()
    printed = [line for line in notice.splitlines() if line]
    assert not to_stderr
    normal = [re.sub(r"[0-9a-f]{12}", "<id>", SECRET.sub("rsk_<id>_…", line)) for line in printed]
    assert normal == [re.sub(r"[0-9a-f]{12}", "<id>", line) for line in documented]
