"""Dependencies and health methods that every part of the data service's RPC interface shares."""

from __future__ import annotations

from typing import Any

from nameko.dependency_providers import Config
from nameko.timer import timer

from services.toolkit import config as cfg
from services.toolkit.rpc import rpc

from ..database import Database
from ..serialize import Urls

# Seconds between runs of the outbox relay.
RELAY_INTERVAL = 5


class DataBase:
    db = Database()
    config = Config()

    @property
    def urls(self) -> Urls:
        return Urls(cfg.setting(self.config, cfg.PUBLIC_URL))

    @rpc
    def ping(self) -> dict[str, Any]:
        """Return ``{"database": "ok"}`` once a query succeeds; raise ServiceUnavailable if not."""
        self.db.ping()
        return {"database": "ok"}

    @timer(interval=RELAY_INTERVAL)
    def relay_outbox(self) -> None:
        self.db.relay_outbox()
