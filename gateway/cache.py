"""A short-lived cache of public box metadata, invalidated by the data service's events.

``vagrant box add`` and ``vagrant box outdated`` read box metadata far more
often than anyone changes it, so the gateway keeps the rendered JSON of
public boxes. Each entry lives at most ``ATLAS.metadata_cache_ttl`` seconds, which bounds how
stale an entry can be if an invalidating event is missed while the
gateway reconnects to the broker; events remove entries at once otherwise.
Private boxes are never cached.
"""

from __future__ import annotations

import time
from typing import Any

from nameko.extensions import DependencyProvider

from services.toolkit import config as cfg

MAX_ENTRIES = 10000


class MetadataStore:
    def __init__(self, ttl: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], tuple[float, bytes]] = {}
        # Bumped by every invalidation; a read that started before one must not
        # store what it read, because the event may describe a newer state.
        self.generation = 0

    def get(self, username: str, name: str) -> bytes | None:
        key = (username.lower(), name.lower())
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, body = entry
        if time.monotonic() - stored_at > self.ttl:
            self._entries.pop(key, None)
            return None
        return body

    def put(self, username: str, name: str, body: bytes, generation: int) -> None:
        if generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            # Dropping everything is crude but bounded, and rare at this size.
            self._entries.clear()
        self._entries[(username.lower(), name.lower())] = (time.monotonic(), body)

    def invalidate(self, username: str, name: str | None = None) -> None:
        """Forget one box, or every box of ``username`` when ``name`` is None."""
        self.generation += 1
        owner = username.lower()
        if name is not None:
            self._entries.pop((owner, name.lower()), None)
            return
        for key in [key for key in self._entries if key[0] == owner]:
            del self._entries[key]


class MetadataCache(DependencyProvider):
    """One ``MetadataStore`` per gateway instance, shared by its workers."""

    def setup(self) -> None:
        ttl = float(cfg.setting(self.container.config, cfg.METADATA_CACHE_TTL))
        self.store = MetadataStore(ttl)

    def get_dependency(self, worker_ctx: Any) -> MetadataStore:
        return self.store
