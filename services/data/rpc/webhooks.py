"""RPC methods for webhook subscriptions, and what a delivering worker reads."""

from __future__ import annotations

from typing import Any

from services.toolkit import config as cfg
from services.toolkit.outbound import Allowlist
from services.toolkit.rpc import rpc

from .. import webhooks
from ..access import Actor
from .base import DataBase


class WebhooksRpc(DataBase):
    @rpc
    def create_webhook(
        self, actor: Actor, username: str, box_name: str | None, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Subscribe a URL to events of an account, or of its box ``box_name``.

        ``fields`` are ``url`` and ``events``. The result carries the signing
        secret, the only time it is shown. Raises ``Unprocessable`` for a URL
        whose host resolves to an address outside ``ATLAS.outbound_allowlist``
        that is not public.
        """
        key = cfg.secret_key(self.config)
        allowlist = Allowlist.from_config(self.config)
        with self.db.transaction() as unit:
            return webhooks.create(unit, actor, username, box_name, fields, key, allowlist)

    @rpc
    def list_webhooks(
        self, actor: Actor, username: str, box_name: str | None = None
    ) -> dict[str, Any]:
        """Return ``{"webhooks": [...]}`` of a box, or of an account and all its boxes."""
        with self.db.read() as session:
            return webhooks.find(session, actor, username, box_name)

    @rpc
    def delete_webhook(
        self, actor: Actor, username: str, box_name: str | None, webhook_id: int
    ) -> dict[str, Any]:
        with self.db.transaction() as unit:
            return webhooks.delete(unit, actor, username, box_name, webhook_id)

    @rpc
    def webhook_delivery_target(self, webhook_id: int) -> dict[str, Any]:
        """Return ``{"id", "url", "secret_sealed"}`` for a delivering worker."""
        with self.db.read() as session:
            return webhooks.delivery_target(session, webhook_id)
