"""One job message, from claim to stored outcome.

1. ``start_job`` claims the job; it fails for a stale or duplicated
   message, which is then dropped (acknowledged) without running anything.
2. The handler runs while a heartbeat extends the lease every third of it.
   If the heartbeat learns that the job was cancelled or taken back, the
   handler is asked to stop (``Job.check_cancelled``).
3. ``succeed_job`` or ``fail_job`` stores the outcome. Only then does the
   caller return and the message get acknowledged. If data cannot be
   reached, the report is retried until the lease would have run out. After
   that the message goes back to its queue and the lease expiry retries the
   job, so a report can be late but is never lost.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from services.toolkit import green
from services.toolkit.errors import (
    InvalidTransition,
    JobNotQueuedYet,
    NotFound,
    ServiceUnavailable,
)

from .registry import Job, JobCancelled, PermanentFailure, handler_for

log = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
REPORT_RETRY_MAX = 5.0  # seconds between two tries to store a job's outcome
# Seconds between tries to claim a job whose message overtook its "queued" record.
CLAIM_RETRY_DELAYS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


class Requeue(Exception):
    """The message could not be handled now; return it to its queue."""


@dataclass
class Report:
    trigger: str  # "succeed" or "fail"
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    permanent: bool = False


def run_message(data: Any, config: dict[str, Any], message: dict[str, Any]) -> None:
    """Claim, run and report the job a message names; raise ``Requeue`` to retry the message."""
    job_id, attempt = message["job_id"], message["attempt"]
    claim = _claim(data, job_id, attempt)
    if claim is None:
        return

    job = Job(claim, config, data)
    heartbeat = green.spawn(_beat, data, job)
    try:
        report = _run_handler(job)
    finally:
        green.kill(heartbeat)
    if report is None:
        log.info("job %s (%s) stopped: %s", job.id, job.kind, job.cancel_reason)
        return
    _store(data, job, report)


def _claim(data: Any, job_id: int, attempt: int) -> dict[str, Any] | None:
    """Start the job; return None for a message to drop, raise ``Requeue`` for one to retry."""
    for delay in CLAIM_RETRY_DELAYS:
        try:
            return dict(data.start_job(job_id, attempt, WORKER_ID))
        except JobNotQueuedYet:
            green.sleep(delay)
        except (InvalidTransition, NotFound) as exc:
            log.debug("dropping message for job %s attempt %s: %s", job_id, attempt, exc)
            return None
        except ServiceUnavailable as exc:
            raise Requeue(f"cannot claim job {job_id}: {exc}") from exc
    raise Requeue(f"job {job_id} is still not recorded as queued")


def _run_handler(job: Job) -> Report | None:
    handler = handler_for(job.kind)
    if handler is None:
        return Report("fail", error=f"no handler for job kind {job.kind}", permanent=True)
    try:
        result = handler(job)
    except JobCancelled:
        return None
    except PermanentFailure as exc:
        log.warning("job %s (%s) failed permanently: %s", job.id, job.kind, exc)
        return Report("fail", error=str(exc), permanent=True)
    except Exception as exc:
        log.warning(
            "job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempt, exc, exc_info=True
        )
        return Report("fail", error=f"{type(exc).__name__}: {exc}")
    return Report("succeed", result=result or {})


def _beat(data: Any, job: Job) -> None:
    interval = max(job.lease_seconds / 3, 0.1)
    while True:
        green.sleep(interval)
        try:
            data.heartbeat_job(job.id, job.attempt)
        except (InvalidTransition, NotFound) as exc:
            job.cancel(str(exc))
            return
        except ServiceUnavailable as exc:
            log.warning("heartbeat of job %s failed, retrying: %s", job.id, exc)


def _store(data: Any, job: Job, report: Report) -> None:
    deadline = time.monotonic() + job.lease_seconds
    delay = 0.2
    while True:
        try:
            if report.trigger == "succeed":
                data.succeed_job(job.id, job.attempt, WORKER_ID, report.result)
            else:
                data.fail_job(job.id, job.attempt, WORKER_ID, report.error, report.permanent)
            return
        except (InvalidTransition, NotFound) as exc:
            # Cancelled or taken back meanwhile: the job's state is already decided.
            log.info("outcome of job %s attempt %s not stored: %s", job.id, job.attempt, exc)
            return
        except ServiceUnavailable as exc:
            if time.monotonic() + delay > deadline:
                raise Requeue(f"cannot store the outcome of job {job.id}: {exc}") from exc
            log.warning("storing the outcome of job %s failed, retrying: %s", job.id, exc)
            green.sleep(delay)
            delay = min(delay * 2, REPORT_RETRY_MAX)
