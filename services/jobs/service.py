"""The dispatcher: queues submitted jobs, retries due ones, takes back expired leases.

Nothing about a job lives only in the broker. A job is marked ``queued``
after the broker confirmed its message. If a message is lost with its
queue, ``rebuild`` (run on start and by ``atlas jobs rebuild``) publishes
every queued job again. Duplicates are harmless because a worker's claim
succeeds for one message of an attempt only. Several dispatchers may run;
they then publish some messages twice, which costs a little and breaks
nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from nameko.dependency_providers import Config
from nameko.events import SERVICE_POOL, event_handler
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import Timer

from services.toolkit import config as cfg
from services.toolkit.errors import InvalidTransition, NotFound
from services.toolkit.operations import ServiceOperations
from services.toolkit.rpc import TimedRpcProxy

from .queues import JobQueues

log = logging.getLogger(__name__)

ACTOR = "jobs"
REBUILD_BATCH = 500


class SweepTimer(Timer):
    """Timer that fires at start and then every ``ATLAS.jobs.sweep_interval`` seconds."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(interval=1.0, eager=True, **kwargs)

    def setup(self) -> None:
        self.interval = float(cfg.job_setting(self.container.config, cfg.JOB_SWEEP_INTERVAL))


class StartupRebuild(DependencyProvider):
    """Whether this service instance has republished the queued jobs since it started."""

    def setup(self) -> None:
        self.done = False

    def get_dependency(self, worker_ctx: Any) -> StartupRebuild:
        return self


class JobsService(ServiceOperations):
    name = "jobs"

    data = TimedRpcProxy("data")
    queues = JobQueues()
    config = Config()
    startup = StartupRebuild()

    @event_handler("data", "job.submitted", handler_type=SERVICE_POOL)
    def on_job_submitted(self, event: dict[str, Any]) -> None:
        """Queue a job as soon as its submission commits."""
        if event.get("state") != "pending":
            return
        run_after = event.get("run_after")
        if run_after and dt.datetime.fromisoformat(run_after) > dt.datetime.now(dt.UTC):
            return  # the sweep queues it when it is due
        try:
            self.dispatch(event["job_id"], event["kind"], event["attempt"])
        except Exception as exc:  # the sweep retries whatever failed here
            log.warning("queueing job %s failed, the sweep will retry: %s", event["job_id"], exc)

    @SweepTimer.decorator()
    def sweep(self) -> None:
        """Expire leases, queue due jobs; on this instance's first run, rebuild."""
        if not self.startup.done:
            counts = self.republish_queued()
            self.startup.done = True
            if counts:
                log.info("republished queued jobs on start: %s", counts)
        expired = self.data.expire_job_leases(ACTOR)["expired"]
        if expired:
            log.warning("took back %d running jobs whose lease expired", expired)
        interval = float(cfg.job_setting(self.config, cfg.JOB_SWEEP_INTERVAL))
        for job in self.data.dispatchable_jobs(pending_after=max(interval, 2.0)):
            try:
                self.dispatch(job["id"], job["kind"], job["attempt"])
            except Exception as exc:
                log.warning("queueing job %s failed, the next sweep retries: %s", job["id"], exc)

    @rpc
    def rebuild(self) -> dict[str, int]:
        """Publish every queued job again; return the count per kind."""
        counts = self.republish_queued()
        log.info("rebuilt job queues: %s", counts or "no queued jobs")
        return counts

    @rpc
    def ping(self) -> dict[str, str]:
        return {"broker": "ok"}

    def dispatch(self, job_id: int, kind: str, attempt: int) -> None:
        """Publish the job's next attempt, then record it as queued.

        NOTE: a queue lost between the broker's confirm and the record, with a
        rebuild that reads the queued jobs in that same moment, leaves the job
        queued without a message until the next rebuild or dispatcher start.
        """
        next_attempt = attempt + 1
        self.queues.publish(job_id, next_attempt, kind)
        try:
            self.data.mark_job_queued(job_id, next_attempt, ACTOR)
        except (InvalidTransition, NotFound) as exc:
            # Cancelled or queued by another dispatcher meanwhile; the worker drops the message.
            log.debug("job %s was not queued: %s", job_id, exc)

    def republish_queued(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        after_id = 0
        while True:
            batch = self.data.queued_jobs(after_id, REBUILD_BATCH)
            for job in batch:
                if job["kind"] not in counts:
                    self.queues.declare(job["kind"])
                    counts[job["kind"]] = 0
                self.queues.publish(job["id"], job["attempt"], job["kind"])
                counts[job["kind"]] += 1
            if len(batch) < REBUILD_BATCH:
                return counts
            after_id = batch[-1]["id"]
