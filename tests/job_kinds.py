"""Job kinds that exist only for tests, run by a worker service built on the toolkit.

Each attempt of ``test.effect`` inserts a row into ``test_effects`` in the
test database, so a test can count how often a job's effect really ran.
"""

from __future__ import annotations

import time
from typing import Any

import eventlet
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, text

from services.toolkit import config as cfg
from services.toolkit.jobs import JobRun, PermanentJobError, job_kind
from services.toolkit.rpc import TimedRpcProxy

CREATE_EFFECTS = """
CREATE TABLE IF NOT EXISTS test_effects (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    worker text NOT NULL
)
"""


class Effects(DependencyProvider):
    def setup(self) -> None:
        self.engine = create_engine(cfg.database_url(self.container.config))
        with self.engine.begin() as connection:
            connection.execute(text(CREATE_EFFECTS))

    def stop(self) -> None:
        self.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> Effects:
        return self

    def record(self, job: JobRun, worker: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO test_effects (job_id, attempt, worker) VALUES (:j, :a, :w)"),
                {"j": job.id, "a": job.attempt, "w": worker},
            )


class TestWorkers:
    name = "test_workers"

    data = TimedRpcProxy("data")
    config = Config()
    effects = Effects()

    @job_kind("test.flaky")
    def flaky(self, job: JobRun) -> dict[str, Any]:
        """Fail every attempt before ``succeed_on``, then succeed."""
        if job.attempt < job.payload.get("succeed_on", 1):
            raise RuntimeError(f"attempt {job.attempt} fails on purpose")
        return {"attempt": job.attempt}

    @job_kind("test.permanent")
    def permanent(self, job: JobRun) -> None:
        raise PermanentJobError("this job can never succeed")

    @job_kind("test.slow")
    def slow(self, job: JobRun) -> dict[str, Any]:
        """Run for ``seconds`` or until the attempt is abandoned (cancelled)."""
        deadline = time.monotonic() + float(job.payload.get("seconds", 30))
        while time.monotonic() < deadline and not job.abandoned:
            eventlet.sleep(0.05)
        return {"abandoned": job.abandoned}

    @job_kind("test.effect")
    def effect(self, job: JobRun) -> dict[str, Any]:
        """Record one effect after ``seconds``; a crash before the record leaves none."""
        eventlet.sleep(float(job.payload.get("seconds", 0)))
        self.effects.record(job, self.config.get("test_worker_name", "in-process"))
        return {"recorded": True}
