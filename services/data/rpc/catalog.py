"""RPC methods that read across boxes: search and download counts."""

from __future__ import annotations

from typing import Any

from services.toolkit.rpc import rpc

from .. import boxes, search
from ..access import Actor
from .base import DataBase


class CatalogRpc(DataBase):
    @rpc
    def search_boxes(self, actor: Actor, parameters: dict[str, Any]) -> dict:
        """Return ``{"boxes": [...]}`` for the query parameters of ``GET /search``."""
        with self.db.read() as session:
            return search.search_boxes(session, self.urls, actor, parameters)

    @rpc
    def box_downloads(self, actor: Actor, username: str, name: str) -> dict:
        """Return the download counts of a box and of each of its providers."""
        with self.db.read() as session:
            return boxes.box_downloads(session, actor, username, name)
