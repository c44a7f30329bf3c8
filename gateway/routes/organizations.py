"""Organizations and their members, an Atlas extension of the Vagrant Cloud API."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from services.toolkit.web import api, read_json

from .base import V1, V2, GatewayBase

ORGANIZATION = "/organizations/<organization>"
MEMBER = ORGANIZATION + "/members/<username>"


class OrganizationRoutes(GatewayBase):
    @api("POST", V1 + "/organizations")
    @api("POST", V2 + "/organizations")
    def create_organization(self, request: Request) -> Any:
        return self.data.create_organization_as(self.require_actor(request), read_json(request))

    @api("GET", V1 + "/organizations")
    @api("GET", V2 + "/organizations")
    def list_organizations(self, request: Request) -> Any:
        return self.data.list_organizations(self.require_actor(request))

    @api("GET", V1 + ORGANIZATION)
    @api("GET", V2 + ORGANIZATION)
    def get_organization(self, request: Request, organization: str) -> Any:
        return self.data.get_organization(self.require_actor(request), organization)

    @api("PUT", V1 + MEMBER)
    @api("PUT", V2 + MEMBER)
    def set_member(self, request: Request, organization: str, username: str) -> Any:
        return self.data.set_member(
            self.require_actor(request), organization, username, read_json(request)
        )

    @api("DELETE", V1 + MEMBER)
    @api("DELETE", V2 + MEMBER)
    def remove_member(self, request: Request, organization: str, username: str) -> Any:
        return self.data.remove_member(self.require_actor(request), organization, username)
