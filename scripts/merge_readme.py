"""Copy the executed walkthroughs (docs/http.md, docs/timers.md, docs/lifecycle.md) into README.md.

The docs are replayed against live servers by tests/docs; the README carries them verbatim (headings one
level down) between the `walkthroughs:begin` and `walkthroughs:end` markers. Run after editing a doc.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = (("http.md", 1), ("timers.md", 0), ("lifecycle.md", 1))


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


def main() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    begin = readme.index("\n", readme.index("<!-- walkthroughs:begin")) + 1
    end = readme.index("<!-- walkthroughs:end -->")
    parts = [demote((ROOT / "docs" / name).read_text(encoding="utf-8"), levels) for name, levels in DOCS]
    body = "\n".join(parts).replace("# HTTP service walkthrough", "# HTTP service", 1)
    (ROOT / "README.md").write_text(readme[:begin] + body + "\n" + readme[end:], encoding="utf-8")


if __name__ == "__main__":
    main()
