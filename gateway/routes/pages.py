"""Pages for browsing: home, accounts, boxes, health, and the pages' static files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from services.toolkit.errors import AtlasError
from services.toolkit.health import PASSING
from services.toolkit.numbers import whole_number

from ..web.base import PageBase, page
from ..web.endpoint import page_route
from ..web.security import Visitor
from ..web.templating import STATIC_DIR, STATIC_VERSIONS

SEARCH_FIELDS = ("q", "provider", "architecture", "sort")
SEARCH_PAGE_SIZE = 20
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
STATIC_MAX_AGE = 365 * 24 * 3600  # seconds; a changed file gets a new fingerprint


def _page_number(value: str | None) -> int:
    # Out-of-range numbers reach the data service, which names the limit.
    return whole_number(value) or 1


class PageRoutes(PageBase):
    # Provided by HealthRoutes in GatewayService.
    health_report: Callable[[], dict[str, Any]]

    @page("GET", "/")
    def home_page(self, request: Request, visitor: Visitor) -> Response:
        query = {name: request.args.get(name, "").strip() for name in SEARCH_FIELDS}
        query["sort"] = query["sort"] or "downloads"
        page_number = _page_number(request.args.get("page"))
        parameters = {name: value for name, value in query.items() if value}

        status, error, retry_after = 200, None, None
        try:
            results = self.data.search_boxes(
                visitor.actor, {**parameters, "limit": SEARCH_PAGE_SIZE, "page": page_number}
            )["boxes"]
        except AtlasError as exc:
            results, status, error, retry_after = [], exc.status, str(exc), exc.retry_after
        pages = {
            "previous": urlencode({**parameters, "page": page_number - 1}),
            "next": urlencode({**parameters, "page": page_number + 1}),
        }
        response = self.render(
            request,
            visitor,
            "home.html",
            status=status,
            error=error,
            query=query,
            results=results,
            page=page_number,
            pages=pages,
            has_next=len(results) == SEARCH_PAGE_SIZE,
        )
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @page("GET", "/<username>")
    def account_page(self, request: Request, visitor: Visitor, username: str) -> Response:
        account = self.data.get_account(visitor.actor, username)
        return self.render(request, visitor, "account.html", account=account)

    @page("GET", "/<username>/boxes/<name>")
    def box_page(self, request: Request, visitor: Visitor, username: str, name: str) -> Response:
        return self.render_box(request, visitor, username, name)

    @page("GET", "/-/health")
    def health_page(self, request: Request, visitor: Visitor) -> Response:
        report = self.health_report()
        passing = report["status"] == PASSING
        return self.render(
            request, visitor, "health.html", status=200 if passing else 503, report=report
        )

    @page_route("GET", "/-/static/<name>")
    def static_file(self, request: Request, name: str) -> Response:
        if name not in STATIC_VERSIONS:
            return Response("not found", status=404, mimetype="text/plain")
        suffix = name[name.rfind(".") :]
        response = Response(
            (STATIC_DIR / name).read_bytes(),
            mimetype=STATIC_TYPES.get(suffix, "application/octet-stream"),
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.args.get("v") == STATIC_VERSIONS[name]:
            response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        response.set_etag(STATIC_VERSIONS[name])
        return response.make_conditional(request)
