"""The container every Atlas service runs in: nameko's, recording when its start finishes.

nameko starts a container's extensions side by side, so the HTTP server
can serve requests while the event and RPC consumers are still connecting.
A stop that begins then meets extensions that have not finished starting,
and nameko's queue consumer fails on it. ``AtlasContainer`` records the
end of its start: the health check reports an instance as starting until
then, and a graceful stop waits for it before stopping anything.

``services.toolkit.runner`` makes it the container class of every service
it runs; a container of another class counts as started.
"""

from __future__ import annotations

from typing import Any

from eventlet.event import Event
from nameko.containers import ServiceContainer

CONTAINER_CLASS_KEY = "SERVICE_CONTAINER_CLS"
CONTAINER_CLASS = "services.toolkit.container.AtlasContainer"


class AtlasContainer(ServiceContainer):
    """nameko's service container with an event sent once every extension has started."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_finished = Event()

    def start(self) -> None:
        super().start()
        if not self.start_finished.ready():
            self.start_finished.send(True)


def is_starting(container: Any) -> bool:
    """Return whether ``container`` is an ``AtlasContainer`` whose start has not finished."""
    finished = getattr(container, "start_finished", None)
    return isinstance(finished, Event) and not finished.ready()


def wait_until_started(container: Any, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the container's start to finish; return whether it did."""
    if not is_starting(container):
        return True
    return bool(container.start_finished.wait(timeout=max(0.0, timeout)))
