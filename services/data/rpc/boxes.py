"""RPC methods for boxes, versions and providers."""

from __future__ import annotations

from services.toolkit.rpc import rpc

from .. import boxes
from ..access import Actor
from .base import DataBase


class BoxesRpc(DataBase):
    @rpc
    def create_box(self, actor: Actor, fields: dict) -> dict:
        with self.db.transaction() as unit:
            return boxes.create_box(unit, self.urls, actor, fields)

    @rpc
    def get_box(self, actor: Actor, username: str, name: str) -> dict:
        with self.db.read() as session:
            return boxes.get_box(session, self.urls, actor, username, name)

    @rpc
    def update_box(self, actor: Actor, username: str, name: str, fields: dict) -> dict:
        with self.db.transaction() as unit:
            return boxes.update_box(unit, self.urls, actor, username, name, fields)

    @rpc
    def delete_box(self, actor: Actor, username: str, name: str) -> dict:
        with self.db.transaction() as unit:
            return boxes.delete_box(unit, self.urls, actor, username, name)

    @rpc
    def box_metadata(self, actor: Actor, username: str, name: str) -> dict:
        with self.db.read() as session:
            return boxes.box_metadata(session, self.urls, actor, username, name)

    @rpc
    def create_version(self, actor: Actor, username: str, name: str, fields: dict) -> dict:
        with self.db.transaction() as unit:
            return boxes.create_version(unit, self.urls, actor, username, name, fields)

    @rpc
    def get_version(self, actor: Actor, username: str, name: str, version: str) -> dict:
        with self.db.read() as session:
            return boxes.get_version(session, self.urls, actor, username, name, version)

    @rpc
    def update_version(
        self, actor: Actor, username: str, name: str, version: str, fields: dict
    ) -> dict:
        with self.db.transaction() as unit:
            return boxes.update_version(unit, self.urls, actor, username, name, version, fields)

    @rpc
    def delete_version(self, actor: Actor, username: str, name: str, version: str) -> dict:
        with self.db.transaction() as unit:
            return boxes.delete_version(unit, self.urls, actor, username, name, version)

    @rpc
    def release_version(self, actor: Actor, username: str, name: str, version: str) -> dict:
        with self.db.transaction() as unit:
            return boxes.release_version(unit, self.urls, actor, username, name, version)

    @rpc
    def revoke_version(self, actor: Actor, username: str, name: str, version: str) -> dict:
        with self.db.transaction() as unit:
            return boxes.revoke_version(unit, self.urls, actor, username, name, version)

    @rpc
    def create_provider(
        self, actor: Actor, username: str, name: str, version: str, fields: dict
    ) -> dict:
        with self.db.transaction() as unit:
            return boxes.create_provider(unit, self.urls, actor, username, name, version, fields)

    @rpc
    def get_provider(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> dict:
        with self.db.read() as session:
            return boxes.get_provider(
                session, self.urls, actor, username, name, version, provider, architecture
            )

    @rpc
    def update_provider(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None,
        fields: dict,
    ) -> dict:
        with self.db.transaction() as unit:
            return boxes.update_provider(
                unit, self.urls, actor, username, name, version, provider, architecture, fields
            )

    @rpc
    def delete_provider(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> dict:
        with self.db.transaction() as unit:
            return boxes.delete_provider(
                unit, self.urls, actor, username, name, version, provider, architecture
            )
