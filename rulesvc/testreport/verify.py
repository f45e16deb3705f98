"""Checking an evidence file (`rulesvc report verify FILE`): the content it carries must hash to the digest
it states, and the file must be exactly what that content renders to (HTML: the same text; XLSX: the same
cell values on every sheet; PDF: the same text, read with poppler's `pdftotext`, the content read from its
attachment with `pdfdetach`). Any change — a result, a hash, a date, the embedded content or the digest —
fails one of the two checks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rulesvc.testreport.document import FORMAT, Evidence, digest_of
from rulesvc.testreport.html_file import read_html, render_html
from rulesvc.testreport.pdf_file import ATTACHMENT, PdfUnavailableError, render_pdf
from rulesvc.testreport.xlsx_file import read_xlsx, render_xlsx, sheets_of

DIGEST_LABEL = "报告摘要（SHA-256）"
_PDF_DIGEST = re.compile(r"SHA-256：\s*([0-9a-f]{64})")


@dataclass
class Verdict:
    """What `verify` found: `ok` when both checks hold; `problems` in Chinese otherwise."""

    file: str
    format: str
    stated: str | None = None
    computed: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "ok": self.ok,
            "stated_sha256": self.stated,
            "computed_sha256": self.computed,
            "problems": self.problems,
        }


class _Unreadable(Exception):
    pass


def _stated_html(text: str) -> str | None:
    marker = 'name="rulesvc-evidence-sha256" content="'
    start = text.find(marker)
    return text[start + len(marker) : start + len(marker) + 64] if start >= 0 else None


def _stated_xlsx(sheets: Mapping[str, list[list[Any]]]) -> str | None:
    for row in sheets.get("概要", []):
        if row and row[0] == DIGEST_LABEL:
            return str(row[1])
    return None


def _poppler(tool: str, *args: str) -> str:
    program = shutil.which(tool)
    if program is None:
        raise _Unreadable(f"校验 PDF 需要 {tool}（poppler-utils）")
    done = subprocess.run([program, *args], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise _Unreadable(f"{tool} 无法读取文件：{done.stderr.strip()}")
    return done.stdout


def pdf_text(path: Path) -> str:
    """The PDF's text as `pdftotext -layout` reads it."""
    return _poppler("pdftotext", "-layout", "-enc", "UTF-8", str(path), "-")


def _pdf_content(path: Path) -> tuple[Mapping[str, Any] | None, str]:
    with tempfile.TemporaryDirectory() as folder:
        _poppler("pdfdetach", "-saveall", "-o", folder, str(path))
        attached = Path(folder) / ATTACHMENT
        try:
            value = json.loads(attached.read_text(encoding="utf-8")) if attached.exists() else None
        except ValueError:
            value = None
    return (value if isinstance(value, dict) else None), pdf_text(path)


def _check(verdict: Verdict, content: Mapping[str, Any] | None, stated: str | None) -> Evidence | None:
    verdict.stated = stated
    if content is None or content.get("format") != FORMAT:
        verdict.problems.append("文件中没有可读的报告内容（不是 rulesvc 证据文件，或内容被改坏）")
        return None
    verdict.computed = digest_of(content)
    if stated is None:
        verdict.problems.append("文件没有写明报告摘要")
    elif stated != verdict.computed:
        verdict.problems.append("报告内容的摘要与文件写明的摘要不符（内容或摘要被改动）")
    return Evidence(content)


def verify_file(path: Path) -> Verdict:
    suffix = path.suffix.lower().lstrip(".")
    verdict = Verdict(str(path), suffix)
    try:
        if suffix in ("html", "htm"):
            text = path.read_text(encoding="utf-8")
            evidence = _check(verdict, read_html(text), _stated_html(text))
            if evidence is not None and render_html(evidence) != text:
                verdict.problems.append("页面与报告内容不一致（页面被改动）")
        elif suffix == "xlsx":
            data = path.read_bytes()
            sheets = sheets_of(data)
            evidence = _check(verdict, read_xlsx(data), _stated_xlsx(sheets))
            if evidence is not None and sheets_of(render_xlsx(evidence)) != sheets:
                verdict.problems.append("工作表与报告内容不一致（单元格被改动）")
        elif suffix == "pdf":
            content, text = _pdf_content(path)
            found = _PDF_DIGEST.search(text)
            evidence = _check(verdict, content, found.group(1) if found else None)
            if evidence is not None:
                with tempfile.TemporaryDirectory() as folder:
                    again = Path(folder) / "again.pdf"
                    again.write_bytes(render_pdf(evidence))
                    if pdf_text(again) != text:
                        verdict.problems.append("PDF 文字与报告内容不一致（文件被改动）")
        else:
            verdict.problems.append("只能校验 .html、.xlsx、.pdf 证据文件")
    except PdfUnavailableError as exc:
        verdict.problems.append(f"无法核对：{exc}")
    except (_Unreadable, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        verdict.problems.append(f"无法读取文件：{exc}")
    return verdict
