"""`/console/`: the sign-in page (local accounts; single sign-on when configured), and the home redirect
for someone already signed in. Signing in and out are the API's `POST /v1/auth/login|logout`, called by
`static/signin.js` (the session cookie is HttpOnly; the CSRF token is the readable `rulesvc_csrf` cookie)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from api.console.pages import BASE, PageRoute, render
from api.deps import authorize, runtime
from api.errors import ApiError

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a console path: never an open redirect to another site."""
    if value and value.startswith(f"{BASE}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{BASE}/rulesets"


@router.get(BASE, include_in_schema=False)
async def console_root() -> Response:
    return RedirectResponse(f"{BASE}/", status_code=307)


@router.get(f"{BASE}/")
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    target = _safe_next(next)
    try:
        await authorize(request, None, None)
    except ApiError:
        oidc = runtime(request).oidc is not None
        return render(request, "signin.html", None, title="登录", next_path=target, oidc=oidc)
    return RedirectResponse(target, status_code=303)
