"""Pages for signing in and out and for managing API tokens."""

from __future__ import annotations

import datetime as dt

from werkzeug.wrappers import Request, Response

from services.toolkit.errors import AtlasError, NotFound, TooManyRequests, Unauthenticated
from services.toolkit.numbers import whole_number

from ..auth import client_address
from ..web.base import PageBase, page
from ..web.security import Visitor, local_path

MAX_LOGIN_LENGTH = 256
MAX_PASSWORD_LENGTH = 1024


def wait_text(exc: TooManyRequests) -> str:
    """Return the wait before the next attempt in words, rounded up to whole minutes."""
    seconds = exc.retry_after or 60
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = -(-seconds // 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class AccountPageRoutes(PageBase):
    @page("GET", "/-/sign-in")
    def sign_in_page(self, request: Request, visitor: Visitor) -> Response:
        next_path = local_path(request.args.get("next"))
        if visitor.actor is not None:
            return self.redirect(visitor, next_path)
        return self.render(request, visitor, "sign_in.html", next_path=next_path, login="")

    @page("POST", "/-/sign-in")
    def submit_sign_in(self, request: Request, visitor: Visitor) -> Response:
        form = self.form(request, visitor)
        login = form.get("login", "").strip()[:MAX_LOGIN_LENGTH]
        password = form.get("password", "")[:MAX_PASSWORD_LENGTH]
        next_path = local_path(form.get("next"))
        try:
            started = self.data.start_session(login, password, client_address(request))
        except Unauthenticated:
            return self.render(
                request,
                visitor,
                "sign_in.html",
                status=401,
                error="Invalid username or password.",
                next_path=next_path,
                login=login,
            )
        except TooManyRequests as exc:
            response = self.render(
                request,
                visitor,
                "sign_in.html",
                status=429,
                error=f"Too many failed sign-in attempts. Try again in {wait_text(exc)}.",
                next_path=next_path,
                login=login,
            )
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        if visitor.session is not None:
            # The browser switches accounts, and the session it had would
            # otherwise stay valid for anyone holding its cookie.
            self.data.end_session(visitor.session)
        expires_at = dt.datetime.fromisoformat(started["expires_at"].replace("Z", "+00:00"))
        max_age = int((expires_at - dt.datetime.now(dt.UTC)).total_seconds())
        response = self.redirect(visitor, next_path)
        self.start_session_cookie(response, started["session"], max_age)
        return response

    @page("POST", "/-/sign-out")
    def submit_sign_out(self, request: Request, visitor: Visitor) -> Response:
        self.form(request, visitor)
        if visitor.session is not None:
            self.data.end_session(visitor.session)
            visitor.session_is_stale = True
        return self.redirect(visitor, "/")

    @page("GET", "/-/tokens")
    def tokens_page(self, request: Request, visitor: Visitor) -> Response:
        return self.render_tokens(request, visitor)

    def render_tokens(
        self,
        request: Request,
        visitor: Visitor,
        created: dict | None = None,
        status: int = 200,
        error: str | None = None,
    ) -> Response:
        actor = self.require_visitor(request, visitor)
        tokens = self.data.list_tokens(actor)["tokens"]
        return self.render(
            request,
            visitor,
            "tokens.html",
            status=status,
            error=error,
            created=created,
            tokens=tokens,
        )

    @page("POST", "/-/tokens")
    def submit_token(self, request: Request, visitor: Visitor) -> Response:
        actor = self.require_visitor(request, visitor)
        form = self.form(request, visitor)
        description = form.get("description", "").strip() or "created on the tokens page"
        # The session proves who this is, as a password would for POST /authenticate.
        created = self.data.issue_token(actor["username"], description[:512])
        return self.render_tokens(request, visitor, created)

    @page("POST", "/-/tokens/<token_id>/revoke")
    def submit_token_revoke(self, request: Request, visitor: Visitor, token_id: str) -> Response:
        actor = self.require_visitor(request, visitor)
        self.form(request, visitor)
        number = whole_number(token_id, 9)
        if number is None:
            raise NotFound(f"token {token_id!r} not found")
        try:
            self.data.revoke_token_by_id(actor, number)
        except AtlasError as exc:
            return self.render_tokens(request, visitor, status=exc.status, error=str(exc))
        return self.redirect(visitor, "/-/tokens")
