"""RPC methods that gather what the gateway's web pages show."""

from __future__ import annotations

from services.toolkit.rpc import rpc

from .. import pages
from ..access import Actor
from .base import DataBase


class PagesRpc(DataBase):
    @rpc
    def describe_box(self, actor: Actor, username: str, name: str) -> dict:
        """Return ``{"box", "versions", "can_publish", "can_manage"}`` for the box page."""
        with self.db.read() as session:
            return pages.describe_box(session, self.urls, actor, username, name)
