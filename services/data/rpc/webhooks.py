"""RPC methods for webhook subscriptions and their deliveries."""

from __future__ import annotations

from nameko.rpc import rpc

from services.toolkit.errors import AtlasError

from .. import jobs, webhooks
from ..access import Actor
from .base import DataBase


class WebhooksRpc(DataBase):
    @rpc(expected_exceptions=AtlasError)
    def create_webhook(self, actor: Actor, fields: dict) -> dict:
        """Create a subscription; the result carries its secret, the only time it is shown."""
        with self.db.transaction() as unit:
            return webhooks.create_webhook(unit, actor, fields)

    @rpc(expected_exceptions=AtlasError)
    def list_webhooks(
        self, actor: Actor, username: str | None = None, box: str | None = None
    ) -> dict:
        with self.db.read() as session:
            return webhooks.list_webhooks(session, actor, username, box)

    @rpc(expected_exceptions=AtlasError)
    def get_webhook(self, actor: Actor, webhook_id: int) -> dict:
        with self.db.read() as session:
            return webhooks.get_webhook(session, actor, webhook_id)

    @rpc(expected_exceptions=AtlasError)
    def update_webhook(self, actor: Actor, webhook_id: int, fields: dict) -> dict:
        with self.db.transaction() as unit:
            return webhooks.update_webhook(unit, actor, webhook_id, fields)

    @rpc(expected_exceptions=AtlasError)
    def rotate_webhook_secret(self, actor: Actor, webhook_id: int) -> dict:
        with self.db.transaction() as unit:
            return webhooks.rotate_secret(unit, actor, webhook_id)

    @rpc(expected_exceptions=AtlasError)
    def delete_webhook(self, actor: Actor, webhook_id: int) -> dict:
        with self.db.transaction() as unit:
            return webhooks.delete_webhook(unit, actor, webhook_id)

    @rpc(expected_exceptions=AtlasError)
    def webhook_deliveries(self, actor: Actor, webhook_id: int, filters: dict) -> dict:
        """Return the subscription's delivery jobs, newest first, as ``list_jobs`` does."""
        with self.db.read() as session:
            webhooks.require_webhook(session, actor, webhook_id)
            return jobs.list_all_jobs(session, {**filters, "webhook_id": webhook_id})

    @rpc(expected_exceptions=AtlasError)
    def webhook_delivery_target(self, webhook_id: int) -> dict:
        """Return ``{"url", "active", "secret_encrypted"}`` for a delivering worker."""
        with self.db.read() as session:
            return webhooks.delivery_target(session, webhook_id)
