"""iCalendar both ways, and calendar files rendered from a calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rulesvc.sla.calendar_exchange import ics_days, merge_ics, render_calendar, to_ics
from rulesvc.sla.calendar_file import parse_calendar_text

CN = (Path(__file__).resolve().parents[3] / "rulesets" / "calendars" / "cn.yaml").read_text(encoding="utf-8")


def test_ics_round_trip_keeps_every_day_and_label() -> None:
    calendar, _, _ = parse_calendar_text("cn.yaml", CN)
    assert calendar is not None
    data = to_ics(calendar, 1)
    assert b"BEGIN:VCALENDAR" in data and "调休上班：国庆节调休".encode() in data
    days = ics_days(data)
    assert {d for d, (k, _) in days.items() if k == "holiday"} == set(calendar.holidays)
    assert {d for d, (k, _) in days.items() if k == "workday"} == set(calendar.workdays)
    assert days[date(2027, 2, 5)] == ("holiday", "农历除夕")
    assert to_ics(calendar, 1) == data  # the same calendar gives the same file


def test_a_foreign_feed_is_laid_over_the_base_and_renders_to_a_valid_file() -> None:
    base, _, _ = parse_calendar_text("cn.yaml", CN)
    assert base is not None
    feed = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//ZH\r\n"
        "BEGIN:VEVENT\r\nUID:a\r\nDTSTART;VALUE=DATE:20270211\r\nDTEND;VALUE=DATE:20270213\r\n"
        "SUMMARY:春节\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:b\r\nDTSTART;VALUE=DATE:20270207\r\nSUMMARY:春节补班\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:c\r\nDTSTART:20270301T100000Z\r\nSUMMARY:会议\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    ).encode()
    merged = merge_ics(base, feed)
    assert {date(2027, 2, 11), date(2027, 2, 12)} <= merged.holidays
    assert date(2027, 2, 7) in merged.workdays and date(2027, 2, 7) not in merged.holidays
    assert merged.day_labels[date(2027, 2, 7)] == "春节补班"
    text = render_calendar(merged, ["test"])
    again, errors, _ = parse_calendar_text("cn.yaml", text)
    assert again is not None, errors
    assert again.holidays == merged.holidays and again.workdays == merged.workdays
    assert again.weekly == base.weekly and again.confirmed_through == base.confirmed_through
