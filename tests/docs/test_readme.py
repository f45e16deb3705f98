"""The README's console examples are executed: what the README shows is output the CLI really prints."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RULESVC = Path(sys.executable).parent / "rulesvc"


def outside_walkthroughs() -> str:
    """The README without the region copied from docs/http.md, timers.md and lifecycle.md (their own tests
    replay those against live servers)."""
    readme = README.read_text(encoding="utf-8")
    return readme[: readme.index("<!-- walkthroughs:begin")] + readme[readme.index("<!-- walkthroughs:end") :]


def console_blocks() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every ```console block whose command is `rulesvc ...`."""
    blocks = re.findall(r"```console\n(.*?)```", outside_walkthroughs(), flags=re.S)
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
    # stderr carries only what the README says it may: calendar coverage warnings (positioned)
    for line in proc.stderr.splitlines():
        if proc.returncode == 0:
            assert re.match(r"^rulesets/calendars/\S+:\d+:\d+: 警告：", line), line
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


def test_every_example_runs_rulesvc_the_way_the_readme_says() -> None:
    """The README says how `rulesvc` gets on the PATH, and every example then types it the same way."""
    readme = README.read_text(encoding="utf-8")
    assert "make serve" in readme and "make test" in readme  # the two commands on a fresh machine
    assert ". .venv/bin/activate" in readme
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```(?:console|sh)\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S):
            assert ".venv/bin/" not in block.replace(". .venv/bin/activate", ""), (path.name, block)


def _merge_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("merge_readme", ROOT / "scripts" / "merge_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_carries_the_executed_walkthroughs() -> None:
    """docs/http.md, timers.md and lifecycle.md are executed against live servers by their own tests; the
    README carries them verbatim between its markers (scripts/merge_readme.py puts them there)."""
    readme = README.read_text(encoding="utf-8")
    assert _merge_script().merged(readme) == readme, "README.md is not in step: run scripts/merge_readme.py"


def test_merging_the_walkthroughs_never_drops_a_hand_written_section() -> None:
    readme = README.read_text(encoding="utf-8")
    end = readme.index("<!-- walkthroughs:end -->")
    written_by_hand = readme[:end] + "## Business calendars\n\nwritten here by hand\n\n" + readme[end:]
    with pytest.raises(ValueError, match="## Business calendars"):
        _merge_script().merged(written_by_hand)


def test_a_heading_renamed_in_a_doc_is_not_taken_for_a_hand_written_section() -> None:
    merge = _merge_script()
    region = "## Old name\n\nthe same text\n\n## Hand written\n\nonly here\n"
    body = "## New name\n\nthe same text\n"
    assert merge.hand_written(region, body) == ["## Hand written"]


OUTSIDE = re.compile(r"ENGINE-NOTES|(?<![\w/])DOMAIN\.md|/work/shared|\.\./shared")
DOC_PATH = re.compile(r"\bdocs/[\w./-]+\.(?:md|yaml|json)\b")


def test_knowledge_the_code_refers_to_is_in_the_repository() -> None:
    """No comment, message or doc points outside the repository; every docs/ file named exists."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.toml", "*.yaml", "Makefile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    outside, missing = [], []
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or name == "tests/docs/test_readme.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if OUTSIDE.search(line):
                outside.append(f"{name}:{number}: {line.strip()}")
            missing += [
                f"{name}:{number}: {ref}" for ref in DOC_PATH.findall(line) if not (ROOT / ref).exists()
            ]
    assert not outside, "references outside the repository:\n" + "\n".join(outside)
    assert not missing, "docs named but not in the repository:\n" + "\n".join(missing)


CODE_PATH = re.compile(r"\b(?:rulesvc|api|scheduler|scripts|tests|bench|rulesets)/[\w/.-]+\.(?:py|md|yaml)\b")


def test_the_files_the_docs_name_exist() -> None:
    """A module moved or renamed takes its mentions in README.md and docs/ along."""
    missing = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in [README, *sorted((ROOT / "docs").glob("*.md"))]
        for name in sorted(set(CODE_PATH.findall(path.read_text(encoding="utf-8"))))
        if not (ROOT / name).exists()
    ]
    assert not missing, "named in the docs but not in the repository:\n" + "\n".join(missing)
