"""Publishing job messages to their kinds' durable queues, with publisher confirms."""

from __future__ import annotations

import logging
from typing import Any

from nameko.amqp.publish import Publisher, UndeliverableMessage, get_connection
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider

from services.toolkit.jobs import job_message, job_queue, queue_name

log = logging.getLogger(__name__)


class JobQueues(DependencyProvider):
    """Dependency that publishes ``{"job_id", "attempt", "kind"}`` messages.

    ``publish`` returns only after the broker confirmed that the message is
    stored on its queue (publisher confirms, mandatory routing), which is
    what lets the caller mark the job queued afterwards.
    """

    def setup(self) -> None:
        self.config = self.container.config
        self.amqp_uri = self.config[AMQP_URI_CONFIG_KEY]
        self.publisher = Publisher(
            self.amqp_uri, serializer="json", use_confirms=True, mandatory=True
        )
        self.declared: set[str] = set()

    def get_dependency(self, worker_ctx: Any) -> JobQueues:
        return self

    def declare(self, kind: str) -> None:
        """Declare ``kind``'s queue on a fresh channel.

        kombu remembers declarations per connection and skips repeats, so a
        queue deleted behind its back would never come back; this call
        always reaches the broker.
        """
        with get_connection(self.amqp_uri) as connection:
            job_queue(self.config, kind)(connection.channel()).declare()
        self.declared.add(kind)

    def publish(self, job_id: int, attempt: int, kind: str) -> None:
        """Publish one job message; raise if the broker did not confirm it."""
        if kind not in self.declared:
            self.declare(kind)
        message = job_message(job_id, attempt, kind)
        try:
            self.publisher.publish(message, routing_key=queue_name(kind))
        except UndeliverableMessage:
            # The queue is gone (deleted, or lost with a broker node): declare it again.
            log.warning("queue %s was missing; declaring it again", queue_name(kind))
            self.declare(kind)
            self.publisher.publish(message, routing_key=queue_name(kind))
