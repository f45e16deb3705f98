"""docs/configuration.md names every environment variable the code reads, and nothing that does not exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from rulesvc.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
NAME = re.compile(r"\bRULESVC_[A-Z][A-Z0-9_]*[A-Z0-9]\b")


def documented() -> set[str]:
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `RULESVC_")]
    return {NAME.findall(row)[0] for row in rows}


def read_by_code() -> set[str]:
    names = {f"RULESVC_{field.upper()}" for field in Settings.model_fields}
    files = subprocess.run(
        ["git", "ls-files", "rulesvc", "api", "scheduler", "cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if name.endswith(".py") and (ROOT / name).is_file():
            names |= set(NAME.findall((ROOT / name).read_text(encoding="utf-8")))
    return names


def test_every_variable_is_in_the_one_table() -> None:
    missing = read_by_code() - documented()
    assert not missing, f"docs/configuration.md lacks {sorted(missing)}"


def test_the_table_names_only_variables_that_exist() -> None:
    stale = documented() - read_by_code()
    assert not stale, f"docs/configuration.md names variables nothing reads: {sorted(stale)}"


def test_the_readme_and_docs_name_only_real_variables() -> None:
    real = read_by_code()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        unknown = set(NAME.findall(path.read_text(encoding="utf-8"))) - real
        assert not unknown, f"{path.relative_to(ROOT)} names {sorted(unknown)}, which nothing reads"
