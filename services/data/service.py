"""RPC interface of the data service, the private API every other service uses.

Arguments and results are plain JSON values. ``actor`` is ``None`` for an
anonymous caller or ``{"id": ..., "username": ...}`` as returned by
``authenticate``; the gateway passes it on for each public request. Methods
raise only the errors in ``services.toolkit.errors``.
"""

from __future__ import annotations

from typing import Any

from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.timer import timer

from services.toolkit import config as cfg

from . import accounts, boxes, uploads
from .access import Actor
from .database import Database
from .serialize import Urls

# Seconds between runs of the outbox relay.
RELAY_INTERVAL = 5


class DataService:
    name = "data"

    db = Database()
    config = Config()

    @property
    def urls(self) -> Urls:
        return Urls(cfg.setting(self.config, cfg.PUBLIC_URL))

    # Health

    @rpc
    def ping(self) -> dict[str, Any]:
        """Return ``{"database": "ok"}`` once a query succeeds; raise ServiceUnavailable if not."""
        self.db.ping()
        return {"database": "ok"}

    @timer(interval=RELAY_INTERVAL)
    def relay_outbox(self) -> None:
        self.db.relay_outbox()

    # Accounts and tokens

    @rpc
    def create_user(
        self, username: str, password: str | None = None, email: str | None = None
    ) -> dict:
        with self.db.transaction() as unit:
            return accounts.create_user(unit.session, username, password, email)

    @rpc
    def create_organization(self, name: str, owner: str) -> dict:
        with self.db.transaction() as unit:
            return accounts.create_organization(unit.session, name, owner)

    @rpc
    def add_member(self, organization: str, username: str, role: str) -> dict:
        with self.db.transaction() as unit:
            return accounts.add_member(unit.session, organization, username, role)

    @rpc
    def get_account(self, actor: Actor, username: str) -> dict:
        with self.db.read() as session:
            return accounts.get_account(session, self.urls, actor, username)

    @rpc
    def issue_token(self, username: str, description: str | None = None) -> dict:
        """Create a token for ``username`` without a password; for trusted callers only."""
        with self.db.transaction() as unit:
            return accounts.issue_token(unit.session, username, description)

    @rpc
    def login(self, login: str, password: str, description: str | None = None) -> dict:
        with self.db.transaction() as unit:
            return accounts.login(unit.session, login, password, description)

    @rpc
    def authenticate(self, token: str) -> dict:
        """Return ``{"actor": ..., "token": ...}`` for a valid token; raise Unauthenticated."""
        with self.db.transaction() as unit:
            return accounts.authenticate(unit.session, token)

    @rpc
    def revoke_token(self, token: str) -> None:
        with self.db.transaction() as unit:
            accounts.revoke_token(unit.session, token)

    # Boxes

    @rpc
    def create_box(self, actor: Actor, fields: dict) -> dict:
        with self.db.transaction() as unit:
            return boxes.create_box(unit, self.urls, actor, fields)

    @rpc
    def get_box(self, actor: Actor, username: str, name: str) -> dict:
        with self.db.read() as session:
            return boxes.get_box(session, self.urls, actor, username, name)

    @rpc
    def update_box(self, actor: Actor, username: str, name: str, fields: dict) -> dict:
        with self.db.transaction() as unit:
            return boxes.update_box(unit, self.urls, actor, username, name, fields)

    @rpc
    def delete_box(self, actor: Actor, username: str, name: str) -> dict:
        with self.db.transaction() as unit:
            return boxes.delete_box(unit, self.urls, actor, username, name)

    @rpc
    def box_metadata(self, actor: Actor, username: str, name: str) -> dict:
        with self.db.read() as session:
            return boxes.box_metadata(session, self.urls, actor, username, name)

    # Versions

    @rpc
    def create_version(self, actor: Actor, username: str, name: str, fields: dict) -> dict:
        with self.db.transaction() as unit:
            return boxes.create_version(unit, self.urls, actor, username, name, fields)

    @rpc
    def get_version(self, actor: Actor, username: str, name: str, version: str) -> dict:
        with self.db.read() as session:
            return boxes.get_version(session, self.urls, actor, username, name, version)

    @rpc
    def update_version(
        self, actor: Actor, username: str, name: str, version: str, fields: dict
    ) -> dict:
        with self.db.transaction() as unit:
            return boxes.update_version(unit, self.urls, actor, username, name, version, fields)

    @rpc
    def delete_version(self, actor: Actor, username: str, name: str, version: str) -> dict:
        with self.db.transaction() as unit:
            return boxes.delete_version(unit, self.urls, actor, username, name, version)

    @rpc
    def release_version(self, actor: Actor, username: str, name: str, version: str) -> dict:
        with self.db.transaction() as unit:
            return boxes.release_version(unit, self.urls, actor, username, name, version)

    @rpc
    def revoke_version(self, actor: Actor, username: str, name: str, version: str) -> dict:
        with self.db.transaction() as unit:
            return boxes.revoke_version(unit, self.urls, actor, username, name, version)

    # Providers

    @rpc
    def create_provider(
        self, actor: Actor, username: str, name: str, version: str, fields: dict
    ) -> dict:
        with self.db.transaction() as unit:
            return boxes.create_provider(unit, self.urls, actor, username, name, version, fields)

    @rpc
    def get_provider(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> dict:
        with self.db.read() as session:
            return boxes.get_provider(
                session, self.urls, actor, username, name, version, provider, architecture
            )

    @rpc
    def update_provider(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None,
        fields: dict,
    ) -> dict:
        with self.db.transaction() as unit:
            return boxes.update_provider(
                unit, self.urls, actor, username, name, version, provider, architecture, fields
            )

    @rpc
    def delete_provider(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> dict:
        with self.db.transaction() as unit:
            return boxes.delete_provider(
                unit, self.urls, actor, username, name, version, provider, architecture
            )

    # Uploads and downloads

    @rpc
    def create_upload_target(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
        direct: bool = False,
    ) -> dict:
        """Return ``{"token", "expires_at"}``: the single-use token of a binstore upload URL."""
        ttl = float(cfg.setting(self.config, cfg.UPLOAD_TARGET_TTL))
        with self.db.transaction() as unit:
            return uploads.create_upload_target(
                unit, actor, username, name, version, provider, architecture, direct, ttl
            )

    @rpc
    def begin_upload(self, token: str) -> dict:
        with self.db.read() as session:
            return uploads.begin_upload(session, token)

    @rpc
    def finish_upload(self, token: str, sha256: str, size: int) -> dict:
        with self.db.transaction() as unit:
            return uploads.finish_upload(unit, token, sha256, size)

    @rpc
    def reject_upload(self, token: str, reason: str) -> None:
        with self.db.transaction() as unit:
            uploads.reject_upload(unit, token, reason)

    @rpc
    def complete_direct_upload(self, actor: Actor, token: str) -> dict:
        with self.db.transaction() as unit:
            return uploads.complete_direct_upload(unit, self.urls, actor, token)

    @rpc
    def authorize_download(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> dict:
        """Count a download; return ``{"sha256", "size"}`` for a hosted file or ``{"url"}``."""
        with self.db.transaction() as unit:
            return uploads.authorize_download(
                unit, actor, username, name, version, provider, architecture
            )
