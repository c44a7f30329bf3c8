"""Path prefixes and the helpers every group of routes shares."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from nameko.dependency_providers import Config
from werkzeug.wrappers import Request

from services.toolkit import config as cfg
from services.toolkit.consul import ServiceCatalog
from services.toolkit.errors import Unauthenticated
from services.toolkit.rpc import TimedRpcProxy

from ..auth import request_token

# Vagrant 2.3 uses the /api/v1 paths; Vagrant 2.4 and newer use /api/v2,
# whose single-provider paths end in /:architecture.
V1 = "/api/v1"
V2 = "/api/v2"
BOX = "/box/<username>/<name>"
VERSION = BOX + "/version/<version>"
PROVIDER = VERSION + "/provider/<provider>"
PROVIDER_ARCH = PROVIDER + "/<architecture>"


class GatewayBase:
    data = TimedRpcProxy("data")
    config = Config()
    catalog = ServiceCatalog()

    def actor(self, request: Request) -> dict[str, Any] | None:
        token = request_token(request)
        if token is None:
            return None
        return self.data.authenticate(token)["actor"]

    def require_actor(self, request: Request) -> dict[str, Any]:
        actor = self.actor(request)
        if actor is None:
            raise Unauthenticated(
                "authentication required; send a token in the Authorization header"
            )
        return actor

    def binstore_url(self) -> str:
        """Return the public URL of a binstore instance that passes its checks in Consul.

        Without Consul it is ``ATLAS.binstore_url``; raises ServiceUnavailable
        when Consul lists no passing instance.
        """
        return self.catalog.public_url("binstore", cfg.BINSTORE_URL)

    def upload_url(self, token: str) -> str:
        return f"{self.binstore_url()}/uploads/{quote(token)}"
