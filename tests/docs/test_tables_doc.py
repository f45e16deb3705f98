"""The decision-table example of docs/language.md ("Outputs") loads with the shipped loan kind, and its two
tables chain through the fact the first asserts."""

from __future__ import annotations

import shutil
from pathlib import Path

from rulesvc.events import event_from_json
from rulesvc.rulebook import RuleBook

ROOT = Path(__file__).resolve().parents[2]


def example() -> str:
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    start = text.index("<!-- outputs-example:")
    block = text[start:].split("```yaml\n", 1)[1].split("```", 1)[0]
    return block


def test_outputs_example_loads_and_chains(tmp_path: Path) -> None:
    (tmp_path / "kinds").mkdir()
    shutil.copy(ROOT / "rulesets" / "kinds" / "loan.yaml", tmp_path / "kinds" / "loan.yaml")
    rules = (
        "ruleset: 示例\nkind: loan\n"
        + example()
        + "rules:\n  - id: 分派\n    on: [ticket.created]\n    when: 审批岗位\n"
        + "    then:\n      - assign: {group: 审批岗位.岗位}\n"
    )
    (tmp_path / "example.yaml").write_text(rules, encoding="utf-8")
    book = RuleBook.load([tmp_path])

    def group(**ticket: object) -> str:
        decision = book.evaluate(
            event_from_json(
                {
                    "event_id": "e",
                    "type": "ticket.created",
                    "occurred_at": "2026-11-02T09:00:00+08:00",
                    "ticket": {"kind": "loan", "id": "L-1", **ticket},
                }
            )
        )
        return str(decision.actions_json()[0]["group"])

    assert group(amount=20000000, credit_rating="AA") == "总行审批"  # 高 comes before 低
    assert group(amount=5000, credit_rating="AA") == "分行审批"
    assert group(amount=5000, credit_rating="B") == "分行审批"
