"""What a draft changes in its ruleset's case file, case by case, for the approver (in Chinese).

A case file is the bank's statement of what the rules must do, so a change to it is reviewed like a change
to the rules: each case added, removed, or whose expected result (or input) changed, with what it pinned.
A case is identified by its name; a renamed case shows as removed and added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rulesvc.cases.model import Case, load_case_text
from rulesvc.lang.labels import action_label
from rulesvc.model import to_jsonable

ADDED, REMOVED, EXPECT_CHANGED, GIVEN_CHANGED = "added", "removed", "expect_changed", "given_changed"
LABELS = {ADDED: "新增样例", REMOVED: "删除样例", EXPECT_CHANGED: "预期结果改变", GIVEN_CHANGED: "输入改变"}


def _cases(file: str, text: str | None) -> dict[str, Case]:
    if not text:
        return {}
    cases, _ = load_case_text(file, text)
    return {case.name: case for case in cases}


def expectation_text(items: Sequence[Mapping[str, Any]]) -> str:
    """`{type: assign, group: 费用审批岗}` → `分派（审批组: 费用审批岗）`, several joined by `、`."""
    return "、".join(
        action_label(str(item.get("type", "")), {k: v for k, v in item.items() if k != "type"})
        for item in items
    )


def pinned(case: Case) -> str:
    """What a case pins, in one line: `预期 …；不得 …`."""
    parts = []
    if case.expect:
        parts.append("预期 " + expectation_text(case.expect))
    if case.expect_not:
        parts.append("不得 " + expectation_text(case.expect_not))
    return "；".join(parts) or "（无预期）"


def _given(case: Case) -> list[dict[str, Any]]:
    return [
        {
            "type": e.type,
            "occurred_at": e.occurred_at.isoformat(),
            "ticket": to_jsonable(dict(e.ticket)),
        }
        for e in case.events
    ] + [{"until": case.until.isoformat()}]


def _input_changes(old: Case, new: Case) -> list[str]:
    """Ticket fields that changed between the two cases' events, `金额 amount: 5000 → 8000`."""
    changes = []
    for index, (before, after) in enumerate(zip(old.events, new.events, strict=False)):
        prefix = f"事件{index + 1} " if len(new.events) > 1 else ""
        for key in sorted({*before.ticket, *after.ticket}):
            if before.ticket.get(key) != after.ticket.get(key):
                changes.append(
                    f"{prefix}{key}: {to_jsonable(before.ticket.get(key))} → {to_jsonable(after.ticket.get(key))}"
                )
        if before.occurred_at != after.occurred_at or before.type != after.type:
            changes.append(
                f"{prefix}{before.type}@{before.occurred_at.isoformat()} → {after.type}@{after.occurred_at.isoformat()}"
            )
    if len(old.events) != len(new.events):
        changes.append(f"事件数: {len(old.events)} → {len(new.events)}")
    if old.until != new.until:
        changes.append(f"until: {old.until.isoformat()} → {new.until.isoformat()}")
    return changes


def case_changes(ruleset: str, old_text: str | None, new_text: str | None) -> list[dict[str, Any]]:
    """Every case added, removed or changed in `cases/<ruleset>.yaml`, in the new file's order."""
    file = f"cases/{ruleset}.yaml"
    old, new = _cases(file, old_text), _cases(file, new_text)
    result: list[dict[str, Any]] = []

    def entry(change: str, name: str, detail: str, **extra: Any) -> None:
        result.append(
            {
                "file": file,
                "case": name,
                "change": change,
                "label": LABELS[change],
                "summary": f"{file} {LABELS[change]}「{name}」：{detail}",
                **extra,
            }
        )

    for name, case in old.items():
        if name not in new:
            entry(REMOVED, name, pinned(case), old=pinned(case))
    for name, case in new.items():
        before = old.get(name)
        if before is None:
            entry(ADDED, name, pinned(case), new=pinned(case))
            continue
        if (before.expect, before.expect_not) != (case.expect, case.expect_not):
            entry(
                EXPECT_CHANGED,
                name,
                f"{pinned(before)} → {pinned(case)}",
                old=pinned(before),
                new=pinned(case),
            )
        if _given(before) != _given(case):
            inputs = _input_changes(before, case)
            entry(GIVEN_CHANGED, name, "；".join(inputs) or "事件内容改变", inputs=inputs)
    return result
