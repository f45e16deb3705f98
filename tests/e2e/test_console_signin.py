"""Signing in to the console and finding one's way: the sign-in page in Chinese, the navigation, sign-out,
and a signed-out visitor sent to sign in."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, Console, Pages

pytestmark = pytest.mark.xdist_group("browser")

NAV = ["规则集", "草稿", "测试用例", "决策查询", "看板与报表", "日历", "审计", "通知与订阅"]


def test_sign_in_navigate_and_sign_out(pages: Pages, console_server: Console) -> None:
    pages.expect_error("401 (Unauthorized)")  # the wrong password below
    page = pages(None)
    page.goto("/console/rulesets/expense-approval")
    assert "/console/?next=" in page.url  # signed out: sent to sign in, and back afterwards
    assert page.locator("h1").inner_text() == "登录"
    page.get_by_label("用户名").fill("admin")
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#signin-error")).to_contain_text("用户名或密码错误")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("h1")).to_have_text("规则集 expense-approval")
    assert page.url.endswith("/console/rulesets/expense-approval")
    assert page.locator("nav.mainnav a").all_inner_texts() == NAV
    assert "管理员" in page.locator(".who").inner_text()

    page.get_by_role("link", name="规则集", exact=True).click()
    expect(page.locator("h1")).to_have_text("规则集")
    assert page.locator("tr[data-ruleset]").count() >= 5

    page.get_by_role("button", name="退出登录").click()
    expect(page.locator("h1")).to_have_text("登录")
    page.goto("/console/rulesets")
    assert "/console/?next=" in page.url


def test_auditor_sees_only_what_the_role_grants(pages: Pages) -> None:
    page = pages("wangshen")
    page.goto("/console/rulesets/expense-approval")
    assert page.locator("#edit-ruleset").count() == 0  # read-only: no edit button
    assert "看板与报表" in page.locator("nav.mainnav").inner_text()
