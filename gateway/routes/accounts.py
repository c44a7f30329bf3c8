"""Authentication, tokens and user or organization pages."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from schemas import requests as bodies
from schemas import responses as out
from schemas.validation import validate
from services.toolkit.errors import Unauthenticated
from services.toolkit.routespec import documented
from services.toolkit.web import api, read_json

from ..auth import client_address, request_token
from .base import V1, V2, GatewayBase


class AccountRoutes(GatewayBase):
    @api("GET", V1 + "/authenticate")
    @api("GET", V2 + "/authenticate")
    @documented({200: out.TokenInfo}, auth="required", summary="Describe the request's token")
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
    @documented(
        {200: out.IssuedToken},
        body=bodies.TokenCreate,
        auth="none",
        summary="Create a token with a username and password",
    )
    def login(self, request: Request) -> Any:
        body = validate(bodies.TokenCreate, read_json(request))
        return self.data.login(
            body.user.login, body.user.password, body.token.description, client_address(request)
        )

    @api("DELETE", V1 + "/authenticate")
    @api("DELETE", V2 + "/authenticate")
    @documented({204: None}, auth="required", summary="Revoke the request's token")
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
    @documented({200: out.Account}, summary="Get a user or organization with its boxes")
    def get_account(self, request: Request, username: str) -> Any:
        return self.data.get_account(self.actor(request), username)
