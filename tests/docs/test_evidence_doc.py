"""The evidence file steps of README.md ("合规证据文件") and docs/evidence.md run as written, through bash with
this environment's `rulesvc` on the PATH, in a directory holding a copy of the shipped rules; the by-hand
digest of docs/evidence.md prints the digest the file states."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.docs.test_backup_doc import run as run_script
from tests.evidence_support import require_pdf_tools

ROOT = Path(__file__).resolve().parents[2]


def block(path: Path, marker: str) -> str:
    text = path.read_text(encoding="utf-8")
    begin = text.index(f"<!-- evidence:{marker} -->")
    end = text.index("<!-- evidence:end -->", begin)
    found = re.findall(r"```sh\n(.*?)```", text[begin:end], flags=re.S)
    assert len(found) == 1, (path.name, marker)
    return found[0]


def run(script: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RULESVC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    return run_script(script, cwd, env)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "rulesets", tmp_path / "rulesets")
    return tmp_path


@pytest.mark.parametrize(("doc", "marker"), [("README.md", "readme"), ("docs/evidence.md", "cli")])
def test_steps_run_as_written(doc: str, marker: str, workdir: Path) -> None:
    require_pdf_tools()
    output = run(block(ROOT / doc, marker), workdir)
    digests = set(re.findall(r"报告摘要 SHA-256 ([0-9a-f]{64})", output))
    assert len(digests) == 1 and '"ok": true' in output
    for name in ("证据.html", "证据.xlsx", "证据.pdf"):
        assert (workdir / name).stat().st_size > 0


def test_digest_by_hand(workdir: Path) -> None:
    run("rulesvc test rulesets/ --report 证据.html", workdir)
    page = (workdir / "证据.html").read_text(encoding="utf-8")
    stated = re.search(r'name="rulesvc-evidence-sha256" content="([0-9a-f]{64})"', page)
    assert stated is not None
    by_hand = run(block(ROOT / "docs" / "evidence.md", "by-hand"), workdir).strip()
    assert by_hand == stated.group(1)
    assert f'<span class="hash" id="digest">{by_hand}</span>' in page
