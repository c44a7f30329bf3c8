"""Boxes, versions, providers and upload targets."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request

from schemas import requests as bodies
from schemas import responses as out
from services.toolkit import config as cfg
from services.toolkit.routespec import documented
from services.toolkit.web import api, read_json

from .base import BOX, PROVIDER, PROVIDER_ARCH, V1, V2, VERSION, GatewayBase


class BoxRoutes(GatewayBase):
    @api("POST", V1 + "/boxes")
    @api("POST", V2 + "/boxes")
    @documented({200: out.Box}, body=bodies.BoxCreate, auth="required")
    def create_box(self, request: Request) -> Any:
        return self.data.create_box(self.require_actor(request), read_json(request))

    @api("GET", V1 + BOX)
    @api("GET", V2 + BOX)
    @documented({200: out.Box})
    def get_box(self, request: Request, username: str, name: str) -> Any:
        return self.data.get_box(self.actor(request), username, name)

    @api("PUT", V1 + BOX)
    @api("PUT", V2 + BOX)
    @documented({200: out.Box}, body=bodies.BoxUpdate, auth="required")
    def update_box(self, request: Request, username: str, name: str) -> Any:
        return self.data.update_box(self.require_actor(request), username, name, read_json(request))

    @api("DELETE", V1 + BOX)
    @api("DELETE", V2 + BOX)
    @documented({200: out.Box}, auth="required")
    def delete_box(self, request: Request, username: str, name: str) -> Any:
        return self.data.delete_box(self.require_actor(request), username, name)

    @api("POST", V1 + BOX + "/versions")
    @api("POST", V2 + BOX + "/versions")
    @documented({200: out.Version}, body=bodies.VersionCreate, auth="required")
    def create_version(self, request: Request, username: str, name: str) -> Any:
        return self.data.create_version(
            self.require_actor(request), username, name, read_json(request)
        )

    @api("GET", V1 + VERSION)
    @api("GET", V2 + VERSION)
    @documented({200: out.Version})
    def get_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.get_version(self.actor(request), username, name, version)

    @api("PUT", V1 + VERSION)
    @api("PUT", V2 + VERSION)
    @documented({200: out.Version}, body=bodies.VersionUpdate, auth="required")
    def update_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.update_version(
            self.require_actor(request), username, name, version, read_json(request)
        )

    @api("DELETE", V1 + VERSION)
    @api("DELETE", V2 + VERSION)
    @documented({200: out.Version}, auth="required")
    def delete_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.delete_version(self.require_actor(request), username, name, version)

    @api("PUT", V1 + VERSION + "/release")
    @api("PUT", V2 + VERSION + "/release")
    @documented({200: out.Version}, auth="required")
    def release_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.release_version(self.require_actor(request), username, name, version)

    @api("PUT", V1 + VERSION + "/revoke")
    @api("PUT", V2 + VERSION + "/revoke")
    @documented({200: out.Version}, auth="required")
    def revoke_version(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.revoke_version(self.require_actor(request), username, name, version)

    @api("POST", V1 + VERSION + "/providers")
    @api("POST", V2 + VERSION + "/providers")
    @documented({200: out.Provider}, body=bodies.ProviderCreate, auth="required")
    def create_provider(self, request: Request, username: str, name: str, version: str) -> Any:
        return self.data.create_provider(
            self.require_actor(request), username, name, version, read_json(request)
        )

    @api("GET", V1 + PROVIDER)
    @api("GET", V2 + PROVIDER_ARCH)
    @documented({200: out.Provider})
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
    @documented({200: out.Provider}, body=bodies.ProviderUpdate, auth="required")
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
    @documented({200: out.Provider}, auth="required")
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
    @documented(
        {200: out.UploadTarget}, auth="required", summary="Get a URL to upload a box file to"
    )
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
    @documented(
        {200: out.DirectUploadTarget},
        auth="required",
        summary="Get a URL to upload a box file to and the callback that confirms it",
    )
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
    @documented({200: out.Provider}, auth="required", summary="Confirm a direct upload")
    def complete_upload(self, request: Request, token: str) -> Any:
        return self.data.complete_direct_upload(self.require_actor(request), token)
