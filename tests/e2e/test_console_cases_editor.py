"""The 测试用例 page and the ruleset text editor in a real browser: a case written in the form (events, the
ticket's fields from the kind, expected actions) and run — passing, then failing with expected vs actual —
and saved into a draft; every case run at once; a syntax error typed in the editor shown at its line, fixed,
and the text saved as a draft."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Pages

pytestmark = pytest.mark.xdist_group("browser")


def test_a_case_written_in_the_form_runs_fails_with_the_diff_and_is_saved(pages: Pages) -> None:
    page = pages("zhangmin")
    page.goto("/console/cases?ruleset=expense-approval")
    expect(page.locator("h1")).to_have_text("测试用例 · expense-approval")
    page.get_by_role("button", name="运行全部样例").click()
    expect(page.locator("#run-summary")).to_contain_text("未通过 0 个")
    expect(page.locator("#cases tr.pass")).to_have_count(page.locator("#cases tbody tr").count())

    page.get_by_role("link", name="新建样例").click()
    expect(page.locator("h1")).to_have_text("新建样例 · expense-approval")
    page.get_by_label("样例名称").fill("差旅费1000元部门经理自动审批")
    event = page.locator("fieldset.given-event").first
    event.get_by_label("事件类型").select_option("ticket.created")
    event.get_by_label("发生时间（北京时间）").fill("2026-11-03 09:30")
    event.get_by_label("id").fill("E-2026-0100")
    event.get_by_label("expense_type").fill("差旅费")
    event.get_by_label("amount").fill("1000")
    event.get_by_label("applicant_rank").select_option("部门经理")
    page.get_by_label("期望动作").fill("{type: auto_approve}\n{type: trigger_payment, amount: 1000}")
    page.get_by_role("button", name="运行此样例").click()
    result = page.locator("#form-result")
    expect(result.locator(".badge")).to_have_text("通过")
    expect(result).to_contain_text("auto_approve")

    # a wrong expectation: fails, with what was expected and what happened
    page.get_by_label("期望动作").fill("{type: assign, group: 费用审批岗}")
    page.get_by_role("button", name="运行此样例").click()
    expect(result.locator(".badge")).to_have_text("未通过")
    expect(result.locator(".expected")).to_have_text(
        "期望 {type: assign, group: 费用审批岗}，但没有这样的动作"
    )
    expect(result.locator(".actual")).to_contain_text("auto_approve")

    # expected none: refused while an action happens
    page.get_by_label("期望动作").fill("")
    page.get_by_label("期望不产生任何动作").check()
    page.get_by_role("button", name="运行此样例").click()
    expect(result.locator(".badge")).to_have_text("未通过")
    page.get_by_label("期望不产生任何动作").uncheck()

    page.get_by_label("期望动作").fill("{type: auto_approve}")
    page.get_by_role("button", name="保存到草稿").click()
    expect(page).to_have_url(re.compile(r"/console/cases\?ruleset=expense-approval&draft="))
    expect(page.locator("#case-source")).to_contain_text("草稿")
    row = page.locator('tr[data-case="差旅费1000元部门经理自动审批"]')
    row.get_by_role("button", name="运行").click()
    expect(row.locator(".badge")).to_have_text("通过")

    # the saved case opens again in the form, the values as saved
    row.get_by_role("link", name="修改").click()
    expect(page.locator("h1")).to_have_text("修改样例 · expense-approval")
    expect(page.locator("fieldset.given-event").first.get_by_label("amount")).to_have_value("1000")
    expect(page.locator("fieldset.given-event").first.get_by_label("发生时间（北京时间）")).to_have_value(
        "2026-11-03 09:30:00"  # as it was typed, in the one format of the console's times
    )


def test_an_auditor_runs_cases_but_sees_no_form(pages: Pages) -> None:
    page = pages("wangshen")
    page.goto("/console/cases?ruleset=loan-routing")
    page.get_by_role("button", name="运行全部样例").click()
    expect(page.locator("#run-summary")).to_contain_text("未通过 0 个")
    expect(page.get_by_role("link", name="新建样例")).to_have_count(0)
    pages.expect_error("403 (Forbidden)")
    response = page.goto("/console/cases/loan-routing/new")
    assert response is not None and response.status == 403


def test_a_syntax_error_typed_in_the_editor_is_shown_at_its_line_and_the_text_saved(pages: Pages) -> None:
    page = pages("zhangmin")
    page.goto("/console/rulesets/loan-routing/edit")
    page.get_by_role("link", name="规则集文本").click()
    expect(page.locator("h1")).to_have_text("编辑 loan-routing")
    status = page.locator("#check-status")
    expect(status).to_have_text("检查通过，没有发现问题。")
    text = page.get_by_label("规则集文件")

    # delete the `]` closing `on: [ticket.created]`: the parser stops at the next line's key
    text.evaluate(
        "t => { const i = t.value.indexOf('ticket.created]') + 'ticket.created'.length;"
        " t.focus(); t.setSelectionRange(i + 1, i + 1); }"
    )
    page.keyboard.press("Backspace")
    expect(status).to_contain_text("发现 1 个问题")
    diagnostic = page.locator("#diagnostics button.diagnostic")
    expect(diagnostic).to_have_count(1)
    expect(diagnostic).to_contain_text(re.compile(r"^第 16 行第 5 列：YAML 语法错误"))
    expect(page.locator('#code-gutter div.bad[data-line="16"]')).to_have_text("16")
    expect(page.locator('#code-mirror .line-bad[data-line="16"] mark')).to_have_text("hit")
    diagnostic.click()
    assert text.evaluate("t => t.value.slice(0, t.selectionStart).split('\\n').length") == 16

    # put it back: the check passes again; change the description and save as a draft
    text.evaluate(
        "t => { const i = t.value.indexOf('ticket.created') + 'ticket.created'.length;"
        " t.focus(); t.setSelectionRange(i, i); }"
    )
    page.keyboard.type("]")
    expect(status).to_have_text("检查通过，没有发现问题。")
    expect(page.locator("#code-gutter div.bad")).to_have_count(0)
    text.evaluate(
        "t => { const i = t.value.indexOf('description: 贷款按地区分派审批组') +"
        " 'description: 贷款按地区分派审批组'.length; t.focus(); t.setSelectionRange(i, i); }"
    )
    page.keyboard.type("（新增地区前先核对审批组）")
    expect(status).to_have_text("检查通过，没有发现问题。")
    page.get_by_label("修改原因").fill("说明中写明新增地区的做法")
    page.get_by_role("button", name="保存为草稿").click()
    expect(page.locator("h1")).to_contain_text("草稿 loan-routing")
    expect(page.locator("#draft-status")).to_have_text("编辑中")
    expect(page.locator("pre.diff")).to_contain_text(
        "+description: 贷款按地区分派审批组（新增地区前先核对审批组）"
    )


def test_cases_go_out_and_come_back_as_a_sheet_and_the_report_opens(pages: Pages, tmp_path: Path) -> None:
    page = pages("zhangmin")
    page.goto("/console/cases?ruleset=loan-routing")
    with page.expect_download() as download:
        page.get_by_role("link", name="下载 CSV").click()
    sheet = tmp_path / "loan-routing-cases.csv"
    download.value.save_as(sheet)
    text = sheet.read_text(encoding="utf-8-sig")
    assert "上海浦东" in text

    # an unknown event type is refused at its cell; the page lists it
    broken = tmp_path / "broken.csv"
    broken.write_text(text.replace("ticket.created", "ticket.creatd", 1), encoding="utf-8-sig")
    pages.expect_error("422 (Unprocessable")
    page.locator("#sheet-file").set_input_files(str(broken))
    page.get_by_role("button", name="上传", exact=True).click()
    expect(page.locator("#flash")).to_contain_text("sheet.invalid")
    expect(page.locator("#case-errors")).to_contain_text(re.compile(r"broken\.csv!.*ticket\.creatd"))

    # a renamed case comes back in a new draft and runs
    name = "上海浦东贷款分派浦东分行A组"
    assert f"\n{name}," in text
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(text.replace(name, name + "（表格）", 1), encoding="utf-8-sig")
    page.locator("#sheet-file").set_input_files(str(renamed))
    page.get_by_role("button", name="上传", exact=True).click()
    expect(page).to_have_url(re.compile(r"/console/cases\?ruleset=loan-routing&draft="))
    row = page.locator(f'tr[data-case="{name}（表格）"]')
    row.get_by_role("button", name="运行").click()
    expect(row.locator(".badge")).to_have_text("通过")

    with page.expect_download() as report:
        page.get_by_role("link", name="HTML（可打印）").click()
    html = tmp_path / "report.html"
    report.value.save_as(html)
    evidence = html.read_text(encoding="utf-8")
    assert "loan-routing" in evidence and name + "（表格）" in evidence
