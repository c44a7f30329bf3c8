"""Browser sessions: sign in with a password, resume by cookie, sign out.

The cookie carries a random secret; only its sha256 is stored, as for API
tokens. A session ends when the user signs out or when it expires, so a
stolen cookie stops working at the latest after the configured lifetime.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.toolkit.crypto import hash_token, new_token
from services.toolkit.errors import Unauthenticated

from .accounts import LAST_USED_RESOLUTION, check_credentials
from .models import WebSession, utcnow
from .serialize import timestamp


def start_session(session: Session, login_name: str, password: str, ttl: float) -> dict[str, Any]:
    """Check the password and open a session of ``ttl`` seconds; return its secret once."""
    account = check_credentials(session, login_name, password)
    now = utcnow()
    session.execute(
        delete(WebSession).where(WebSession.account_id == account.id, WebSession.expires_at < now)
    )
    secret = new_token()
    row = WebSession(
        account=account,
        token_hash=hash_token(secret),
        created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl),
        last_seen_at=now,
    )
    session.add(row)
    session.flush()
    return {
        "session": secret,
        "expires_at": timestamp(row.expires_at),
        "user": {"username": account.username},
    }


def resume_session(session: Session, secret: str) -> dict[str, Any]:
    """Return the actor of an unexpired session, recording that it was seen."""
    row = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(secret)))
    now = utcnow()
    if row is None or row.expires_at <= now:
        raise Unauthenticated("the session expired or was ended; sign in again")
    if row.last_seen_at is None or now - row.last_seen_at > LAST_USED_RESOLUTION:
        row.last_seen_at = now
    return {
        "actor": {"id": row.account.id, "username": row.account.username},
        "expires_at": timestamp(row.expires_at),
    }


def end_session(session: Session, secret: str) -> None:
    """Delete the session; ending one that no longer exists is not an error."""
    session.execute(delete(WebSession).where(WebSession.token_hash == hash_token(secret)))
