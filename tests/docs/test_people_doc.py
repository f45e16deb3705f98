"""docs/people.md names only routes the service has and commands the CLI has, and every code it lists
is one the code can answer with."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from api.app import create_app
from rulesvc.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "people.md").read_text(encoding="utf-8")
RULESVC = Path(sys.executable).parent / "rulesvc"


def test_every_route_named_exists(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'doc.db'}", rulesets=ROOT / "rulesets"))
    try:
        schema = app.openapi()
    finally:
        app.state.lifecycle.close()
    named = set(re.findall(r"`(GET|POST|PATCH|DELETE) (/v1/[^`?]+)`", DOC))
    assert len(named) >= 8
    for method, path in named:
        assert method.lower() in schema["paths"].get(path, {}), f"{method} {path} is not a route"


@pytest.mark.parametrize(
    "command",
    sorted(set(re.findall(r"rulesvc (users|keys) (create|list|disable|enable|revoke|rotate)", DOC))),
)
def test_every_command_named_exists(command: tuple[str, str]) -> None:
    proc = subprocess.run([str(RULESVC), *command, "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_every_code_listed_is_raised() -> None:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "rulesvc" / "people").glob("*.py"))
    for code in set(re.findall(r"`(people\.[a-z_]+)`", DOC)):
        assert f'"{code}"' in sources, code
