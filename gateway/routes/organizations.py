"""Organizations and their members, an Atlas extension of the Vagrant Cloud API."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from schemas import responses as out
from schemas.organizations import MemberUpdate, OrganizationCreate
from services.toolkit.routespec import documented
from services.toolkit.web import api, read_json

from .base import V1, V2, GatewayBase

ORGANIZATION = "/organizations/<organization>"
MEMBER = ORGANIZATION + "/members/<username>"


class OrganizationRoutes(GatewayBase):
    @api("POST", V1 + "/organizations")
    @api("POST", V2 + "/organizations")
    @documented({200: out.Organization}, body=OrganizationCreate, auth="required")
    def create_organization(self, request: Request) -> Any:
        return self.data.create_organization_as(self.require_actor(request), read_json(request))

    @api("GET", V1 + "/organizations")
    @api("GET", V2 + "/organizations")
    @documented({200: out.OrganizationList}, auth="required")
    def list_organizations(self, request: Request) -> Any:
        return self.data.list_organizations(self.require_actor(request))

    @api("GET", V1 + ORGANIZATION)
    @api("GET", V2 + ORGANIZATION)
    @documented({200: out.Organization}, auth="required")
    def get_organization(self, request: Request, organization: str) -> Any:
        return self.data.get_organization(self.require_actor(request), organization)

    @api("PUT", V1 + MEMBER)
    @api("PUT", V2 + MEMBER)
    @documented({200: out.Membership}, body=MemberUpdate, auth="required")
    def set_member(self, request: Request, organization: str, username: str) -> Any:
        return self.data.set_member(
            self.require_actor(request), organization, username, read_json(request)
        )

    @api("DELETE", V1 + MEMBER)
    @api("DELETE", V2 + MEMBER)
    @documented({200: out.Membership}, auth="required")
    def remove_member(self, request: Request, organization: str, username: str) -> Any:
        return self.data.remove_member(self.require_actor(request), organization, username)
