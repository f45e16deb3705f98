"""End-to-end fixtures: a real `rulesvc serve` (SQLite in a temp folder, the shipped rulesets) and Debian's
headless Chromium driven by Playwright (`executable_path`, never a browser Playwright downloads).

`make browser-deps` (run by .ci/run) installs chromium and fonts-noto-cjk. Under CI=true a missing browser
fails the tests; elsewhere they are skipped with the reason. One server and one browser per test session;
each person gets a browser context of their own (cookies apart) at 1366×768, zh-CN, Asia/Shanghai. Every
page's console errors and uncaught exceptions are collected, and a test fails if there is any.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import IN_CI, cli_env, start_server, stop_server

CHROMIUM = os.environ.get("RULESVC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "console-e2e-2026"
PEOPLE: dict[str, tuple[str, list[str]]] = {
    # username: (name, roles)
    "zhangmin": ("张敏", ["editor", "approver"]),
    "lilei": ("李雷", ["approver"]),
    "wangshen": ("王审", ["auditor"]),
    "hegui": ("何规", ["compliance"]),
    "admin": ("管理员", ["admin"]),
}
VIEWPORT = {"width": 1366, "height": 768}


def browser_missing(reason: str) -> None:
    message = f"browser tests need {reason} (make browser-deps installs it)"
    if IN_CI:
        pytest.fail(f"{message}; CI=true: the browser is required")
    pytest.skip(message)


@dataclass
class Console:
    """The running service and what the tests need of it."""

    base_url: str
    admin_key: str
    log: Path
    errors: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_key}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """`rulesvc serve` on a fresh SQLite database with the people of PEOPLE (password PASSWORD)."""
    folder = tmp_path_factory.mktemp("console")
    env = cli_env(
        f"sqlite:///{folder / 'rulesvc.db'}",
        RULESVC_SIGNIN_RATE_PER_MINUTE="0",  # every test signs in from 127.0.0.1
        RULESVC_ACCESS_LOG="false",
    )
    server = start_server(env, folder / "serve.log")
    try:
        admin_key = next(
            line.strip()
            for line in (folder / "serve.log").read_text().splitlines()
            if line.startswith("rsk_")
        )
        console = Console(server.base_url, admin_key, folder / "serve.log")
        for username, (name, roles) in PEOPLE.items():
            body = {"name": name, "username": username, "roles": roles, "password": PASSWORD}
            answer = console.api("POST", "/v1/admin/users", json=body)
            assert answer.status_code == 201, answer.text
        yield console
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, one per test module: Playwright's sync API keeps an event loop running in its thread, which would break asyncio.run in tests the same xdist worker runs later (Playwright gives it a fresh profile dir)."""
    if not Path(CHROMIUM).exists():
        browser_missing(f"Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        browser_missing(f"the playwright package ({exc})")
    profile = tempfile.mkdtemp(prefix="rulesvc-chromium-")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_FLAGS, f"--disk-cache-dir={profile}/cache"],
            env={**os.environ, "HOME": profile},
        )
        try:
            yield instance
        finally:
            instance.close()
            shutil.rmtree(profile, ignore_errors=True)


class Pages:
    """`pages(username)`: a page in a context of its own, signed in as that person (through the API, which
    sets the session cookie in the context); `pages(None)`: signed out. Console errors fail the test,
    except those a test announces with `pages.expect_error(text)` (a refusal it provokes on purpose: the
    browser logs every 4xx answer to fetch as "Failed to load resource")."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[Any] = []
        self.errors: list[str] = []
        self.expected: list[str] = []

    def expect_error(self, text: str) -> None:
        self.expected.append(text)

    def __call__(
        self, username: str | None, locale: str = "zh-CN", timezone_id: str = "Asia/Shanghai"
    ) -> Any:
        """`locale`, `timezone_id`: the browser's own (times typed into the console are Beijing time
        whatever they are)."""
        context = self.browser.new_context(
            base_url=self.base_url, viewport=VIEWPORT, locale=locale, timezone_id=timezone_id
        )
        self.contexts.append(context)
        if username is not None:
            answer = context.request.post("/v1/auth/login", data={"username": username, "password": PASSWORD})
            assert answer.ok, answer.text()
        page = context.new_page()
        label = username or "signed-out"

        def console(msg: Any) -> None:
            if msg.type == "error":
                self.errors.append(f"{label}: {msg.text} @ {page.url}")

        page.on("console", console)
        page.on("pageerror", lambda exc: self.errors.append(f"{label}: uncaught: {exc} @ {page.url}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        unexpected = [e for e in self.errors if not any(x in e for x in self.expected)]
        assert not unexpected, "browser console errors:\n" + "\n".join(unexpected)


@pytest.fixture
def pages(browser: Any, console_server: Console) -> Iterator[Pages]:
    opened = Pages(browser, console_server.base_url)
    yield opened
    opened.close()
