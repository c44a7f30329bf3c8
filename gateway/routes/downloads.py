"""Box metadata and downloads, at the paths `vagrant box add` uses."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from services.toolkit import config as cfg
from services.toolkit.crypto import DOWNLOAD_PURPOSE, sign
from services.toolkit.web import api, json_response

from .base import GatewayBase

DOWNLOAD = (
    "/<username>/boxes/<name>/versions/<version>/providers/<provider>/<architecture>/vagrant.box"
)


class DownloadRoutes(GatewayBase):
    @api("GET", "/<username>/<name>")
    def box_metadata(self, request: Request, username: str, name: str) -> Any:
        metadata = self.data.box_metadata(self.actor(request), username, name)
        return json_response(metadata)

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
        target = self.data.authorize_download(
            self.actor(request), username, name, version, provider, architecture
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
