"""RPC methods with which users list and revoke their own API tokens."""

from __future__ import annotations

from services.toolkit.rpc import rpc

from .. import accounts
from ..access import Actor
from .base import DataBase


class TokensRpc(DataBase):
    @rpc
    def list_tokens(self, actor: Actor) -> dict:
        """Return ``{"tokens": [...]}`` without the token secrets."""
        with self.db.read() as session:
            return accounts.list_tokens(session, actor)

    @rpc
    def revoke_token_by_id(self, actor: Actor, token_id: int) -> dict:
        """Revoke one of the actor's tokens and return it; NotFound for anyone else's."""
        with self.db.transaction() as unit:
            return accounts.revoke_token_by_id(unit.session, actor, token_id)
