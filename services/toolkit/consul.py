"""Registration of service instances in Consul, and discovery of other services through it.

``ConsulRegistration`` registers the instance it runs in when the service
starts and deregisters it when the service stops. An HTTP service gets an
HTTP check, which the Consul agent runs against its ``/health/instance``
route. An RPC-only service gets a TTL check, which the instance itself
passes after each successful health probe (broker, and the database for
data).
Both carry ``DeregisterCriticalServiceAfter``, so Consul removes an instance
that crashed without deregistering.

``ServiceCatalog`` gives a service the public URL of another one, chosen
among the instances whose checks all pass. With no ``ATLAS.consul_url``
both do nothing Consul-related: registration is skipped and the catalog
answers with the URL from the configuration.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import consul
import eventlet
import requests
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import parse_address

from services.toolkit import config as cfg
from services.toolkit.container import is_starting
from services.toolkit.errors import ServiceUnavailable
from services.toolkit.health import CRITICAL, PASSING, InstanceHealth, summarize

log = logging.getLogger(__name__)

# Every Atlas instance carries this tag, which distinguishes Atlas services in the catalog.
SUITE_TAG = "atlas"

# Route the Consul agent requests for an HTTP service's check.
INSTANCE_HEALTH_PATH = "/health/instance"

# A TTL check turns critical after this many probe intervals without a pass,
# so one slow probe does not flap the instance.
TTL_INTERVALS = 3

CHECK_STATUS_ORDER = {PASSING: 0, "warning": 1, CRITICAL: 2, "maintenance": 3}


def atlas_version() -> str:
    try:
        return importlib.metadata.version("atlas")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def consul_enabled(config: dict[str, Any]) -> bool:
    return bool(cfg.setting(config, cfg.CONSUL_URL))


def consul_client(config: dict[str, Any]) -> consul.Consul:
    """Return a client of the agent at ``ATLAS.consul_url`` with the configured token and dc."""
    url = str(cfg.setting(config, cfg.CONSUL_URL))
    parts = urlsplit(url if "//" in url else f"http://{url}")
    if not parts.hostname:
        raise cfg.ConfigurationError(
            f"ATLAS.consul_url {url!r} names no host; write it as http://HOST:PORT"
        )
    return consul.Consul(
        # py-consul's own default of 30 seconds would hold a request or a
        # service start that long while the agent hangs.
        connections_timeout=float(cfg.setting(config, cfg.HEALTH_TIMEOUT)),
        host=parts.hostname,
        port=parts.port or 8500,
        scheme=parts.scheme or "http",
        token=str(cfg.setting(config, cfg.CONSUL_TOKEN)) or None,
        dc=str(cfg.setting(config, cfg.CONSUL_DATACENTER)) or None,
    )


def duration(seconds: float) -> str:
    """Format seconds as a Consul duration string such as ``"10s"`` or ``"1.5s"``."""
    return f"{seconds:g}s"


def advertised_host(config: dict[str, Any], listening_host: str) -> str:
    configured = str(cfg.setting(config, cfg.ADVERTISE_HOST))
    if configured:
        return configured
    if listening_host in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    return listening_host


def worst_status(checks: list[dict[str, Any]]) -> str:
    statuses = [check.get("Status", CRITICAL) for check in checks] or [CRITICAL]
    return max(statuses, key=lambda status: CHECK_STATUS_ORDER.get(status, 2))


class ConsulRegistration(DependencyProvider):
    """Register the service instance in Consul for as long as it runs.

    ``public_url_setting`` names the Atlas setting that contains the URL
    clients use for this service. It is published as the ``public_url`` meta
    value, which ``ServiceCatalog`` hands out.
    """

    def __init__(self, public_url_setting: str | None = None) -> None:
        self.public_url_setting = public_url_setting
        self.client: consul.Consul | None = None
        self.service_id = ""
        self.registered = False
        self.thread: Any = None

    def setup(self) -> None:
        config = self.container.config
        if not consul_enabled(config):
            return
        self.client = consul_client(config)
        self.interval = float(cfg.setting(config, cfg.CHECK_INTERVAL))
        # Consul raises values below one minute to one minute itself.
        self.deregister_after = float(cfg.setting(config, cfg.DEREGISTER_CRITICAL_AFTER))
        name = self.container.service_name
        self.service_id = f"{name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.health = self._instance_health()

    def _instance_health(self) -> InstanceHealth:
        for dependency in self.container.dependencies:
            if isinstance(dependency, InstanceHealth):
                return dependency
        raise cfg.ConfigurationError(
            f"service {self.container.service_name} declares ConsulRegistration without "
            "InstanceHealth; add both, or use services.toolkit.operations.ServiceOperations"
        )

    def is_http_service(self) -> bool:
        return any(isinstance(entry, HttpRequestHandler) for entry in self.container.entrypoints)

    def registration(self) -> dict[str, Any]:
        """Return the keyword arguments of the agent's service registration for this instance."""
        config = self.container.config
        meta = {"version": atlas_version()}
        if self.public_url_setting:
            meta["public_url"] = str(cfg.setting(config, self.public_url_setting)).rstrip("/")
        deregister = duration(self.deregister_after)
        registration: dict[str, Any] = {
            "name": self.container.service_name,
            "service_id": self.service_id,
            "tags": [SUITE_TAG],
            "meta": meta,
        }
        operations = str(cfg.setting(config, cfg.OPERATIONS_ADDRESS))
        if self.is_http_service():
            bind = parse_address(str(config.get(cfg.WEB_SERVER_ADDRESS, "0.0.0.0:8000")))
            host = advertised_host(config, bind.address)
            registration.update(address=host, port=bind.port)
            registration["check"] = consul.Check.http(
                f"http://{host}:{bind.port}{INSTANCE_HEALTH_PATH}",
                interval=duration(self.interval),
                timeout=duration(max(1.0, self.interval / 2)),
                deregister=deregister,
            )
        else:
            registration["check"] = {
                **consul.Check.ttl(duration(self.interval * TTL_INTERVALS)),
                "DeregisterCriticalServiceAfter": deregister,
            }
            if operations:
                bind = parse_address(operations)
                host = advertised_host(config, bind.address)
                registration.update(address=host, port=bind.port)
        if operations:
            meta["operations_address"] = operations
        return registration

    @property
    def check_id(self) -> str:
        # The agent names a service's only check "service:<service id>".
        return f"service:{self.service_id}"

    def start(self) -> None:
        if self.client is None:
            return
        self.register()
        self.thread = self.container.spawn_managed_thread(self.keep_registered)

    def register(self) -> bool:
        assert self.client is not None
        try:
            self.client.agent.service.register(**self.registration())
        except (consul.ConsulException, requests.RequestException) as exc:
            log.warning(
                "registering %s in Consul failed, retrying in %g seconds: %s",
                self.service_id,
                self.interval,
                exc,
            )
            self.registered = False
            return False
        log.info("registered %s in Consul", self.service_id)
        self.registered = True
        return True

    def keep_registered(self) -> None:
        """Register again after failures and, for a TTL check, report each probe's result."""
        while True:
            try:
                self._heartbeat()
            except Exception:  # the loop must outlive any one failure
                log.exception("updating the Consul registration of %s failed", self.service_id)
            eventlet.sleep(self.interval)

    def _heartbeat(self) -> None:
        assert self.client is not None
        if not self.registered and not self.register():
            return
        if self.is_http_service() or is_starting(self.container):
            # The TTL check stays critical, as registered, until the start is over.
            return
        report = self.health.check()
        output = summarize(report)
        try:
            if report["status"] == PASSING:
                known = self.client.agent.check.ttl_pass(self.check_id, output)
            else:
                log.warning("%s is unhealthy: %s", self.service_id, output)
                known = self.client.agent.check.ttl_fail(self.check_id, output)
        except (consul.ConsulException, requests.RequestException) as exc:
            log.warning("reporting the health of %s to Consul failed: %s", self.service_id, exc)
            return
        if not known:
            # The agent answered 404: it lost the registration, for example by restarting.
            log.warning("Consul no longer knows %s; registering it again", self.service_id)
            self.registered = False

    def before_stop(self) -> None:
        """Deregister when a graceful stop begins, so that nothing discovers a draining instance."""
        self._leave()

    def stop(self) -> None:
        self._leave()

    def kill(self) -> None:
        self._leave()

    def _leave(self) -> None:
        if self.thread is not None:
            self.thread.kill()
            self.thread = None
        if self.client is None or not self.registered:
            return
        try:
            self.client.agent.service.deregister(self.service_id)
        except (consul.ConsulException, requests.RequestException) as exc:
            log.warning(
                "deregistering %s from Consul failed; it leaves after %g seconds critical: %s",
                self.service_id,
                self.deregister_after,
                exc,
            )
        else:
            log.info("deregistered %s from Consul", self.service_id)
        self.registered = False

    def get_dependency(self, worker_ctx: Any) -> str:
        return self.service_id


@dataclass
class CachedInstances:
    urls: list[str]
    expires_at: float
    rotation: Any = field(default=None)

    def __post_init__(self) -> None:
        self.rotation = itertools.cycle(self.urls) if self.urls else None


class ServiceCatalog(DependencyProvider):
    """Find the public URL of a service among its instances that pass their checks.

    Lists of passing instances are kept for ``ATLAS.discovery_cache_ttl``
    seconds and handed out in turn. Without Consul the URL comes from the
    configuration setting the caller names.
    """

    def setup(self) -> None:
        config = self.container.config
        self.client = consul_client(config) if consul_enabled(config) else None
        self.consul_url = str(cfg.setting(config, cfg.CONSUL_URL))
        self.cache_ttl = float(cfg.setting(config, cfg.DISCOVERY_CACHE_TTL))
        self.cache: dict[str, CachedInstances] = {}

    def public_url(self, service: str, fallback_setting: str) -> str:
        """Return a base URL of ``service``; raise ServiceUnavailable if none passes."""
        if self.client is None:
            return str(cfg.setting(self.container.config, fallback_setting)).rstrip("/")
        cached = self.cache.get(service)
        if cached is None or cached.expires_at <= time.monotonic():
            cached = CachedInstances(self._passing_urls(service), time.monotonic() + self.cache_ttl)
            self.cache[service] = cached
        if cached.rotation is None:
            raise ServiceUnavailable(
                f"no {service} instance passes its health check in Consul; "
                "try again once one is running and healthy"
            )
        return str(next(cached.rotation))

    def _passing_urls(self, service: str) -> list[str]:
        entries = self._health(service, passing=True)
        urls = []
        for entry in entries:
            instance = entry["Service"]
            url = (instance.get("Meta") or {}).get("public_url")
            if not url:
                address = instance.get("Address") or entry["Node"].get("Address")
                url = f"http://{address}:{instance['Port']}"
            urls.append(url.rstrip("/"))
        return urls

    def _health(self, service: str, passing: bool) -> list[dict[str, Any]]:
        assert self.client is not None
        try:
            _, entries = self.client.health.service(service, passing=passing)
        except (consul.ConsulException, requests.RequestException) as exc:
            raise ServiceUnavailable(
                f"Consul at {self.consul_url} did not respond: {exc}; try again shortly"
            ) from exc
        return list(entries)

    def instances(self, service: str) -> list[dict[str, Any]]:
        """Return every registered instance of ``service`` with its worst check status."""
        result = []
        for entry in self._health(service, passing=False):
            instance = entry["Service"]
            checks = entry.get("Checks") or []
            failing = [
                f"{check.get('Name') or check.get('CheckID')}: {check.get('Output', '').strip()}"
                for check in checks
                if check.get("Status") != PASSING
            ]
            result.append(
                {
                    "id": instance["ID"],
                    "address": f"{instance.get('Address', '')}:{instance.get('Port', 0)}",
                    "status": worst_status(checks),
                    "output": "; ".join(failing) or "ok",
                }
            )
        return result

    def suite_services(self) -> list[str]:
        """Return the names of the services registered with the Atlas tag."""
        assert self.client is not None
        try:
            _, services = self.client.catalog.services()
        except (consul.ConsulException, requests.RequestException) as exc:
            raise ServiceUnavailable(
                f"Consul at {self.consul_url} did not respond: {exc}; try again shortly"
            ) from exc
        return sorted(name for name, tags in services.items() if SUITE_TAG in (tags or []))

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def get_dependency(self, worker_ctx: Any) -> ServiceCatalog:
        return self
