"""RPC methods binstore's garbage collection calls to learn which files are garbage."""

from __future__ import annotations

import datetime as dt

from services.toolkit.rpc import rpc

from .. import garbage
from .base import DataBase


class GarbageRpc(DataBase):
    @rpc
    def collect_unreferenced_artifacts(self, grace_period: float, dry_run: bool = False) -> dict:
        """Delete and return artifacts no provider referred to for ``grace_period`` seconds.

        Returns ``{"artifacts": [{"sha256", "size", "orphaned_at"}], "waiting": n}``.
        The caller deletes the files. A dry run changes nothing.
        """
        grace = dt.timedelta(seconds=grace_period)
        with self.db.transaction() as unit:
            return garbage.collect_unreferenced_artifacts(unit, grace, dry_run)

    @rpc
    def known_artifacts(self, sha256s: list[str]) -> list[str]:
        """Return the digests among ``sha256s`` that an artifact row records."""
        with self.db.read() as session:
            return garbage.known_artifacts(session, sha256s)

    @rpc
    def live_upload_targets(self, target_ids: list[int], grace_period: float) -> list[int]:
        """Return the ids of targets not completed and not expired for ``grace_period`` seconds."""
        grace = dt.timedelta(seconds=grace_period)
        with self.db.read() as session:
            return garbage.live_upload_targets(session, target_ids, grace)

    @rpc
    def remove_expired_upload_targets(self, grace_period: float, dry_run: bool = False) -> int:
        """Delete upload targets expired for ``grace_period`` seconds; return how many."""
        grace = dt.timedelta(seconds=grace_period)
        with self.db.transaction() as unit:
            return garbage.remove_expired_upload_targets(unit, grace, dry_run)
