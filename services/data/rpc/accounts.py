"""RPC methods for users, organizations and tokens."""

from __future__ import annotations

import logging

from nameko.timer import timer

from services.toolkit.rpc import rpc

from .. import accounts, login_limits
from ..access import Actor
from .base import DataBase

log = logging.getLogger(__name__)

# Seconds between deletions of failed sign-ins that left the counting window.
PRUNE_INTERVAL = 300


class AccountsRpc(DataBase):
    @rpc
    def create_user(
        self, username: str, password: str | None = None, email: str | None = None
    ) -> dict:
        with self.db.transaction() as unit:
            return accounts.create_user(unit.session, username, password, email)

    @rpc
    def create_organization(self, name: str, owner: str) -> dict:
        with self.db.transaction() as unit:
            return accounts.create_organization(unit.session, name, owner)

    @rpc
    def add_member(self, organization: str, username: str, role: str) -> dict:
        with self.db.transaction() as unit:
            return accounts.add_member(unit.session, organization, username, role)

    @rpc
    def get_account(self, actor: Actor, username: str) -> dict:
        with self.db.read() as session:
            return accounts.get_account(session, self.urls, actor, username)

    @rpc
    def issue_token(self, username: str, description: str | None = None) -> dict:
        """Create a token for ``username`` without a password; for trusted callers only."""
        with self.db.transaction() as unit:
            return accounts.issue_token(unit.session, username, description)

    @rpc
    def login(
        self,
        login: str,
        password: str,
        description: str | None = None,
        client_address: str | None = None,
    ) -> dict:
        """Create a token for a user's name and password.

        Raises Unauthenticated for a wrong name or password, and
        TooManyRequests once the failures of this name or of
        ``client_address`` reach their limit.
        """
        self.reserve_login_attempt(login, client_address)
        with self.db.transaction() as unit:
            result = accounts.login(unit.session, login, password, description)
            login_limits.forgive(unit.session, login, client_address)
        return result

    @timer(interval=PRUNE_INTERVAL)
    def prune_login_failures(self) -> None:
        with self.db.transaction() as unit:
            deleted = login_limits.prune(unit.session, self.login_limits)
        if deleted:
            log.info("deleted %d failed sign-ins older than the counting window", deleted)

    @rpc
    def authenticate(self, token: str) -> dict:
        """Return ``{"actor": ..., "token": ...}`` for a valid token; raise Unauthenticated."""
        with self.db.transaction() as unit:
            return accounts.authenticate(unit.session, token)

    @rpc
    def revoke_token(self, token: str) -> None:
        with self.db.transaction() as unit:
            accounts.revoke_token(unit.session, token)
