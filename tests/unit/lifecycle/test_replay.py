"""The backtest report on the shipped rules: timer firings are counted and shown (never hidden, CLI too),
changes are broken down by action and by field value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.rulesets import _print_replay
from rulesvc.lang.loader import RulesFolder, load_folder, load_ruleset
from rulesvc.lifecycle.ports import LoggedDecision
from rulesvc.lifecycle.replay import backtest
from rulesvc.masking import MaskPolicy
from rulesvc.rulebook import RuleBook

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"
DECIDED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def folder() -> RulesFolder:
    loaded, errors = load_folder([RULESETS])
    assert not errors
    return loaded


def logged(decision_id: str, body: dict[str, object]) -> LoggedDecision:
    return LoggedDecision(decision_id, DECIDED, json.dumps(body, ensure_ascii=False), "{}")


def test_timer_firings_are_counted_and_shown(folder: RulesFolder, capsys: pytest.CaptureFixture[str]) -> None:
    source = folder.rulesets["expense-approval"].source_text.replace('"< 5000"', '"< 8000"')
    raised, errors = load_ruleset("expense-approval.yaml", source, folder.kinds, folder.calendars)
    assert not errors and raised is not None
    current = RuleBook(folder)
    draft = RuleBook(
        RulesFolder(folder.kinds, folder.calendars, {**folder.rulesets, raised.name: raised}, [])
    )
    claim = {
        "event_id": "c1",
        "type": "ticket.created",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "ticket": {
            "kind": "expense",
            "id": "E-1",
            "expense_type": "差旅费",
            "amount": 6000,
            "applicant_rank": "部门经理",
        },
    }
    timer = {
        "event_id": "timer:C-1:首次响应:due",
        "type": "timer.due",
        "occurred_at": "2026-11-20T11:00:00+08:00",
    }
    report = backtest(
        [
            logged("d1", claim),
            logged("d2", timer),
            logged("d3", {**timer, "event_id": "timer:C-2:首次响应:due"}),
        ],
        kind="expense",
        then=lambda _: current,
        base=lambda _: current,
        candidate=lambda _: draft,
        evaluate=lambda book, event: book.evaluate(event),
        masking=MaskPolicy.build(),
        start=datetime(2026, 11, 1, tzinfo=UTC),
        end=datetime(2026, 12, 1, tzinfo=UTC),
        limit=100,
    )
    assert (report["decisions"], report["changed"], report["timer_firings"]) == (1, 1, 2)
    assert report["by_value"]["assign.group"] == {"费用审批岗": {"added": 0, "removed": 1}}
    assert report["totals"]["trigger_payment.amount"] == {"added": "6000", "removed": "0", "net": "6000"}
    _print_replay(report)
    shown = capsys.readouterr().out
    assert "区间内的计时触发：2 条（不重新判定：结果取决于计时状态）" in shown
    assert "assign.group = 费用审批岗: +0 -1" in shown
    assert "trigger_payment.amount 合计：+6000 -0（净 6000）" in shown
