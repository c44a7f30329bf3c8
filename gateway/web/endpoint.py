"""The HTTP entrypoint of the web pages: like the API's, but errors are HTML pages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from services.toolkit.errors import AtlasError
from services.toolkit.web import ApiEndpoint

from .templating import render

log = logging.getLogger(__name__)

# Headers of every page. The policy admits scripts, styles and images from
# this origin only, so an injected tag could load nothing. Pages that post
# to binstore widen connect-src and form-action to binstore's origin.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def content_security_policy(extra_origins: tuple[str, ...] = ()) -> str:
    extra = "".join(f" {origin}" for origin in extra_origins)
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'{extra}; form-action 'self'{extra}; "
        "base-uri 'none'; frame-ancestors 'none'"
    )


def html_response(html: str, status: int = 200, extra_origins: tuple[str, ...] = ()) -> Response:
    response = Response(html, status=status, mimetype="text/html")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Security-Policy"] = content_security_policy(extra_origins)
    return response


def error_page(status: int, message: str) -> Response:
    """Render an error for a request whose visitor is unknown, such as a failed session lookup."""
    return html_response(render("error.html", visitor=None, code=status, message=message), status)


class PageEndpoint(ApiEndpoint):
    """Entrypoint of one page; the handler returns a ``Response``."""

    def response_from_exception(self, exc: BaseException) -> Response:
        if isinstance(exc, AtlasError):
            return error_page(exc.status, str(exc))
        if isinstance(exc, HTTPException):
            return error_page(exc.code or 500, exc.description or exc.name)
        log.error("unexpected error while rendering a page", exc_info=exc)
        return error_page(500, "Something went wrong on our side; the request was not completed.")


def page_route(method: str, url: str) -> Callable[[Any], Any]:
    return PageEndpoint.decorator(method, url)
