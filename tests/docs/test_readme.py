"""The README's console examples are executed: what the README shows is output the CLI really prints."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RULESVC = Path(sys.executable).parent / "rulesvc"


def console_blocks() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every ```console block whose command is `rulesvc ...`."""
    blocks = re.findall(r"```console\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    result = []
    for block in blocks:
        lines = block.rstrip("\n").split("\n")
        if lines and lines[0].startswith("$ rulesvc "):
            result.append((lines[0][2:], lines[1:]))
    return result


BLOCKS = console_blocks()


def test_readme_has_console_examples() -> None:
    commands = [command.split()[1] for command, _ in BLOCKS]
    assert {"check", "test", "simulate"} <= set(commands)


@pytest.mark.parametrize(("command", "expected"), BLOCKS, ids=[c for c, _ in BLOCKS])
def test_readme_console_example(command: str, expected: list[str]) -> None:
    args = shlex.split(command)
    proc = subprocess.run(
        [str(RULESVC), *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    actual = proc.stdout.rstrip("\n").split("\n")
    # `...` in the README elides lines; everything shown must appear, in order
    position = 0
    for line in expected:
        if line.strip() == "...":
            continue
        try:
            position = actual.index(line, position) + 1
        except ValueError:
            pytest.fail(f"README line not in output of `{command}`:\n  {line}\n--- actual ---\n{proc.stdout}")
    if "..." not in [line.strip() for line in expected]:
        assert actual == expected


@pytest.mark.parametrize("doc", ["http.md", "timers.md", "lifecycle.md"])
def test_readme_carries_the_executed_walkthroughs(doc: str) -> None:
    """docs/*.md are executed against live servers by their own tests; the README carries them verbatim."""
    readme = README.read_text(encoding="utf-8").splitlines()
    position = 0
    for line in (ROOT / "docs" / doc).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue  # headings are shifted one level down in the README
        try:
            position = readme.index(line, position) + 1
        except ValueError:
            pytest.fail(f"README lacks this line of docs/{doc} (run scripts/merge_readme.py):\n  {line}")
