"""The evidence file as an XLSX workbook: 概要 (what, when, verdict, digest), 规则集 (versions, hashes, audit
chain, author, approver), 样例 (every case; expected, actual and the difference for a failure), 覆盖率; and a
hidden sheet 内容 holding the content as JSON (in pieces, a cell holds at most 32,767 characters) so the
digest can be checked and the sheets rendered again to compare."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from openpyxl import Workbook, load_workbook

from rulesvc.spreadsheet import append_text, write_table
from rulesvc.testreport.document import DIGEST_METHOD, Evidence, percent
from rulesvc.testreport.html_file import chain_text, result_text

DATA_SHEET = "内容"
_PIECE = 30_000


def _lines(items: list[str]) -> str:
    return "\n".join(items)


def render_xlsx(evidence: Evidence) -> bytes:
    content = evidence.content
    summary = content["summary"]
    book = Workbook()
    overview = book.active
    assert overview is not None
    overview.title = "概要"
    write_table(
        overview,
        ["项目", "内容"],
        [
            ["报告", content["title"]],
            ["对象", content["subject"]],
            ["生成时间（北京时间）", content["generated_at"].replace("T", " ")],
            ["结论", "全部通过" if evidence.passed else f"未通过（{summary['failed']} 个样例失败）"],
            ["样例总数", summary["total"]],
            ["通过", summary["passed"]],
            ["失败", summary["failed"]],
            ["规则覆盖率", percent(summary["coverage"])],
            ["已覆盖/规则与表格行", f"{summary['covered']}/{summary['rules']}"],
            ["样例文件哈希（SHA-256）", content["cases_sha256"]],
            ["报告摘要（SHA-256）", evidence.digest],
            ["摘要算法", DIGEST_METHOD],
        ],
        max_width=80,
    )
    write_table(
        book.create_sheet("规则集"),
        [
            "规则集",
            "版本",
            "状态",
            "内容哈希（SHA-256）",
            "审计链位置",
            "审计链哈希",
            "作者",
            "审批人",
            "审批时间",
            "生效时间",
        ],
        [
            [
                r["name"],
                r["version"],
                r["state"],
                r["content_sha256"],
                chain_text(r["chain"]),
                r["chain"]["hash"] if r["chain"] else "",
                r["author"],
                r["approver"],
                r["approved_at"],
                r["effective_at"],
            ]
            for r in content["rulesets"]
        ],
        max_width=70,
    )
    write_table(
        book.create_sheet("样例"),
        ["序号", "样例", "文件", "行", "结果", "期望的动作", "不应出现的动作", "实际的动作", "差异"],
        [
            [
                index,
                case["name"],
                case["file"],
                case["line"],
                result_text(case["passed"]),
                _lines(case.get("expected", [])),
                _lines(case.get("forbidden", [])),
                _lines(case.get("actual", [])),
                _lines(case.get("problems", [])),
            ]
            for index, case in enumerate(content["cases"], start=1)
        ],
        wrap=True,
    )
    write_table(
        book.create_sheet("覆盖率"),
        ["规则集", "规则与表格行", "已覆盖", "覆盖率", "未被任何样例触发"],
        [
            [c["ruleset"], c["rules"], c["covered"], percent(c["ratio"]), _lines(c["uncovered"])]
            for c in content["coverage"]
        ],
        wrap=True,
    )
    data = book.create_sheet(DATA_SHEET)
    text = json.dumps(content, ensure_ascii=False, sort_keys=True)
    for start in range(0, len(text), _PIECE):
        append_text(data, [text[start : start + _PIECE]])
    data.sheet_state = "hidden"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheets_of(data: bytes) -> dict[str, list[list[Any]]]:
    """Every sheet's cell values, row by row (what a reader sees; styles aside)."""
    book = load_workbook(io.BytesIO(data), read_only=True)
    try:
        return {
            sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets
        }
    finally:
        book.close()


def read_xlsx(data: bytes) -> Mapping[str, Any] | None:
    """The content kept in an evidence workbook, or None when it has none that parses."""
    rows = sheets_of(data).get(DATA_SHEET, [])
    try:
        value = json.loads("".join(str(row[0]) for row in rows if row and row[0] is not None))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
