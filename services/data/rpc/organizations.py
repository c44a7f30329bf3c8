"""RPC methods with which members manage their organizations."""

from __future__ import annotations

from services.toolkit.rpc import rpc

from .. import organizations
from ..access import Actor
from .base import DataBase


class OrganizationsRpc(DataBase):
    @rpc
    def create_organization_as(self, actor: Actor, fields: dict) -> dict:
        """Create the organization ``fields["name"]`` with ``actor`` as its owner."""
        with self.db.transaction() as unit:
            return organizations.create_organization(unit.session, actor, fields)

    @rpc
    def get_organization(self, actor: Actor, name: str) -> dict:
        """Return ``{"username", "created_at", "members"}``; members only."""
        with self.db.read() as session:
            return organizations.get_organization(session, actor, name)

    @rpc
    def list_organizations(self, actor: Actor) -> dict:
        """Return ``{"organizations": [...]}``: the actor's memberships."""
        with self.db.read() as session:
            return organizations.list_organizations(session, actor)

    @rpc
    def set_member(self, actor: Actor, organization: str, username: str, fields: dict) -> dict:
        """Add a member or change their role to ``fields["role"]``."""
        with self.db.transaction() as unit:
            return organizations.set_member(unit.session, actor, organization, username, fields)

    @rpc
    def remove_member(self, actor: Actor, organization: str, username: str) -> dict:
        with self.db.transaction() as unit:
            return organizations.remove_member(unit.session, actor, organization, username)
