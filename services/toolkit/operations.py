"""Health, Consul registration, metrics and log context for every service.

A service adds all of it by inheriting one mixin::

    class WorkerService(ServiceOperations):          # RPC, events, jobs
        name = "worker"

    class BinstoreService(HttpServiceOperations):    # serves HTTP
        name = "binstore"

``ServiceOperations`` gives the ``instance_health`` RPC method, the Consul
registration with a TTL check, metrics of every worker, correlation ids in
the logs, and, when ``ATLAS.operations_address`` is set, a small HTTP
listener with ``/metrics`` and ``/health/instance``. ``HttpServiceOperations``
serves those two routes on the service's own HTTP port instead, and its
Consul check is an HTTP check against ``/health/instance``.
"""

from __future__ import annotations

import logging
from typing import Any

import eventlet
from eventlet import wsgi
from nameko.extensions import DependencyProvider
from nameko.web.server import parse_address
from werkzeug.wrappers import Request, Response

from schemas.responses import InstanceHealth as InstanceHealthBody
from services.toolkit import config as cfg
from services.toolkit.consul import INSTANCE_HEALTH_PATH, ConsulRegistration
from services.toolkit.health import PASSING, InstanceHealth
from services.toolkit.logs import CorrelationId
from services.toolkit.metrics import QUEUE_DEPTHS, Metrics, render
from services.toolkit.routespec import documented
from services.toolkit.rpc import rpc
from services.toolkit.web import api, json_response

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"


def health_response(report: dict[str, Any]) -> Response:
    return json_response(report, 200 if report["status"] == PASSING else 503)


def metrics_response() -> Response:
    body, content_type = render()
    return Response(body, content_type=content_type)


class QueueMetrics(DependencyProvider):
    """Publish the depth of the service's queues in the metrics while the service runs."""

    reader: Any = None

    def start(self) -> None:
        health = next(
            (dep for dep in self.container.dependencies if isinstance(dep, InstanceHealth)), None
        )
        if health is not None:
            self.reader = health.queue_depths
            QUEUE_DEPTHS.add_reader(self.reader)

    def stop(self) -> None:
        if self.reader is not None:
            QUEUE_DEPTHS.remove_reader(self.reader)
            self.reader = None

    def kill(self) -> None:
        self.stop()


class OperationsListener(DependencyProvider):
    """Serve ``/metrics`` and ``/health/instance`` on ``ATLAS.operations_address``.

    RPC-only services have no HTTP port of their own; this listener gives
    Prometheus and container health checks something to request. It does
    nothing when the address is empty.
    """

    def __init__(self) -> None:
        self.socket: Any = None
        self.thread: Any = None

    def start(self) -> None:
        address = str(cfg.setting(self.container.config, cfg.OPERATIONS_ADDRESS))
        if not address:
            return
        bind = parse_address(address)
        self.socket = eventlet.listen((bind.address or "0.0.0.0", bind.port))
        self.thread = self.container.spawn_managed_thread(self._serve)
        log.info("serving /metrics and %s on %s", INSTANCE_HEALTH_PATH, address)

    def _serve(self) -> None:
        wsgi.server(self.socket, self._application, log_output=False)

    def _application(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == METRICS_PATH:
            response = metrics_response()
        elif request.path == INSTANCE_HEALTH_PATH:
            response = health_response(self._health().check())
        else:
            response = json_response(
                {"errors": [f"no route matches {request.path}"], "success": False}, 404
            )
        return response(environ, start_response)

    def _health(self) -> InstanceHealth:
        for dependency in self.container.dependencies:
            if isinstance(dependency, InstanceHealth):
                return dependency
        raise cfg.ConfigurationError("OperationsListener needs InstanceHealth on the service")

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.kill()
            self.thread = None
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def kill(self) -> None:
        self.stop()


class ServiceOperations:
    """Mixin for a service without an HTTP port of its own."""

    instance_health_probes = InstanceHealth()
    consul_registration = ConsulRegistration()
    worker_metrics = Metrics()
    queue_metrics = QueueMetrics()
    correlation_id = CorrelationId()
    operations_listener = OperationsListener()

    @rpc
    def instance_health(self) -> dict[str, Any]:
        """Return this instance's health: ``{"status", "checks": {name: {status, output}}}``."""
        return self.instance_health_probes.check()


class HttpServiceOperations(ServiceOperations):
    """Mixin for a service that serves HTTP; its Consul check requests ``/health/instance``."""

    # The service's own port serves both routes, so it needs no second listener.
    operations_listener = None  # type: ignore[assignment]

    @api("GET", INSTANCE_HEALTH_PATH)
    @documented(
        {200: InstanceHealthBody, 503: InstanceHealthBody},
        auth="none",
        summary="Report this instance's health; 503 when a check fails",
    )
    def get_instance_health(self, request: Request) -> Response:
        return health_response(self.instance_health_probes.check())

    @api("GET", METRICS_PATH)
    @documented({200: "text/plain"}, auth="none", summary="Serve metrics in Prometheus text format")
    def get_metrics(self, request: Request) -> Response:
        return metrics_response()
