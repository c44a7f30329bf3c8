"""Prometheus metrics of every Atlas service, served at ``/metrics`` in the text format.

The metrics live in prometheus_client's process-wide registry. Each service
labels its own series with ``service``, which distinguishes them in one
process that runs several services (as the tests do). ``Metrics`` is the
dependency that times every worker of a service; the HTTP entrypoint and the
RPC proxy count requests and calls themselves, and services with work of
their own (uploads, jobs) call the ``record_*`` functions below.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
access_log = logging.getLogger("atlas.entrypoints")

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Latency buckets in seconds: box metadata should take milliseconds, while
# RPC calls that hit their timeout take seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "atlas_http_requests",
    "HTTP requests answered, by route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "atlas_http_request_duration_seconds",
    "Time from receiving an HTTP request to returning its response headers.",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
RPC_SERVED = Counter(
    "atlas_rpc_requests",
    "RPC requests this service handled, by method and outcome (ok or the error's type).",
    ["service", "method", "outcome"],
)
RPC_SERVED_DURATION = Histogram(
    "atlas_rpc_request_duration_seconds",
    "Time this service took to handle an RPC request.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
RPC_CALLS = Counter(
    "atlas_rpc_client_calls",
    "RPC calls this service made, by target and outcome (ok, timeout, unavailable or error).",
    ["service", "target", "method", "outcome"],
)
RPC_CALL_DURATION = Histogram(
    "atlas_rpc_client_call_duration_seconds",
    "Time from sending an RPC request to receiving its reply or giving up.",
    ["service", "target", "method"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_HANDLED = Counter(
    "atlas_events_handled",
    "Events this service handled, by source service, event type and outcome.",
    ["service", "source", "event", "outcome"],
)
TIMER_RUNS = Counter(
    "atlas_timer_runs",
    "Runs of periodic tasks, by method and outcome.",
    ["service", "method", "outcome"],
)
JOB_TRANSITIONS = Counter(
    "atlas_job_transitions",
    "Jobs that entered a state, by job kind and the state entered.",
    ["kind", "state"],
)
JOBS = Gauge(
    "atlas_jobs",
    "Jobs currently in each state, by job kind, as last counted.",
    ["kind", "state"],
)
UPLOAD_BYTES = Counter("atlas_upload_bytes", "Bytes of box files received and stored.")
DOWNLOAD_BYTES = Counter(
    "atlas_download_bytes",
    "Bytes of box files sent, counted from each response's Content-Length.",
)


def render() -> tuple[bytes, str]:
    """Return the registry in Prometheus text format and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE


def record_job_transition(kind: str, state: str, count: int = 1) -> None:
    """Count ``count`` jobs of ``kind`` entering ``state``; call it after the transitions commit."""
    JOB_TRANSITIONS.labels(kind=kind, state=state).inc(count)


def set_job_counts(counts: Mapping[tuple[str, str], int]) -> None:
    """Replace the ``atlas_jobs`` gauge with ``{(kind, state): count}`` from a fresh count."""
    JOBS.clear()
    for (kind, state), count in counts.items():
        JOBS.labels(kind=kind, state=state).set(count)


def record_upload(size: int) -> None:
    UPLOAD_BYTES.inc(size)


def record_download(size: int) -> None:
    DOWNLOAD_BYTES.inc(size)


def observe_rpc_call(service: str, target: str, method: str, outcome: str, seconds: float) -> None:
    RPC_CALLS.labels(service=service, target=target, method=method, outcome=outcome).inc()
    RPC_CALL_DURATION.labels(service=service, target=target, method=method).observe(seconds)


def observe_http_request(
    service: str, method: str, route: str, status: int, seconds: float
) -> None:
    HTTP_REQUESTS.labels(service=service, method=method, route=route, status=str(status)).inc()
    HTTP_DURATION.labels(service=service, method=method, route=route).observe(seconds)


DepthReader = Callable[[], Mapping[str, tuple[int, int]]]


class QueueDepthCollector(Collector):
    """Report the messages waiting in, and the consumers of, the queues services read.

    Each running service adds a reader that returns ``{queue: (messages,
    consumers)}`` and is called at scrape time; a queue a reader cannot read
    is left out. One collector serves every service in the process, so each
    metric family appears once in the output.
    """

    def __init__(self) -> None:
        self.readers: list[DepthReader] = []

    def add_reader(self, reader: DepthReader) -> None:
        self.readers.append(reader)

    def remove_reader(self, reader: DepthReader) -> None:
        if reader in self.readers:
            self.readers.remove(reader)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "atlas_queue_messages", "Messages ready in a queue a service reads.", labels=["queue"]
        )
        consumers = GaugeMetricFamily(
            "atlas_queue_consumers", "Consumers of a queue a service reads.", labels=["queue"]
        )
        depths: dict[str, tuple[int, int]] = {}
        for reader in list(self.readers):
            try:
                depths.update(reader())
            except Exception:  # one service's broker trouble must not break the scrape
                log.warning("reading queue depths failed", exc_info=True)
        for queue, (ready, consumer_count) in sorted(depths.items()):
            messages.add_metric([queue], ready)
            consumers.add_metric([queue], consumer_count)
        return [messages, consumers]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Describing without collecting keeps registration from touching the broker.
        return []


QUEUE_DEPTHS = QueueDepthCollector()
REGISTRY.register(QUEUE_DEPTHS)


def _outcome(exc_info: Any) -> str:
    if not exc_info:
        return "ok"
    return type(exc_info[1]).__name__


class Metrics(DependencyProvider):
    """Time and count every worker of the service it is declared on.

    RPC requests, handled events and timer runs are counted here. HTTP
    requests are counted by the HTTP entrypoint, because only it has the
    status code sent. Each finished worker is also logged at debug level with its
    duration, as an access log of the service's entrypoints.
    """

    def __init__(self) -> None:
        self.started: dict[Any, float] = {}

    def worker_setup(self, worker_ctx: Any) -> None:
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self.started.pop(worker_ctx, None)
        if started is None:
            return
        seconds = time.perf_counter() - started
        service = self.container.service_name
        entrypoint = worker_ctx.entrypoint
        method = entrypoint.method_name
        outcome = _outcome(exc_info)

        if isinstance(entrypoint, Rpc):
            RPC_SERVED.labels(service=service, method=method, outcome=outcome).inc()
            RPC_SERVED_DURATION.labels(service=service, method=method).observe(seconds)
            kind = "rpc"
        elif isinstance(entrypoint, EventHandler):
            EVENTS_HANDLED.labels(
                service=service,
                source=entrypoint.source_service,
                event=entrypoint.event_type,
                outcome=outcome,
            ).inc()
            kind = "event"
        elif isinstance(entrypoint, Timer):
            TIMER_RUNS.labels(service=service, method=method, outcome=outcome).inc()
            kind = "timer"
        elif isinstance(entrypoint, HttpRequestHandler):
            kind = "http"
        else:
            kind = type(entrypoint).__name__.lower()

        access_log.debug("%s %s.%s %s in %.1f ms", kind, service, method, outcome, seconds * 1000.0)

    def worker_teardown(self, worker_ctx: Any) -> None:
        # A worker that failed before worker_result (a dependency's setup
        # raised) must not leave its start time behind.
        self.started.pop(worker_ctx, None)

    def get_dependency(self, worker_ctx: Any) -> Metrics:
        return self
