"""What the console shows of rules and decided actions: the ruleset's own notation for rules, Chinese labels
and Beijing times for decided actions, words for a firing with no conditions; never a Python repr."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from api.console.views import action_field_text, action_view, json_text, no_conditions_text, ruleset_view
from rulesvc.lang.loader import load_folder

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"


def test_rules_read_as_written_with_durations_warnings_and_lists() -> None:
    folder = load_folder([RULESETS])[0]
    complaint = ruleset_view(folder.rulesets["complaint-sla"], None)
    then = {r["id"]: r["then"] for r in complaint["rules"]}
    assert then["启动首次响应计时"] == [
        "start_timer: {timer: 首次响应, duration: 2h, calendar: 24x7, warnings: {预警: 90m}}"
    ]
    assert then["投诉超时预警"][0].startswith("notify: {to: owner, channels: [sms, email, in_app], ")
    shown = [a for r in ruleset_view(folder.rulesets["loan-approval"], None)["rules"] for a in r["then"]]
    assert "assert: {fact: 大额贷款, with: {金额: ticket.amount}}" in shown
    assert not any("ParamSpec" in a or "'" in a for a in shown)


def test_a_start_timer_reads_in_chinese_with_beijing_times() -> None:
    action = {
        "type": "start_timer",
        "rule": "complaint-sla/启动首次响应计时",
        "warnings": [{"after": "1h30m", "at": "2026-12-06T03:30:51+00:00", "name": "预警"}],
        "timer": "首次响应",
        "due_at": "2026-12-06T12:00:51+08:00",
        "provisional": True,
    }
    view = action_view(action)
    assert (view["label"], view["rule"]) == ("启动计时", "complaint-sla/启动首次响应计时")
    fields = {f["key"]: (f["label"], f["text"]) for f in view["fields"]}
    assert [f["key"] for f in view["fields"]] == ["timer", "due_at", "warnings", "provisional"]
    assert fields["warnings"] == ("预警", "「预警」 启动后 1h30m（2026-12-06 11:30:51）")
    assert fields["due_at"] == ("截止", "2026-12-06 12:00:51")
    assert fields["provisional"][1].startswith("是")


def test_other_arguments_are_json_never_a_python_repr() -> None:
    assert action_field_text("channels", ["sms", "in_app"]) == "短信、站内信"
    assert action_field_text("errors", [{"path": "ticket.amount", "code": "x"}]) == (
        '[{"path":"ticket.amount","code":"x"}]'
    )
    assert action_field_text("amount", Decimal("4999.990")) == "4999.990"
    assert json_text({"a": [1, True, None]}) == '{"a":[1,true,null]}' and json_text("王五") == "王五"
    fired_by = {"timer": "首次响应", "point": "due", "due_at": "2026-11-02T11:00:00+08:00", "late_by": 600.0}
    assert (
        action_field_text("fired_by", fired_by)
        == "计时器 首次响应 的截止点（2026-11-02 11:00:00），迟 600 秒触发"
    )


def test_a_firing_without_conditions_is_said_in_words() -> None:
    assert "没有 when 条件" in no_conditions_text({"ruleset": "complaint-sla", "rule": "启动首次响应计时"})
    assert "各输入列均为任意值" in no_conditions_text({"ruleset": "expense-approval", "rule": "审批/r1"})
    assert "invalid" in no_conditions_text({"ruleset": "kind:loan", "rule": "invalid"})
