"""Pages of the navigation not built yet: each answers "尚在建设中" to whoever may see it. A module that
serves one of these paths is included before this router (api/console/__init__.py), so its page wins;
remove the entry here when the page lands."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.console.pages import NAV, PageRoute, person, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PENDING: tuple[str, ...] = ()


def _mount(key: str) -> None:
    item = next(i for i in NAV if i.key == key)

    async def page(request: Request) -> Response:
        principal = await person(request, item.permission)
        return render(request, "placeholder.html", principal, nav=item.key, title=item.label)

    router.add_api_route(item.href, page, methods=["GET"], name=f"console_{key}_placeholder")


for _key in PENDING:
    _mount(_key)
