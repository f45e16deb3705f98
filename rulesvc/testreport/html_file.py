"""The evidence file as one self-contained HTML page: styles inline, no script run, no external asset,
laid out for A4 printing; the content it renders is embedded as JSON (`<script type="application/json">`,
never executed) so the digest can be checked and the page rendered again to compare. The PDF is this page
printed (`pdf_file`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from html.parser import HTMLParser
from typing import Any

from rulesvc.testreport.document import DIGEST_METHOD, UNPUBLISHED, Evidence, percent

DATA_ID = "rulesvc-evidence"
"""The id of the element holding the embedded content."""

STYLE = """
@page { size: A4; margin: 16mm 14mm 18mm 14mm;
  @bottom-right { content: "第 " counter(page) " 页，共 " counter(pages) " 页"; font-size: 8pt; color: #555; } }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif;
  font-size: 10pt; color: #111; margin: 0 auto; max-width: 190mm; line-height: 1.45; }
h1 { font-size: 17pt; margin: 0 0 4pt; } h2 { font-size: 12.5pt; margin: 14pt 0 5pt; border-bottom: 1px solid #888; }
h3 { font-size: 10.5pt; margin: 10pt 0 3pt; }
table { border-collapse: collapse; width: 100%; margin: 3pt 0 6pt; }
th, td { border: 1px solid #999; padding: 2pt 4pt; text-align: left; vertical-align: top; }
th { background: #eee; white-space: nowrap; } tr { page-break-inside: avoid; }
tr.hashes td { border-top: none; color: #333; }
.hash { font-family: "DejaVu Sans Mono", "Noto Sans Mono CJK SC", monospace; font-size: 7.5pt; }
.pass { color: #0a6b2a; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.verdict { font-size: 12pt; } ul { margin: 2pt 0 4pt 14pt; padding: 0; }
.failure { border: 1px solid #d88; padding: 4pt 6pt; margin: 6pt 0; page-break-inside: avoid; }
.note { color: #444; font-size: 8.5pt; }
@media print { body { max-width: none; } }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Cells are HTML already (escaped by the caller)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n"


def _list(items: Sequence[str]) -> str:
    if not items:
        return "<p>（无）</p>"
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def chain_text(chain: Mapping[str, Any] | None) -> str:
    return f"第 {chain['seq']} 条" if chain else UNPUBLISHED


def result_text(passed: bool) -> str:
    return "通过" if passed else "失败"


def _rulesets(content: Mapping[str, Any]) -> str:
    """One row per ruleset, and under it a full-width row of its hashes (one line each: copyable, and
    read whole by `pdftotext`)."""
    headers = ["规则集", "版本", "状态", "审计链位置", "作者", "审批人", "生效时间"]
    rows = []
    for r in content["rulesets"]:
        chain = r["chain"]
        hashes = f'内容哈希（SHA-256）：<span class="hash">{_e(r["content_sha256"])}</span>'
        if chain:
            hashes += f'<br>审计链条目哈希：<span class="hash">{_e(chain["hash"])}</span>'
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{cell}</td>"
                for cell in (
                    _e(r["name"]),
                    _e(r["version"]),
                    _e(r["state"] or "—"),
                    _e(chain_text(chain)),
                    _e(r["author"] or "—"),
                    _e(r["approver"] or "—") + (f"<br>{_e(r['approved_at'])}" if r["approved_at"] else ""),
                    _e(r["effective_at"] or "—"),
                )
            )
            + f'</tr>\n<tr class="hashes"><td colspan="{len(headers)}">{hashes}</td></tr>\n'
        )
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{''.join(rows)}</tbody></table>\n"


def _cases(content: Mapping[str, Any]) -> str:
    rows = [
        [
            str(index),
            _e(case["name"]),
            f"{_e(case['file'])}:{case['line']}",
            f'<span class="{"pass" if case["passed"] else "fail"}">{result_text(case["passed"])}</span>',
        ]
        for index, case in enumerate(content["cases"], start=1)
    ]
    return _table(["序号", "样例", "位置", "结果"], rows)


def _failures(content: Mapping[str, Any]) -> str:
    failed = [c for c in content["cases"] if not c["passed"]]
    if not failed:
        return "<p>全部样例通过，没有失败。</p>\n"
    parts = []
    for case in failed:
        parts.append(
            f'<div class="failure"><h3>{_e(case["name"])}（{_e(case["file"])}:{case["line"]}）</h3>'
            f"<p>期望的动作：</p>{_list(case['expected'])}"
            + (f"<p>不应出现的动作：</p>{_list(case['forbidden'])}" if case["forbidden"] else "")
            + f"<p>实际的动作：</p>{_list(case['actual'])}"
            f"<p>差异：</p>{_list(case['problems'])}</div>\n"
        )
    return "".join(parts)


def _coverage(content: Mapping[str, Any]) -> str:
    rows = [
        [
            _e(c["ruleset"]),
            str(c["rules"]),
            str(c["covered"]),
            percent(c["ratio"]),
            _e("、".join(c["uncovered"]) or "—"),
        ]
        for c in content["coverage"]
    ]
    return _table(["规则集", "规则与表格行", "已覆盖", "覆盖率", "未被任何样例触发"], rows)


def embedded(content: Mapping[str, Any]) -> str:
    """The content as JSON safe inside a script element (`<`, `>`, `&` escaped as JSON escapes)."""
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, indent=1)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_html(evidence: Evidence) -> str:
    content = evidence.content
    summary = content["summary"]
    verdict = (
        '<span class="pass">全部通过</span>'
        if evidence.passed
        else f'<span class="fail">未通过（{summary["failed"]} 个样例失败）</span>'
    )
    overview = _table(
        ["项目", "内容"],
        [
            ["对象", _e(content["subject"])],
            ["生成时间", _e(content["generated_at"].replace("T", " ")) + "（北京时间）"],
            ["结论", f'<span class="verdict">{verdict}</span>'],
            ["样例", f"共 {summary['total']} 个：通过 {summary['passed']}，失败 {summary['failed']}"],
            [
                "规则覆盖率",
                f"{percent(summary['coverage'])}（{summary['covered']}/{summary['rules']} 条规则与表格行）",
            ],
            ["样例文件哈希（SHA-256）", f'<span class="hash">{_e(content["cases_sha256"] or "—")}</span>'],
        ],
    )
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="rulesvc-evidence-sha256" content="{evidence.digest}">\n'
        f"<title>{_e(content['title'])}：{_e(content['subject'])}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_e(content['title'])}</h1>\n{overview}"
        f"<h2>规则集版本</h2>\n{_rulesets(content)}"
        f"<h2>样例结果</h2>\n{_cases(content)}"
        f"<h2>失败样例：期望与实际</h2>\n{_failures(content)}"
        f"<h2>规则覆盖率</h2>\n{_coverage(content)}"
        "<h2>报告摘要</h2>\n"
        f'<p>SHA-256：<span class="hash" id="digest">{evidence.digest}</span></p>\n'
        f'<p class="note">{_e(DIGEST_METHOD)}。</p>\n'
        f'<script type="application/json" id="{DATA_ID}">\n{embedded(content)}\n</script>\n'
        "</body>\n</html>\n"
    )


class _DataReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = tag == "script" and ("id", DATA_ID) in attrs

    def handle_endtag(self, tag: str) -> None:
        self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.data.append(data)


def read_html(text: str) -> Mapping[str, Any] | None:
    """The content embedded in an evidence page, or None when it has none that parses."""
    reader = _DataReader()
    reader.feed(text)
    try:
        value = json.loads("".join(reader.data))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
