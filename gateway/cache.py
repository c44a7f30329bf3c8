"""A short-lived cache of public box metadata, invalidated by the data service's events.

``vagrant box add`` and ``vagrant box outdated`` read box metadata far more
often than anyone changes it, so the gateway keeps the rendered JSON of
public boxes. The data service's events remove an entry as soon as the
box changes. Events published while the gateway has lost its broker
connection never reach it (its event queue goes with the connection), so
the cache clears itself once it consumes again. Each entry also lives at
most ``ATLAS.metadata_cache_ttl`` seconds. Private boxes are never
cached.
"""

from __future__ import annotations

import time
from typing import Any

from nameko.events import BROADCAST, EventHandler
from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer

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

    def clear(self) -> None:
        """Remove every entry."""
        self.generation += 1
        self._entries.clear()


class MetadataCache(DependencyProvider):
    """One ``MetadataStore`` per gateway instance, shared by its workers."""

    def setup(self) -> None:
        ttl = float(cfg.setting(self.container.config, cfg.METADATA_CACHE_TTL))
        self.store = MetadataStore(ttl)

    def get_dependency(self, worker_ctx: Any) -> MetadataStore:
        return self.store


class ReconnectingQueueConsumer(QueueConsumer):
    """A nameko queue consumer that calls its handlers' ``consuming_again`` after a reconnection.

    A broadcast handler's queue lives only as long as its connection, so
    the events published while the connection was down are gone.
    """

    def on_consume_ready(
        self, connection: Any, channel: Any, consumers: Any, **kwargs: Any
    ) -> None:
        reconnected = self._consumers_ready.ready()
        super().on_consume_ready(connection, channel, consumers, **kwargs)
        if reconnected:
            for provider in list(self._providers):
                provider.consuming_again()


class InvalidatingEventHandler(EventHandler):
    """A broadcast handler of an event that changes box metadata.

    It has a connection of its own, and after that connection was lost it
    empties every ``MetadataCache`` of its service, since the events that
    would have invalidated entries in the meantime are lost.
    """

    queue_consumer = ReconnectingQueueConsumer()

    def consuming_again(self) -> None:
        for dependency in self.container.dependencies:
            if isinstance(dependency, MetadataCache):
                dependency.store.clear()


def invalidated_by(event_type: str) -> Any:
    """Make a method the gateway's handler of the data service's ``event_type``."""
    return InvalidatingEventHandler.decorator(
        "data", event_type, handler_type=BROADCAST, reliable_delivery=False
    )
