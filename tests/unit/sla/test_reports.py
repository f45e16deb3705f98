"""SLA attainment aggregation (pure, over SLA records)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from rulesvc.sla.reports import InvalidReportError, SlaRecord, parse_group_by, sla_report


def record(ruleset: str, outcome: str, decided: datetime, **kw: object) -> SlaRecord:
    values: dict[str, object] = {
        "ticket_id": "T",
        "kind": "complaint",
        "timer": "首次响应",
        "ruleset": ruleset,
        "rule": f"{ruleset}/r",
        "calendar": "24x7",
        "group": "",
        "started_at": decided - timedelta(hours=2),
        "due_at": decided,
        "outcome": outcome,
        "decided_at": decided,
        "stopped_at": decided,
        "remaining": timedelta(0),
        "breach": timedelta(0),
    }
    values.update(kw)
    return SlaRecord(**values)  # type: ignore[arg-type]


class Source:
    def __init__(self, records: list[SlaRecord]) -> None:
        self.records = records

    def sla_records(self, start: datetime, end: datetime) -> Iterator[SlaRecord]:
        return (r for r in self.records if start <= r.decided_at < end)


D1 = datetime(2026, 11, 1, 20, tzinfo=UTC)  # 2026-11-02 04:00 in Shanghai
D2 = datetime(2026, 11, 3, 2, tzinfo=UTC)
SOURCE = Source(
    [
        record("complaint-sla", "met", D1, remaining=timedelta(minutes=30)),
        record("complaint-sla", "breached", D1, breach=timedelta(minutes=20)),
        record("complaint-sla", "breached", D2, stopped_at=None),
        record("loan-sla", "met", D2, remaining=timedelta(hours=1)),
    ]
)


def test_totals_and_groups_by_ruleset_and_day_in_shanghai_time() -> None:
    report = sla_report(SOURCE, D1 - timedelta(days=1), D2 + timedelta(days=1), parse_group_by("ruleset,day"))
    assert report["total"]["total"] == 4 and report["total"]["attainment"] == 0.5
    groups = {tuple(g["key"].values()): g for g in report["groups"]}
    first = groups[("complaint-sla", "2026-11-02")]
    assert (first["met"], first["breached"], first["attainment"]) == (1, 1, 0.5)
    assert first["avg_breach_seconds"] == 1200.0 and first["avg_remaining_seconds"] == 1800.0
    open_one = groups[("complaint-sla", "2026-11-03")]
    # an open breach counts its overdue time up to the report's end (wall-clock without its calendar)
    assert open_one["open_breaches"] == 1 and open_one["max_breach_seconds"] == 86400.0
    assert groups[("loan-sla", "2026-11-03")]["attainment"] == 1.0


def test_an_open_breach_is_measured_up_to_now_on_its_calendar() -> None:
    from rulesvc.sla.calendar import always_open

    end = D2 + timedelta(days=1)
    report = sla_report(SOURCE, D2, end, calendars={"24x7": always_open()}, now=D2 + timedelta(hours=1))
    assert report["total"]["open_breaches"] == 1 and report["total"]["max_breach_seconds"] == 3600.0
    before_due = sla_report(SOURCE, D2, end, now=D2 - timedelta(hours=1))
    assert before_due["total"]["max_breach_seconds"] == 0.0


def test_period_filter_and_month_buckets() -> None:
    report = sla_report(SOURCE, D2, D2 + timedelta(hours=1), parse_group_by("month"))
    assert report["total"]["total"] == 2
    assert [g["key"] for g in report["groups"]] == [{"month": "2026-11"}]


@pytest.mark.parametrize("text", ["colour", "day,month"])
def test_bad_group_by_is_refused(text: str) -> None:
    with pytest.raises(InvalidReportError):
        parse_group_by(text)


def test_bad_range_is_refused() -> None:
    with pytest.raises(InvalidReportError):
        sla_report(SOURCE, D2, D1)
