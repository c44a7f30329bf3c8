"""Pages for browsing: home, accounts, boxes, health, and the pages' static files."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from ..web.base import PageBase, page
from ..web.endpoint import page_route
from ..web.security import Visitor
from ..web.templating import STATIC_DIR, STATIC_VERSIONS

STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
STATIC_MAX_AGE = 365 * 24 * 3600  # seconds; a changed file gets a new fingerprint


class PageRoutes(PageBase):
    @page("GET", "/")
    def home_page(self, request: Request, visitor: Visitor) -> Response:
        boxes: list[dict[str, Any]] = []
        if visitor.actor is not None:
            boxes = self.data.get_account(visitor.actor, visitor.username)["boxes"]
        return self.render(request, visitor, "home.html", boxes=boxes)

    @page("GET", "/<username>")
    def account_page(self, request: Request, visitor: Visitor, username: str) -> Response:
        account = self.data.get_account(visitor.actor, username)
        return self.render(request, visitor, "account.html", account=account)

    @page("GET", "/<username>/boxes/<name>")
    def box_page(self, request: Request, visitor: Visitor, username: str, name: str) -> Response:
        return self.render_box(request, visitor, username, name)

    @page("GET", "/-/health")
    def health_page(self, request: Request, visitor: Visitor) -> Response:
        services = [{"name": "gateway", "status": "passing", "detail": "serving this page"}]
        try:
            detail = self.data.ping()
            services.append({"name": "data", "status": "passing", "detail": detail})
        except Exception as exc:  # any failure means "not healthy", with its reason
            services.append({"name": "data", "status": "critical", "detail": str(exc)})
        passing = all(service["status"] == "passing" for service in services)
        return self.render(
            request,
            visitor,
            "health.html",
            status=200 if passing else 503,
            overall="passing" if passing else "critical",
            services=services,
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
