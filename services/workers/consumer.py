"""The entrypoint that consumes every job kind's queue with its own prefetch and pool size.

nameko's ``@consume`` takes one queue and the container's ``max_workers``
as prefetch for all of them. Jobs of different kinds differ in cost (an
import occupies a worker for minutes, a webhook for a second), so each kind
gets its own prefetch (unacknowledged messages) and pool size (handlers
running at once), from ``ATLAS.jobs.kinds.<kind>``.

A message is acknowledged when the service method returns, which happens
only after the job's state change is stored, and requeued when it raises.
If the broker cancels a consumer because its queue was deleted, kombu's
reconnect declares the queue again and consuming resumes; ``atlas jobs
rebuild`` then refills it.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import kombu
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint
from nameko.messaging import QueueConsumer

from services.toolkit import config as cfg
from services.toolkit import green
from services.toolkit.jobs import job_queue

from .registry import HANDLERS

log = logging.getLogger(__name__)

# Seconds before a message whose handling raised goes back to its queue, so
# that a broken dependency does not make workers spin on the same messages.
REQUEUE_DELAY = 1.0


class _PrefetchConsumer(kombu.Consumer):
    """A kombu consumer that sets its own prefetch just before it starts consuming.

    RabbitMQ applies the channel's current per-consumer ``basic.qos`` when a
    consumer starts, so setting it right before ``basic.consume`` gives each
    consumer on the shared channel its own limit.
    """

    def __init__(self, *args: Any, prefetch_count: int, **kwargs: Any) -> None:
        self.own_prefetch = prefetch_count
        super().__init__(*args, **kwargs)

    def consume(self, no_ack: bool | None = None) -> None:
        self.qos(prefetch_count=self.own_prefetch)
        super().consume(no_ack)


class _ConsumerGroup:
    def __init__(self, consumers: list[kombu.Consumer]) -> None:
        self.consumers = consumers

    def cancel(self) -> None:
        for consumer in self.consumers:
            consumer.cancel()


class JobQueueConsumer(QueueConsumer):
    """nameko's queue consumer, with one kombu consumer per job kind."""

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[kombu.Consumer]:
        consumers: list[kombu.Consumer] = []
        for provider in self._providers:
            group = [
                _PrefetchConsumer(
                    channel,
                    queues=[job_queue(self.container.config, kind)],
                    callbacks=[partial(self.handle_message, provider)],
                    accept=self.accept,
                    on_decode_error=self.on_decode_error,
                    prefetch_count=provider.prefetch(kind),
                )
                for kind in provider.kinds
            ]
            self._consumers[provider] = _ConsumerGroup(group)
            consumers.extend(group)
        return consumers


class JobConsumer(Entrypoint):
    """Entrypoint that calls its method with each job message of the worker's kinds."""

    queue_consumer = JobQueueConsumer()

    def setup(self) -> None:
        config = self.container.config
        configured = cfg.job_setting(config, cfg.JOB_WORKER_KINDS) or sorted(HANDLERS)
        unknown = [kind for kind in configured if kind not in HANDLERS]
        if unknown:
            raise ValueError(
                f"ATLAS.jobs.worker_kinds names kinds without a handler: {', '.join(unknown)}"
            )
        self.kinds: list[str] = list(configured)
        self.pools = {
            kind: green.Semaphore(int(cfg.job_setting(config, cfg.JOB_POOL_SIZE, kind)))
            for kind in self.kinds
        }
        self.queue_consumer.register_provider(self)

    def stop(self) -> None:
        self.queue_consumer.unregister_provider(self)

    def prefetch(self, kind: str) -> int:
        config = self.container.config
        prefetch = int(cfg.job_setting(config, cfg.JOB_PREFETCH, kind))
        return prefetch or int(cfg.job_setting(config, cfg.JOB_POOL_SIZE, kind))

    def handle_message(self, body: Any, message: Any) -> None:
        kind = body.get("kind") if isinstance(body, dict) else None
        pool = self.pools.get(str(kind))
        if pool is None:
            log.warning("dropping a message that names no kind this worker runs: %r", body)
            self.queue_consumer.ack_message(message)
            return
        pool.acquire()
        try:
            self.container.spawn_worker(
                self, (body,), {}, handle_result=partial(self.handle_result, message, pool)
            )
        except ContainerBeingKilled:
            pool.release()
            self.queue_consumer.requeue_message(message)

    def handle_result(
        self, message: Any, pool: Any, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> tuple[Any, Any]:
        try:
            if exc_info is None:
                self.queue_consumer.ack_message(message)
            else:
                green.sleep(REQUEUE_DELAY)
                self.queue_consumer.requeue_message(message)
        finally:
            pool.release()
        return result, exc_info


consume_jobs = JobConsumer.decorator
