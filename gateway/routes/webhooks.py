"""Webhook subscriptions of an account or a box, and box imports. Atlas extensions.

Deliveries and imports are jobs, listed and shown by the job routes.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from services.toolkit.web import api, read_json

from .base import BOX, PROVIDER, PROVIDER_ARCH, V1, V2, GatewayBase

ACCOUNT_WEBHOOKS = "/user/<username>/webhooks"
BOX_WEBHOOKS = BOX + "/webhooks"
# Webhook ids are PostgreSQL integers; a larger number matches no route.
WEBHOOK_ID = "/<int(max=2147483647):webhook_id>"


class WebhookRoutes(GatewayBase):
    @api("POST", V1 + ACCOUNT_WEBHOOKS)
    @api("POST", V2 + ACCOUNT_WEBHOOKS)
    def create_account_webhook(self, request: Request, username: str) -> Any:
        actor = self.require_actor(request)
        return 201, self.data.create_webhook(actor, username, None, read_json(request))

    @api("GET", V1 + ACCOUNT_WEBHOOKS)
    @api("GET", V2 + ACCOUNT_WEBHOOKS)
    def list_account_webhooks(self, request: Request, username: str) -> Any:
        return self.data.list_webhooks(self.require_actor(request), username, None)

    @api("DELETE", V1 + ACCOUNT_WEBHOOKS + WEBHOOK_ID)
    @api("DELETE", V2 + ACCOUNT_WEBHOOKS + WEBHOOK_ID)
    def delete_account_webhook(self, request: Request, username: str, webhook_id: int) -> Any:
        return self.data.delete_webhook(self.require_actor(request), username, None, webhook_id)

    @api("POST", V1 + BOX_WEBHOOKS)
    @api("POST", V2 + BOX_WEBHOOKS)
    def create_box_webhook(self, request: Request, username: str, name: str) -> Any:
        actor = self.require_actor(request)
        return 201, self.data.create_webhook(actor, username, name, read_json(request))

    @api("GET", V1 + BOX_WEBHOOKS)
    @api("GET", V2 + BOX_WEBHOOKS)
    def list_box_webhooks(self, request: Request, username: str, name: str) -> Any:
        return self.data.list_webhooks(self.require_actor(request), username, name)

    @api("DELETE", V1 + BOX_WEBHOOKS + WEBHOOK_ID)
    @api("DELETE", V2 + BOX_WEBHOOKS + WEBHOOK_ID)
    def delete_box_webhook(
        self, request: Request, username: str, name: str, webhook_id: int
    ) -> Any:
        return self.data.delete_webhook(self.require_actor(request), username, name, webhook_id)

    @api("POST", V1 + PROVIDER + "/import")
    @api("POST", V2 + PROVIDER_ARCH + "/import")
    def import_box(
        self,
        request: Request,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> Any:
        """Submit a box.import job; the response is the job, to follow at /jobs/:id."""
        job = self.data.import_box(
            self.require_actor(request),
            username,
            name,
            version,
            provider,
            architecture,
            read_json(request),
        )
        return 202, job
