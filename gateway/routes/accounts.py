"""Authentication, tokens and user or organization pages."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from schemas import requests as bodies
from schemas.validation import validate
from services.toolkit.errors import Unauthenticated
from services.toolkit.web import api, read_json

from ..auth import client_address, request_token
from .base import V1, V2, GatewayBase


class AccountRoutes(GatewayBase):
    @api("GET", V1 + "/authenticate")
    @api("GET", V2 + "/authenticate")
    def whoami(self, request: Request) -> Any:
        token = request_token(request)
        if token is None:
            raise Unauthenticated(
                "authentication required; send a token in the Authorization header"
            )
        result = self.data.authenticate(token)
        return {"user": {"username": result["actor"]["username"]}, **result["token"]}

    @api("POST", V1 + "/authenticate")
    @api("POST", V2 + "/authenticate")
    def login(self, request: Request) -> Any:
        body = validate(bodies.TokenCreate, read_json(request))
        return self.data.login(
            body.user.login, body.user.password, body.token.description, client_address(request)
        )

    @api("DELETE", V1 + "/authenticate")
    @api("DELETE", V2 + "/authenticate")
    def logout(self, request: Request) -> Any:
        token = request_token(request)
        if token is None:
            raise Unauthenticated(
                "authentication required; send a token in the Authorization header"
            )
        self.data.revoke_token(token)
        return 204, {}

    @api("GET", V1 + "/user/<username>")
    @api("GET", V2 + "/user/<username>")
    def get_account(self, request: Request, username: str) -> Any:
        return self.data.get_account(self.actor(request), username)
