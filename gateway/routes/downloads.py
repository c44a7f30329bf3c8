"""Box metadata and downloads, at the paths `vagrant box add` uses."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from nameko.events import BROADCAST, event_handler
from werkzeug.wrappers import Request, Response

from services.toolkit import config as cfg
from services.toolkit.crypto import DOWNLOAD_PURPOSE, sign
from services.toolkit.web import JSON_TYPE, api, json_response

from ..auth import request_token
from ..cache import MetadataCache
from .base import GatewayBase

DOWNLOAD = (
    "/<username>/boxes/<name>/versions/<version>/providers/<provider>/<architecture>/vagrant.box"
)


class DownloadRoutes(GatewayBase):
    metadata_cache = MetadataCache()

    @api("GET", "/<username>/<name>")
    def box_metadata(self, request: Request, username: str, name: str) -> Any:
        # A browser following a box's short URL gets its page; vagrant asks for JSON.
        if "text/html" in request.headers.get("Accept", "") and (
            request.accept_mimetypes.best_match([JSON_TYPE, "text/html"]) == "text/html"
        ):
            return Response(
                status=302, headers={"Location": f"/{quote(username)}/boxes/{quote(name)}"}
            )
        if request_token(request) is not None:
            return json_response(self.data.box_metadata(self.actor(request), username, name))

        cached = self.metadata_cache.get(username, name)
        if cached is not None:
            return Response(cached, mimetype=JSON_TYPE)
        generation = self.metadata_cache.generation
        body = json.dumps(self.data.box_metadata(None, username, name)).encode()
        # An anonymous caller can read only public boxes, so this one is public.
        self.metadata_cache.put(username, name, body, generation)
        return Response(body, mimetype=JSON_TYPE)

    @event_handler("data", "box.updated", handler_type=BROADCAST, reliable_delivery=False)
    @event_handler("data", "box.deleted", handler_type=BROADCAST, reliable_delivery=False)
    def forget_account_metadata(self, payload: dict[str, Any]) -> None:
        # A rename changes the box's key, so forget every box of the owner.
        self.metadata_cache.invalidate(payload["username"])

    @event_handler("data", "version.released", handler_type=BROADCAST, reliable_delivery=False)
    @event_handler("data", "version.revoked", handler_type=BROADCAST, reliable_delivery=False)
    @event_handler("data", "version.updated", handler_type=BROADCAST, reliable_delivery=False)
    @event_handler("data", "version.deleted", handler_type=BROADCAST, reliable_delivery=False)
    # A provider created with a URL on a released version appears in metadata
    # at once, and may take the default architecture from another.
    @event_handler("data", "provider.created", handler_type=BROADCAST, reliable_delivery=False)
    @event_handler("data", "provider.uploaded", handler_type=BROADCAST, reliable_delivery=False)
    @event_handler("data", "provider.updated", handler_type=BROADCAST, reliable_delivery=False)
    @event_handler("data", "provider.deleted", handler_type=BROADCAST, reliable_delivery=False)
    @event_handler("data", "provider.inspected", handler_type=BROADCAST, reliable_delivery=False)
    def forget_box_metadata(self, payload: dict[str, Any]) -> None:
        self.metadata_cache.invalidate(payload["username"], payload["name"])

    @api("GET", DOWNLOAD)
    def download(
        self,
        request: Request,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str,
    ) -> Any:
        # A HEAD request only probes the URL, so it is not counted as a download.
        target = self.data.authorize_download(
            self.actor(request),
            username,
            name,
            version,
            provider,
            architecture,
            request.method != "HEAD",
        )
        if "url" in target:
            location = target["url"]
        else:
            key = cfg.secret_key(self.config)
            ttl = float(cfg.setting(self.config, cfg.DOWNLOAD_URL_TTL))
            token = sign(key, DOWNLOAD_PURPOSE, target["sha256"], ttl)
            query = urlencode({"token": token})
            location = f"{self.binstore_url()}/blobs/{target['sha256']}?{query}"
        return Response(status=302, headers={"Location": location})
