"""Job kinds that exist only in tests, registered by importing this module.

``test.record`` does what its payload requests (sleep, fail some attempts,
fail permanently, wait to be cancelled) and leaves two traces: each run of
its handler appends ``"<job id> <attempt> <pid>"`` to ``payload["runs_file"]``
(when given), and its outcome, applied by the data service with the job's
success, inserts a row into ``test_job_effects``. A job whose effect row
appears twice was applied twice.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import text

from services.data.job_outcomes import outcome
from services.workers.registry import Job, PermanentFailure, job_kind

RECORD = "test.record"
# A kind that no worker serves, so its jobs stay queued.
UNSERVED = "test.unserved"

EFFECTS_TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS test_job_effects "
    "(job_id bigint NOT NULL, attempt integer NOT NULL, at timestamptz NOT NULL DEFAULT now())"
)


@job_kind(RECORD)
def record(job: Job) -> dict[str, Any]:
    payload = job.payload
    runs_file = payload.get("runs_file")
    if runs_file:
        with open(runs_file, "a", encoding="utf-8") as runs:
            runs.write(f"{job.id} {job.attempt} {os.getpid()}\n")
    if payload.get("wait_for_cancel"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job.check_cancelled()
            time.sleep(0.05)
    if payload.get("sleep"):
        time.sleep(float(payload["sleep"]))
    if payload.get("permanent"):
        raise PermanentFailure("planned permanent failure")
    if job.attempt <= int(payload.get("fail_times", 0)):
        raise RuntimeError(f"planned failure of attempt {job.attempt}")
    return {"attempt": job.attempt, "pid": os.getpid()}


@outcome(RECORD)
def record_effect(unit: Any, job: Any, result: dict[str, Any]) -> dict[str, Any]:
    unit.session.execute(
        text("INSERT INTO test_job_effects (job_id, attempt) VALUES (:job_id, :attempt)"),
        {"job_id": job.id, "attempt": job.attempt},
    )
    return result
