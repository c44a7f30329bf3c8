"""Dependencies and health methods that every part of the data service's RPC interface shares."""

from __future__ import annotations

from typing import Any

from nameko.dependency_providers import Config
from nameko.timer import timer

from services.toolkit import config as cfg
from services.toolkit.rpc import rpc

from .. import login_limits
from ..database import Database
from ..lifecycle import Policy
from ..serialize import Urls
from ..webhooks import submit_deliveries

# Seconds between runs of the outbox relay.
RELAY_INTERVAL = 5


class DataBase:
    # Every event emitted in a transaction also creates, in that transaction,
    # the webhook deliveries that subscribe to it.
    db = Database(on_emit=submit_deliveries)
    config = Config()

    @property
    def urls(self) -> Urls:
        return Urls(cfg.setting(self.config, cfg.PUBLIC_URL))

    @property
    def login_limits(self) -> login_limits.LoginLimits:
        return login_limits.LoginLimits.from_config(self.config)

    def reserve_login_attempt(self, login: str, client_address: str | None) -> None:
        """Count a password sign-in as failed until it succeeds; raise TooManyRequests.

        The attempt is committed before the password is checked, so that
        attempts running at the same time in other processes count it.
        """
        with self.db.transaction() as unit:
            login_limits.reserve_attempt(unit.session, self.login_limits, login, client_address)

    @property
    def policy(self) -> Policy:
        """The job timing settings, for methods that submit or move jobs."""
        return Policy.from_config(self.config)

    @rpc
    def ping(self) -> dict[str, Any]:
        """Return ``{"database": "ok"}`` once a query succeeds; raise ServiceUnavailable if not."""
        self.db.ping()
        return {"database": "ok"}

    @timer(interval=RELAY_INTERVAL)
    def relay_outbox(self) -> None:
        self.db.relay_outbox()
