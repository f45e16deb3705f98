"""The compliance case runner: readable failures, expect_not, subset matching, JUnit XML, coverage."""

from __future__ import annotations

import textwrap
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from rulesvc.cases.model import Case, load_case_text
from rulesvc.cases.runner import Observed, format_failure, junit_xml, matches, run_case, run_cases
from rulesvc.events import parse_time
from rulesvc.rulebook import RuleBook

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return RuleBook.load([RULESETS])


def cases(text: str) -> list[Case]:
    found, errors = load_case_text("cases/test.yaml", textwrap.dedent(text))
    assert errors == []
    return found


def one(text: str) -> Case:
    (case,) = cases(text)
    return case


COMPLAINT_GIVEN = """\
    given:
      - type: ticket.created
        at: 2026-11-02T09:00:00+08:00
        ticket: {kind: complaint, id: C-9, owner: 王五, channel: 电话}
    until: 2026-11-02T12:00:00+08:00
"""

EXPENSE_GIVEN = """\
    given:
      - type: ticket.created
        at: 2026-11-02T09:00:00+08:00
        ticket: {kind: expense, id: E-9, expense_type: 差旅费, amount: 4999.99, applicant_rank: 总监, applicant: 张三}
"""


def complaint_case(expect: str, name: str = "投诉", expect_not: str = "") -> str:
    text = f"cases:\n  - name: {name}\n" + COMPLAINT_GIVEN + "    expect:\n" + expect
    if expect_not:
        text += "    expect_not:\n" + expect_not
    return text


# ---- failures are readable ----------------------------------------------------------------------------------


def test_failing_case_shows_expected_entry_and_actual_actions(book: RuleBook) -> None:
    case = one(
        complaint_case(
            "      - {type: notify, at: 2026-11-02T10:30:00+08:00, channels: [sms, email, in_app]}\n"
            "      - {type: escalate, at: 2026-11-02T10:45:00+08:00, to: supervisor}\n",
            name="升级时间写错",
        )
    )
    result = run_case(book, case)
    assert not result.passed
    assert result.failures == [
        "期望 {type: escalate, at: 2026-11-02T10:45:00+08:00, to: supervisor}，但没有这样的动作"
    ]
    report = format_failure(result)
    lines = report.splitlines()
    assert lines[0] == f"FAIL 未通过 升级时间写错  （{case.location}）"
    assert result.failure_codes == ["case.expected_missing"]
    assert lines[1].strip() == result.failures[0] + " [case.expected_missing]"
    assert lines[2].strip() == "实际动作："
    actual = [line.strip() for line in lines[3:]]
    assert len(actual) == 3
    assert actual[0].startswith("2026-11-02T09:00:00+08:00  start_timer(timer=首次响应")
    assert actual[0].endswith("← complaint-sla/启动首次响应计时")
    assert actual[1].startswith("2026-11-02T10:30:00+08:00  notify(to=owner, channels=[sms, email, in_app]")
    assert actual[2].startswith("2026-11-02T11:00:00+08:00  escalate(to=supervisor")
    assert "← complaint-sla/投诉超时升级" in actual[2]


def test_failing_case_with_no_actions_says_none(book: RuleBook) -> None:
    case = one(
        """\
        cases:
          - name: 没有动作
            given:
              - type: ticket.updated
                at: 2026-11-02T09:00:00+08:00
                ticket: {kind: complaint, id: C-1}
            expect:
              - {type: notify}
        """
    )
    result = run_case(book, case)
    assert result.failures == ["期望 {type: notify}，但没有这样的动作"]
    assert format_failure(result).splitlines()[-2:] == ["  实际动作：", "    （无）"]


def test_expect_not_violation_is_reported(book: RuleBook) -> None:
    case = one(
        complaint_case(
            "      - {type: start_timer}\n",
            expect_not="      - {type: escalate}\n      - {type: cancel_timer}\n",
        )
    )
    result = run_case(book, case)
    assert not result.passed
    (failure,) = result.failures
    assert failure.startswith(
        "不应出现 {type: escalate}，但出现了 2026-11-02T11:00:00+08:00  escalate(to=supervisor"
    )
    assert failure.endswith("← complaint-sla/投诉超时升级")
    assert result.failure_codes == ["case.forbidden_present"]
    assert f"{failure} [case.forbidden_present]" in format_failure(result)


def test_expect_not_with_fields_is_a_subset_match_too(book: RuleBook) -> None:
    case = one(
        complaint_case(
            "      - {type: notify}\n",
            expect_not="      - {type: escalate, at: 2026-11-02T11:30:00+08:00}\n      - {type: notify, to: supervisor}\n",
        )
    )
    assert run_case(book, case).passed


def test_engine_error_is_reported_not_raised(book: RuleBook) -> None:
    case = one(
        """\
        cases:
          - name: 未知工单类型
            given:
              - type: ticket.created
                at: 2026-11-02T09:00:00+08:00
                ticket: {kind: mortgage, id: M-1}
            expect: []
        """
    )
    result = run_case(book, case)
    assert not result.passed
    assert result.error_code == "validation.unknown_kind"
    assert result.error == (
        "事件不合法（1 处问题）：ticket.kind: 没有规则集处理工单类型 'mortgage'"
        "（有规则集的类型：complaint、expense、loan）"
    )
    assert f"  运行出错 [validation.unknown_kind]：{result.error}" in format_failure(result)


# ---- subset matching ------------------------------------------------------------------------------------------

AT = parse_time("2026-11-02T09:00:00+08:00", "at")


def observed(**action: Any) -> Observed:
    return Observed(AT, {"rule": "r/x", **action})


@pytest.mark.parametrize(
    ("expected", "action", "ok"),
    [
        ({"type": "notify"}, {"type": "notify", "to": "owner", "channels": ["sms"]}, True),
        ({"type": "notify", "to": "owner"}, {"type": "notify", "to": "owner", "message": "x"}, True),
        ({"type": "notify", "to": "boss"}, {"type": "notify", "to": "owner"}, False),
        ({"type": "notify", "message": "x"}, {"type": "notify", "to": "owner"}, False),  # field missing
        ({"type": "escalate"}, {"type": "notify"}, False),
        ({"amount": 4999.990}, {"amount": Decimal("4999.99")}, True),
        ({"amount": Decimal("4999.990")}, {"amount": Decimal("4999.99")}, True),
        ({"amount": 4999.99}, {"amount": Decimal("4999.990")}, True),
        ({"amount": 5000}, {"amount": Decimal("5000.00")}, True),
        ({"amount": 0.3}, {"amount": Decimal("0.1") + Decimal("0.2")}, True),
        ({"amount": 4999.99}, {"amount": Decimal("5000")}, False),
        ({"amount": 4999.99}, {"amount": Decimal("4999.989999")}, False),
        ({"amount": "4999.99"}, {"amount": Decimal("4999.99")}, False),  # text is not a number
        ({"flag": True}, {"flag": 1}, False),
        ({"channels": ["in_app", "sms", "email"]}, {"channels": ["sms", "email", "in_app"]}, True),
        ({"channels": ["sms", "email"]}, {"channels": ["sms", "email", "in_app"]}, False),
        ({"channels": ["sms", "email", "in_app"]}, {"channels": ["sms", "email"]}, False),
        (
            {"warnings": [{"name": "预警"}]},
            {"warnings": [{"name": "预警", "after": "1h30m", "at": "x"}]},
            True,
        ),
        ({"warnings": [{"name": "提醒"}]}, {"warnings": [{"name": "预警", "after": "1h30m"}]}, False),
        (
            {"due_at": datetime.fromisoformat("2026-11-02T03:00:00+00:00")},
            {"due_at": "2026-11-02T11:00:00+08:00"},
            True,
        ),
        (
            {"due_at": datetime.fromisoformat("2026-11-02T11:00:00+08:00")},
            {"due_at": "2026-11-02T11:00:00+08:00"},
            True,
        ),
        (
            {"due_at": datetime.fromisoformat("2026-11-02T11:00:01+08:00")},
            {"due_at": "2026-11-02T11:00:00+08:00"},
            False,
        ),
    ],
)
def test_subset_matching(expected: dict[str, Any], action: dict[str, Any], ok: bool) -> None:
    assert matches(expected, observed(**action)) is ok


def test_at_compares_as_an_instant() -> None:
    assert matches({"at": "2026-11-02T01:00:00Z"}, observed(type="notify"))
    assert matches({"at": AT}, observed(type="notify"))
    assert not matches({"at": "2026-11-02T09:00:01+08:00"}, observed(type="notify"))


def test_lists_of_scalars_compare_as_sets_even_with_repeats() -> None:
    assert not matches({"channels": ["sms", "sms", "email"]}, observed(channels=["sms", "email", "in_app"]))


def test_decimal_amount_in_a_case_file_matches_exactly(book: RuleBook) -> None:
    text = (
        "cases:\n  - name: 精确金额\n"
        + EXPENSE_GIVEN
        + "    expect:\n      - {type: trigger_payment, amount: 4999.990}\n      - {type: auto_approve}\n"
    )
    assert run_case(book, one(text)).passed
    wrong = text.replace("amount: 4999.990}", "amount: 4999.98}")
    result = run_case(book, one(wrong))
    assert result.failures == ["期望 {type: trigger_payment, amount: 4999.98}，但没有这样的动作"]
    assert "trigger_payment(amount=4999.99)" in format_failure(result)


def test_each_expectation_consumes_its_own_action(book: RuleBook) -> None:
    case = one(complaint_case("      - {type: notify}\n      - {type: notify}\n"))
    result = run_case(book, case)
    assert result.failures == ["期望 {type: notify}，但没有这样的动作"]


def test_expectations_match_in_any_order(book: RuleBook) -> None:
    case = one(
        complaint_case(
            "      - {type: escalate, to: supervisor}\n"
            "      - {type: notify, channels: [in_app, email, sms]}\n"
            "      - {type: start_timer, due_at: 2026-11-02T11:00:00+08:00, warnings: [{name: 预警}]}\n"
        )
    )
    assert run_case(book, case).passed


# ---- JUnit XML ----------------------------------------------------------------------------------------------


def test_junit_xml_parses_and_counts_failures(book: RuleBook) -> None:
    suite_cases = cases(
        "cases:\n"
        + "  - name: 通过1\n"
        + COMPLAINT_GIVEN
        + "    expect: [{type: escalate}]\n"
        + "  - name: 失败<1>\n"
        + COMPLAINT_GIVEN
        + "    expect: [{type: auto_approve}]\n"
        + "  - name: 失败2\n"
        + COMPLAINT_GIVEN
        + "    expect_not: [{type: notify}]\n"
        + "  - name: 通过2\n"
        + EXPENSE_GIVEN
        + "    expect: [{type: trigger_payment, amount: 4999.99}]\n"
        + "  - name: 出错\n"
        + "    given:\n"
        + "      - {type: ticket.created, at: 2026-11-02T09:00:00+08:00, ticket: {kind: mortgage, id: M-1}}\n"
    )
    report = run_cases(book, suite_cases, book.all_refs())
    assert [r.passed for r in report.results] == [True, False, False, True, False]
    root = ElementTree.fromstring(junit_xml(report))
    assert root.tag == "testsuite"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "2", "1")
    testcases = root.findall("testcase")
    assert [tc.get("name") for tc in testcases] == ["通过1", "失败<1>", "失败2", "通过2", "出错"]
    assert all(tc.get("classname") == "cases/test.yaml" for tc in testcases)
    assert [len(tc) for tc in testcases] == [0, 1, 1, 0, 1]
    failure = testcases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "期望 {type: auto_approve}，但没有这样的动作"
    assert failure.text is not None and "FAIL 未通过 失败<1>" in failure.text and "实际动作：" in failure.text
    assert "escalate(to=supervisor" in failure.text
    assert testcases[2].find("failure") is not None
    error = testcases[4].find("error")
    assert error is not None and "没有规则集处理工单类型 'mortgage'" in (error.get("message") or "")
    assert all(float(tc.get("time") or "-1") >= 0 for tc in testcases)
    props = {p.get("name"): p.get("value") for p in root.iter("property") if p.get("name") == "coverage"}
    assert props["coverage"] == f"{report.coverage:.4f}"
    uncovered = [p.get("value") for p in root.iter("property") if p.get("name") == "uncovered"]
    assert uncovered == report.uncovered


# ---- coverage -------------------------------------------------------------------------------------------------


def test_coverage_lists_uncovered_rules_and_table_rows(book: RuleBook) -> None:
    case = one(
        """\
        cases:
          - name: 浦东小额贷款
            given:
              - type: ticket.created
                at: 2026-11-02T09:00:00+08:00
                ticket: {kind: loan, id: L-1, region: 上海浦东, amount: 500000, credit_rating: AA, owner: 张三, stage: 受理}
            expect:
              - {type: assign, group: 浦东分行信贷审批A组}
              - {type: set_approval_level, level: 支行审批}
        """
    )
    report = run_cases(book, [case], book.all_refs())
    assert report.results[0].passed
    assert report.covered == {"loan-routing/地区分派#上海浦东", "loan-approval/审批级别#支行审批"}
    uncovered = report.uncovered
    assert uncovered == [ref for ref in book.all_refs() if ref not in report.covered]
    for ref in (
        "loan-routing/地区分派#北京海淀",
        "loan-routing/地区分派#默认",
        "loan-approval/审批级别#分行审批",
        "loan-approval/审批级别#默认",
        "loan-approval/认定大额贷款",
        "complaint-sla/投诉超时升级",
        "expense-approval/报销审批#差旅费小额自动审批",
        "loan-sla/启动信贷初审计时",
    ):
        assert ref in uncovered
    assert report.coverage == pytest.approx(2 / len(book.all_refs()))


def test_coverage_universe_has_every_rule_and_row_of_the_shipped_rulesets(book: RuleBook) -> None:
    refs = book.all_refs()
    assert len(refs) == len(set(refs)) == 23
    assert sum(1 for ref in refs if "#" in ref) == 8  # table rows including the three default rows
    assert run_cases(book, [], refs).coverage == 0.0


def test_draft_case_files_are_validated_against_the_kinds_as_rulesvc_test_does() -> None:
    """The lifecycle gate (drafts over HTTP) reads the same corpus: a case event breaking its kind is an
    error there too, not a silent default."""
    from rulesvc.lifecycle.gate import check_case_files

    book = RuleBook.load([Path(__file__).resolve().parents[3] / "rulesets"])
    text = (
        "cases:\n"
        "  - name: 金额带逗号\n"
        "    given:\n"
        "      - {type: ticket.created, at: '2026-11-02T09:00:00+08:00',"
        " ticket: {kind: loan, id: L-9, amount: '6,000,000', credit_rating: AA}}\n"
        "    expect: [{type: assign}]\n"
    )
    errors = check_case_files({"loan-approval.yaml": text}, book.kinds)
    assert [e.code for e in errors] == ["case.no_events", "case.bad_event"]
    assert "ticket.amount: 应为数字" in next(e.message for e in errors if e.code == "case.bad_event")
