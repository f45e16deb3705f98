"""docs/language.md "Error codes and messages": the undotted codes kept from the first release are the ones
the loader still uses (a code the table lists is in the source; a code it names is not renamed quietly)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def kept_codes() -> list[str]:
    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    section = doc.split("## Error codes and messages", 1)[1]
    table = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    return [code for line in table for code in re.findall(r"`([a-z_]+)`", line.split("|")[2])]


def test_every_kept_undotted_code_is_still_raised_under_its_name() -> None:
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for folder in ("rulesvc", "cli")
        for path in (ROOT / folder).rglob("*.py")
    )
    codes = kept_codes()
    assert len(codes) > 40 and all("." not in code for code in codes)
    assert [code for code in codes if f'"{code}"' not in source] == []
