"""What `rulesvc rulesets` and `rulesvc calendars` print for times and draft states: Beijing time unless
`RULESVC_TZ` says otherwise (whatever the machine's zone), Chinese words with the state's code."""

from __future__ import annotations

import pytest

from cli.rulesets import _effective, _when, status_text


def test_times_are_beijing_time_unless_rulesvc_tz_names_a_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RULESVC_TZ", raising=False)
    monkeypatch.setenv("TZ", "America/New_York")
    assert _when("2026-12-01T00:00:00+00:00") == "2026-12-01T08:00:00+08:00"
    assert _effective("2026-12-01T00:00:00Z") == "2026-12-01T08:00:00+08:00 起生效"
    assert _effective("1970-01-01T00:00:00+00:00") == "一直生效"
    monkeypatch.setenv("RULESVC_TZ", "UTC")
    assert _when("2026-12-01T08:00:00+08:00") == "2026-12-01T00:00:00+00:00"


def test_draft_states_read_in_chinese_with_their_code() -> None:
    assert status_text("submitted") == "状态 待审批（submitted）"
    assert status_text("draft") == "状态 编辑中（draft）"
    assert status_text("unheard_of") == "状态 unheard_of（unheard_of）"
