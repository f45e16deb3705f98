"""Copy the executed walkthroughs (docs/http.md, docs/timers.md, docs/lifecycle.md) into README.md.

The docs are replayed against live servers by tests/docs; the README carries them verbatim (headings one
level down) between the `walkthroughs:begin` and `walkthroughs:end` markers. Run after editing one of those
docs; `--check` only reports whether the README is in step (exit 1 if not).

Everything between the markers is regenerated, so a section written by hand there would be lost: the script
refuses (and changes nothing) when the region holds a heading that none of the docs produces. Such a section
belongs outside the markers, or in one of the docs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = (("http.md", 1), ("timers.md", 0), ("lifecycle.md", 1))
BEGIN = "<!-- walkthroughs:begin"
END = "<!-- walkthroughs:end -->"


def demote(text: str, levels: int) -> str:
    out = []
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"^#+ ", line):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out).strip() + "\n"


def sections(text: str) -> dict[str, list[str]]:
    """Heading → the non-empty lines under it (up to the next heading), fenced code included."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"^#+ ", line):
            current = found.setdefault(line, [])
        elif line.strip():
            current.append(line)
    return found


def hand_written(region: str, body: str) -> list[str]:
    """Headings of the region whose section the docs do not produce: neither the heading nor any of its
    lines (a heading renamed in a doc keeps its lines, and is not hand-written)."""
    produced = sections(body)
    lines = set(body.splitlines())
    return [
        heading
        for heading, content in sections(region).items()
        if heading not in produced and not any(line in lines for line in content)
    ]


def merged(readme: str, root: Path = ROOT) -> str:
    """The README with its generated region rebuilt from the docs; ValueError if that would drop a
    hand-written section."""
    begin = readme.index("\n", readme.index(BEGIN)) + 1
    end = readme.index(END)
    parts = [demote((root / "docs" / name).read_text(encoding="utf-8"), levels) for name, levels in DOCS]
    body = "\n".join(parts).replace("# HTTP service walkthrough", "# HTTP service", 1)
    lost = hand_written(readme[begin:end], body)
    if lost:
        raise ValueError(
            "README.md has sections between the walkthrough markers that no doc produces; move them "
            "outside the markers (or into docs/http.md, docs/timers.md or docs/lifecycle.md) first:\n  "
            + "\n  ".join(lost)
        )
    return readme[:begin] + body + "\n" + readme[end:]


def main(argv: list[str]) -> int:
    path = ROOT / "README.md"
    readme = path.read_text(encoding="utf-8")
    try:
        new = merged(readme)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    if "--check" in argv:
        if new != readme:
            print("README.md is not in step with the docs: run scripts/merge_readme.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
