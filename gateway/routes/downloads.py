"""Box metadata and downloads, at the paths `vagrant box add` uses."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Request, Response

from schemas import responses as out
from services.toolkit import config as cfg
from services.toolkit.crypto import DOWNLOAD_PURPOSE, sign
from services.toolkit.routespec import documented
from services.toolkit.web import JSON_TYPE, api, json_response

from ..auth import request_token
from ..cache import MetadataCache, invalidated_by
from .base import GatewayBase

DOWNLOAD = (
    "/<username>/boxes/<name>/versions/<version>/providers/<provider>/<architecture>/vagrant.box"
)


class DownloadRoutes(GatewayBase):
    metadata_cache = MetadataCache()

    @api("GET", "/<username>/<name>")
    @documented(
        {200: out.BoxMetadata, 302: None},
        summary="Get the box catalog that vagrant box add reads",
        headers={"Location": "the box's page, for a browser that prefers HTML"},
    )
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

    @invalidated_by("box.updated")
    @invalidated_by("box.deleted")
    def forget_account_metadata(self, payload: dict[str, Any]) -> None:
        # A rename changes the box's key, so forget every box of the owner.
        self.metadata_cache.invalidate(payload["username"])

    @invalidated_by("version.released")
    @invalidated_by("version.revoked")
    @invalidated_by("version.updated")
    @invalidated_by("version.deleted")
    # A provider created with a URL on a released version appears in metadata
    # at once, and may take the default architecture from another.
    @invalidated_by("provider.created")
    @invalidated_by("provider.uploaded")
    @invalidated_by("provider.updated")
    @invalidated_by("provider.deleted")
    @invalidated_by("provider.inspected")
    def forget_box_metadata(self, payload: dict[str, Any]) -> None:
        self.metadata_cache.invalidate(payload["username"], payload["name"])

    @api("GET", DOWNLOAD)
    @documented(
        {302: None},
        summary="Download a box file",
        headers={"Location": "a signed binstore URL, or the provider's external URL"},
    )
    def download(
        self,
        request: Request,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str,
    ) -> Any:
        # A HEAD request only probes the URL, and a range from past the first
        # byte resumes a download already counted, so neither counts.
        target = self.data.authorize_download(
            self.actor(request),
            username,
            name,
            version,
            provider,
            architecture,
            request.method != "HEAD" and not _resumes(request),
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


def _resumes(request: Request) -> bool:
    """Return whether the request is for a range that starts past the first byte."""
    requested = request.range
    return requested is not None and any(start != 0 for start, _ in requested.ranges)
