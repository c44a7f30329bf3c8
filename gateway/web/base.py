"""Helpers that every page route shares: the visitor, forms with CSRF checks, rendering."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from services.toolkit import config as cfg
from services.toolkit.errors import AtlasError, PayloadTooLarge, PermissionDenied, Unauthenticated

from ..routes.base import GatewayBase
from . import security
from .endpoint import html_response, page_route
from .security import Visitor
from .templating import render

MAX_FORM_BODY = 256 * 1024  # bytes; box files go to binstore, not through page forms
CSRF_MESSAGE = (
    "The form could not be accepted because its security token is missing or expired. "
    "Reload the page and submit the form again."
)

Handler = Callable[..., Response]


class CsrfRejected(PermissionDenied):
    """A form arrived without a valid CSRF token."""


def page(method: str, url: str) -> Callable[[Handler], Handler]:
    """Route ``url`` to a handler called as ``handler(self, request, visitor, **values)``.

    Domain errors raised by the handler become an error page whose header
    still shows who is signed in.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def handle(self: PageBase, request: Request, **values: Any) -> Response:
            visitor = self.visitor(request)
            try:
                return handler(self, request, visitor, **values)
            except AtlasError as exc:
                return self.render_error(request, visitor, exc)

        return page_route(method, url)(handle)  # type: ignore[no-any-return]

    return decorate


class PageBase(GatewayBase):
    @property
    def secret_key(self) -> bytes:
        return cfg.secret_key(self.config)

    @property
    def public_url(self) -> str:
        return str(cfg.setting(self.config, cfg.PUBLIC_URL)).rstrip("/")

    def visitor(self, request: Request) -> Visitor:
        seed = security.usable_cookie(request.cookies.get(security.CSRF_COOKIE))
        secret = security.usable_cookie(request.cookies.get(security.SESSION_COOKIE))
        visitor = Visitor(
            actor=None,
            session=None,
            csrf_seed=seed or security.new_csrf_seed(),
            seed_is_new=seed is None,
        )
        if secret:
            try:
                visitor.actor = self.data.resume_session(secret)["actor"]
                visitor.session = secret
            except Unauthenticated:
                visitor.session_is_stale = True
        return visitor

    def require_visitor(self, request: Request, visitor: Visitor) -> dict[str, Any]:
        if visitor.actor is None:
            raise Unauthenticated("Sign in to continue.")
        return visitor.actor

    def form(self, request: Request, visitor: Visitor) -> MultiDict[str, str]:
        """Return the posted form after checking its CSRF token; raise ``CsrfRejected``."""
        request.max_content_length = MAX_FORM_BODY
        request.max_form_memory_size = MAX_FORM_BODY
        try:
            form = request.form
        except RequestEntityTooLarge as exc:
            raise PayloadTooLarge(f"the form exceeds {MAX_FORM_BODY} bytes") from exc
        if not security.csrf_valid(self.secret_key, visitor, form.get(security.CSRF_FIELD)):
            raise CsrfRejected(CSRF_MESSAGE)
        return form

    def render(
        self,
        request: Request,
        visitor: Visitor,
        template: str,
        status: int = 200,
        extra_origins: tuple[str, ...] = (),
        **context: Any,
    ) -> Response:
        html = render(
            template,
            visitor=visitor,
            csrf_token=security.csrf_token(self.secret_key, visitor),
            csrf_field=security.CSRF_FIELD,
            current_path=request.full_path.rstrip("?"),
            public_url=self.public_url,
            **context,
        )
        return self.with_cookies(visitor, html_response(html, status, extra_origins))

    def render_box(
        self,
        request: Request,
        visitor: Visitor,
        username: str,
        name: str,
        status: int = 200,
        error: str | None = None,
        values: dict[str, str] | None = None,
    ) -> Response:
        view = self.data.describe_box(visitor.actor, username, name)
        return self.render(
            request,
            visitor,
            "box.html",
            status=status,
            view=view,
            box=view["box"],
            error=error,
            values=values or {},
        )

    def render_error(self, request: Request, visitor: Visitor, exc: AtlasError) -> Response:
        if isinstance(exc, Unauthenticated) and request.method == "GET":
            return self.redirect(
                visitor, "/-/sign-in?" + _query(next=request.full_path.rstrip("?"))
            )
        response = self.render(
            request, visitor, "error.html", status=exc.status, code=exc.status, message=str(exc)
        )
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    def redirect(self, visitor: Visitor, location: str) -> Response:
        response = Response(status=303, headers={"Location": location})
        return self.with_cookies(visitor, response)

    def with_cookies(self, visitor: Visitor, response: Response) -> Response:
        secure = self.public_url.startswith("https://")
        if visitor.seed_is_new:
            response.set_cookie(
                security.CSRF_COOKIE,
                visitor.csrf_seed,
                httponly=True,
                secure=secure,
                samesite="Lax",
            )
        if visitor.session_is_stale:
            response.delete_cookie(
                security.SESSION_COOKIE, httponly=True, secure=secure, samesite="Lax"
            )
        return response

    def start_session_cookie(self, response: Response, session: str, max_age: int) -> None:
        response.set_cookie(
            security.SESSION_COOKIE,
            session,
            max_age=max_age,
            httponly=True,
            secure=self.public_url.startswith("https://"),
            samesite="Lax",
        )


def _query(**values: str) -> str:
    return urlencode(values)


__all__ = ["CsrfRejected", "PageBase", "page"]
