"""RPC methods for users, organizations and tokens."""

from __future__ import annotations

from services.toolkit.rpc import rpc

from .. import accounts
from ..access import Actor
from .base import DataBase


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
    def login(self, login: str, password: str, description: str | None = None) -> dict:
        with self.db.transaction() as unit:
            return accounts.login(unit.session, login, password, description)

    @rpc
    def authenticate(self, token: str) -> dict:
        """Return ``{"actor": ..., "token": ...}`` for a valid token; raise Unauthenticated."""
        with self.db.transaction() as unit:
            return accounts.authenticate(unit.session, token)

    @rpc
    def revoke_token(self, token: str) -> None:
        with self.db.transaction() as unit:
            accounts.revoke_token(unit.session, token)
