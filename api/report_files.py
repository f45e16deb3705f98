"""Every report as a file: `?format=csv|xlsx` on the `/v1/reports/...` routes, one renderer for all of them.

A report answers JSON `{..., "groups": [{"key": {...}, <figures>...}], "total"?: {<figures>}}`; its file is
one row per group (the key's parts, then the figures, nested figures flattened as `outer.inner`), and a last
row 合计 for the total. Headers are `中文 (name)`: readable in Excel, stable for scripts. CSV is UTF-8 with a
byte-order mark (Excel opens Chinese correctly); XLSX has the table on a first sheet and the report's
parameters on a second (说明). Times in cells are as in the JSON (ISO 8601 with offset).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from starlette.responses import Response

from rulesvc.spreadsheet import write_table
from rulesvc.testreport.document import Evidence

Format = Literal["json", "csv", "xlsx"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

LABELS = {
    # keys
    "ruleset": "规则集",
    "group": "组",
    "timer": "计时",
    "kind": "工单类型",
    "calendar": "日历",
    "rule": "规则",
    "day": "日",
    "week": "周",
    "month": "月",
    "stage": "阶段",
    "assignee": "处理人",
    "field": "字段",
    "value": "取值",
    "period": "周期",
    # figures
    "total": "总数",
    "met": "达成",
    "breached": "超时",
    "attainment": "达成率",
    "open_breaches": "未结超时",
    "avg_breach_seconds": "平均超时秒数",
    "max_breach_seconds": "最长超时秒数",
    "avg_remaining_seconds": "平均剩余秒数",
    "provisional": "暂定",
    "hits": "命中次数",
    "decisions": "决策数",
    "tickets": "工单数",
    "fired": "已命中",
    "last_hit": "最近命中",
    "auto_approved": "自动审批数",
    "auto_approval_rate": "自动审批率",
    "amount": "金额",
    "auto_amount": "自动审批金额",
    "count": "次数",
    "avg_seconds": "平均秒数",
    "p90_seconds": "P90 秒数",
    "avg_handling_seconds": "平均处理秒数",
    "point": "触发点",
    "due_soon": "即将到期",
    "overdue": "逾期未触发",
    "next_at": "最近到期",
    "late": "迟到触发",
    "avg_late_seconds": "平均迟到秒数",
    "max_late_seconds": "最长迟到秒数",
}
TOTAL_LABEL = "合计"


FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, XLSX_TYPE: {}}, "description": "JSON，或 format=csv|xlsx 时的文件"}
}


def header(name: str) -> str:
    label = LABELS.get(name.rsplit(".", 1)[-1])
    return f"{label} ({name})" if label else name


def _flat(figures: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in figures.items():
        if name == "key":
            continue
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{name}."))
        elif isinstance(value, list):
            flat[prefix + name] = "、".join(str(v) for v in value)
        else:
            flat[prefix + name] = value
    return flat


def table(report: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(column names, rows) of a report: the group keys first, then every figure."""
    groups: Sequence[Mapping[str, Any]] = report.get("groups") or []
    keys: dict[str, None] = {}
    figures: dict[str, None] = {}
    flats = []
    for group in groups:
        keys.update(dict.fromkeys(group.get("key", {})))
        flat = _flat(group)
        figures.update(dict.fromkeys(flat))
        flats.append((group.get("key", {}), flat))
    total = report.get("total")
    total_flat = _flat(total) if isinstance(total, Mapping) else None
    if total_flat is not None:
        figures.update(dict.fromkeys(total_flat))
    columns = list(keys) + list(figures)
    rows = [[key.get(k) for k in keys] + [flat.get(f) for f in figures] for key, flat in flats]
    if total_flat is not None:
        label = [TOTAL_LABEL] + [None] * (len(keys) - 1) if keys else []
        rows.append(label + [total_flat.get(f) for f in figures])
        if not keys:
            columns = list(figures)
    return columns, rows


def _parameters(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (name, "、".join(map(str, value)) if isinstance(value, list) else str(value))
        for name, value in report.items()
        if name not in ("groups", "total") and not isinstance(value, Mapping)
    ]


def render_csv(report: Mapping[str, Any]) -> bytes:
    columns, rows = table(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header(c) for c in columns])
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue().encode("utf-8-sig")


def render_xlsx(report: Mapping[str, Any], title: str) -> bytes:
    columns, rows = table(report)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    write_table(sheet, [header(c) for c in columns], rows)
    about = book.create_sheet("说明")
    parameters = [(header(n) if n in LABELS else n, v) for n, v in _parameters(report)]
    generated = ("生成时间", datetime.now(SHANGHAI).isoformat(timespec="seconds"))
    write_table(about, ["参数", "值"], [*parameters, generated])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _local_day(text: str, report: Mapping[str, Any]) -> str:
    try:
        zone = ZoneInfo(str(report.get("timezone") or "Asia/Shanghai"))
        return datetime.fromisoformat(text).astimezone(zone).strftime("%Y%m%d")
    except (ValueError, KeyError):
        return text[:10].replace("-", "")


def report_response(report: Mapping[str, Any], fmt: Format, name: str, title: str) -> Response | None:
    """The report as a CSV or XLSX download named `name-<from>-<to>.<ext>` (`title` in Chinese for the
    sheet and the UTF-8 file name); None for JSON (the caller answers it)."""
    if fmt == "json":
        return None
    span = "-".join(_local_day(str(report[k]), report) for k in ("from", "to") if report.get(k))
    stem = f"{name}-{span}" if span else name
    body = render_csv(report) if fmt == "csv" else render_xlsx(report, title)
    return attachment(body, fmt, f"{stem}.{fmt}", f"{title}-{span}.{fmt}")


def attachment(body: bytes, fmt: Literal["csv", "xlsx"], ascii_name: str, name: str) -> Response:
    """A CSV or XLSX download: `ascii_name` for old clients, `name` (UTF-8, may be Chinese) for the rest."""
    media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX_TYPE
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})


EVIDENCE_TYPES = {"html": "text/html; charset=utf-8", "xlsx": XLSX_TYPE, "pdf": "application/pdf"}
EVIDENCE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {media.partition(";")[0]: {} for media in EVIDENCE_TYPES.values()},
        "description": "证据文件（下载）；报告摘要在文件中写明，rulesvc report verify 可校验",
    }
}


def evidence_response(evidence: Evidence, fmt: Literal["html", "xlsx", "pdf"], stem: str) -> Response:
    """An evidence file as a download named `<stem>-<YYYYMMDD>.<ext>` (an ASCII name beside the UTF-8 one:
    ruleset names may be Chinese). The renderers are `rulesvc.testreport`'s, the same as `rulesvc test`'s."""
    from rulesvc.testreport.html_file import render_html
    from rulesvc.testreport.pdf_file import render_pdf
    from rulesvc.testreport.xlsx_file import render_xlsx

    if fmt == "xlsx":
        body = render_xlsx(evidence)
    elif fmt == "pdf":
        body = render_pdf(evidence)
    else:
        body = render_html(evidence).encode("utf-8")
    day = str(evidence.content["generated_at"])[:10].replace("-", "")
    name = f"{stem}-{day}.{fmt}"
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name)
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    headers = {"Content-Disposition": disposition, "X-Evidence-SHA256": evidence.digest}
    return Response(body, media_type=EVIDENCE_TYPES[fmt], headers=headers)
