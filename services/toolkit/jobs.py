"""Jobs for any service: submit one in a call, publish it, or run a kind of it.

A job's state lives in the data service; RabbitMQ carries only messages
``{"job_id", "kind", "attempt"}`` on one durable queue per kind. So:

- ``JobClient`` is a dependency that submits a job: ``self.jobs.submit(kind, payload)``.
- ``JobQueues`` publishes messages with publisher confirms (the dispatcher uses it).
- ``@job_kind("box.inspect")`` makes a service method run the jobs of a kind:
  it starts the attempt through the data service (which drops duplicate and
  stale messages), heartbeats while the method runs, reports the outcome,
  and acknowledges the message only after the outcome is stored.

A handler raises ``PermanentJobError`` for a failure that retrying cannot
mend; any other exception fails the attempt and the job is retried with
backoff until it has no attempts left.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import amqp
import eventlet
import kombu
from eventlet.semaphore import Semaphore
from kombu import Exchange, Queue
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import Entrypoint, ProviderCollector, SharedExtension

from services.toolkit import config as cfg
from services.toolkit.batching import Batcher
from services.toolkit.errors import AtlasError, ServiceUnavailable
from services.toolkit.rpc import TimedRpcProxy, TimedServiceProxy

log = logging.getLogger(__name__)

EXCHANGE = Exchange("atlas.jobs", type="direct", durable=True)
# Seconds between attempts to reach RabbitMQ again after a lost connection.
RECONNECT_DELAY = 1.0
# Seconds a worker keeps trying to store an attempt's outcome while the data service is away.
REPORT_PATIENCE = 120.0
# Seconds the broker has to confirm a batch of job messages.
CONFIRM_TIMEOUT = 30.0
# Maximum number of reports that one report_jobs call covers.
REPORT_BATCH = 100
# Seconds before a message whose attempt could not be started or settled goes back to its queue.
REQUEUE_DELAY = 1.0
# Unacknowledged messages of a kind that a worker process keeps, per job it runs at once.
# The messages beyond the running jobs are being reported or wait for a free place.
PREFETCH_PER_PLACE = 4


class PermanentJobError(AtlasError):
    """The job cannot succeed however often it is tried; it fails without a retry."""


def job_queue(kind: str) -> Queue:
    """Return the durable queue that carries the jobs of ``kind``."""
    return Queue(f"atlas.jobs.{kind}", EXCHANGE, routing_key=kind, durable=True)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobQueues:
    """Publishes job messages to their kind's queue, each confirmed by the broker.

    A batch goes out on one channel in confirm mode without waiting between
    messages, then waits until the broker has confirmed every one of them:
    one round trip for the batch instead of one for each message. Messages
    are mandatory, so the broker returns a message that no queue can take
    instead of dropping it. Its queue is then declared again and the message
    published once more.
    """

    def __init__(self, amqp_uri: str) -> None:
        self.amqp_uri = amqp_uri
        self._connection: kombu.Connection | None = None
        self._channel: Any = None
        self._lock = Semaphore()
        # Messages published on the channel; the broker numbers its confirms the same way.
        self._published = 0
        # Kinds whose queue this connection declared.
        self._declared: set[str] = set()

    def publish(self, message: dict[str, Any]) -> None:
        """Publish one message; raises if the broker does not confirm it."""
        self.publish_many([message])

    def publish_many(self, messages: list[dict[str, Any]]) -> None:
        """Publish messages; return once the broker confirmed them all, else raise.

        Raises ``ServiceUnavailable`` if the broker is unreachable, refuses a
        message or does not confirm the batch within CONFIRM_TIMEOUT.
        """
        if not messages:
            return
        with self._lock:
            try:
                returned = self._publish_confirmed(messages)
                if returned:
                    # A queue deleted after this connection declared it.
                    kinds = sorted({message["kind"] for message in returned})
                    log.warning("job queues missing, declaring them again: %s", ", ".join(kinds))
                    self._declared.difference_update(kinds)
                    if self._publish_confirmed(returned):
                        raise ServiceUnavailable("the broker found no queue for a job message")
            except (OSError, amqp.exceptions.AMQPError) as exc:
                self.close()
                raise ServiceUnavailable(f"publishing job messages failed: {exc}") from exc
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._declared = set()
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:  # closing a broken connection
                log.debug("closing the job publisher's connection failed: %s", exc)

    def _open(self) -> Any:
        if self._channel is None:
            connection = kombu.Connection(self.amqp_uri, connect_timeout=CONFIRM_TIMEOUT)
            try:
                channel = connection.channel()
                channel.confirm_select()
            except Exception:
                connection.close()
                raise
            self._connection, self._channel = connection, channel
            self._published = 0
        return self._channel

    def _publish_confirmed(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Publish ``messages`` and wait for their confirms; return those the broker sent back."""
        channel = self._open()
        assert self._connection is not None
        for kind in sorted({message["kind"] for message in messages} - self._declared):
            job_queue(kind)(channel).declare()
            self._declared.add(kind)

        first = self._published + 1
        confirms = _Confirms(channel.events, first, first + len(messages) - 1)
        try:
            for message in messages:
                channel.basic_publish(
                    amqp.Message(
                        json.dumps(message),
                        content_type="application/json",
                        content_encoding="utf-8",
                        delivery_mode=2,
                    ),
                    exchange=EXCHANGE.name,
                    routing_key=message["kind"],
                    mandatory=True,
                )
                self._published += 1
            deadline = time.monotonic() + CONFIRM_TIMEOUT
            while confirms.unsettled:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServiceUnavailable("the broker did not confirm the job messages in time")
                self._connection.drain_events(timeout=remaining)
        finally:
            confirms.detach()
        if confirms.refused:
            raise ServiceUnavailable(
                f"the broker rejected {confirms.refused} of {len(messages)} job messages"
            )
        return [json.loads(body) for body in confirms.returned]

    def delete_queue(self, kind: str) -> None:
        """Delete the queue of ``kind`` with the messages in it; used to test recovery."""
        with kombu.Connection(self.amqp_uri) as connection:
            job_queue(kind)(connection.default_channel).delete()

    def purge(self, kind: str) -> int:
        """Drop every message in the queue of ``kind``; return how many were dropped."""
        with kombu.Connection(self.amqp_uri) as connection:
            return int(job_queue(kind)(connection.default_channel).purge() or 0)


class _Confirms:
    """Collects a channel's confirms of one batch: delivery tags ``first`` to ``last``."""

    def __init__(self, events: dict[str, Any], first: int, last: int) -> None:
        self.events = events
        self.unsettled = set(range(first, last + 1))
        self.refused = 0
        self.returned: list[bytes] = []
        events["basic_ack"].add(self._ack)
        events["basic_nack"].add(self._nack)
        events["basic_return"].add(self._return)

    def detach(self) -> None:
        self.events["basic_ack"].discard(self._ack)
        self.events["basic_nack"].discard(self._nack)
        self.events["basic_return"].discard(self._return)

    def _settle(self, delivery_tag: int, multiple: bool) -> int:
        """Settle one tag, or with ``multiple`` every tag up to it; return how many."""
        settled = {tag for tag in self.unsettled if tag <= delivery_tag} if multiple else None
        if settled is None:
            settled = {delivery_tag} & self.unsettled
        self.unsettled -= settled
        return len(settled)

    def _ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _nack(self, delivery_tag: int, multiple: bool) -> None:
        self.refused += self._settle(delivery_tag, multiple)

    def _return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        # The broker returns an unroutable message before it confirms it.
        self.returned.append(message.body)


class JobClient(TimedRpcProxy):
    """Dependency that submits jobs: ``self.jobs.submit("box.inspect", {...})``."""

    def __init__(self) -> None:
        super().__init__("data")

    def get_dependency(self, worker_ctx: Any) -> Submitter:  # type: ignore[override]
        return Submitter(super().get_dependency(worker_ctx))


class Submitter:
    def __init__(self, data: TimedServiceProxy) -> None:
        self.data = data

    def submit(self, kind: str, payload: dict[str, Any], **options: Any) -> dict[str, Any]:
        """Create a job and return it; ``options`` are account_id, box_id and max_attempts."""
        return self.data.submit_job(kind, payload, **options)


@dataclass
class JobRun:
    """The job a handler runs, with a flag that is set when the attempt stops counting."""

    id: int
    kind: str
    attempt: int
    payload: dict[str, Any]
    # Set when a heartbeat finds that this attempt no longer counts.
    abandoned: bool = field(default=False)


class Reports:
    """The start and success reports of a worker process's attempts, sent in batches.

    Reports made at about the same time share one call (and one database
    transaction) of ``report_jobs``, so the place that finishes one job
    reports it in the same call that starts the next job.
    """

    def __init__(self) -> None:
        # Items are ("start", {"job_id", "attempt"}) or ("succeed", {..., "result"}).
        self.batcher: Batcher[tuple[str, dict[str, Any]], Any] = Batcher(REPORT_BATCH)


class Stopping(Exception):
    """The service stopped before the attempt of a message could start; the message goes back."""


class JobConsumer(SharedExtension, ProviderCollector):
    """Consumes each registered kind's queue on its own connection and prefetch window."""

    def __init__(self) -> None:
        super().__init__()
        self._threads: list[Any] = []
        self.reports = Reports()

    def start(self) -> None:
        # Every message held gets a container worker, so the container must
        # allow as many as all the kinds' windows together, and its own
        # allowance again for RPC calls and events.
        windows = sum(entrypoint.prefetch for entrypoint in self._providers)
        pool = self.container._worker_pool
        if pool.size < windows + self.container.max_workers:
            pool.resize(windows + self.container.max_workers)
        for entrypoint in self._providers:
            thread = self.container.spawn_managed_thread(
                functools.partial(self._consume, entrypoint)
            )
            self._threads.append(thread)

    def kill(self) -> None:
        for thread in self._threads:
            thread.kill()
        self._threads = []

    def _consume(self, entrypoint: JobEntrypoint) -> None:
        amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        connection_errors = (OSError, *kombu.Connection(amqp_uri).connection_errors)
        while entrypoint.accepting:
            try:
                with kombu.Connection(amqp_uri, heartbeat=30) as connection:
                    self._drain(connection, entrypoint)
                    # Stopping: the consumer is cancelled, and the connection
                    # stays open until the attempts in progress acknowledge.
                    while entrypoint.in_progress:
                        eventlet.sleep(0.1)
            except connection_errors as exc:
                log.warning(
                    "lost the broker while consuming %s jobs, reconnecting: %s",
                    entrypoint.kind,
                    exc,
                )
                eventlet.sleep(RECONNECT_DELAY)

    def _drain(self, connection: kombu.Connection, entrypoint: JobEntrypoint) -> None:
        consumer = kombu.Consumer(
            connection.channel(),
            [job_queue(entrypoint.kind)],
            callbacks=[entrypoint.handle],
            accept=["json"],
            prefetch_count=entrypoint.prefetch,
        )
        with consumer:
            log.info("consuming %s jobs, %d at a time", entrypoint.kind, entrypoint.pool_size)
            while entrypoint.accepting:
                try:
                    connection.drain_events(timeout=1)
                except TimeoutError:
                    connection.heartbeat_check()


class JobEntrypoint(Entrypoint):
    consumer = JobConsumer()

    def __init__(self, kind: str, **kwargs: Any) -> None:
        self.kind = kind
        self.accepting = True
        self.in_progress = 0
        super().__init__(**kwargs)

    def setup(self) -> None:
        config = self.container.config
        pools = cfg.setting(config, cfg.JOB_POOLS) or {}
        self.pool_size = int(pools.get(self.kind) or cfg.setting(config, cfg.JOB_POOL_SIZE))
        self.prefetch = self.pool_size * PREFETCH_PER_PLACE
        self.lane = Lane(
            places=Semaphore(self.pool_size),
            lease=float(cfg.setting(config, cfg.JOB_LEASE)),
            reports=self.consumer.reports,
            accepting=lambda: self.accepting,
        )
        self.consumer.register_provider(self)

    def stop(self) -> None:
        # Take no new message; the container waits for the running attempts.
        self.accepting = False
        self.consumer.unregister_provider(self)

    def handle(self, body: Any, message: Any) -> None:
        self.in_progress += 1
        self.container.spawn_worker(
            self,
            (body, self.lane),
            {},
            handle_result=functools.partial(self._settle, message),
        )

    def _settle(self, message: Any, worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        # The outcome is stored (or the message was dropped as stale) unless
        # the worker raised; only then does the broker get the message back.
        self.in_progress -= 1
        try:
            if exc_info is None:
                message.ack()
            elif issubclass(exc_info[0], Stopping):
                log.info(
                    "returned the message of %s job %s to its queue: the service is stopping",
                    self.kind,
                    message.payload.get("job_id"),
                )
                message.requeue()
            else:
                # The data service could not be reached; wait a little so
                # that the message does not circle back at once.
                eventlet.sleep(REQUEUE_DELAY)
                message.requeue()
        except Exception as exc:  # a lost connection returns the message by itself
            log.warning("could not settle the message of a %s job: %s", self.kind, exc)
        return result, exc_info


def job_kind(kind: str) -> Callable[[Callable[[Any, JobRun], Any]], Callable[..., Any]]:
    """Make a service method the handler of the jobs of ``kind``.

    The method takes a :class:`JobRun` and returns a JSON object (or None),
    which becomes the job's result. The service needs a ``data``
    ``TimedRpcProxy``.
    """

    def decorate(handler: Callable[[Any, JobRun], Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def run(service: Any, body: dict[str, Any], lane: Lane) -> None:
            attempt = Attempt(service.data, body, lane)
            attempt.execute(functools.partial(handler, service))

        JobEntrypoint.decorator(kind)(run)
        return run

    return decorate


@dataclass
class Lane:
    """The places, lease and reports that the attempts of one kind share in a worker process."""

    # An attempt holds a place from its start until its handler returns. Its
    # outcome is stored after that, so the next attempt need not wait for it.
    places: Semaphore
    lease: float
    reports: Reports
    accepting: Callable[[], bool]


class Attempt:
    """One message's path: start the attempt, run it with heartbeats, store the outcome."""

    def __init__(self, data: Any, body: dict[str, Any], lane: Lane) -> None:
        self.data = data
        self.body = body
        self.lane = lane
        self.worker = worker_name()

    def execute(self, handler: Callable[[JobRun], Any]) -> None:
        job_id, attempt = int(self.body["job_id"]), int(self.body["attempt"])
        with self.lane.places:
            if not self.lane.accepting():
                raise Stopping()
            outcome = self._run(job_id, attempt, handler)
        if outcome is not None:
            self._report(*outcome)

    def _run(
        self, job_id: int, attempt: int, handler: Callable[[JobRun], Any]
    ) -> tuple[Any, ...] | None:
        """Start the attempt and run it; return the report of its outcome, or None if stale."""
        started = self._start(job_id, attempt)
        if started is None:
            return None
        run = JobRun(
            id=job_id,
            kind=started["kind"],
            attempt=started["attempt"],
            payload=started["payload"],
        )
        heart = Heart(functools.partial(self._heartbeat, run), self.lane.lease / 3)
        try:
            result = handler(run)
        except PermanentJobError as exc:
            return (self.data.fail_job, job_id, attempt, self.worker, str(exc), True)
        except Exception as exc:
            log.warning("job %d (%s) attempt %d failed: %s", job_id, run.kind, attempt, exc)
            return (self.data.fail_job, job_id, attempt, self.worker, describe(exc), False)
        finally:
            heart.stop()
        return (self._succeed, job_id, attempt, result)

    def _start(self, job_id: int, attempt: int) -> dict[str, Any] | None:
        item = ("start", {"job_id": job_id, "attempt": attempt})
        # The start wakes first: its place runs the job and reports it in the
        # next call. The callers that reported successes only acknowledge, so
        # they wake once that next call has gone out.
        outcome = self.lane.reports.batcher.submit(item, self._send, wake_first=True)
        if not outcome["started"]:
            log.debug("dropped a stale message for job %d attempt %d", job_id, attempt)
            return None
        return dict(outcome["job"])

    def _succeed(self, job_id: int, attempt: int, result: Any) -> None:
        item = ("succeed", {"job_id": job_id, "attempt": attempt, "result": result})
        self.lane.reports.batcher.submit(item, self._send)

    def _send(self, items: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Send a batch of reports in one call; return the result of each, in order."""
        outcomes = [body for what, body in items if what == "succeed"]
        attempts = [body for what, body in items if what == "start"]
        reply = self.data.report_jobs(outcomes, attempts, self.worker)
        succeeded, started = iter(reply["succeeded"]), iter(reply["started"])
        return [next(started) if what == "start" else next(succeeded) for what, _ in items]

    def _heartbeat(self, run: JobRun) -> None:
        while True:
            try:
                state = self.data.heartbeat_job(run.id, run.attempt)
            except ServiceUnavailable as exc:
                log.warning("heartbeat of job %d failed: %s", run.id, exc)
                state = "running"
            if state != "running":
                run.abandoned = True
                return
            eventlet.sleep(self.lane.lease / 3)

    def _report(self, call: Callable[..., Any], *args: Any) -> None:
        """Call ``call(*args)`` until the data service replies, for up to REPORT_PATIENCE."""
        deadline = time.monotonic() + REPORT_PATIENCE
        delay = 0.5
        while True:
            try:
                call(*args)
                return
            except ServiceUnavailable:
                if time.monotonic() > deadline:
                    raise
                log.warning("storing the outcome of job %s failed; retrying", args[0])
                eventlet.sleep(delay)
                delay = min(delay * 2, 5.0)


class Heart:
    """The heartbeats of one attempt: ``beat`` runs in a green thread from ``interval`` s on.

    Most attempts end before their first heartbeat. Until then only a hub
    timer waits, and stopping cancels it without yielding, where killing a
    green thread switches to it and back. So a handler that does not yield
    runs its job and reports it without letting other green threads in.
    """

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        self._beat = beat
        self._thread: Any = None
        self._timer = eventlet.hubs.get_hub().schedule_call_global(interval, self._begin)

    def _begin(self) -> None:
        self._thread = eventlet.spawn(self._beat)

    def stop(self) -> None:
        """Cancel the first heartbeat, or kill the thread that runs them once it started."""
        self._timer.cancel()
        if self._thread is not None:
            self._thread.kill()


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
