"""Routes of the public API. Each authenticates, calls the data service and returns JSON.

Vagrant 2.3 uses the ``/api/v1`` paths; Vagrant 2.4 and newer use
``/api/v2``, whose single-provider paths end in ``/:architecture``. Both
are served by the same handlers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from nameko.dependency_providers import Config
from werkzeug.wrappers import Request, Response

from schemas import requests as bodies
from schemas.validation import validate
from services.toolkit import config as cfg
from services.toolkit.crypto import sign
from services.toolkit.errors import Unauthenticated
from services.toolkit.rpc import TimedRpcProxy
from services.toolkit.web import api, error_response, json_response, read_json

from .auth import request_token

V1 = "/api/v1"
V2 = "/api/v2"
BOX = "/box/<username>/<name>"
VERSION = BOX + "/version/<version>"
PROVIDER = VERSION + "/provider/<provider>"
PROVIDER_ARCH = PROVIDER + "/<architecture>"

DOWNLOAD = (
    "/<username>/boxes/<name>/versions/<version>/providers/<provider>/<architecture>/vagrant.box"
)
DOWNLOAD_PURPOSE = "download"


def both(path: str) -> list[str]:
    return [V1 + path, V2 + path]


class GatewayService:
    name = "gateway"

    data = TimedRpcProxy("data")
    config = Config()

    # Helpers

    def actor(self, request: Request) -> dict[str, Any] | None:
        token = request_token(request)
        if token is None:
            return None
        return self.data.authenticate(token)["actor"]  # type: ignore[no-any-return]

    def require_actor(self, request: Request) -> dict[str, Any]:
        actor = self.actor(request)
        if actor is None:
            raise Unauthenticated(
                "authentication required; send a token in the Authorization header"
            )
        return actor

    def upload_url(self, token: str) -> str:
        base = str(cfg.setting(self.config, cfg.BINSTORE_URL)).rstrip("/")
        return f"{base}/uploads/{quote(token)}"

    # Authentication

    @api("GET", V1 + "/authenticate")
    @api("GET", V2 + "/authenticate")
    def whoami(self, request: Request) -> Any:
        token = request_token(request)
        if token is None:
            raise Unauthenticated(
                "authentication required; send a token in the Authorization header"
            )
        result = self.data.authenticate(token)
        return {"user": {"username": result["actor"]["username"]}, **result["token"]}

    @api("POST", V1 + "/authenticate")
    @api("POST", V2 + "/authenticate")
    def login(self, request: Request) -> Any:
        body = validate(bodies.TokenCreate, read_json(request))
        return self.data.login(body.user.login, body.user.password, body.token.description)

    @api("DELETE", V1 + "/authenticate")
    @api("DELETE", V2 + "/authenticate")
    def logout(self, request: Request) -> Any:
        token = request_token(request)
        if token is None:
            raise Unauthenticated(
                "authentication required; send a token in the Authorization header"
            )
        self.data.revoke_token(token)
        return 204, {}

    @api("GET", V1 + "/user/<username>")
    @api("GET", V2 + "/user/<username>")
    def get_account(self, request: Request, username: str) -> Any:
        return self.data.get_account(self.actor(request), username)

    # Boxes

    @api("POST", V1 + "/boxes")
    @api("POST", V2 + "/boxes")
    def create_box(self, request: Request) -> Any:
        return self.data.create_box(self.require_actor(request), read_json(request))

    @api("GET", V1 + BOX)
    @api("GET", V2 + BOX)
    def get_box(self, request: Request, username: str, name: str) -> Any:
        return self.data.get_box(self.actor(request), username, name)

    @api("PUT", V1 + BOX)
    @api("PUT", V2 + BOX)
    def update_box(self, request: Request, username: str, name: str) -> Any:
        return self.data.update_box(self.require_actor(request), username, name, read_json(request))

    @api("DELETE", V1 + BOX)
    @api("DELETE", V2 + BOX)
    def delete_box(self, request: Request, username: str, name: str) -> Any:
        return self.data.delete_box(self.require_actor(request), username, name)

    # Versions

    @api("POST", V1 + BOX + "/versions")
    @api("POST", V2 + BOX + "/versions")
    def create_version(self, request: Request, username: str, name: str) -> Any:
        return self.data.create_version(
            self.require_actor(request), username, name, read_json(request)
        )

    @api("GET", V1 + VERSION)
    @api("GET", V2 + VERSION)
    def get_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.get_version(self.actor(request), username, name, version)

    @api("PUT", V1 + VERSION)
    @api("PUT", V2 + VERSION)
    def update_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.update_version(
            self.require_actor(request), username, name, version, read_json(request)
        )

    @api("DELETE", V1 + VERSION)
    @api("DELETE", V2 + VERSION)
    def delete_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.delete_version(self.require_actor(request), username, name, version)

    @api("PUT", V1 + VERSION + "/release")
    @api("PUT", V2 + VERSION + "/release")
    def release_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.release_version(self.require_actor(request), username, name, version)

    @api("PUT", V1 + VERSION + "/revoke")
    @api("PUT", V2 + VERSION + "/revoke")
    def revoke_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.revoke_version(self.require_actor(request), username, name, version)

    # Providers

    @api("POST", V1 + VERSION + "/providers")
    @api("POST", V2 + VERSION + "/providers")
    def create_provider(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.create_provider(
            self.require_actor(request), username, name, version, read_json(request)
        )

    @api("GET", V1 + PROVIDER)
    @api("GET", V2 + PROVIDER_ARCH)
    def get_provider(
        self,
        request: Request,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> Any:
        return self.data.get_provider(
            self.actor(request), username, name, version, provider, architecture
        )

    @api("PUT", V1 + PROVIDER)
    @api("PUT", V2 + PROVIDER_ARCH)
    def update_provider(
        self,
        request: Request,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> Any:
        return self.data.update_provider(
            self.require_actor(request),
            username,
            name,
            version,
            provider,
            architecture,
            read_json(request),
        )

    @api("DELETE", V1 + PROVIDER)
    @api("DELETE", V2 + PROVIDER_ARCH)
    def delete_provider(
        self,
        request: Request,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> Any:
        return self.data.delete_provider(
            self.require_actor(request), username, name, version, provider, architecture
        )

    @api("GET", V1 + PROVIDER + "/upload")
    @api("GET", V2 + PROVIDER_ARCH + "/upload")
    def upload(
        self,
        request: Request,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> Any:
        target = self.data.create_upload_target(
            self.require_actor(request), username, name, version, provider, architecture, False
        )
        return {"upload_path": self.upload_url(target["token"])}

    @api("GET", V1 + PROVIDER + "/upload/direct")
    @api("GET", V2 + PROVIDER_ARCH + "/upload/direct")
    def upload_direct(
        self,
        request: Request,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> Any:
        target = self.data.create_upload_target(
            self.require_actor(request), username, name, version, provider, architecture, True
        )
        public = str(cfg.setting(self.config, cfg.PUBLIC_URL)).rstrip("/")
        return {
            "upload_path": self.upload_url(target["token"]),
            "callback": f"{public}{V1}/uploads/{quote(target['token'])}/complete",
        }

    @api("PUT", V1 + "/uploads/<token>/complete")
    @api("PUT", V2 + "/uploads/<token>/complete")
    def complete_upload(self, request: Request, token: str) -> Any:
        return self.data.complete_direct_upload(self.require_actor(request), token)

    # Box metadata and downloads, at the paths `vagrant box add` uses

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
            base = str(cfg.setting(self.config, cfg.BINSTORE_URL)).rstrip("/")
            location = f"{base}/blobs/{target['sha256']}?{urlencode({'token': token})}"
        return Response(status=302, headers={"Location": location})

    @api("GET", "/health")
    def health(self, request: Request) -> Any:
        try:
            data = self.data.ping()
        except Exception as exc:  # any failure means "not healthy", with its reason
            return error_response(503, f"data service: {exc}")
        return {"status": "passing", "services": {"data": data}}
