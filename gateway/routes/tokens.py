"""Listing and revoking one's API tokens, an Atlas extension of the Vagrant Cloud API."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from schemas import responses as out
from services.toolkit.routespec import documented
from services.toolkit.web import api

from .base import V1, V2, GatewayBase

# Token ids are PostgreSQL integers; a larger number matches no route.
TOKEN = "/tokens/<int(max=2147483647):token_id>"


class TokenRoutes(GatewayBase):
    @api("GET", V1 + "/tokens")
    @api("GET", V2 + "/tokens")
    @documented({200: out.TokenList}, auth="required", summary="List the caller's tokens")
    def list_tokens(self, request: Request) -> Any:
        return self.data.list_tokens(self.require_actor(request))

    @api("DELETE", V1 + TOKEN)
    @api("DELETE", V2 + TOKEN)
    @documented({200: out.TokenInfo}, auth="required", summary="Revoke one of the caller's tokens")
    def revoke_token(self, request: Request, token_id: int) -> Any:
        return self.data.revoke_token_by_id(self.require_actor(request), token_id)
