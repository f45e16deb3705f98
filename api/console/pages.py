"""What every console page shares: the Jinja2 templates, who is signed in, the navigation, times in
Asia/Shanghai, and the Content-Security-Policy (no inline script or style: every asset is a file under
`api/console/static/`, served by the service itself).

A page is an `async def` route on a router of its own module that calls `person(request, permission)`
and returns `render(request, "template.html", principal, nav="key", ...)`. A page a signed-out visitor
opens redirects to the sign-in page (`/console/?next=...`); a role that may not see it gets a 403 page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.console.views import action_view, json_text, no_conditions_text
from api.deps import CSRF_COOKIE, authorize, bearer_token
from api.errors import ApiError, status_of
from rulesvc.apikeys import Permission, Principal, Role
from rulesvc.errors import RulesvcError
from rulesvc.lifecycle import EPOCH
from rulesvc.lifecycle.ports import STATUS_LABELS

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = "/console"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    href: str
    permission: Permission | None = None
    """Shown only to people whose roles grant it (None: everyone signed in)."""


NAV: tuple[NavItem, ...] = (
    NavItem("rulesets", "规则集", f"{BASE}/rulesets", Permission.RULESETS_READ),
    NavItem("drafts", "草稿", f"{BASE}/drafts", Permission.RULESETS_READ),
    NavItem("cases", "测试用例", f"{BASE}/cases", Permission.RULESETS_READ),
    NavItem("decisions", "决策查询", f"{BASE}/decisions", Permission.DECISIONS_READ),
    NavItem("reports", "看板与报表", f"{BASE}/reports", Permission.REPORTS_READ),
    NavItem("calendars", "日历", f"{BASE}/calendars", Permission.RULESETS_READ),
    NavItem("audit", "审计", f"{BASE}/audit", Permission.AUDIT_VERIFY),
    NavItem("webhooks", "通知与订阅", f"{BASE}/webhooks", Permission.WEBHOOKS_ADMIN),
)

ROLE_LABELS: Mapping[str, str] = {
    Role.INGEST.value: "接入",
    Role.EDITOR.value: "编辑",
    Role.APPROVER.value: "审批",
    Role.COMPLIANCE.value: "合规",
    Role.AUDITOR.value: "审计",
    Role.ADMIN.value: "管理员",
}

DRAFT_STATUS_LABELS: Mapping[str, str] = STATUS_LABELS


def shanghai(value: datetime | str | None, seconds: bool = False) -> str:
    """A time as people read it: `2026-12-05 22:13` in Asia/Shanghai (empty for none)."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def effective_label(version: Any) -> str:
    """A published version's effective time as people read it. A version imported from the rules folder at
    first start is in force since the epoch (events that occurred before the import are still decided):
    it reads `导入即生效（2026-12-05 22:13）` rather than `1970-01-01 08:00`."""
    if version is None:
        return ""
    if version.effective_at <= EPOCH:
        source = "导入" if version.source == "import" else "发布"
        return f"{source}即生效（{shanghai(version.published_at)}）"
    return shanghai(version.effective_at)


def actor_label(actor: str | None) -> str:
    """`张敏 (u_3f2a9c1e0b7d)` → `张敏`; a recorded actor as a person reads it (the id stays in the title)."""
    if not actor:
        return ""
    name, _, rest = actor.partition(" (")
    return name if rest else actor


_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["shanghai"] = shanghai
_env.filters["actor"] = actor_label
_env.filters["effective"] = effective_label
_env.filters["draft_status"] = lambda status: DRAFT_STATUS_LABELS.get(status, status)
_env.filters["json_text"] = json_text
_env.filters["action_view"] = action_view
_env.filters["no_conditions"] = no_conditions_text
_env.globals["BASE"] = BASE
_env.globals["ROLE_LABELS"] = ROLE_LABELS


class SignInRequired(Exception):
    """Raised by `person` for a visitor without a (valid) session; the console answers with a redirect."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    """Raised by `person` when the roles do not grant the page; the console answers 403 with a page."""

    def __init__(self, principal: Principal, permission: Permission) -> None:
        super().__init__(permission.value)
        self.principal = principal
        self.permission = permission


async def person(request: Request, permission: Permission | None = None) -> Principal:
    """Who is signed in (session cookie, or a bearer key for scripts and benchmarks), holding `permission`."""
    try:
        principal = await authorize(request, bearer_token(request), None)
    except ApiError as exc:
        if exc.status == 401:
            query = f"?{request.url.query}" if request.url.query else ""
            raise SignInRequired(request.url.path + query) from None
        raise
    if permission is not None and not principal.may(permission):
        raise PageForbidden(principal, permission)
    return principal


def may(principal: Principal, permission: Permission) -> bool:
    return principal.may(permission)


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    *,
    nav: str = "",
    title: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A console page: `template` extends base.html, which draws the header, the navigation and sign-out."""
    items = [
        i for i in NAV if principal is not None and (i.permission is None or principal.may(i.permission))
    ]
    html = _env.get_template(template).render(
        request=request,
        principal=principal,
        nav_items=items,
        nav=nav,
        title=title,
        may=(lambda p: principal is not None and principal.may(Permission(p))),
        csrf_cookie=CSRF_COOKIE,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={"Content-Security-Policy": CSP})


def sign_in_redirect(next_path: str) -> Response:
    return RedirectResponse(f"{BASE}/?next={quote(next_path, safe='/')}", status_code=303)


class PageRoute(APIRoute):
    """A console page: a visitor without a session is sent to sign in, a role without the page's permission
    gets a 403 page, and a refusal of the core (not found, ...) is an HTML page with its status and Chinese
    message rather than JSON. Routes of the console's own JSON endpoints (`/console/api/...`) are plain
    APIRoutes: their errors are the API's `{code, message, details}`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return sign_in_redirect(exc.next_path)
            except PageForbidden as exc:
                return error_page(
                    request,
                    exc.principal,
                    403,
                    "forbidden",
                    f"当前角色无权查看此页面（需要 {exc.permission.value}）",
                )
            except ApiError as exc:
                return error_page(request, None, exc.status, exc.code, exc.message)
            except RulesvcError as exc:
                status = status_of(exc)
                if status is None or status >= 500:
                    raise
                message = getattr(exc, "message", None) or str(exc)
                return error_page(request, None, status, exc.code, message)

        return page


def error_page(
    request: Request, principal: Principal | None, status: int, code: str, message: str
) -> HTMLResponse:
    return render(
        request, "error.html", principal, title="出错了", status_code=status, code=code, message=message
    )
