"""Box search and download counts."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from schemas import responses as out
from schemas.search import SearchQuery
from services.toolkit.routespec import documented
from services.toolkit.web import api

from ..auth import TOKEN_PARAMETER
from .base import BOX, V1, V2, GatewayBase


class CatalogRoutes(GatewayBase):
    @api("GET", V1 + "/search")
    @api("GET", V2 + "/search")
    @documented({200: out.SearchResults}, query=SearchQuery, summary="Search released boxes")
    def search(self, request: Request) -> Any:
        parameters = {key: value for key, value in request.args.items() if key != TOKEN_PARAMETER}
        return self.data.search_boxes(self.actor(request), parameters)

    # An Atlas extension: Vagrant Cloud's objects carry only the box's total.
    @api("GET", V1 + BOX + "/downloads")
    @api("GET", V2 + BOX + "/downloads")
    @documented({200: out.BoxDownloads}, summary="Count downloads of a box and its providers")
    def box_downloads(self, request: Request, username: str, name: str) -> Any:
        return self.data.box_downloads(self.actor(request), username, name)
