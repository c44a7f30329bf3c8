"""Session cookies and CSRF tokens of the web pages.

A signed-in browser's cookie contains the secret of a session that the data service
stores hashed, so signing out or expiry ends it on every gateway instance.
Every form carries a CSRF token: an HMAC, under the suite's secret key, of
a random per-browser cookie and the session secret. Another site can make
the browser send both cookies but can read neither, so it cannot produce
the token; binding it to the session means a token seen before sign-in is
useless after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.toolkit.crypto import new_token, sign, verify

SESSION_COOKIE = "atlas_session"
CSRF_COOKIE = "atlas_csrf"
CSRF_FIELD = "csrf_token"
CSRF_PURPOSE = "csrf"
CSRF_TTL = 24 * 3600  # seconds a rendered form stays valid
MAX_COOKIE_LENGTH = 128  # longer cookies are not ours and are ignored


@dataclass
class Visitor:
    """The person viewing a page, and the cookies the response must set or clear."""

    actor: dict[str, Any] | None
    session: str | None
    csrf_seed: str
    seed_is_new: bool = False
    session_is_stale: bool = False

    @property
    def username(self) -> str | None:
        return self.actor["username"] if self.actor else None


def usable_cookie(value: str | None) -> str | None:
    if value and len(value) <= MAX_COOKIE_LENGTH and value.isascii():
        return value
    return None


def new_csrf_seed() -> str:
    return new_token()


def _csrf_subject(visitor: Visitor) -> str:
    return f"{visitor.csrf_seed}\n{visitor.session or ''}"


def csrf_token(key: bytes, visitor: Visitor) -> str:
    return sign(key, CSRF_PURPOSE, _csrf_subject(visitor), CSRF_TTL)


def csrf_valid(key: bytes, visitor: Visitor, token: str | None) -> bool:
    if not token or visitor.seed_is_new:
        return False
    return verify(key, CSRF_PURPOSE, _csrf_subject(visitor), token)


def local_path(requested: str | None, default: str = "/") -> str:
    """Return ``requested`` if it is a path on this site, else ``default``.

    ``//host`` and ``/\\host`` are rejected because browsers read them as
    another host, which would make sign-in an open redirect.
    """
    if (
        requested
        and requested.startswith("/")
        and not requested.startswith(("//", "/\\"))
        and requested.isprintable()
    ):
        return requested
    return default
