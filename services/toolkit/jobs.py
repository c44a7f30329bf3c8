"""The job client and what the dispatcher and the workers agree on about job queues.

A job's state lives in the data service's database; the broker only carries
``{"job_id", "attempt", "kind"}`` messages on one durable queue per kind. Any
service submits a job in one call::

    class Mirror:
        jobs = JobClient()

        @rpc
        def mirror(self, url):
            return self.jobs.submit("box.import", {"url": url}, box="acme/base")
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from services.toolkit import config as cfg
from services.toolkit.rpc import TimedRpcProxy, TimedServiceProxy

QUEUE_PREFIX = "atlas.jobs."

# Messages go through the default exchange, which routes by queue name, so
# a publish to a deleted queue is returned (mandatory) instead of vanishing.
DEFAULT_EXCHANGE = Exchange("")


def queue_name(kind: str) -> str:
    return QUEUE_PREFIX + kind


def job_queue(config: dict[str, Any], kind: str) -> Queue:
    """Return the durable queue that carries ``kind``'s jobs, as configured.

    Publishers and consumers must declare a queue with the same arguments,
    so both build it here. Changing ``quorum_queues`` for an existing queue
    needs the queue deleted first (then ``atlas jobs rebuild``).
    """
    arguments = {}
    if cfg.job_setting(config, cfg.JOB_QUORUM_QUEUES):
        arguments["x-queue-type"] = "quorum"
    return Queue(
        queue_name(kind),
        exchange=DEFAULT_EXCHANGE,
        routing_key=queue_name(kind),
        durable=True,
        auto_delete=False,
        queue_arguments=arguments or None,
    )


def job_message(job_id: int, attempt: int, kind: str) -> dict[str, Any]:
    return {"job_id": job_id, "attempt": attempt, "kind": kind}


class Jobs:
    """Submits jobs through the data service."""

    def __init__(self, data: TimedServiceProxy) -> None:
        self._data = data

    def submit(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        box: str | None = None,
        account: str | None = None,
        max_attempts: int | None = None,
        delay: float | None = None,
    ) -> dict[str, Any]:
        """Create a ``pending`` job and return it; the dispatcher queues it after the commit.

        ``box`` ("username/name") or ``account`` decides who may see and
        cancel the job through the API; a job with neither is visible to
        operators only. ``delay`` postpones the job by that many seconds.
        """
        return dict(
            self._data.submit_job(
                kind, payload, box=box, account=account, max_attempts=max_attempts, delay=delay
            )
        )


class JobClient(TimedRpcProxy):
    """Dependency that gives a service ``self.jobs.submit(kind, payload, ...)``."""

    def __init__(self) -> None:
        super().__init__("data")

    def get_dependency(self, worker_ctx: Any) -> Jobs:  # type: ignore[override]
        return Jobs(super().get_dependency(worker_ctx))
