"""Health of one service instance: whether it can do its work right now.

An instance is healthy once it has finished starting, while the broker
responds on its own connection and every dependency that can fail on its
own (the data service's database, binstore's storage) passes its probe. A
dependency provider takes part by defining ``probe_health()``, which
returns nothing when healthy and raises with a readable message when not.
``InstanceHealth`` runs the probes for ``GET /health/instance``, the
``instance_health`` RPC method and the Consul TTL check.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import eventlet
from kombu import Connection, Queue
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.utils import sanitize_url

from services.toolkit import config as cfg
from services.toolkit.container import is_starting

log = logging.getLogger(__name__)

PASSING = "passing"
CRITICAL = "critical"

# The broker keeps this exchange in every vhost, so a passive declare of it
# is a round trip that succeeds exactly when the connection works.
ALWAYS_PRESENT_EXCHANGE = "amq.direct"


@runtime_checkable
class HealthProbe(Protocol):
    def probe_health(self) -> None:
        """Return when the dependency works; otherwise raise an exception that explains why."""


class BrokerProbe:
    """A connection of its own to the broker, used to check it and to read queue depths.

    The connection is opened on first use and again after any failure, with
    ``timeout`` seconds to connect, so a probe never hangs on a dead broker.
    """

    def __init__(self, amqp_uri: str, timeout: float) -> None:
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self.connection: Connection | None = None
        self.lock = eventlet.semaphore.Semaphore()

    def _channel(self) -> Any:
        if self.connection is None:
            connection = Connection(self.amqp_uri, connect_timeout=self.timeout, heartbeat=0)
            try:
                connection.connect()
            except Exception:
                connection.release()
                raise
            self.connection = connection
        return self.connection.default_channel

    def _discard(self) -> None:
        if self.connection is not None:
            try:
                self.connection.release()
            except Exception:  # the connection is already broken; nothing to close
                log.debug("closing a broken probe connection failed", exc_info=True)
            self.connection = None

    def probe_health(self, queues: list[str] | None = None) -> None:
        """Return when the broker responds and each of ``queues`` has a consumer; raise if not.

        A queue without consumers means the service's own connection has not
        come back after an outage, even when the broker responds again.
        """
        with self.lock:
            try:
                with eventlet.Timeout(self.timeout):
                    channel = self._channel()
                    channel.exchange_declare(
                        ALWAYS_PRESENT_EXCHANGE, "direct", durable=True, passive=True
                    )
                    idle = [
                        name
                        for name in queues or []
                        if Queue(name, channel=channel).queue_declare(passive=True).consumer_count
                        == 0
                    ]
            except (Exception, eventlet.Timeout) as exc:
                self._discard()
                reason = (
                    f"timed out after {self.timeout:g} seconds"
                    if isinstance(exc, eventlet.Timeout)
                    else str(exc)
                )
                raise BrokerUnreachable(
                    f"broker at {sanitize_url(self.amqp_uri)} did not respond: {reason}"
                ) from None
        if idle:
            raise BrokerUnreachable(f"no consumer on {', '.join(idle)}; reconnecting to the broker")

    def queue_depths(self, names: list[str]) -> dict[str, tuple[int, int]]:
        """Return ``{queue: (messages ready, consumers)}`` for the queues that exist."""
        depths: dict[str, tuple[int, int]] = {}
        with self.lock:
            for name in names:
                try:
                    with eventlet.Timeout(self.timeout):
                        declared = Queue(name, channel=self._channel()).queue_declare(passive=True)
                except (Exception, eventlet.Timeout):
                    # A missing queue closes the channel; a dead broker the connection.
                    self._discard()
                    continue
                depths[name] = (declared.message_count, declared.consumer_count)
        return depths

    def close(self) -> None:
        with self.lock:
            self._discard()


class BrokerUnreachable(Exception):
    """The broker did not respond to a round trip on the probe's connection."""


class StillStarting(Exception):
    """Some of the instance's extensions have not finished starting."""


def consumed_queues(container: Any) -> list[str]:
    """Return the names of the shared, durable queues the container's entrypoints read."""
    names = set()
    for extension in container.extensions:
        queue = getattr(extension, "queue", None)
        if isinstance(queue, Queue) and queue.name and not (queue.exclusive or queue.auto_delete):
            names.add(queue.name)
    return sorted(names)


def run_probes(probes: dict[str, Callable[[], None]], timeout: float) -> dict[str, Any]:
    """Run each probe with ``timeout`` seconds; return the instance's status and each check."""
    checks: dict[str, dict[str, str]] = {}
    for name, probe in probes.items():
        try:
            with eventlet.Timeout(timeout):
                probe()
        except (Exception, eventlet.Timeout) as exc:
            message = str(exc) or f"{type(exc).__name__} after {timeout:g} seconds"
            checks[name] = {"status": CRITICAL, "output": message}
        else:
            checks[name] = {"status": PASSING, "output": "ok"}
    healthy = all(check["status"] == PASSING for check in checks.values())
    return {"status": PASSING if healthy else CRITICAL, "checks": checks}


def summarize(report: dict[str, Any]) -> str:
    """Return a one-line account of a health report, as a Consul check's output."""
    return "; ".join(
        f"{name}: {check['output']}" for name, check in sorted(report["checks"].items())
    )


class InstanceHealth(DependencyProvider):
    """Run the health probes of the service instance it is declared on.

    Probes are the end of the container's start and the broker (always), and
    every other dependency of the service that implements ``HealthProbe``;
    each gets ``ATLAS.health_timeout`` seconds.
    """

    broker: BrokerProbe

    def setup(self) -> None:
        config = self.container.config
        self.timeout = float(cfg.setting(config, cfg.HEALTH_TIMEOUT))
        self.broker = BrokerProbe(config[AMQP_URI_CONFIG_KEY], self.timeout)

    def stop(self) -> None:
        self.broker.close()

    def kill(self) -> None:
        self.broker.close()

    def probes(self) -> dict[str, Callable[[], None]]:
        # NOTE: with several instances of a service, another instance's
        # consumer also satisfies the queue check; only the broker round trip
        # is this instance's own.
        queues = consumed_queues(self.container)
        probes: dict[str, Callable[[], None]] = {
            "start": self.probe_started,
            "broker": lambda: self.broker.probe_health(queues),
        }
        for dependency in self.container.dependencies:
            if dependency is not self and isinstance(dependency, HealthProbe):
                probes[getattr(dependency, "attr_name", type(dependency).__name__)] = (
                    dependency.probe_health
                )
        return probes

    def probe_started(self) -> None:
        if is_starting(self.container):
            raise StillStarting("still starting")

    def check(self) -> dict[str, Any]:
        """Return ``{"status": "passing" | "critical", "instance", "checks": {name: {...}}}``.

        ``instance`` names the host and process that answered; each check has
        a ``status`` and an ``output``.
        """
        report = run_probes(self.probes(), self.timeout)
        report["instance"] = f"{socket.gethostname()}/{os.getpid()}"
        return report

    def queue_depths(self) -> dict[str, tuple[int, int]]:
        return self.broker.queue_depths(consumed_queues(self.container))

    def get_dependency(self, worker_ctx: Any) -> InstanceHealth:
        return self
