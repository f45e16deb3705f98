"""A real OpenID Connect provider for the sign-in tests: panva/oidc-provider (npm), installed from
tests/oidc/package-lock.json into tests/oidc/node_modules (gitignored) by `npm ci` when missing, run with
Node.js on 127.0.0.1. Under CI=true a missing node or npm fails the tests; elsewhere they are skipped.

A test browser (httpx, no JavaScript needed) fills in the provider's development login and consent forms.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.integration.conftest import IN_CI, free_port

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc"
CLIENT_ID = "rulesvc"
CLIENT_SECRET = "rulesvc-test-client-secret"
REDIRECT_URL = "http://testserver/v1/auth/oidc/callback"
POST_LOGOUT_URL = "http://testserver/console/"


def _missing(what: str) -> None:
    message = f"{what} (needed for the OIDC end-to-end tests)"
    if IN_CI:
        pytest.fail(f"{message}; CI=true: Node.js and npm are required")
    pytest.skip(message)


def install_provider() -> str:
    """`node`, with oidc-provider installed from the lock file (once; safe across xdist workers)."""
    node = shutil.which("node")
    if node is None:
        _missing("node not found")
    assert node is not None
    if (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return node
    npm = shutil.which("npm")
    if npm is None:
        _missing("npm not found")
    assert npm is not None
    with open(PROVIDER_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                cwd=PROVIDER_DIR,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci in {PROVIDER_DIR} failed:\n{done.stdout}\n{done.stderr}")
    return node


@dataclass
class Provider:
    issuer: str
    accounts_file: Path

    def set_account(self, login: str, name: str, groups: list[str]) -> None:
        accounts: dict[str, Any] = json.loads(self.accounts_file.read_text("utf-8"))
        accounts[login] = {"name": name, "groups": groups}
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(accounts, ensure_ascii=False), "utf-8")
        os.replace(tmp, self.accounts_file)


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    node = install_provider()
    port = free_port()
    accounts = tmp_path_factory.mktemp("oidc") / "accounts.json"
    accounts.write_text("{}", "utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RULESVC_")},
        "PORT": str(port),
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "REDIRECT_URI": REDIRECT_URL,
        "POST_LOGOUT_URI": POST_LOGOUT_URL,
        "ACCOUNTS_FILE": str(accounts),
    }
    process = subprocess.Popen(
        [node, str(PROVIDER_DIR / "provider.mjs")],
        cwd=PROVIDER_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("listening "):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(30):
        process.kill()
        pytest.fail("the OIDC provider did not start:\n" + "".join(lines))
    try:
        yield Provider(f"http://127.0.0.1:{port}", accounts)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def at_provider(
    authorization_url: str,
    login: str,
    redirect_url: str = REDIRECT_URL,
    browser: httpx.Client | None = None,
) -> str:
    """Sign in at the provider as `login` (its development login and consent pages; a fresh browser unless
    `browser` is given, whose cookies keep the provider's session) and return the callback URL the provider
    sends the browser to (with `code` and `state`)."""
    if browser is None:
        with httpx.Client(timeout=10) as fresh:
            return at_provider(authorization_url, login, redirect_url, fresh)
    location = authorization_url
    for _ in range(20):
        if location.startswith(redirect_url):
            return location
        response = browser.get(location)
        while response.status_code in (302, 303):
            location = urljoin(location, response.headers["location"])
            if location.startswith(redirect_url):
                return location
            response = browser.get(location)
        assert response.status_code == 200, response.text
        page = response.text
        action = _FORM_ACTION.search(page)
        assert action is not None, page
        target = urljoin(location, action.group(1).replace("&amp;", "&"))
        if 'name="prompt" value="login"' in page:
            form = {"prompt": "login", "login": login, "password": "any"}
        elif 'name="prompt" value="consent"' in page:
            form = {"prompt": "consent"}
        else:
            raise AssertionError(page)
        answer = browser.post(target, data=form)
        assert answer.status_code in (302, 303), answer.text
        location = urljoin(target, answer.headers["location"])
    raise AssertionError("the provider never sent the browser back")


def wait_until(predicate: Any, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.05)
