"""RPC methods for the browser sessions of the web pages."""

from __future__ import annotations

from services.toolkit import config as cfg
from services.toolkit.rpc import rpc

from .. import login_limits, sessions
from .base import DataBase


class SessionsRpc(DataBase):
    @rpc
    def start_session(self, login: str, password: str, client_address: str | None = None) -> dict:
        """Open a session; return ``{"session", "expires_at", "user"}``.

        Only the hash of the ``session`` secret is stored, so it is returned
        this once. Raises Unauthenticated and TooManyRequests as ``login`` does.
        """
        ttl = float(cfg.setting(self.config, cfg.SESSION_TTL))
        self.reserve_login_attempt(login, client_address)
        with self.db.transaction() as unit:
            result = sessions.start_session(unit.session, login, password, ttl)
            login_limits.forgive(unit.session, login, client_address)
        return result

    @rpc
    def resume_session(self, session: str) -> dict:
        """Return ``{"actor", "expires_at"}`` for a live session; raise Unauthenticated."""
        with self.db.transaction() as unit:
            return sessions.resume_session(unit.session, session)

    @rpc
    def end_session(self, session: str) -> None:
        with self.db.transaction() as unit:
            sessions.end_session(unit.session, session)
