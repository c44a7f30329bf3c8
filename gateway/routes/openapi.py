"""The OpenAPI document of the gateway at ``GET /openapi.json``."""

from __future__ import annotations

import functools
import json
from typing import Any

from werkzeug.wrappers import Request, Response

from services.toolkit import config as cfg
from services.toolkit.consul import atlas_version
from services.toolkit.routespec import documented
from services.toolkit.web import JSON_TYPE, api

from ..openapi import build_document
from .base import GatewayBase


@functools.cache
def serialized_document(service_cls: type, public_url: str) -> bytes:
    """Return the document as JSON; the routes cannot change while the process runs."""
    return json.dumps(build_document(service_cls, public_url, atlas_version())).encode()


class OpenApiRoutes(GatewayBase):
    @api("GET", "/openapi.json")
    @documented({200: JSON_TYPE}, auth="none", summary="Get this OpenAPI document")
    def openapi(self, request: Request) -> Any:
        public_url = str(cfg.setting(self.config, cfg.PUBLIC_URL))
        return Response(serialized_document(type(self), public_url), mimetype=JSON_TYPE)
