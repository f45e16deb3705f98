"""The image's command, run as the Dockerfile runs it (no Docker engine here): the final stage's environment,
its CMD and its HEALTHCHECK command, with /data and /app mapped to a temporary folder. Then the commands the
production layouts run (deploy/compose, deploy/helm): the one-shot migration with the database password read
from a secret file, and the worker."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import REPO, RULESETS, free_port, kill_group, rulesvc_command
from tests.unit.deploy.test_compose import compose

DOCKERFILE = REPO / "Dockerfile"


def final_stage() -> list[str]:
    """The final stage's instructions, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return lines[last_from:]


def instruction(name: str) -> list[str]:
    return [line[len(name) + 1 :].strip() for line in final_stage() if line.startswith(f"{name} ")]


def image_environment(root: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for declaration in instruction("ENV"):
        for pair in shlex.split(declaration):
            name, _, value = pair.partition("=")
            env[name] = value
    mapped = {}
    for name, value in env.items():
        value = value.replace("/data/", f"{root}/data/").replace("/app/rulesets", str(RULESETS))
        mapped[name] = value
    return mapped


def command_of(instruction_text: str) -> list[str]:
    words = json.loads(instruction_text)
    assert isinstance(words, list) and all(isinstance(word, str) for word in words)
    return list(words)


def rulesvc(words: list[str]) -> list[str]:
    assert words[0] == "rulesvc", words
    return [*rulesvc_command(), *words[1:]]


def python(words: list[str]) -> list[str]:
    assert words[0] == "python", words
    return [sys.executable, *words[1:]]


def test_the_image_runs_as_a_user_and_listens_where_it_says() -> None:
    (user,) = instruction("USER")
    assert user != "root"
    env = image_environment(Path("/"))
    assert instruction("EXPOSE") == [env["RULESVC_PORT"]]
    assert command_of(instruction("CMD")[0])[:2] == ["rulesvc", "serve"]


def test_the_image_command_serves_and_its_health_check_passes(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RULESVC_")}
    env.update(image_environment(tmp_path), RULESVC_PORT=str(port), PYTHONPATH=str(REPO))
    assert env["RULESVC_DATABASE_URL"] == f"sqlite:///{tmp_path}/data/rulesvc.db"
    (healthcheck,) = instruction("HEALTHCHECK")
    check = python(command_of(healthcheck.split(" CMD ", 1)[1]))
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        rulesvc(command_of(instruction("CMD")[0])),
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        healthy = False
        while not healthy and time.monotonic() < deadline and process.poll() is None:
            healthy = subprocess.run(check, env=env, capture_output=True, timeout=30).returncode == 0
            if not healthy:
                time.sleep(0.2)
        assert healthy, (tmp_path / "serve.log").read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        assert (tmp_path / "data" / "rulesvc.db").is_file()
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        kill_group(process)


def test_the_layouts_migration_reads_its_password_from_a_secret_file(
    pg_database: str, tmp_path: Path
) -> None:
    services = compose()["services"]
    password = tmp_path / "db_password"
    password.write_text("not-checked-by-trust-auth\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RULESVC_")}
    env.update(
        RULESVC_DATABASE_URL=pg_database,
        RULESVC_DATABASE_PASSWORD_FILE=str(password),
        RULESVC_RULESETS=str(RULESETS),
        PYTHONPATH=str(REPO),
    )
    assert "RULESVC_DATABASE_PASSWORD_FILE" in services["migrate"]["environment"]
    done = subprocess.run(
        rulesvc(services["migrate"]["command"]), env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "数据库结构已是最新" in done.stdout


@pytest.mark.parametrize("service", ["api", "worker", "migrate"])
def test_every_layout_command_exists(service: str) -> None:
    words = compose()["services"][service]["command"]
    done = subprocess.run([*rulesvc(words), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
