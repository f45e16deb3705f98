"""A case changed from the console's form: name, ticket fields and expectations rewritten, the rest of the
file (other cases, comments, event times) left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from rulesvc.cases.caseedit import (
    CaseEditError,
    CaseForm,
    GivenEvent,
    form_of,
    form_time,
    put_case,
)

CASES = (Path(__file__).resolve().parents[3] / "rulesets" / "cases" / "expense-approval.yaml").read_text(
    "utf-8"
)
TYPES = {"amount": "decimal", "expense_type": "string"}
TICKET = {
    "kind": "expense",
    "id": "E-2026-0002",
    "expense_type": "差旅费",
    "amount": "8000",
    "applicant_rank": "部门经理",
    "applicant": "李四",
    "email": "",
}


def test_a_case_replaced_from_the_form_leaves_the_other_cases_as_they_were() -> None:
    form = CaseForm(
        "差旅费8000元整不自动审批转人工",
        [GivenEvent("ticket.created", "2026-11-02T10:05:00+08:00", TICKET)],
        expect=["{type: assign, group: 费用审批岗}"],
        expect_not=["type: auto_approve"],
    )
    new = put_case(CASES, 1, form, TYPES)
    case = YAML(typ="safe").load(new)["cases"][1]
    assert case["name"] == "差旅费8000元整不自动审批转人工"
    assert case["given"][0]["ticket"]["amount"] == 8000 and "email" not in case["given"][0]["ticket"]
    assert case["expect"] == [{"type": "assign", "group": "费用审批岗"}]
    assert case["expect_not"] == [{"type": "auto_approve"}]
    before, after = YAML(typ="safe").load(CASES)["cases"], YAML(typ="safe").load(new)["cases"]
    assert after[:1] == before[:1] and after[2:] == before[2:]


def test_a_malformed_expectation_is_refused() -> None:
    with pytest.raises(CaseEditError, match="type"):
        put_case(
            CASES,
            1,
            CaseForm(
                "x", [GivenEvent("ticket.created", "2026-11-02T10:05", {})], expect=["{group: 费用审批岗}"]
            ),
            TYPES,
        )
    with pytest.raises(CaseEditError, match="没有第"):
        put_case(CASES, 99, CaseForm("x", [GivenEvent("ticket.created", "2026-11-02T10:05", {})]), TYPES)


# -- whole cases from the 测试用例 form ----------------------------------------------------------------------

TICKET_TYPES = {**TYPES, "kind": "string", "id": "string", "applicant_rank": "职级"}
FORM = CaseForm(
    "差旅费1000元部门经理自动审批",
    [GivenEvent("ticket.created", "2026-11-03T09:30", {**TICKET, "amount": "1000"})],
    until="2026-11-03 18:00",
    expect=["{type: auto_approve}", "type: trigger_payment, amount: 1000"],
    expect_not=["{type: assign}"],
)


def test_a_new_case_is_added_at_the_end_in_beijing_time_the_rest_kept() -> None:
    new = put_case(CASES, None, FORM, TICKET_TYPES)
    assert new.startswith(CASES.rstrip("\n"))
    old_cases = YAML(typ="safe").load(CASES)["cases"]
    cases = YAML(typ="safe").load(new)["cases"]
    assert cases[:-1] == old_cases
    added = cases[-1]
    assert added["name"] == "差旅费1000元部门经理自动审批"
    assert added["given"][0]["type"] == "ticket.created"
    assert added["given"][0]["ticket"]["amount"] == 1000 and "email" not in added["given"][0]["ticket"]
    assert added["expect"] == [{"type": "auto_approve"}, {"type": "trigger_payment", "amount": 1000}]
    assert added["expect_not"] == [{"type": "assign"}]
    assert "at: 2026-11-03T09:30:00+08:00" in new and "until: 2026-11-03T18:00:00+08:00" in new


def test_a_case_is_replaced_whole_and_reads_back_as_the_form_wrote_it() -> None:
    form = CaseForm(
        "两个事件，不应有任何动作",
        [
            GivenEvent("ticket.created", "2026-11-04T08:00:00+08:00", {"kind": "expense", "id": "E-9"}),
            GivenEvent("ticket.updated", "2026-11-04T09:00", {"kind": "expense", "id": "E-9", "amount": "1"}),
        ],
        expect_none=True,
    )
    new = put_case(CASES, 1, form, TICKET_TYPES)
    old_cases = YAML(typ="safe").load(CASES)["cases"]
    cases = YAML(typ="safe").load(new)["cases"]
    assert len(cases) == len(old_cases)
    assert cases[0] == old_cases[0] and cases[2:] == old_cases[2:]
    assert cases[1]["expect_not"] == [{}] and "expect" not in cases[1]
    shown = form_of(cases[1])
    assert shown["expect_none"] is True and shown["expect_not"] == [] and shown["expect"] == []
    assert [e["at"] for e in shown["given"]] == ["2026-11-04 08:00:00", "2026-11-04 09:00:00"]
    assert shown["given"][1]["ticket"] == {"kind": "expense", "id": "E-9", "amount": "1"}


def test_a_case_file_is_started_when_there_is_none() -> None:
    new = put_case("# 样例\n", None, FORM, TICKET_TYPES)
    assert new.startswith("# 样例\ncases:\n  - name: ")
    assert YAML(typ="safe").load(new)["cases"][0]["name"] == FORM.name


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (CaseForm("", FORM.given), "名称不能为空"),
        (CaseForm("x", []), "至少要有一个事件"),
        (CaseForm("x", [GivenEvent("ticket.created", "昨天上午")]), "发生时间格式不正确"),
        (CaseForm("x", FORM.given, until="2026-13-01T00:00"), "时钟"),
        (CaseForm("x", FORM.given, expect=["{type: auto_approve}"], expect_none=True), "期望无任何动作"),
        (CaseForm("差旅费5000元整不自动审批转人工", FORM.given), "已有同名样例"),
    ],
)
def test_a_form_that_cannot_be_a_case_is_refused_in_chinese(form: CaseForm, message: str) -> None:
    with pytest.raises(CaseEditError, match=message):
        put_case(CASES, None, form, TICKET_TYPES)


def test_times_are_beijing_unless_an_offset_is_given() -> None:
    assert form_time("2026-11-03T09:30", "t") == "2026-11-03T09:30:00+08:00"
    assert form_time("2026-11-03 09:30:15", "t") == "2026-11-03T09:30:15+08:00"
    assert form_time("2026-11-03T01:30:00Z", "t") == "2026-11-03T01:30:00+00:00"
