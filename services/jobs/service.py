"""The dispatcher service, ``jobs``.

It publishes each submitted job to its kind's durable queue with publisher
confirms and only then marks it queued. A timer scan publishes the jobs an
event missed, queues retrying jobs when their backoff is over and expires
running jobs whose worker stopped heartbeating. Before it publishes its
first job, and on ``rebuild``, it republishes every queued job, so a lost
or purged queue loses nothing: the database is the record, the broker only
a carrier.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from eventlet.semaphore import Semaphore
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import event_handler
from nameko.extensions import DependencyProvider

from services.toolkit import config as cfg
from services.toolkit.batching import Batcher
from services.toolkit.errors import ServiceUnavailable
from services.toolkit.jobs import JobQueues
from services.toolkit.metrics import set_job_counts
from services.toolkit.operations import ServiceOperations
from services.toolkit.rpc import TimedRpcProxy, rpc
from services.toolkit.timer import setting_timer

log = logging.getLogger(__name__)

REBUILD_PAGE = 1000
# Maximum number of submitted jobs that one mark_jobs_queued call covers.
SUBMITTED_BATCH = 200
# Seconds after a failed first rebuild during which publishing fails without another attempt.
REBUILD_RETRY_DELAY = 1.0
# Seconds between counts of the jobs in each state for the atlas_jobs gauge.
COUNT_INTERVAL = 15.0
# Seconds after this instance starts during which a failed scan or rebuild
# is logged at INFO: the services of a suite start together, and data may
# not respond yet.
STARTUP_GRACE = 30.0


class Dispatcher(DependencyProvider):
    """The job queues, and whether this instance has republished the queued jobs yet."""

    def setup(self) -> None:
        self.queues = JobQueues(self.container.config[AMQP_URI_CONFIG_KEY])
        # Whether this instance republished the queued jobs, and the lock of that first rebuild.
        self.rebuilt = False
        self.rebuilding = Semaphore()
        # When the last attempt at that rebuild failed (time.monotonic()), or None.
        self.rebuild_failed_at: float | None = None
        # Jobs submitted at about the same time are published and marked
        # queued together, so many jobs share one data transaction.
        self.submitted: Batcher[dict[str, Any], None] = Batcher(SUBMITTED_BATCH)
        self.counted_at = 0.0
        self.started_at = time.monotonic()

    def log_failure(self, message: str, *args: Any) -> None:
        """Log a failure that the next scan retries: at INFO while this instance starts."""
        starting = time.monotonic() - self.started_at < STARTUP_GRACE
        log.log(logging.INFO if starting else logging.WARNING, message, *args)

    def stop(self) -> None:
        self.queues.close()

    def get_dependency(self, worker_ctx: Any) -> Dispatcher:
        return self


class JobsService(ServiceOperations):
    name = "jobs"

    data = TimedRpcProxy("data")
    dispatcher = Dispatcher()

    @event_handler("data", "job.submitted")
    def on_job_submitted(self, event: dict[str, Any]) -> None:
        # A failed job retried by hand. The quick path; if it fails the scan
        # publishes the job a moment later.
        message = {
            "job_id": event["job_id"],
            "kind": event["kind"],
            "attempt": event["attempt"] + 1,
        }
        self.dispatcher.submitted.submit(message, self._publish_batch)

    @event_handler("data", "jobs.submitted")
    def on_jobs_submitted(self, event: dict[str, Any]) -> None:
        # Jobs submitted together are published together; a failure leaves them to the scan.
        kind = event["kind"]
        self._publish(
            [{"job_id": job_id, "kind": kind, "attempt": 1} for job_id in event["job_ids"]]
        )

    @setting_timer(cfg.JOB_SCAN_INTERVAL, eager=True)
    def scan(self) -> None:
        try:
            self._scan()
        except ServiceUnavailable as exc:
            # Expected while data starts or restarts; the next scan tries again.
            self.dispatcher.log_failure("skipped a job scan: %s", exc)

    def _scan(self) -> None:
        self._ensure_rebuilt()
        if time.monotonic() - self.dispatcher.counted_at > COUNT_INTERVAL:
            rows = self.data.job_counts_by_kind()
            set_job_counts({(row["kind"], row["state"]): row["count"] for row in rows})
            self.dispatcher.counted_at = time.monotonic()
        while True:
            due = self.data.due_jobs()
            if not due:
                return
            self._publish(due)

    @rpc
    def rebuild(self) -> int:
        """Republish every queued job and return their count.

        Run it after a queue was lost or purged. A job whose message is still
        in its queue gets a second one, which the first worker to start the
        job makes stale.
        """
        count = 0
        after_id = 0
        while True:
            page = self.data.queued_jobs(after_id, REBUILD_PAGE)
            if not page:
                break
            self.dispatcher.queues.publish_many(page)
            count += len(page)
            after_id = page[-1]["job_id"]
        if count:
            log.info("republished %d queued jobs", count)
        return count

    def _publish_batch(self, messages: list[dict[str, Any]]) -> list[None]:
        self._publish(messages)
        return [None] * len(messages)

    def _ensure_rebuilt(self) -> None:
        """Republish the queued jobs once, before this instance publishes any job of its own.

        Every job queued later was published by this instance (or another
        one that runs beside it), so a rebuild after that point would only
        send each of those jobs a second message. When data cannot be
        reached at start, the first event or scan that finds it does this.
        """
        dispatcher = self.dispatcher
        if dispatcher.rebuilt:
            return
        with dispatcher.rebuilding:
            if dispatcher.rebuilt:
                return
            failed_at = dispatcher.rebuild_failed_at
            if failed_at is not None and time.monotonic() - failed_at < REBUILD_RETRY_DELAY:
                # The callers that waited for a failed attempt fail at once
                # rather than repeat it one after another.
                raise ServiceUnavailable("the job queues are not rebuilt yet; try again shortly")
            try:
                self.rebuild()
            except Exception as exc:
                dispatcher.rebuild_failed_at = time.monotonic()
                dispatcher.log_failure(
                    "rebuilding the job queues failed, the next scan retries: %s", exc
                )
                raise
            dispatcher.rebuilt = True

    def _publish(self, messages: list[dict[str, Any]]) -> None:
        self._ensure_rebuilt()
        self.dispatcher.queues.publish_many(messages)
        self.data.mark_jobs_queued([message["job_id"] for message in messages])
