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

# Seconds between runs of the outbox relay.
RELAY_INTERVAL = 5


class DataBase:
    db = Database()
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
        return Policy(
            lease=float(cfg.setting(self.config, cfg.JOB_LEASE)),
            backoff_base=float(cfg.setting(self.config, cfg.JOB_BACKOFF_BASE)),
            backoff_max=float(cfg.setting(self.config, cfg.JOB_BACKOFF_MAX)),
            max_attempts=int(cfg.setting(self.config, cfg.JOB_MAX_ATTEMPTS)),
        )

    @rpc
    def ping(self) -> dict[str, Any]:
        """Return ``{"database": "ok"}`` once a query succeeds; raise ServiceUnavailable if not."""
        self.db.ping()
        return {"database": "ok"}

    @timer(interval=RELAY_INTERVAL)
    def relay_outbox(self) -> None:
        self.db.relay_outbox()
