"""RPC methods for uploads to binstore and downloads from it."""

from __future__ import annotations

from services.toolkit import config as cfg
from services.toolkit.rpc import rpc

from .. import inspections, uploads
from ..access import Actor
from .base import DataBase


class UploadsRpc(DataBase):
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
        """Return the single-use token of a binstore upload URL.

        Keys: token, expires_at, and checksum_type and checksum, which the
        file must match (None unless the provider declares a checksum).
        """
        ttl = float(cfg.setting(self.config, cfg.UPLOAD_TARGET_TTL))
        with self.db.transaction() as unit:
            return uploads.create_upload_target(
                unit, actor, username, name, version, provider, architecture, direct, ttl
            )

    @rpc
    def begin_upload(self, token: str, size: int | None = None) -> dict:
        """Return ``{"target_id", "provider_id", "checksum_type", "checksum", "size"}``.

        ``size`` is the total of a resumable upload, recorded by its first part.
        """
        with self.db.transaction() as unit:
            return uploads.begin_upload(unit, token, size)

    @rpc
    def finish_upload(self, token: str, sha256: str, size: int) -> dict:
        with self.db.transaction() as unit:
            return uploads.finish_upload(unit, self.policy, token, sha256, size)

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
        count: bool = True,
    ) -> dict:
        """Return ``{"sha256", "size"}`` for a hosted file or ``{"url"}``; count it if ``count``."""
        with self.db.transaction() as unit:
            return uploads.authorize_download(
                unit, actor, username, name, version, provider, architecture, count
            )

    @rpc
    def inspection_target(self, provider_id: int) -> dict:
        """Return the provider's stored file and what box.inspect checks it against.

        Keys: provider, architecture, sha256, size, checksum_type, checksum.
        """
        with self.db.read() as session:
            return inspections.target(session, provider_id)

    @rpc
    def record_inspection(
        self,
        provider_id: int,
        sha256: str,
        verified: bool,
        reason: str | None = None,
        checked: dict | None = None,
    ) -> bool:
        """Store box.inspect's verdict on a provider's file ``sha256``.

        ``checked`` is what ``inspection_target`` returned to the inspection.
        Returns False, changing nothing, if the provider has another file by
        now, or another name, architecture or checksum than ``checked``.
        """
        with self.db.transaction() as unit:
            return inspections.record(unit, provider_id, sha256, verified, reason, checked)
