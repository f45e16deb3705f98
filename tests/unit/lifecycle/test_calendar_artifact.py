"""The approver's day-by-day view of a calendar change."""

from __future__ import annotations

from rulesvc.lifecycle.calendar_artifact import calendar_changes
from rulesvc.sla.calendar_file import parse_calendar_text

BASE = """name: cn
timezone: Asia/Shanghai
confirmed_through: 2026-12-31
weekly:
  mon: ["09:00-12:00", "13:00-18:00"]
  fri: ["09:00-12:00", "13:00-18:00"]
holidays:
  2027-02-08: 春节
  2027-02-09: 春节
workdays:
  2026-10-10: 国庆节调休
"""


def summary(old: str, new: str) -> list[str]:
    before, errors, _ = parse_calendar_text("cn.yaml", old)
    after, more, _ = parse_calendar_text("cn.yaml", new)
    assert before is not None and after is not None, errors + more
    return [c["summary"] for c in calendar_changes(before, after)]


def test_days_added_removed_and_relabelled_in_date_order_then_fields() -> None:
    new = (
        BASE.replace("2026-12-31", "2027-12-31")
        .replace("  2027-02-09: 春节\n", "  2027-02-09: 春节（补假）\n  2027-02-10: 春节（补假）\n")
        .replace("  2027-02-08: 春节\n", "")
        .replace("2026-10-10: 国庆节调休", "2026-10-10: 国庆节调休\n  2027-02-07: 春节调休")
        .replace('  fri: ["09:00-12:00", "13:00-18:00"]', '  fri: ["09:00-12:00", "13:00-17:00"]')
    )
    assert summary(BASE, new) == [
        "2027-02-07（周日）：新增 调休上班（春节调休）",
        "2027-02-08（周一）：删除 放假（春节）",
        "2027-02-09（周二）：放假 春节 → 春节（补假）",
        "2027-02-10（周三）：新增 放假（春节（补假））",
        "weekly.fri: 09:00-12:00, 13:00-18:00 → 09:00-12:00, 13:00-17:00",
        "confirmed_through: 2026-12-31 → 2027-12-31",
    ]


def test_no_change_no_line() -> None:
    assert summary(BASE, BASE) == []
