"""RPC methods of box.import: submitting an import, and its attempts' upload targets."""

from __future__ import annotations

from typing import Any

from services.toolkit import config as cfg
from services.toolkit.rpc import rpc

from .. import imports
from ..access import Actor
from .base import DataBase


class ImportsRpc(DataBase):
    @rpc
    def import_box(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        """Submit a box.import job for a provider and return the job.

        ``fields`` are ``url`` and optionally ``checksum_type`` and ``checksum``.
        """
        ttl = float(cfg.setting(self.config, cfg.UPLOAD_TARGET_TTL))
        with self.db.transaction() as unit:
            return imports.submit(
                unit, actor, username, name, version, provider, architecture, fields, ttl
            )

    @rpc
    def open_import_upload(self, job_id: int, attempt: int, restart: bool = False) -> dict:
        """Return a new upload token for a running import attempt, or that it is stored.

        Returns ``{"completed": False, "token", "size"}`` or ``{"completed":
        True, "sha256"}``; ``restart`` abandons the bytes received so far.
        """
        ttl = float(cfg.setting(self.config, cfg.UPLOAD_TARGET_TTL))
        with self.db.transaction() as unit:
            return imports.open_upload(unit, job_id, attempt, ttl, restart)
